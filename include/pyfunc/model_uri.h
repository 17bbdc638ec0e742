// Model URIs: what a user passes where a model path is accepted, turned into a local
// directory.
//
//   /path/to/model, relative/path, file:///path      the directory itself
//   runs:/<run_id>/<path>                            <path> in the run's artifacts; if the
//                                                    run has nothing there, MLflow 3's logged
//                                                    model named <first segment> of that run
//   models:/<name>/<version>, models:/<name>/latest  a registered model version
//   models:/<name>@<alias>                           the version an alias points at
//   models:/<model_id>                               an MLflow 3 logged model (m-...)
//   mlflow-artifacts:/..., any of the above + /sub/path
//
// runs:/ and models:/ are looked up in the store of the tracking URI in force (see
// tracking.h). Local artifacts are used in place; remote ones are downloaded into the
// cache directory, into a temporary directory renamed into place when complete. Logged
// models and registered versions are downloaded once and reused; a run's artifacts can
// change, so runs:/ downloads are fresh each time (remove old ones with the cache dir).
#ifndef PYFUNC_MODEL_URI_H_
#define PYFUNC_MODEL_URI_H_

#include <string>

#include "pyfunc/status.h"

namespace pyfunc {

struct ResolveModelUriOptions {
  // The tracking store to look runs and models up in; empty: GetTrackingUri().
  std::string tracking_uri;
  // Where remote artifacts are downloaded; empty: $PYFUNC_CACHE_DIR, else
  // $XDG_CACHE_HOME/pyfunc/models, else ~/.cache/pyfunc/models.
  std::string cache_dir;
};

// Returns the absolute local path of the model (a directory, or a file for a URI that
// names one). NotFound for an unknown run, model, version or alias, or a missing path;
// InvalidArgument for a malformed URI.
Result<std::string> ResolveModelUri(const std::string& uri, const ResolveModelUriOptions& options = {});

// True for URIs that need a tracking store (runs:/, models:/, mlflow-artifacts:).
bool IsTrackingModelUri(const std::string& uri);

}  // namespace pyfunc

#endif  // PYFUNC_MODEL_URI_H_
