#include "pyfunc/json_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace pyfunc {
namespace {

Table Build(const Schema& schema, const std::function<void(TableBuilder&)>& fill) {
  TableBuilder b(schema);
  fill(b);
  Result<Table> t = b.Finish();
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

// Expected strings below are what Python's json.dumps writes for the same objects
// (checked with the .venv interpreter), i.e. what MLflow's scoring server returns.
TEST(JsonCodecTest, ArrayPredictionsMatchPythonJson) {
  Prediction p;
  p.shape = PredictionShape::kArray1D;
  p.table = Build({{"", DataType::kFloat64}}, [](TableBuilder& b) {
    for (double v : {1.0, std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, 2.5e-05, 1e16}) {
      b.column(0).AppendFloat64(v);
    }
  });
  EXPECT_EQ(PredictionsToJson(p), "{\"predictions\": [1.0, NaN, Infinity, 2.5e-05, 1e+16]}");
  p.shape = PredictionShape::kArray2D;
  p.table = Build({{"0", DataType::kInt64}, {"1", DataType::kInt64}}, [](TableBuilder& b) {
    b.column(0).AppendInt64(1);
    b.column(1).AppendInt64(2);
    b.column(0).AppendInt64(3);
    b.column(1).AppendInt64(4);
  });
  EXPECT_EQ(PredictionsToJson(p), "{\"predictions\": [[1, 2], [3, 4]]}");
}

TEST(JsonCodecTest, SeriesAndDataFramePredictionsAreRecords) {
  Prediction p;
  p.shape = PredictionShape::kSeries;
  p.table = Build({{"", DataType::kInt64}}, [](TableBuilder& b) {
    b.column(0).AppendInt64(1);
    b.column(0).AppendInt64(2);
  });
  EXPECT_EQ(PredictionsToJson(p), "{\"predictions\": [{\"0\": 1}, {\"0\": 2}]}");
  p.shape = PredictionShape::kDataFrame;
  p.table = Build({{"a", DataType::kInt64}, {"s", DataType::kString}, {"f", DataType::kFloat64}},
                  [](TableBuilder& b) {
                    b.column(0).AppendInt64(1);
                    b.column(1).AppendString("\xc3\xa9");
                    b.column(2).AppendNull();
                    b.column(0).AppendInt64(2);
                    b.column(1).AppendString("\xf0\x9f\x98\x80\n");
                    b.column(2).AppendFloat64(0.5);
                  });
  EXPECT_EQ(PredictionsToJson(p),
            "{\"predictions\": [{\"a\": 1, \"s\": \"\\u00e9\", \"f\": NaN}, "
            "{\"a\": 2, \"s\": \"\\ud83d\\ude00\\n\", \"f\": 0.5}]}");
}

TEST(JsonCodecTest, PredictionRoundTripsThroughTheRequestParser) {
  Prediction p;
  p.shape = PredictionShape::kDataFrame;
  p.table = Build({{"x", DataType::kFloat64}, {"n", DataType::kBool}}, [](TableBuilder& b) {
    b.column(0).AppendFloat64(0.1);
    b.column(1).AppendBool(true);
    b.column(0).AppendFloat64(-HUGE_VAL);
    b.column(1).AppendNull();
  });
  std::string body = "{\"dataframe_records\": ";
  AppendPredictionJson(p, &body);
  body += "}";
  Result<ScoringRequest> req = ParseScoringRequest(body);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_TRUE(req->table.Equals(p.table)) << req->table.ToString();
}

TEST(JsonCodecTest, SchemaTypesConvertAsTheServerCasts) {
  JsonReadOptions o;
  o.schema = {{"a", DataType::kFloat64}, {"b", DataType::kInt64}, {"c", DataType::kString},
              {"d", DataType::kTimestamp}};
  Result<ScoringRequest> req = ParseScoringRequest(
      R"({"dataframe_split": {"columns": ["a", "b", "c", "d"],
          "data": [[1, 2.0, 3, "2024-05-06"], [null, 7, true, null]]}})",
      o);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->table.ToString(),
            "a:float64 | b:int64 | c:string | d:timestamp\n"
            "1.0 | 2 | \"3\" | 2024-05-06T00:00:00\n"
            "null | 7 | \"True\" | null\n");
  Result<ScoringRequest> bad = ParseScoringRequest(
      R"({"dataframe_records": [{"b": 1}, {"b": 1.5}]})", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "$.dataframe_records[1].b: cannot convert number to int64 (column 'b')");
}

TEST(JsonCodecTest, ParamsComeBackAsValues) {
  Result<ScoringRequest> req =
      ParseScoringRequest(R"({"inputs": [1], "params": {"t": 0.5, "n": [1, "x"], "z": NaN}})");
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  ASSERT_TRUE(req->params.is_map());
  EXPECT_EQ(req->params.Find("t")->as_float(), 0.5);
  EXPECT_EQ(req->params.Find("n")->as_list()[1].as_string(), "x");
  EXPECT_TRUE(std::isnan(req->params.Find("z")->as_float()));
}

TEST(JsonCodecTest, UnifiedLlmBodyIsTheInputLessTheParamsSchemaKeys) {
  JsonReadOptions o;
  o.params_keys = {"temperature", "mode"};
  Result<ScoringRequest> req = ParseScoringRequest(
      R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "max_tokens": 7})", o);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->format, RequestFormat::kUnifiedLlm);
  EXPECT_EQ(req->shape, InputShape::kJson);
  ASSERT_EQ(req->table.num_rows(), 1);
  const Column& cell = req->table.column(0);
  const std::string text(reinterpret_cast<const char*>(cell.string_data()->data()) + cell.string_offsets()[0],
                         static_cast<size_t>(cell.string_offsets()[1] - cell.string_offsets()[0]));
  Result<Value> input = ParseJsonValue(text);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  EXPECT_EQ(input->Find("max_tokens")->as_int(), 7);
  EXPECT_EQ(input->Find("messages")->as_list()[0].Find("content")->as_string(), "hi");
  EXPECT_EQ(input->Find("temperature"), nullptr);
  EXPECT_EQ(req->params.Find("temperature")->as_float(), 0.5);
  // `prompt` and `input` mark the format too; other bodies are MLflow's four formats.
  EXPECT_EQ(ParseScoringRequest(R"({"prompt": "x"})")->format, RequestFormat::kUnifiedLlm);
  EXPECT_EQ(ParseScoringRequest(R"({"input": "x"})")->format, RequestFormat::kUnifiedLlm);
}

TEST(JsonCodecTest, PredictInputShapeIsWhatMlflowHandsPredict) {
  Result<ScoringRequest> arrays = ParseScoringRequest(R"({"inputs": [[1, 2]]})");
  Result<ScoringRequest> split = ParseScoringRequest(R"({"dataframe_split": {"data": [[1]]}})");
  Result<ScoringRequest> llm = ParseScoringRequest(R"({"messages": []})");
  ASSERT_TRUE(arrays.ok() && split.ok() && llm.ok());
  EXPECT_EQ(PredictInputShape(*arrays, false), InputShape::kArray2D);
  EXPECT_EQ(PredictInputShape(*arrays, true), InputShape::kDataFrame);  // the column signature's enforcement
  EXPECT_EQ(PredictInputShape(*split, false), InputShape::kDataFrame);
  EXPECT_EQ(PredictInputShape(*llm, true), InputShape::kJson);
}

TEST(JsonCodecTest, JsonPredictionsAreWrittenAsTheWorkerWroteThem) {
  TableBuilder b({{"", DataType::kString}});
  b.column(0).AppendString(R"({"a": [1, 2], "b": NaN})");
  Prediction p{*b.Finish(), PredictionShape::kJson};
  EXPECT_EQ(PredictionsToJson(p), R"({"predictions": {"a": [1, 2], "b": NaN}})");
}

TEST(JsonCodecTest, NonFiniteLiteralsInsideStringsAreText) {
  Result<ScoringRequest> req =
      ParseScoringRequest(R"({"inputs": {"s": ["NaN", "a \"Infinity\" b"], "f": [NaN, 1.5]}})");
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->table.ToString(),
            "s:string | f:float64\n\"NaN\" | nan\n\"a \\\"Infinity\\\" b\" | 1.5\n");
}

TEST(JsonCodecTest, KeyPathsQuoteOddNames) {
  Result<ScoringRequest> req =
      ParseScoringRequest(R"({"dataframe_records": [{"my col": 1}, {"my col": [1]}]})");
  ASSERT_FALSE(req.ok());
  EXPECT_EQ(req.status().message(),
            "$.dataframe_records[1][\"my col\"]: expected a number, string, boolean or null, found array");
}

TEST(JsonCodecTest, JsonLines) {
  Result<Table> t = ParseJsonLines("{\"a\": 1, \"b\": \"x\"}\n\n{\"a\": 2.5}\r\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->ToString(), "a:float64 | b:string\n1.0 | \"x\"\n2.5 | null\n");
  Result<Table> bad = ParseJsonLines("{\"a\": 1}\n{\"a\": \"s\"}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("<input>:2: $.a"), std::string::npos) << bad.status().message();
  Result<Table> broken = ParseJsonLines("{\"a\": 1}\n{\"a\": \n");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("<input>:2:"), std::string::npos);
}

TEST(JsonCodecTest, TruncatedBodiesFailCleanly) {
  std::string body = R"({"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [NaN, "y"]]}, "params": {"k": [1, 2]}})";
  for (size_t n = 0; n < body.size(); ++n) {
    Result<ScoringRequest> r = ParseScoringRequest(body.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  EXPECT_TRUE(ParseScoringRequest(body).ok());
}

}  // namespace
}  // namespace pyfunc
