// The runtime end to end: real Python worker processes (the interpreter named by
// PYFUNC_PYTHON, which has numpy and pandas) scoring tables through shared memory.
#include "pyfunc/model.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

#include "pyfunc/model_dir.h"
#include "test_util.h"

namespace pyfunc {
namespace {

using ::pyfunc::testing::TempDir;
using ::testing::HasSubstr;

// Children of this process, by pid (from /proc).
std::set<int> ChildPids() {
  std::set<int> out;
  const int self = ::getpid();
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    int ppid;
    if (std::sscanf(line.c_str() + close + 2, "%c %d", &state, &ppid) == 2 && ppid == self) out.insert(pid);
  }
  ::closedir(d);
  return out;
}

bool ProcessGone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  size_t close = line.rfind(')');
  return close != std::string::npos && line[close + 2] == 'Z';
}

int ShmEntries() {
  int n = 0;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    Result<ModelSpec> spec = ::pyfunc::testing::SaveBehaveModel(dir_->Join("model"));
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string TestDataDirPath() { return ::pyfunc::testing::TestDataDir(); }
  static std::string ModelPath() { return dir_->Join("model"); }

  static Model LoadOrDie(const LoadOptions& options = {}) {
    Result<Model> model = Model::Load(ModelPath(), options);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return std::move(model).value();
  }

  static Table Numbers(int64_t rows) {
    TableBuilder b({{"a", DataType::kInt64}, {"b", DataType::kFloat64}});
    for (int64_t i = 0; i < rows; ++i) {
      b.column(0).AppendInt64(i);
      b.column(1).AppendFloat64(0.5 * static_cast<double>(i));
    }
    return *b.Finish();
  }

  static Value Mode(const char* mode) { return Value(Value::Map{{"mode", Value(mode)}}); }

  static TempDir* dir_;
};
TempDir* RuntimeTest::dir_ = nullptr;

TEST_F(RuntimeTest, EchoKeepsEveryTypeNullsUnicodeAndNul) {
  Model model = LoadOrDie();
  TableBuilder b({{"i", DataType::kInt64},
                  {"f", DataType::kFloat64},
                  {"b", DataType::kBool},
                  {"s", DataType::kString},
                  {"t", DataType::kTimestamp}});
  b.column(0).AppendInt64(-7);
  b.column(0).AppendInt64(1LL << 62);
  b.column(1).AppendFloat64(1.5);
  b.column(1).AppendFloat64(std::nan(""));
  b.column(2).AppendBool(true);
  b.column(2).AppendBool(false);
  b.column(3).AppendString("h\xc3\xa9llo \xe2\x98\x83");
  b.column(3).AppendString(std::string("a\0b", 3));
  b.column(4).AppendTimestamp(1700000000000000000LL);
  b.column(4).AppendTimestamp(0);
  Result<Table> input = b.Finish();
  PYFUNC_ASSERT_OK(input);
  Result<Prediction> out = model.Predict(*input);
  PYFUNC_ASSERT_OK(out);
  EXPECT_EQ(out->shape, PredictionShape::kDataFrame);
  EXPECT_TRUE(out->table.Equals(*input)) << out->table.ToString() << "\nvs\n" << input->ToString();
}

TEST_F(RuntimeTest, NullsBecomeWhatPandasMakesOfThem) {
  Model model = LoadOrDie();
  TableBuilder b({{"i", DataType::kInt64}, {"s", DataType::kString}, {"f", DataType::kFloat64}});
  b.column(0).AppendInt64(1);
  b.column(0).AppendNull();
  b.column(1).AppendNull();
  b.column(1).AppendString("x");
  b.column(2).AppendNull();
  b.column(2).AppendFloat64(2);
  Table input = *b.Finish();
  Result<Prediction> dtypes = model.Predict(input, Mode("dtypes"));
  PYFUNC_ASSERT_OK(dtypes);
  EXPECT_EQ(dtypes->table.ToString(),
            "column:string | dtype:string\n\"i\" | \"float64\"\n\"s\" | \"object\"\n\"f\" | \"float64\"\n");
  Result<Prediction> echo = model.Predict(input);
  PYFUNC_ASSERT_OK(echo);
  // An int column with a null comes back as float64 with a null (NaN) in that row.
  EXPECT_EQ(echo->table.column(0).type(), DataType::kFloat64);
  EXPECT_EQ(echo->table.column(1).type(), DataType::kString);
  EXPECT_TRUE(echo->table.column(1).IsNull(0));
  EXPECT_EQ(echo->table.column(1).string_value(1), "x");
}

TEST_F(RuntimeTest, OutputShapes) {
  Model model = LoadOrDie();
  Table input = Numbers(3);
  Result<Prediction> sum = model.Predict(input, Mode("sum"));
  PYFUNC_ASSERT_OK(sum);
  EXPECT_EQ(sum->shape, PredictionShape::kArray1D);
  EXPECT_EQ(sum->table.ToString(), ":float64\n0.0\n1.5\n3.0\n");
  Result<Prediction> series = model.Predict(input, Mode("series"));
  PYFUNC_ASSERT_OK(series);
  EXPECT_EQ(series->shape, PredictionShape::kSeries);
  EXPECT_EQ(series->table.column_name(0), "first");
  Result<Prediction> two = model.Predict(input, Mode("2d"));
  PYFUNC_ASSERT_OK(two);
  EXPECT_EQ(two->shape, PredictionShape::kArray2D);
  EXPECT_EQ(two->table.ToString(), "0:float64 | 1:float64\n0.0 | 0.0\n1.0 | 2.5\n2.0 | 5.0\n");
  Result<Prediction> list = model.Predict(input, Mode("list"));
  PYFUNC_ASSERT_OK(list);
  EXPECT_EQ(list->table.column(0).type(), DataType::kString);
}

TEST_F(RuntimeTest, EmptyAndLargeBatches) {
  Model model = LoadOrDie();
  Result<Prediction> empty = model.Predict(Numbers(0), Mode("sum"));
  PYFUNC_ASSERT_OK(empty);
  EXPECT_EQ(empty->table.num_rows(), 0);
  const int64_t rows = 1000000;
  Result<Prediction> big = model.Predict(Numbers(rows), Mode("sum"));
  PYFUNC_ASSERT_OK(big);
  ASSERT_EQ(big->table.num_rows(), rows);
  EXPECT_EQ(big->table.column(0).float64_data()[rows - 1], 1.5 * static_cast<double>(rows - 1));
}

TEST_F(RuntimeTest, AModelThatRaisesFailsOnlyItsBatch) {
  Model model = LoadOrDie();
  Result<Prediction> pid_before = model.Predict(Numbers(1), Mode("pid"));
  PYFUNC_ASSERT_OK(pid_before);
  Result<Prediction> err = model.Predict(Numbers(4), Mode("raise"));
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), StatusCode::kModelError);
  EXPECT_EQ(err.status().message(), "ValueError: the model refuses: 4 rows");
  Result<Prediction> pid_after = model.Predict(Numbers(1), Mode("pid"));
  PYFUNC_ASSERT_OK(pid_after);
  EXPECT_TRUE(pid_after->table.Equals(pid_before->table)) << "the same worker keeps serving";
  EXPECT_EQ(model.worker_restarts(), 0);
}

TEST_F(RuntimeTest, ACrashedWorkerIsReplaced) {
  Model model = LoadOrDie();
  Result<Prediction> crash = model.Predict(Numbers(2), Mode("crash"));
  ASSERT_FALSE(crash.ok());
  EXPECT_EQ(crash.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(crash.status().message(), HasSubstr("killed by signal 9"));
  PYFUNC_EXPECT_OK(model.Predict(Numbers(2), Mode("sum")));
  EXPECT_EQ(model.worker_restarts(), 1);
}

// Waits up to 15 s for `done`.
template <typename Pred>
bool Eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int64_t PidOf(const Result<Prediction>& p) { return p->table.column(0).int64_data()[0]; }

// A worker killed while idle stayed a zombie and was counted as running; the next call
// sent to it failed with Unavailable.
TEST_F(RuntimeTest, AWorkerThatDiesWhileIdleIsReplacedWithoutACall) {
  LoadOptions options;
  options.workers = 2;
  Model model = LoadOrDie(options);
  const std::set<int> before = ChildPids();
  ASSERT_EQ(before.size(), 2u);
  const int victim = *before.begin();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  EXPECT_TRUE(Eventually([&] { return model.worker_restarts() == 1 && model.live_workers() == 2; }));
  EXPECT_TRUE(Eventually([&] { return ChildPids().size() == 2 && ChildPids().count(victim) == 0; }));
  std::ifstream stat("/proc/" + std::to_string(victim) + "/stat");
  EXPECT_FALSE(stat.good()) << "the dead worker was reaped, not left a zombie";
  for (int i = 0; i < 6; ++i) PYFUNC_EXPECT_OK(model.Predict(Numbers(2), Mode("sum")));
}

// A model exception of 300 KB exceeded the socket's largest message: the worker exited
// and its call got Unavailable.
TEST_F(RuntimeTest, AnErrorLongerThanASocketMessageKeepsTheWorker) {
  Model model = LoadOrDie();
  Result<Prediction> pid = model.Predict(Numbers(1), Mode("pid"));
  PYFUNC_ASSERT_OK(pid);
  Result<Prediction> err = model.Predict(Numbers(1), Mode("long_error"));
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), StatusCode::kModelError);
  EXPECT_THAT(err.status().message(), HasSubstr("more characters]"));
  EXPECT_LT(err.status().message().size(), 70u * 1024);
  Result<Prediction> again = model.Predict(Numbers(1), Mode("pid"));
  PYFUNC_ASSERT_OK(again);
  EXPECT_EQ(PidOf(again), PidOf(pid));
  EXPECT_EQ(model.worker_restarts(), 0);
}

// An MLmodel over ~210 KB could not be sent to a worker ("Message too long").
TEST_F(RuntimeTest, ControlMessagesOfAnySizeReachTheWorker) {
  TempDir dir;
  SaveModelOptions options;
  options.loader_module = "behave_model";
  options.code_paths = {TestDataDirPath() + "/models/behave/behave_model.py"};
  options.python_version = "3.11.7";
  ModelSpec spec = ModelSpec::New();
  spec.SetField("metadata", Value(Value::Map{{"notes", Value(std::string(1 << 20, 'n'))}}));
  PYFUNC_ASSERT_OK(SaveModel(dir.Join("big"), options, spec));
  Result<Model> model = Model::Load(dir.Join("big"));
  PYFUNC_ASSERT_OK(model);
  Result<Prediction> p = model->Predict(Numbers(3));
  PYFUNC_ASSERT_OK(p);
  EXPECT_EQ(p->table.num_rows(), 3);
}

// A replacement that cannot start fails calls at once with its reason, instead of
// leaving them waiting; it is retried, and calls succeed once it starts.
TEST_F(RuntimeTest, AFailedRestartFailsCallsFastAndIsRetried) {
  TempDir dir;
  const std::string python = dir.Join("python");
  const char* real = std::getenv("PYFUNC_PYTHON");
  ASSERT_NE(real, nullptr);
  auto write_wrapper = [&] {
    std::ofstream(python) << "#!/bin/sh\nexec " << real << " \"$@\"\n";
    ::chmod(python.c_str(), 0755);
  };
  write_wrapper();
  LoadOptions options;
  options.python = python;
  Model model = LoadOrDie(options);
  std::remove(python.c_str());
  ASSERT_EQ(::kill(*ChildPids().begin(), SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return model.live_workers() == 0; }));
  const auto start = std::chrono::steady_clock::now();
  Result<Prediction> p = model.Predict(Numbers(1), Mode("sum"));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("restarting a worker"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  write_wrapper();
  EXPECT_TRUE(Eventually([&] { return model.live_workers() == 1; }));
  PYFUNC_EXPECT_OK(model.Predict(Numbers(1), Mode("sum")));
}

TEST_F(RuntimeTest, AHangingWorkerIsStoppedAtTheTimeout) {
  LoadOptions options;
  options.predict_timeout = std::chrono::milliseconds(1500);
  Model model = LoadOrDie(options);
  const auto start = std::chrono::steady_clock::now();
  Result<Prediction> hang = model.Predict(Numbers(2), Mode("hang"));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(hang.ok());
  EXPECT_EQ(hang.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(took, std::chrono::seconds(10));
  // The replacement starts in the background (a Python start: seconds on a busy machine).
  EXPECT_TRUE(Eventually([&] { return model.live_workers() == 1; }));
  PYFUNC_EXPECT_OK(model.Predict(Numbers(2), Mode("sum")));
  EXPECT_EQ(model.worker_restarts(), 1);
}

TEST_F(RuntimeTest, WorkersServeInParallel) {
  LoadOptions options;
  options.workers = 2;
  Model model = LoadOrDie(options);
  std::mutex mu;
  std::set<int64_t> pids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        Result<Prediction> p = model.Predict(Numbers(50000), Mode("pid"));
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        std::lock_guard<std::mutex> lock(mu);
        pids.insert(p->table.column(0).int64_data()[0]);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(pids.size(), 2u);
}

// Frames of float columns only are decoded by a plan the worker caches per layout and
// names; every batch must still get its own values and names.
TEST_F(RuntimeTest, SameShapedBatchesKeepTheirOwnValuesAndNames) {
  Model model = LoadOrDie();
  auto floats = [](const char* a, const char* b, int64_t rows, double base) {
    TableBuilder t({{a, DataType::kFloat64}, {b, DataType::kFloat64}});
    for (int64_t i = 0; i < rows; ++i) {
      t.column(0).AppendFloat64(base + static_cast<double>(i));
      t.column(1).AppendFloat64(-base - static_cast<double>(i));
    }
    return *t.Finish();
  };
  for (const Table& input : {floats("x", "y", 2, 1), floats("x", "y", 2, 10), floats("p", "q", 2, 100),
                             floats("x", "y", 3, 1000), floats("x", "y", 2, 5)}) {
    Result<Prediction> out = model.Predict(input);
    PYFUNC_ASSERT_OK(out);
    EXPECT_TRUE(out->table.Equals(input)) << out->table.ToString() << "\nvs\n" << input.ToString();
  }
}

TEST_F(RuntimeTest, BusyPollingRoundTripsGiveTheSameResults) {
  LoadOptions options;
  options.predict_timeout = std::chrono::milliseconds(1500);
  Model model = LoadOrDie(options);
  PredictOptions poll;
  poll.busy_poll = std::chrono::microseconds(5000);
  for (int i = 0; i < 50; ++i) {
    Result<Prediction> p = model.Predict(Numbers(i), Mode("sum"), poll);
    PYFUNC_ASSERT_OK(p);
    ASSERT_EQ(p->table.num_rows(), i);
    if (i > 0) EXPECT_EQ(p->table.column(0).float64_data()[i - 1], 1.5 * (i - 1));
  }
  // A predict longer than the window, then a pause longer than it: both sides fall
  // back to sleeping and nothing is lost.
  Result<Prediction> slow = model.Predict(Numbers(3), Mode("sleep"), poll);
  PYFUNC_ASSERT_OK(slow);
  EXPECT_TRUE(slow->table.Equals(Numbers(3)));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  PYFUNC_EXPECT_OK(model.Predict(Numbers(2), Mode("sum"), poll));
  // The timeout still holds while polling.
  Result<Prediction> hang = model.Predict(Numbers(2), Mode("hang"), poll);
  EXPECT_EQ(hang.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Eventually([&] { return model.live_workers() == 1; }));
  PYFUNC_EXPECT_OK(model.Predict(Numbers(2), Mode("sum"), poll));
}

TEST_F(RuntimeTest, NativeThreadPoolsAreSizedPerWorker) {
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) ::unsetenv(name);
  auto seen = [](const Model& model) {
    Result<Prediction> p = model.Predict(Numbers(1), Mode("threads"));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? p->table.ToString() : std::string();
  };
  LoadOptions three;
  three.threads_per_worker = 3;
  EXPECT_EQ(seen(LoadOrDie(three)),
            "OMP_NUM_THREADS:string | OPENBLAS_NUM_THREADS:string | MKL_NUM_THREADS:string\n"
            "\"3\" | \"3\" | \"3\"\n");
  LoadOptions two_workers;
  two_workers.workers = 2;
  const std::string share = std::to_string(std::max(1u, std::thread::hardware_concurrency() / 2));
  EXPECT_THAT(seen(LoadOrDie(two_workers)), HasSubstr("\"" + share + "\" | \"" + share + "\""));
}

TEST_F(RuntimeTest, NothingOutlivesTheModel) {
  const std::set<int> children_before = ChildPids();
  const int shm_before = ShmEntries();
  {
    LoadOptions options;
    options.workers = 2;
    Model model = LoadOrDie(options);
    EXPECT_EQ(ChildPids().size(), children_before.size() + 2);
    PYFUNC_EXPECT_OK(model.Predict(Numbers(10), Mode("sum")));
    EXPECT_FALSE(model.Predict(Numbers(1), Mode("crash")).ok());
  }
  EXPECT_EQ(ChildPids(), children_before);
  EXPECT_EQ(ShmEntries(), shm_before);
}

TEST_F(RuntimeTest, WorkersExitWhenTheParentIsKilled) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(pipefd[0]);
    Result<Model> model = Model::Load(ModelPath());
    Result<Prediction> p = model.ok() ? model->Predict(Numbers(1), Mode("pid")) : Result<Prediction>(model.status());
    int64_t worker = p.ok() ? p->table.column(0).int64_data()[0] : -1;
    (void)!::write(pipefd[1], &worker, sizeof(worker));
    // Start a long predict, so the worker is busy when its parent dies.
    std::thread([&] { (void)model->Predict(Numbers(1), Mode("hang")); }).detach();
    ::pause();
    ::_exit(0);
  }
  ::close(pipefd[1]);
  int64_t worker = -1;
  const ssize_t got = ::read(pipefd[0], &worker, sizeof(worker));
  ::close(pipefd[0]);
  ::usleep(300000);  // let the hanging predict reach the worker
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof(worker)));
  ASSERT_GT(worker, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ProcessGone(static_cast<int>(worker));
    if (!gone) ::usleep(100000);
  }
  EXPECT_TRUE(gone) << "worker " << worker << " outlived its parent";
}

TEST_F(RuntimeTest, LoadErrorsAreClear) {
  Result<Model> missing = Model::Load(dir_->Join("nope"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  // Model URIs are the caller's to resolve (model_uri.h): the runtime takes directories.
  for (const char* uri : {"runs:/0123/model", "models:/m/1", "file:///tmp/model"}) {
    Result<Model> unresolved = Model::Load(uri);
    EXPECT_EQ(unresolved.status().code(), StatusCode::kInvalidArgument) << uri;
    EXPECT_THAT(unresolved.status().message(), HasSubstr("resolve it first (ResolveModelUri")) << uri;
  }

  SaveModelOptions options;
  options.loader_module = "no_such_module_anywhere";
  options.python_version = "3.11.7";
  PYFUNC_ASSERT_OK(SaveModel(dir_->Join("broken"), options));
  Result<Model> broken = Model::Load(dir_->Join("broken"));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kLoadFailed);
  EXPECT_THAT(broken.status().message(), HasSubstr("no_such_module_anywhere"));

  LoadOptions bad_python;
  bad_python.python = "/nonexistent/python3";
  Result<Model> no_python = Model::Load(ModelPath(), bad_python);
  EXPECT_EQ(no_python.status().code(), StatusCode::kNotFound);

  LoadOptions conda;
  conda.env_manager = EnvManager::kConda;
  Result<Model> no_conda = Model::Load(ModelPath(), conda);
  ASSERT_FALSE(no_conda.ok());
  EXPECT_THAT(no_conda.status().message(), HasSubstr("needs conda, mamba or micromamba"));
}

}  // namespace
}  // namespace pyfunc
