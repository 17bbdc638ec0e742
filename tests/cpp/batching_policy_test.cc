// Which models' requests may be merged (DecideBatching): only those whose output rows
// are known to depend on their input rows alone, unless the user decides.
#include "pyfunc/server.h"
#include "test_util.h"

namespace pyfunc {
namespace {

ModelSpec WithLoader(const std::string& loader, const char* batching = nullptr) {
  ModelSpec spec = ModelSpec::New();
  Value::Map flavor = {{"loader_module", Value(loader)}};
  if (batching != nullptr) flavor.emplace_back("batching", Value(batching));
  spec.AddFlavor(kPyFuncFlavor, std::move(flavor));
  return spec;
}

TEST(BatchingPolicyTest, BuiltInRowWiseLoadersMergeByDefault) {
  for (const char* loader : {"mlflow.sklearn", "mlflow.xgboost", "mlflow.lightgbm", "mlflow.catboost"}) {
    BatchingDecision d = DecideBatching(WithLoader(loader), BatchingMode::kAuto);
    EXPECT_TRUE(d.merge) << loader;
    EXPECT_EQ(d.reason, std::string("the ") + loader + " loader predicts each row on its own");
  }
}

// A PythonModel that normalizes its input (x - x.mean()) got other requests' rows.
TEST(BatchingPolicyTest, AnyOtherModelIsScoredOneRequestPerCall) {
  for (const char* loader : {"mlflow.pyfunc.model", "mlflow.onnx", "my_loader", "mlflow.statsmodels"}) {
    BatchingDecision d = DecideBatching(WithLoader(loader), BatchingMode::kAuto);
    EXPECT_FALSE(d.merge) << loader;
    EXPECT_EQ(d.reason, std::string("rows of a ") + loader + " model may depend on each other");
  }
}

TEST(BatchingPolicyTest, TheFlavorKeyAndTheOptionDecide) {
  EXPECT_TRUE(DecideBatching(WithLoader("my_loader", "rows"), BatchingMode::kAuto).merge);
  EXPECT_FALSE(DecideBatching(WithLoader("mlflow.sklearn", "off"), BatchingMode::kAuto).merge);
  BatchingDecision odd = DecideBatching(WithLoader("mlflow.sklearn", "sometimes"), BatchingMode::kAuto);
  EXPECT_FALSE(odd.merge);
  EXPECT_EQ(odd.reason, "the python_function flavor's batching key is neither rows nor off");
  EXPECT_TRUE(DecideBatching(WithLoader("my_loader", "off"), BatchingMode::kRows).merge);
  EXPECT_FALSE(DecideBatching(WithLoader("mlflow.sklearn"), BatchingMode::kOff).merge);
}

TEST(BatchingPolicyTest, ModeNames) {
  EXPECT_EQ(*ParseBatchingMode("auto"), BatchingMode::kAuto);
  EXPECT_EQ(*ParseBatchingMode("rows"), BatchingMode::kRows);
  EXPECT_EQ(*ParseBatchingMode("off"), BatchingMode::kOff);
  Result<BatchingMode> bad = ParseBatchingMode("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "batching must be auto, rows or off, not 'yes'");
}

}  // namespace
}  // namespace pyfunc
