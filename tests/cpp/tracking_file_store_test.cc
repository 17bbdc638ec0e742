// FileStore: MLflow's ./mlruns layout, path escapes, concurrent writers, model URIs.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "pyfunc/model_uri.h"
#include "pyfunc/tracking.h"
#include "pyfunc/yaml.h"
#include "test_util.h"

namespace pyfunc {
namespace {

using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::unique_ptr<TrackingStore> Open(const TempDir& dir) {
  auto store = OpenTrackingStore("file://" + dir.Join("mlruns"));
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return std::move(store).value();
}

TEST(TrackingFileStore, WritesMlflowLayout) {
  TempDir dir;
  auto store = Open(dir);
  CreateRunRequest req;
  req.run_name = "first";
  auto run = store->CreateRun(req);
  PYFUNC_ASSERT_OK(run);
  EXPECT_EQ(run->experiment_id, "0");
  EXPECT_EQ(run->run_id.size(), 32u);
  std::string root = dir.Join("mlruns");
  std::string run_dir = root + "/0/" + run->run_id;

  auto exp_meta = ParseYaml(Slurp(root + "/0/meta.yaml"), "exp meta");
  PYFUNC_ASSERT_OK(exp_meta);
  EXPECT_EQ(exp_meta->Find("name")->as_string(), "Default");
  EXPECT_EQ(exp_meta->Find("experiment_id")->as_string(), "0");
  EXPECT_EQ(exp_meta->Find("artifact_location")->as_string(), "file://" + root + "/0");

  PYFUNC_ASSERT_OK(store->LogBatch(run->run_id, {{"loss", 0.5, 1000, 0}, {"loss", 0.25, 1001, 1}}, {{"alpha", "0.1"}},
                                   {{"team", "ml"}}));
  EXPECT_EQ(Slurp(run_dir + "/params/alpha"), "0.1");
  EXPECT_EQ(Slurp(run_dir + "/tags/team"), "ml");
  EXPECT_EQ(Slurp(run_dir + "/tags/mlflow.runName"), "first");
  EXPECT_EQ(Slurp(run_dir + "/metrics/loss"), "1000 0.5 0\n1001 0.25 1\n");
  PYFUNC_ASSERT_OK(store->UpdateRun(run->run_id, RunStatus::kFinished, 2000));

  auto meta = ParseYaml(Slurp(run_dir + "/meta.yaml"), "run meta");
  PYFUNC_ASSERT_OK(meta);
  EXPECT_EQ(meta->Find("status")->as_int(), 3);
  EXPECT_EQ(meta->Find("end_time")->as_int(), 2000);
  EXPECT_EQ(meta->Find("run_id")->as_string(), run->run_id);
  EXPECT_EQ(meta->Find("artifact_uri")->as_string(), "file://" + run_dir + "/artifacts");
  EXPECT_EQ(meta->Find("source_type")->as_int(), 4);

  auto got = store->GetRun(run->run_id);
  PYFUNC_ASSERT_OK(got);
  EXPECT_EQ(got->info.status, RunStatus::kFinished);
  EXPECT_EQ(got->data.params.at("alpha"), "0.1");
  ASSERT_EQ(got->data.metrics.size(), 1u);
  EXPECT_EQ(got->data.metrics[0].value, 0.25);  // the latest step

  // A param may not change its value.
  Status changed = store->LogBatch(run->run_id, {}, {{"alpha", "0.2"}}, {});
  EXPECT_EQ(changed.code(), StatusCode::kInvalidArgument);
}

TEST(TrackingFileStore, ReadsMlflowWrittenRun) {
  TempDir dir;
  std::string root = dir.Join("mlruns");
  std::string run_id = "0123456789abcdef0123456789abcdef";
  Spit(root + "/0/meta.yaml", "artifact_location: file://" + root +
                                  "/0\ncreation_time: 1\nexperiment_id: '0'\nlast_update_time: 1\n"
                                  "lifecycle_stage: active\nname: Default\nworkspace: default\n");
  Spit(root + "/0/" + run_id + "/meta.yaml",
       "artifact_uri: file://" + root + "/0/" + run_id +
           "/artifacts\nend_time: null\nentry_point_name: ''\n"
           "experiment_id: 0\nlifecycle_stage: active\nrun_id: " +
           run_id + "\nrun_uuid: " + run_id +
           "\nrun_name: r\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 5\nstatus: 1\ntags: []\n"
           "user_id: u\n");
  Spit(root + "/0/" + run_id + "/metrics/m", "1 2.0\n3 1.0 4 ds digest\n");
  Spit(root + "/0/" + run_id + "/params/nested/key", "v\n");
  auto store = Open(dir);
  auto run = store->GetRun(run_id);
  PYFUNC_ASSERT_OK(run);
  EXPECT_EQ(run->info.experiment_id, "0");
  EXPECT_EQ(run->data.params.at("nested/key"), "v\n");
  ASSERT_EQ(run->data.metrics.size(), 1u);
  EXPECT_EQ(run->data.metrics[0].step, 4);
  auto runs = store->SearchRuns({"0"});
  PYFUNC_ASSERT_OK(runs);
  EXPECT_EQ(runs->size(), 1u);
}

TEST(TrackingFileStore, UnknownRunIsNotFound) {
  TempDir dir;
  auto store = Open(dir);
  EXPECT_EQ(store->GetRun("ffffffffffffffffffffffffffffffff").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetRun("../../etc").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetExperimentByName("nope").status().code(), StatusCode::kNotFound);
}

TEST(TrackingFileStore, ArtifactsStayInsideTheRoot) {
  TempDir dir;
  auto store = Open(dir);
  auto run = store->CreateRun({});
  PYFUNC_ASSERT_OK(run);
  std::string file = dir.Join("model.txt");
  Spit(file, "weights");
  PYFUNC_ASSERT_OK(store->LogArtifacts(run->run_id, file, "model"));
  auto listing = store->ListArtifacts(run->run_id, "model");
  PYFUNC_ASSERT_OK(listing);
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_EQ((*listing)[0].path, "model/model.txt");
  EXPECT_EQ((*listing)[0].file_size, 7);

  for (const char* bad : {"../escape", "/abs", "a/../../b"}) {
    Status st = store->LogArtifacts(run->run_id, file, bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.Join("mlruns/0/" + run->run_id + "/escape")));

  // A symlink inside the artifact root that points out of it.
  std::string outside = dir.Join("outside");
  std::filesystem::create_directories(outside);
  std::string art = dir.Join("mlruns/0/" + run->run_id + "/artifacts");
  std::filesystem::create_symlink(outside, art + "/link");
  std::string src_dir = dir.Join("srcdir");
  Spit(src_dir + "/a.txt", "a");
  Spit(src_dir + "/b.txt", "b");
  Status st = store->LogArtifacts(run->run_id, src_dir, "link");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  EXPECT_EQ(ResolveModelUri("runs:/" + run->run_id + "/link", {"file://" + dir.Join("mlruns"), ""}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TrackingFileStore, ConcurrentWritersLoseNothing) {
  TempDir dir;
  auto store = Open(dir);
  auto run = store->CreateRun({});
  PYFUNC_ASSERT_OK(run);
  constexpr int kThreads = 4, kPoints = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto own = OpenTrackingStore("file://" + dir.Join("mlruns"));
      ASSERT_TRUE(own.ok());
      for (int i = 0; i < kPoints; ++i) {
        Status st = (*own)->LogBatch(run->run_id, {{"m", double(i), 1000 + i, t * kPoints + i}},
                                     {{"p" + std::to_string(t), "v"}}, {{"t", std::to_string(i)}});
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      auto r2 = (*own)->CreateRun({});  // runs and the default experiment, created at once
      ASSERT_TRUE(r2.ok()) << r2.status().ToString();
    });
  }
  for (auto& th : threads) th.join();
  auto history = store->GetMetricHistory(run->run_id, "m");
  PYFUNC_ASSERT_OK(history);
  EXPECT_EQ(history->size(), static_cast<size_t>(kThreads * kPoints));
  auto got = store->GetRun(run->run_id);
  PYFUNC_ASSERT_OK(got);
  EXPECT_EQ(got->data.params.size(), static_cast<size_t>(kThreads));
  auto runs = store->SearchRuns({"0"});
  PYFUNC_ASSERT_OK(runs);
  EXPECT_EQ(runs->size(), static_cast<size_t>(kThreads + 1));
}

TEST(TrackingModelUri, ResolvesRunsAndRegistry) {
  TempDir dir;
  std::string uri = "file://" + dir.Join("mlruns");
  auto store = Open(dir);
  auto run = store->CreateRun({});
  PYFUNC_ASSERT_OK(run);
  std::string model = dir.Join("m");
  Spit(model + "/MLmodel", "flavors: {}\n");
  PYFUNC_ASSERT_OK(store->LogArtifacts(run->run_id, model, "model"));
  ResolveModelUriOptions opts{uri, dir.Join("cache")};
  auto path = ResolveModelUri("runs:/" + run->run_id + "/model", opts);
  PYFUNC_ASSERT_OK(path);
  EXPECT_TRUE(std::filesystem::exists(*path + "/MLmodel"));
  EXPECT_EQ(ResolveModelUri("runs:/" + run->run_id + "/nope", opts).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveModelUri("runs:/0000/model", opts).status().code(), StatusCode::kNotFound);

  // MLflow 3: a logged model of the run, and the registry pointing at it.
  std::string root = dir.Join("mlruns");
  std::string mdir = root + "/0/models/m-abc";
  Spit(mdir + "/meta.yaml", "artifact_location: file://" + mdir +
                                "/artifacts\nexperiment_id: '0'\nmodel_id: m-abc\n"
                                "name: clf\nsource_run_id: " +
                                run->run_id + "\nstatus: 2\n");
  Spit(mdir + "/artifacts/MLmodel", "flavors: {}\n");
  auto fallback = ResolveModelUri("runs:/" + run->run_id + "/clf", opts);
  PYFUNC_ASSERT_OK(fallback);
  EXPECT_EQ(*fallback, mdir + "/artifacts");
  auto by_id = ResolveModelUri("models:/m-abc", opts);
  PYFUNC_ASSERT_OK(by_id);
  EXPECT_EQ(*by_id, mdir + "/artifacts");

  Spit(root + "/models/reg/meta.yaml", "name: reg\n");
  Spit(root + "/models/reg/version-1/meta.yaml",
       "name: reg\nsource: models:/m-abc\nstorage_location: null\nversion: 1\n");
  Spit(root + "/models/reg/aliases/champ", "1");
  for (const char* u : {"models:/reg/1", "models:/reg/latest", "models:/reg@champ"}) {
    auto p = ResolveModelUri(u, opts);
    PYFUNC_ASSERT_OK(p);
    EXPECT_EQ(*p, mdir + "/artifacts") << u;
  }
  EXPECT_EQ(ResolveModelUri("models:/reg/2", opts).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveModelUri("models:/nope/1", opts).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveModelUri("models:/reg@nope", opts).status().code(), StatusCode::kNotFound);
}

TEST(TrackingUri, Precedence) {
  ::unsetenv("PYFUNC_TRACKING_URI");
  ::setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000", 1);
  EXPECT_EQ(GetTrackingUri(), "http://mlflow:5000");
  ::setenv("PYFUNC_TRACKING_URI", "/tmp/x", 1);
  EXPECT_EQ(GetTrackingUri(), "file:///tmp/x");
  SetTrackingUri("sqlite:///a.db");
  EXPECT_EQ(GetTrackingUri(), "sqlite:///a.db");
  SetTrackingUri("");
  ::unsetenv("PYFUNC_TRACKING_URI");
  ::unsetenv("MLFLOW_TRACKING_URI");
  // MLflow's default (tests/cpp/tracking_sqlite_store_test.cc has the ./mlruns cases).
  EXPECT_EQ(GetTrackingUri(), "sqlite:///" + std::filesystem::current_path().string() + "/mlflow.db");
}

TEST(TrackingArtifactPath, Normalizes) {
  EXPECT_EQ(*NormalizeArtifactPath("a//b/./c/"), "a/b/c");
  EXPECT_EQ(*NormalizeArtifactPath(""), "");
  EXPECT_FALSE(NormalizeArtifactPath("a/../b").ok());
  EXPECT_FALSE(NormalizeArtifactPath("/etc").ok());
}

}  // namespace
}  // namespace pyfunc

namespace pyfunc {
namespace {

TEST(TrackingFileStore, MovedStoreUsesItsOwnArtifacts) {
  testing::TempDir dir;
  std::string old_root = dir.Join("old/mlruns");
  std::string run_id;
  {
    auto store = OpenTrackingStore("file://" + old_root);
    PYFUNC_ASSERT_OK(store);
    auto run = (*store)->CreateRun({});
    PYFUNC_ASSERT_OK(run);
    run_id = run->run_id;
    std::string f = dir.Join("f.txt");
    std::ofstream(f) << "x";
    PYFUNC_ASSERT_OK((*store)->LogArtifacts(run_id, f, "model"));
  }
  std::filesystem::rename(dir.Join("old"), dir.Join("new"));
  auto store = OpenTrackingStore("file://" + dir.Join("new/mlruns"));
  PYFUNC_ASSERT_OK(store);
  auto path = ResolveModelUri("runs:/" + run_id + "/model/f.txt", {"file://" + dir.Join("new/mlruns"), ""});
  PYFUNC_ASSERT_OK(path);
  EXPECT_EQ(*path, dir.Join("new/mlruns/0/" + run_id + "/artifacts/model/f.txt"));
}

}  // namespace
}  // namespace pyfunc
