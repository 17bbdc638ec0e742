// The sqlite store: MLflow's SQL schema created and stamped, runs, metrics, params, tags,
// logged models and inputs written as MLflow writes them, databases it must refuse to
// write (older, unknown revisions; not MLflow's; corrupt; read-only), writers from several
// threads, and the default tracking URI. (MLflow reading what pyfunc wrote is tested from
// Python: tests/python/test_tracking_sqlite.py.)
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "pyfunc/tracking.h"
#include "test_util.h"
#include "tracking/mlflow_sqlite_schema.h"

namespace pyfunc {
namespace {

using tracking_internal::kMlflowSchemaRevision;

// A read-only look at the database, independent of the store.
class Db {
 public:
  explicit Db(const std::string& path) { sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr); }
  ~Db() { sqlite3_close(db_); }
  std::string One(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string out = "<error>";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      out = "<none>";
      if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out = t == nullptr ? "NULL" : reinterpret_cast<const char*>(t);
      }
    }
    sqlite3_finalize(st);
    return out;
  }
  int Exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_ = nullptr;
};

std::unique_ptr<TrackingStore> Open(const std::string& path) {
  auto store = OpenTrackingStore("sqlite:///" + path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

TEST(SqliteStore, NewDatabaseIsMlflowsSchemaStamped) {
  testing::TempDir dir;
  std::string path = dir.Join("sub/mlflow.db");
  auto store = Open(path);
  // Reading a database that does not exist yet creates nothing.
  auto exps = store->ListExperiments();
  PYFUNC_ASSERT_OK(exps);
  EXPECT_TRUE(exps->empty());
  EXPECT_EQ(store->GetRun("0123456789abcdef0123456789abcdef").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(path));

  auto run = store->CreateRun(CreateRunRequest{});
  PYFUNC_ASSERT_OK(run);
  Db db(path);
  EXPECT_EQ(db.One("SELECT version_num FROM alembic_version"), kMlflowSchemaRevision);
  EXPECT_EQ(db.One("SELECT count(*) FROM alembic_version"), "1");
  EXPECT_EQ(db.One("SELECT name || '|' || workspace FROM experiments WHERE experiment_id = 0"), "Default|default");
  EXPECT_EQ(db.One("SELECT count(*) FROM workspaces WHERE name = 'default'"), "1");
  EXPECT_EQ(db.One("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'logged_models', "
                   "'trace_info', 'registered_models', 'model_versions', 'spans', 'jobs')"),
            "7");
  // Artifacts where MLflow's client puts them for a sqlite store: <cwd>/mlruns/<exp>/<run>/artifacts.
  std::string root = std::filesystem::current_path().string() + "/mlruns/0";
  EXPECT_EQ(db.One("SELECT artifact_location FROM experiments WHERE experiment_id = 0"), root);
  EXPECT_EQ(run->artifact_uri, root + "/" + run->run_id + "/artifacts");
  EXPECT_EQ(db.One("SELECT status || '|' || source_type || '|' || lifecycle_stage FROM runs"),
            "RUNNING|UNKNOWN|active");
}

TEST(SqliteStore, RunsParamsMetricsTags) {
  testing::TempDir dir;
  std::string path = dir.Join("mlflow.db");
  auto store = Open(path);
  auto exp = store->CreateExperiment("exp-a");
  PYFUNC_ASSERT_OK(exp);
  EXPECT_EQ(*exp, "1");  // an autoincremented integer, as MLflow's SQL store gives
  EXPECT_EQ(store->CreateExperiment("exp-a").status().code(), StatusCode::kAlreadyExists);
  CreateRunRequest req;
  req.experiment_id = *exp;
  req.run_name = "train";
  req.tags = {{"team", "ml"}};
  auto run = store->CreateRun(req);
  PYFUNC_ASSERT_OK(run);
  const std::string id = run->run_id;
  double inf = std::numeric_limits<double>::infinity();
  PYFUNC_ASSERT_OK(store->LogBatch(id,
                                   {{"loss", 3.0, 100, 0},
                                    {"loss", 2.0, 200, 1},
                                    {"loss", 9.0, 50, 1},
                                    {"nan", std::nan(""), 1, 0},
                                    {"inf", inf, 1, 0}},
                                   {{"alpha", "0.5"}}, {{"team", "core"}}));
  // Latest metric: the largest (step, timestamp, value), whatever the order of logging.
  PYFUNC_ASSERT_OK(store->LogBatch(id, {{"loss", 1.0, 150, 0}}, {{"alpha", "0.5"}}, {}));
  auto got = store->GetRun(id);
  PYFUNC_ASSERT_OK(got);
  EXPECT_EQ(got->info.run_name, "train");
  EXPECT_EQ(got->data.params.at("alpha"), "0.5");
  EXPECT_EQ(got->data.tags.at("team"), "core");
  EXPECT_EQ(got->data.tags.at("mlflow.runName"), "train");
  std::map<std::string, double> latest;
  for (const Metric& m : got->data.metrics) latest[m.key] = m.value;
  EXPECT_EQ(latest.at("loss"), 2.0);
  EXPECT_TRUE(std::isnan(latest.at("nan")));
  EXPECT_EQ(latest.at("inf"), std::numeric_limits<double>::max());  // MLflow stores +inf as DBL_MAX
  auto history = store->GetMetricHistory(id, "loss");
  PYFUNC_ASSERT_OK(history);
  EXPECT_EQ(history->size(), 4u);
  Db db(path);
  EXPECT_EQ(db.One("SELECT value || '|' || is_nan FROM metrics WHERE key = 'nan'"), "0.0|1");

  // A changed param fails the whole call: nothing of it is written.
  Status st = store->LogBatch(id, {{"loss", 0.5, 300, 2}}, {{"alpha", "0.7"}, {"beta", "1"}}, {{"x", "y"}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("already logged with value '0.5'"));
  EXPECT_EQ(store->GetMetricHistory(id, "loss")->size(), 4u);
  EXPECT_EQ(db.One("SELECT count(*) FROM params WHERE key = 'beta'"), "0");
  EXPECT_EQ(db.One("SELECT count(*) FROM tags WHERE key = 'x'"), "0");
  // Values over MLflow's limits and bad keys are refused before the transaction.
  EXPECT_EQ(store->LogBatch(id, {}, {{"big", std::string(6001, 'x')}}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->LogBatch(id, {}, {}, {{"../t", "v"}}).code(), StatusCode::kInvalidArgument);

  // mlflow.runName renames the run, as in MLflow.
  PYFUNC_ASSERT_OK(store->LogBatch(id, {}, {}, {{"mlflow.runName", "renamed"}}));
  EXPECT_EQ(store->GetRun(id)->info.run_name, "renamed");
  PYFUNC_ASSERT_OK(store->UpdateRun(id, RunStatus::kFinished, 12345));
  got = store->GetRun(id);
  EXPECT_EQ(got->info.status, RunStatus::kFinished);
  EXPECT_EQ(*got->info.end_time, 12345);
  auto runs = store->SearchRuns({*exp});
  PYFUNC_ASSERT_OK(runs);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(store->SearchRuns({"77"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->LogBatch("0123456789abcdef0123456789abcdef", {{"m", 1, 1, 0}}, {}, {}).code(),
            StatusCode::kNotFound);
}

TEST(SqliteStore, LoggedModelsOutputsAndInputs) {
  testing::TempDir dir;
  std::string path = dir.Join("mlflow.db");
  auto store = Open(path);
  EXPECT_TRUE(*store->SupportsLoggedModels());
  auto run = store->CreateRun(CreateRunRequest{});
  PYFUNC_ASSERT_OK(run);
  CreateLoggedModelRequest req;
  req.name = "model";
  req.source_run_id = run->run_id;
  req.params = {{"alpha", "0.5"}};
  req.tags = {{"mlflow.user", "me"}};
  auto model = store->CreateLoggedModel(req);
  PYFUNC_ASSERT_OK(model);
  EXPECT_EQ(model->model_id.rfind("m-", 0), 0u);
  EXPECT_EQ(model->model_id.size(), 34u);
  EXPECT_EQ(model->artifact_location,
            std::filesystem::current_path().string() + "/mlruns/0/models/" + model->model_id + "/artifacts");
  EXPECT_EQ(model->status, LoggedModelStatus::kPending);
  PYFUNC_ASSERT_OK(store->LogOutputs(run->run_id, {model->model_id}, 0));
  PYFUNC_ASSERT_OK(store->FinalizeLoggedModel(model->model_id, LoggedModelStatus::kReady));
  auto got = store->GetLoggedModel(model->model_id);
  PYFUNC_ASSERT_OK(got);
  EXPECT_EQ(got->status, LoggedModelStatus::kReady);
  auto found = store->SearchLoggedModels("0", "model", run->run_id);
  PYFUNC_ASSERT_OK(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].model_id, model->model_id);
  Db db(path);
  EXPECT_EQ(db.One("SELECT source_type || '|' || destination_type || '|' || destination_id || '|' || step FROM inputs"),
            "RUN_OUTPUT|MODEL_OUTPUT|" + model->model_id + "|0");
  EXPECT_EQ(db.One("SELECT param_value FROM logged_model_params"), "0.5");
  EXPECT_EQ(db.One("SELECT tag_value FROM logged_model_tags WHERE tag_key = 'mlflow.user'"), "me");
  EXPECT_EQ(store->FinalizeLoggedModel("m-nope", LoggedModelStatus::kReady).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->LogOutputs(run->run_id, {"m-nope"}, 0).code(), StatusCode::kNotFound);

  DatasetInput ds{
      "iris", "abc123", "local", R"({"uri": "/data/iris.csv"})", "", "", {{"mlflow.data.context", "training"}}};
  PYFUNC_ASSERT_OK(store->LogInputs(run->run_id, {ds, ds}, {}));
  PYFUNC_ASSERT_OK(store->LogInputs(run->run_id, {ds}, {}));  // logged once
  EXPECT_EQ(db.One("SELECT count(*) FROM datasets"), "1");
  EXPECT_EQ(
      db.One("SELECT count(*) FROM inputs WHERE source_type = 'DATASET' AND destination_id = '" + run->run_id + "'"),
      "1");
  EXPECT_EQ(db.One("SELECT value FROM input_tags WHERE name = 'mlflow.data.context'"), "training");
  EXPECT_EQ(store->LogInputs(run->run_id, {DatasetInput{"x", "", "local", "{}"}}, {}).code(),
            StatusCode::kInvalidArgument);
}

// A database at another revision than pyfunc writes: read, never written.
TEST(SqliteStore, OlderUnknownAndNewerRevisionsAreRefusedNamingBoth) {
  testing::TempDir dir;
  std::string path = dir.Join("mlflow.db");
  std::string run_id;
  {
    auto store = Open(path);
    auto run = store->CreateRun(CreateRunRequest{});
    PYFUNC_ASSERT_OK(run);
    run_id = run->run_id;
  }
  for (const std::string& rev : {std::string("0584bdc529eb"), std::string("fedcba987654")}) {
    {
      Db db(path);
      ASSERT_EQ(db.Exec("UPDATE alembic_version SET version_num = '" + rev + "'"), SQLITE_OK);
    }
    auto store = Open(path);
    PYFUNC_EXPECT_OK(store->GetRun(run_id));  // reading works at any revision
    Status st = store->LogBatch(run_id, {{"m", 1.0, 1, 0}}, {{"p", "v"}}, {});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), ::testing::HasSubstr("revision " + rev));
    EXPECT_THAT(st.message(), ::testing::HasSubstr(kMlflowSchemaRevision));
    EXPECT_THAT(st.message(), ::testing::HasSubstr(rev == "0584bdc529eb" ? "mlflow db upgrade" : "newer MLflow"));
    EXPECT_EQ(store->CreateRun(CreateRunRequest{}).status().code(), StatusCode::kInvalidArgument);
    Db db(path);
    EXPECT_EQ(db.One("SELECT count(*) FROM metrics"), "0");
    EXPECT_EQ(db.One("SELECT count(*) FROM runs"), "1");
  }
}

TEST(SqliteStore, DatabasesThatAreNotMlflowsAreRefused) {
  testing::TempDir dir;
  // Not an SQLite file at all.
  std::string junk = dir.Join("junk.db");
  std::ofstream(junk) << std::string(4096, 'x');
  auto store = Open(junk);
  Status st = store->CreateRun(CreateRunRequest{}).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("is not an SQLite database"));
  EXPECT_EQ(store->ListExperiments().status().code(), StatusCode::kInvalidArgument);
  // An SQLite database of something else.
  std::string other = dir.Join("other.db");
  { Db db(other); }
  {
    sqlite3* raw = nullptr;
    sqlite3_open(other.c_str(), &raw);
    sqlite3_exec(raw, "CREATE TABLE foo (x INTEGER)", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  st = Open(other)->CreateRun(CreateRunRequest{}).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("no alembic_version"));
  // A real database cut short: corrupt.
  std::string good = dir.Join("good.db");
  PYFUNC_ASSERT_OK(Open(good)->CreateRun(CreateRunRequest{}));
  std::filesystem::resize_file(good, std::filesystem::file_size(good) / 3);
  st = Open(good)->CreateRun(CreateRunRequest{}).status();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), ::testing::AnyOf(::testing::HasSubstr("corrupt"), ::testing::HasSubstr("malformed")));
  // A directory.
  std::filesystem::create_directories(dir.Join("dir.db"));
  EXPECT_EQ(OpenTrackingStore("sqlite:///" + dir.Join("dir.db")).status().code(), StatusCode::kInvalidArgument);
}

TEST(SqliteStore, ReadOnlyDatabaseIsReadButNotWritten) {
  testing::TempDir dir;
  std::string path = dir.Join("mlflow.db");
  std::string run_id;
  {
    auto run = Open(path)->CreateRun(CreateRunRequest{});
    PYFUNC_ASSERT_OK(run);
    run_id = run->run_id;
  }
  ::chmod(path.c_str(), 0444);
  bool immutable = false;
  if (::access(path.c_str(), W_OK) == 0) {  // root: only the immutable attribute stops writes
    immutable = std::system(("chattr +i '" + path + "' 2>/dev/null").c_str()) == 0;
    if (!immutable) GTEST_SKIP() << "cannot make a file read-only for this user";
  }
  {
    auto store = Open(path);
    PYFUNC_EXPECT_OK(store->GetRun(run_id));
    Status st = store->LogBatch(run_id, {{"m", 1.0, 1, 0}}, {}, {});
    EXPECT_EQ(st.code(), StatusCode::kIOError);
    EXPECT_THAT(st.message(), ::testing::HasSubstr("read-only"));
  }
  if (immutable) (void)std::system(("chattr -i '" + path + "'").c_str());
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(Db(path).One("SELECT count(*) FROM metrics"), "0");
}

TEST(SqliteStore, WritersInSeveralThreadsLoseNothing) {
  testing::TempDir dir;
  std::string path = dir.Join("mlflow.db");
  auto run = Open(path)->CreateRun(CreateRunRequest{});
  PYFUNC_ASSERT_OK(run);
  constexpr int kThreads = 4, kPoints = 150;
  std::vector<std::thread> threads;
  std::vector<Status> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = Open(path);  // its own connection, as another process would have
      for (int i = 0; i < kPoints && errors[t].ok(); ++i) {
        errors[t] =
            store->LogBatch(run->run_id, {{"loss", double(t * 1000 + i), 1000 + i, i}},
                            {{"p" + std::to_string(t), "v"}}, {{"last" + std::to_string(t), std::to_string(i)}});
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& st : errors) PYFUNC_EXPECT_OK(st);
  auto store = Open(path);
  EXPECT_EQ(store->GetMetricHistory(run->run_id, "loss")->size(), size_t{kThreads * kPoints});
  auto got = store->GetRun(run->run_id);
  EXPECT_EQ(got->data.tags.at("last3"), std::to_string(kPoints - 1));
  EXPECT_EQ(got->data.params.size(), size_t{kThreads});
  ASSERT_EQ(got->data.metrics.size(), 1u);
  EXPECT_EQ(got->data.metrics[0].value, double(3 * 1000 + kPoints - 1));  // step 149, latest timestamp, largest value
}

// The default tracking URI follows MLflow's: ./mlflow.db, or ./mlruns when it holds a
// file store and ./mlflow.db does not.
TEST(SqliteStore, DefaultTrackingUri) {
  testing::TempDir dir;
  std::string old = std::filesystem::current_path().string();
  std::filesystem::current_path(dir.path());
  ::unsetenv("PYFUNC_TRACKING_URI");
  ::unsetenv("MLFLOW_TRACKING_URI");
  SetTrackingUri("");
  EXPECT_EQ(GetTrackingUri(), "sqlite:///" + dir.path() + "/mlflow.db");
  std::filesystem::create_directories(dir.Join("mlruns/0/run/artifacts"));  // a sqlite store's artifacts
  EXPECT_EQ(GetTrackingUri(), "sqlite:///" + dir.path() + "/mlflow.db");
  std::ofstream(dir.Join("mlruns/0/meta.yaml")) << "name: Default\n";  // a file store
  EXPECT_EQ(GetTrackingUri(), "file://" + dir.path() + "/mlruns");
  std::ofstream(dir.Join("mlflow.db")) << "";
  EXPECT_EQ(GetTrackingUri(), "sqlite:///" + dir.path() + "/mlflow.db");
  std::filesystem::current_path(old);
}

}  // namespace
}  // namespace pyfunc
