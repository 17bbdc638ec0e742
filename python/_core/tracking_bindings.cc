// Bindings of the tracking layer: stores (file, REST, sqlite), the tracking URI and
// model URI resolution. Runs, experiments and metrics cross as plain dicts; every call
// that touches files or the network releases the GIL.
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>

#include "convert.h"
#include "pyfunc/model_uri.h"
#include "pyfunc/tracking.h"

namespace pyfunc::python {
namespace {

template <typename F>
auto Released(F&& f) {
  nb::gil_scoped_release release;
  return f();
}

nb::dict ExperimentDict(const Experiment& e) {
  nb::dict d;
  d["experiment_id"] = e.experiment_id;
  d["name"] = e.name;
  d["artifact_location"] = e.artifact_location;
  d["lifecycle_stage"] = e.lifecycle_stage;
  d["creation_time"] = e.creation_time;
  d["last_update_time"] = e.last_update_time;
  return d;
}

nb::dict MetricDict(const Metric& m) {
  nb::dict d;
  d["key"] = m.key;
  d["value"] = m.value;
  d["timestamp"] = m.timestamp;
  d["step"] = m.step;
  return d;
}

nb::dict RunInfoDict(const RunInfo& i) {
  nb::dict d;
  d["run_id"] = i.run_id;
  d["experiment_id"] = i.experiment_id;
  d["run_name"] = i.run_name;
  d["user_id"] = i.user_id;
  d["artifact_uri"] = i.artifact_uri;
  d["lifecycle_stage"] = i.lifecycle_stage;
  d["status"] = RunStatusName(i.status);
  d["start_time"] = i.start_time;
  if (i.end_time) {
    d["end_time"] = *i.end_time;
  } else {
    d["end_time"] = nb::none();
  }
  return d;
}

nb::dict RunDict(const Run& r) {
  nb::dict d;
  d["info"] = RunInfoDict(r.info);
  nb::dict data;
  data["params"] = nb::cast(r.data.params);
  data["tags"] = nb::cast(r.data.tags);
  nb::dict metrics;
  for (const Metric& m : r.data.metrics) metrics[m.key.c_str()] = m.value;
  data["metrics"] = metrics;
  d["data"] = data;
  return d;
}

nb::dict LoggedModelDict(const LoggedModel& m) {
  nb::dict d;
  d["model_id"] = m.model_id;
  d["name"] = m.name;
  d["experiment_id"] = m.experiment_id;
  d["source_run_id"] = m.source_run_id;
  d["artifact_location"] = m.artifact_location;
  d["creation_timestamp"] = m.creation_timestamp;
  d["status"] = LoggedModelStatusName(m.status);
  d["model_type"] = m.model_type;
  d["model_uri"] = "models:/" + m.model_id;
  return d;
}

LoggedModelStatus ParseLoggedModelStatus(const std::string& s) {
  for (LoggedModelStatus st : {LoggedModelStatus::kPending, LoggedModelStatus::kReady, LoggedModelStatus::kFailed}) {
    if (s == LoggedModelStatusName(st)) return st;
  }
  throw nb::value_error(
      ("logged model status: unknown status '" + s + "' (expected PENDING, READY or FAILED)").c_str());
}

// A TrackingStore held by Python.
class PyStore {
 public:
  explicit PyStore(std::unique_ptr<TrackingStore> store) : store_(std::move(store)) {}
  TrackingStore& operator*() { return *store_; }
  TrackingStore* operator->() { return store_.get(); }

 private:
  std::unique_ptr<TrackingStore> store_;
};

}  // namespace

void BindTracking(nb::module_& m) {
  m.def(
      "set_tracking_uri", [](const std::string& uri) { SetTrackingUri(uri); }, nb::arg("uri"),
      "Sets the tracking URI of this process ('' clears it).");
  m.def("get_tracking_uri", &GetTrackingUri,
        "The tracking URI in force: set_tracking_uri, $PYFUNC_TRACKING_URI, $MLFLOW_TRACKING_URI, "
        "sqlite:///<cwd>/mlflow.db "
        "(or ./mlruns when it holds a file store and ./mlflow.db does not).");
  m.def(
      "resolve_model_uri",
      [](const std::string& uri, const std::string& tracking_uri, const std::string& cache_dir) {
        ResolveModelUriOptions options{tracking_uri, cache_dir};
        return Unwrap(Released([&] { return ResolveModelUri(uri, options); }));
      },
      nb::arg("uri"), nb::arg("tracking_uri") = "", nb::arg("cache_dir") = "",
      "The local path of a model URI (path, file://, runs:/, models:/, mlflow-artifacts:/).");
  m.def("normalize_artifact_path", [](const std::string& p) { return Unwrap(NormalizeArtifactPath(p)); });

  nb::class_<PyStore>(m, "TrackingStore", "A tracking store (file, REST or sqlite).")
      .def_static(
          "open",
          [](const std::string& uri) {
            return std::make_unique<PyStore>(Unwrap(Released([&] { return OpenTrackingStore(uri); })));
          },
          nb::arg("uri"))
      .def_prop_ro("uri", [](PyStore& s) { return s->uri(); })
      .def("list_experiments",
           [](PyStore& s) {
             auto r = Unwrap(Released([&] { return s->ListExperiments(); }));
             nb::list out;
             for (const Experiment& e : r) out.append(ExperimentDict(e));
             return out;
           })
      .def("get_experiment",
           [](PyStore& s, const std::string& id) {
             return ExperimentDict(Unwrap(Released([&] { return s->GetExperiment(id); })));
           })
      .def("get_experiment_by_name",
           [](PyStore& s, const std::string& name) {
             return ExperimentDict(Unwrap(Released([&] { return s->GetExperimentByName(name); })));
           })
      .def("create_experiment",
           [](PyStore& s, const std::string& name) {
             return Unwrap(Released([&] { return s->CreateExperiment(name); }));
           })
      .def(
          "create_run",
          [](PyStore& s, const std::string& experiment_id, const std::string& run_name,
             const std::map<std::string, std::string>& tags, int64_t start_time) {
            CreateRunRequest req;
            req.experiment_id = experiment_id;
            req.run_name = run_name;
            req.tags = tags;
            req.start_time = start_time;
            return RunInfoDict(Unwrap(Released([&] { return s->CreateRun(req); })));
          },
          nb::arg("experiment_id") = kDefaultExperimentId, nb::arg("run_name") = "",
          nb::arg("tags") = std::map<std::string, std::string>{}, nb::arg("start_time") = 0)
      .def(
          "update_run",
          [](PyStore& s, const std::string& run_id, const std::string& status, std::optional<int64_t> end_time) {
            RunStatus st = Unwrap(ParseRunStatus(status));
            Check(Released([&] { return s->UpdateRun(run_id, st, end_time); }));
          },
          nb::arg("run_id"), nb::arg("status"), nb::arg("end_time") = nb::none())
      .def("get_run",
           [](PyStore& s, const std::string& run_id) {
             return RunDict(Unwrap(Released([&] { return s->GetRun(run_id); })));
           })
      .def("search_runs",
           [](PyStore& s, const std::vector<std::string>& ids) {
             auto runs = Unwrap(Released([&] { return s->SearchRuns(ids); }));
             nb::list out;
             for (const Run& r : runs) out.append(RunDict(r));
             return out;
           })
      .def(
          "log_batch",
          [](PyStore& s, const std::string& run_id, nb::list metrics, const std::map<std::string, std::string>& params,
             const std::map<std::string, std::string>& tags) {
            std::vector<Metric> ms;
            for (nb::handle h : metrics) {
              nb::tuple t = nb::cast<nb::tuple>(h);
              if (t.size() != 4) throw nb::value_error("metrics: expected (key, value, timestamp, step) tuples");
              ms.push_back(Metric{nb::cast<std::string>(t[0]), nb::cast<double>(t[1]), nb::cast<int64_t>(t[2]),
                                  nb::cast<int64_t>(t[3])});
            }
            Check(Released([&] { return s->LogBatch(run_id, ms, params, tags); }));
          },
          nb::arg("run_id"), nb::arg("metrics") = nb::list(), nb::arg("params") = std::map<std::string, std::string>{},
          nb::arg("tags") = std::map<std::string, std::string>{})
      .def("get_metric_history",
           [](PyStore& s, const std::string& run_id, const std::string& key) {
             auto h = Unwrap(Released([&] { return s->GetMetricHistory(run_id, key); }));
             nb::list out;
             for (const Metric& m : h) out.append(MetricDict(m));
             return out;
           })
      .def(
          "log_artifacts",
          [](PyStore& s, const std::string& run_id, const std::string& local_path, const std::string& artifact_path) {
            Check(Released([&] { return s->LogArtifacts(run_id, local_path, artifact_path); }));
          },
          nb::arg("run_id"), nb::arg("local_path"), nb::arg("artifact_path") = "")
      .def(
          "list_artifacts",
          [](PyStore& s, const std::string& run_id, const std::string& path) {
            auto files = Unwrap(Released([&] { return s->ListArtifacts(run_id, path); }));
            nb::list out;
            for (const ArtifactInfo& f : files) {
              nb::dict d;
              d["path"] = f.path;
              d["is_dir"] = f.is_dir;
              d["file_size"] = f.file_size;
              out.append(d);
            }
            return out;
          },
          nb::arg("run_id"), nb::arg("path") = "")
      .def("supports_logged_models",
           [](PyStore& s) { return Unwrap(Released([&] { return s->SupportsLoggedModels(); })); })
      .def(
          "create_logged_model",
          [](PyStore& s, const std::string& experiment_id, const std::string& name, const std::string& source_run_id,
             const std::string& model_type, const std::map<std::string, std::string>& params,
             const std::map<std::string, std::string>& tags) {
            CreateLoggedModelRequest req{experiment_id, name, source_run_id, model_type, params, tags};
            return LoggedModelDict(Unwrap(Released([&] { return s->CreateLoggedModel(req); })));
          },
          nb::arg("experiment_id"), nb::arg("name") = "", nb::arg("source_run_id") = "", nb::arg("model_type") = "",
          nb::arg("params") = std::map<std::string, std::string>{},
          nb::arg("tags") = std::map<std::string, std::string>{})
      .def("finalize_logged_model",
           [](PyStore& s, const std::string& model_id, const std::string& status) {
             LoggedModelStatus st = ParseLoggedModelStatus(status);
             Check(Released([&] { return s->FinalizeLoggedModel(model_id, st); }));
           })
      .def("get_logged_model",
           [](PyStore& s, const std::string& model_id) {
             return LoggedModelDict(Unwrap(Released([&] { return s->GetLoggedModel(model_id); })));
           })
      .def(
          "search_logged_models",
          [](PyStore& s, const std::string& experiment_id, const std::string& name, const std::string& source_run_id) {
            auto models = Unwrap(Released([&] { return s->SearchLoggedModels(experiment_id, name, source_run_id); }));
            nb::list out;
            for (const LoggedModel& m : models) out.append(LoggedModelDict(m));
            return out;
          },
          nb::arg("experiment_id"), nb::arg("name") = "", nb::arg("source_run_id") = "")
      .def(
          "log_outputs",
          [](PyStore& s, const std::string& run_id, const std::vector<std::string>& model_ids, int64_t step) {
            Check(Released([&] { return s->LogOutputs(run_id, model_ids, step); }));
          },
          nb::arg("run_id"), nb::arg("model_ids"), nb::arg("step") = 0)
      .def(
          "log_inputs",
          [](PyStore& s, const std::string& run_id, nb::list datasets, const std::vector<std::string>& model_ids) {
            std::vector<DatasetInput> ds;
            for (nb::handle h : datasets) {
              nb::dict d = nb::cast<nb::dict>(h);
              DatasetInput in;
              auto get = [&](const char* k) {
                return d.contains(k) && !d[k].is_none() ? nb::cast<std::string>(d[k]) : std::string();
              };
              in.name = get("name");
              in.digest = get("digest");
              in.source_type = get("source_type");
              in.source = get("source");
              in.schema = get("schema");
              in.profile = get("profile");
              if (d.contains("tags") && !d["tags"].is_none()) {
                in.tags = nb::cast<std::map<std::string, std::string>>(d["tags"]);
              }
              ds.push_back(std::move(in));
            }
            Check(Released([&] { return s->LogInputs(run_id, ds, model_ids); }));
          },
          nb::arg("run_id"), nb::arg("datasets") = nb::list(), nb::arg("model_ids") = std::vector<std::string>{})
      .def("log_logged_model_artifacts",
           [](PyStore& s, const std::string& model_id, const std::string& local_dir) {
             Check(Released([&] { return s->LogLoggedModelArtifacts(model_id, local_dir); }));
           })
      .def(
          "download_artifacts",
          [](PyStore& s, const std::string& run_id, const std::string& path, const std::string& dst_dir) {
            return Unwrap(Released([&] { return s->DownloadArtifacts(run_id, path, dst_dir); }));
          },
          nb::arg("run_id"), nb::arg("path"), nb::arg("dst_dir"));
}

}  // namespace pyfunc::python
