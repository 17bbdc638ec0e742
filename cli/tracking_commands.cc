// pyfunc runs list | runs show | experiments list: read the tracking store in force
// (--tracking-uri, else $PYFUNC_TRACKING_URI, $MLFLOW_TRACKING_URI, ./mlflow.db as MLflow's default).
#include <ctime>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/tracking.h"

namespace pyfunc::cli {
namespace {

std::string TimeText(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

Result<std::unique_ptr<TrackingStore>> Open(const std::string& tracking_uri) {
  return OpenTrackingStore(tracking_uri.empty() ? GetTrackingUri() : tracking_uri);
}

int ExperimentsList(const std::string& tracking_uri) {
  auto store = Open(tracking_uri);
  if (!store.ok()) return Fail(store.status());
  auto exps = (*store)->ListExperiments();
  if (!exps.ok()) return Fail(exps.status());
  fmt::print("{:<20} {:<30} {}\n", "EXPERIMENT_ID", "NAME", "ARTIFACT_LOCATION");
  for (const Experiment& e : *exps) fmt::print("{:<20} {:<30} {}\n", e.experiment_id, e.name, e.artifact_location);
  return 0;
}

int RunsList(const std::string& tracking_uri, const std::string& experiment) {
  auto store = Open(tracking_uri);
  if (!store.ok()) return Fail(store.status());
  std::string exp_id = experiment.empty() ? kDefaultExperimentId : experiment;
  if (!experiment.empty()) {
    // An id if one exists, else a name.
    auto by_id = (*store)->GetExperiment(experiment);
    if (!by_id.ok()) {
      auto by_name = (*store)->GetExperimentByName(experiment);
      if (!by_name.ok())
        return Fail(Status::NotFound("experiment '" + experiment + "': no experiment with this id or name"));
      exp_id = by_name->experiment_id;
    }
  }
  auto runs = (*store)->SearchRuns({exp_id});
  if (!runs.ok()) return Fail(runs.status());
  fmt::print("{:<32}  {:<24} {:<9} {}\n", "RUN_ID", "NAME", "STATUS", "START_TIME (UTC)");
  for (const Run& r : *runs) {
    fmt::print("{:<32}  {:<24} {:<9} {}\n", r.info.run_id, r.info.run_name, RunStatusName(r.info.status),
               TimeText(r.info.start_time));
  }
  return 0;
}

int RunsShow(const std::string& tracking_uri, const std::string& run_id) {
  auto store = Open(tracking_uri);
  if (!store.ok()) return Fail(store.status());
  auto run = (*store)->GetRun(run_id);
  if (!run.ok()) return Fail(run.status());
  auto row = [](const std::string& key, const std::string& value) { fmt::print("{:<16}{}\n", key + ":", value); };
  row("run_id", run->info.run_id);
  row("name", run->info.run_name);
  row("experiment_id", run->info.experiment_id);
  row("status", RunStatusName(run->info.status));
  row("user", run->info.user_id);
  row("start_time", TimeText(run->info.start_time));
  row("end_time", run->info.end_time ? TimeText(*run->info.end_time) : "-");
  row("artifact_uri", run->info.artifact_uri);
  for (const auto& [k, v] : run->data.params) row("param." + k, v);
  for (const Metric& m : run->data.metrics) row("metric." + m.key, fmt::format("{} (step {})", m.value, m.step));
  for (const auto& [k, v] : run->data.tags) {
    if (k == "mlflow.log-model.history") continue;
    row("tag." + k, v);
  }
  auto files = (*store)->ListArtifacts(run_id, "");
  if (files.ok()) {
    for (const ArtifactInfo& f : *files) row("artifact", f.path + (f.is_dir ? "/" : ""));
  }
  // MLflow 3 logged models the run made (their files are with the model, not the run).
  auto models = (*store)->SearchLoggedModels(run->info.experiment_id, "", run_id);
  if (models.ok()) {
    for (const LoggedModel& m : *models) {
      row("model", fmt::format("{} models:/{} ({})", m.name, m.model_id, LoggedModelStatusName(m.status)));
    }
  }
  return 0;
}

}  // namespace

void RegisterTrackingCommands(CLI::App& app, int* exit_code) {
  struct Args {
    std::string tracking_uri;
    std::string experiment;
    std::string run_id;
  };
  auto args = std::make_shared<Args>();
  const char* uri_help =
      "Tracking URI (default: $PYFUNC_TRACKING_URI, $MLFLOW_TRACKING_URI, sqlite:///mlflow.db; ./mlruns "
      "when it holds a file store and ./mlflow.db does not)";

  auto* runs = app.add_subcommand("runs", "List and show tracked runs");
  runs->require_subcommand(1);
  auto* list = runs->add_subcommand("list", "List the runs of an experiment, newest first");
  list->add_option("--experiment,-e", args->experiment, "Experiment id or name (default: 0, 'Default')");
  list->add_option("--tracking-uri", args->tracking_uri, uri_help);
  list->callback([args, exit_code] { *exit_code = RunsList(args->tracking_uri, args->experiment); });
  auto* show = runs->add_subcommand("show", "Show a run: info, params, metrics, tags, artifacts");
  show->add_option("run_id", args->run_id, "Run id")->required();
  show->add_option("--tracking-uri", args->tracking_uri, uri_help);
  show->callback([args, exit_code] { *exit_code = RunsShow(args->tracking_uri, args->run_id); });

  auto* experiments = app.add_subcommand("experiments", "List experiments");
  experiments->require_subcommand(1);
  auto* elist = experiments->add_subcommand("list", "List the active experiments");
  elist->add_option("--tracking-uri", args->tracking_uri, uri_help);
  elist->callback([args, exit_code] { *exit_code = ExperimentsList(args->tracking_uri); });
}

}  // namespace pyfunc::cli
