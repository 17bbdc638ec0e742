#include "pyfunc/json_codec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

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
  p.table = Build({{"a", DataType::kInt64}, {"s", DataType::kString}, {"f", DataType::kFloat64}}, [](TableBuilder& b) {
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

// MLflow writes the missing value pandas holds: NaN for a float NaN (a missing string in
// pandas >= 3), "NaT" for a missing timestamp of a DataFrame, null for None.
TEST(JsonCodecTest, NullsAreSpelledAsTheModelsMissingValues) {
  Prediction p;
  p.shape = PredictionShape::kDataFrame;
  p.table = Build({{"s", DataType::kString}, {"t", DataType::kTimestamp}, {"b", DataType::kBool}}, [](TableBuilder& b) {
    b.column(0).AppendNull();
    b.column(1).AppendNull();
    b.column(2).AppendNull();
  });
  EXPECT_EQ(PredictionsToJson(p), R"({"predictions": [{"s": null, "t": null, "b": null}]})");
  p.nulls = {NullSpelling::kNaN, NullSpelling::kNaT, NullSpelling::kDefault};
  EXPECT_EQ(PredictionsToJson(p), R"({"predictions": [{"s": NaN, "t": "NaT", "b": null}]})");
  p.shape = PredictionShape::kArray2D;
  EXPECT_EQ(PredictionsToJson(p), R"({"predictions": [[NaN, "NaT", null]]})");
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
  o.schema = {
      {"a", DataType::kFloat64}, {"b", DataType::kInt64}, {"c", DataType::kString}, {"d", DataType::kTimestamp}};
  Result<ScoringRequest> req = ParseScoringRequest(
      R"({"dataframe_split": {"columns": ["a", "b", "c", "d"],
          "data": [[1, 2.0, 3, "2024-05-06"], [null, 7, true, null]]}})",
      o);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->table.ToString(),
            "a:float64 | b:int64 | c:string | d:timestamp\n"
            "1.0 | 2 | \"3\" | 2024-05-06T00:00:00\n"
            "null | 7 | \"True\" | null\n");
  // MLflow's server casts request columns with astype: 57.5 to a long is 57, numeric
  // strings are read as numbers ("5.1" for a double, " 7" for a long).
  Result<ScoringRequest> cast = ParseScoringRequest(
      R"({"dataframe_records": [{"a": "5.1", "b": 57.5}, {"a": " -1e3 ", "b": " 7"}, {"a": "nan", "b": -2.9}]})", o);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_EQ(cast->table.ToString(),
            "a:float64 | b:int64\n"
            "5.1 | 57\n"
            "-1000.0 | 7\n"
            "nan | -2\n");
  Result<ScoringRequest> bad = ParseScoringRequest(R"({"dataframe_records": [{"a": 1}, {"a": "abc"}]})", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "$.dataframe_records[1].a: could not convert string to float: 'abc' (column 'a')");
  bad = ParseScoringRequest(R"({"dataframe_records": [{"b": "7.5"}]})", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "$.dataframe_records[0].b: invalid literal for int() with base 10: '7.5' (column 'b')");
}

TEST(JsonCodecTest, ParamsComeBackAsValues) {
  Result<ScoringRequest> req = ParseScoringRequest(R"({"inputs": [1], "params": {"t": 0.5, "n": [1, "x"], "z": NaN}})");
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
  // Requests the worker builds from their text keep that shape under a column signature
  // too (made a DataFrame, the worker saw one string column of JSON and failed the
  // schema instead of casting as MLflow's server does).
  Result<ScoringRequest> nested = ParseScoringRequest(R"({"dataframe_split": {"data": [[[1, 2]]]}})");
  Result<ScoringRequest> tensors = ParseScoringRequest(R"({"inputs": {"a": [[[1]]]}})");
  ASSERT_TRUE(nested.ok() && tensors.ok());
  EXPECT_EQ(PredictInputShape(*nested, true), InputShape::kFrameJson);
  EXPECT_EQ(PredictInputShape(*tensors, true), InputShape::kTensorsJson);
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
  EXPECT_EQ(req->table.ToString(), "s:string | f:float64\n\"NaN\" | nan\n\"a \\\"Infinity\\\" b\" | 1.5\n");
}

TEST(JsonCodecTest, KeyPathsQuoteOddNames) {
  JsonReadOptions options;
  options.schema = {{"my col", DataType::kInt64}};
  Result<ScoringRequest> req =
      ParseScoringRequest(R"({"dataframe_records": [{"my col": 1}, {"my col": "x"}]})", options);
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("$.dataframe_records[1][\"my col\"]: "), std::string::npos)
      << req.status().message();
}

TEST(JsonCodecTest, CellsHoldingArraysGoAsTheRequestForPandas) {
  // MLflow's server makes an object column of lists of them; the worker builds the
  // DataFrame with pandas from the request as it came.
  for (const char* body : {R"({"dataframe_split": {"columns": ["x", "y"], "data": [[[1.0, 2], 1], [[3.5, 4], 2]]}})",
                           R"({"dataframe_records": [{"x": [1.0, 2], "y": 1}, {"x": {"k": null}, "y": 2}]})"}) {
    SCOPED_TRACE(body);
    Result<ScoringRequest> req = ParseScoringRequest(body);
    ASSERT_TRUE(req.ok()) << req.status().ToString();
    EXPECT_EQ(req->shape, InputShape::kFrameJson);
    ASSERT_EQ(req->table.num_columns(), 1);
    ASSERT_EQ(req->table.num_rows(), 1);
    Result<Value> text = ParseJsonValue(req->table.column(0).string_value(0));
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    Result<Value> original = ParseJsonValue(body);
    EXPECT_EQ(ToJson(*text), ToJson(*original));  // numbers keep int/float as sent
  }
  // Cells of scalars stay a table.
  Result<ScoringRequest> flat = ParseScoringRequest(R"({"dataframe_split": {"columns": ["x"], "data": [[1.5]]}})");
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->shape, InputShape::kDataFrame);
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
  std::string body =
      R"({"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [NaN, "y"]]}, "params": {"k": [1, 2]}})";
  for (size_t n = 0; n < body.size(); ++n) {
    Result<ScoringRequest> r = ParseScoringRequest(body.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  EXPECT_TRUE(ParseScoringRequest(body).ok());
}

// --- Hostile request bodies -----------------------------------------------------------

ScoringRequest MustParse(const std::string& body, const JsonReadOptions& options = {}) {
  Result<ScoringRequest> r = ParseScoringRequest(body, options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ScoringRequest();
}

double SecondsToParse(const std::string& body) {
  const auto start = std::chrono::steady_clock::now();
  Result<ScoringRequest> r = ParseScoringRequest(body);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(JsonHostileTest, RecordWithManyKeysIsLinear) {
  // Each key was looked up in a list of the keys so far: a record of 80,000 keys (869 KB)
  // took 8.2 s to parse.
  std::string body = "{\"dataframe_records\": [{";
  for (int i = 0; i < 80000; ++i) body += (i ? ", \"k" : "\"k") + std::to_string(i) + "\": " + std::to_string(i);
  body += "}, {\"k79999\": 1}]}";
  EXPECT_LT(SecondsToParse(body), 2.0);
  ScoringRequest r = MustParse(body);
  ASSERT_EQ(r.table.num_columns(), 80000);
  EXPECT_EQ(r.table.num_rows(), 2);
  EXPECT_EQ(r.table.column_name(79999), "k79999");
  EXPECT_EQ(r.table.column(79999).int64_data()[1], 1);
  EXPECT_TRUE(r.table.column(0).IsNull(1));
}

TEST(JsonHostileTest, ManyKeysInParamsAndJsonLinesAreLinear) {
  std::string params = "{";
  for (int i = 0; i < 80000; ++i) params += (i ? ", \"p" : "\"p") + std::to_string(i) + "\": " + std::to_string(i);
  params += ", \"p0\": -1}";
  EXPECT_LT(SecondsToParse("{\"inputs\": [1], \"params\": " + params + "}"), 2.0);
  ScoringRequest r = MustParse("{\"inputs\": [1], \"params\": " + params + "}");
  ASSERT_EQ(r.params.as_map().size(), 80000u);
  EXPECT_EQ(r.params.as_map()[0].second.as_int(), -1);  // json.loads: the last value, the first position
  const auto start = std::chrono::steady_clock::now();
  Result<Table> lines = ParseJsonLines(params + "\n" + params + "\n");
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
  EXPECT_EQ(lines->num_columns(), 80000);
}

TEST(JsonHostileTest, NaNMarkerCannotBeForged) {
  // The string "\u0000NaN" became NaN: the internal marker of a bare NaN could be sent.
  // MLflow (json.loads) keeps it as a string.
  ScoringRequest r = MustParse(R"({"dataframe_split": {"columns": ["a"], "data": [["\u0000NaN"], ["x"]]}})");
  ASSERT_EQ(r.table.column(0).type(), DataType::kString);
  EXPECT_EQ(r.table.column(0).string_value(0), std::string("\0NaN", 4));
  // Also beside a real NaN (the body is rewritten then), and as keys and params.
  r = MustParse(R"({"dataframe_records": [{"a": "\u0000Inf", "\u0000NaN": NaN, "\u0000": "\u0000\u0000-Inf"}]})");
  ASSERT_EQ(r.table.num_columns(), 3);
  EXPECT_EQ(r.table.column(0).type(), DataType::kString);
  EXPECT_EQ(r.table.column(0).string_value(0), std::string("\0Inf", 4));
  EXPECT_EQ(r.table.column_name(1), std::string("\0NaN", 4));
  EXPECT_EQ(r.table.column(1).type(), DataType::kFloat64);
  EXPECT_TRUE(r.table.column(1).IsNull(0) || std::isnan(r.table.column(1).float64_data()[0]));
  EXPECT_EQ(r.table.column_name(2), std::string("\0", 1));
  EXPECT_EQ(r.table.column(2).string_value(0), std::string("\0\0-Inf", 6));
  r = MustParse(R"({"inputs": [1], "params": {"s": "\u0000NaN", "n": NaN}})");
  EXPECT_EQ(r.params.Find("s")->as_string(), std::string("\0NaN", 4));
  EXPECT_TRUE(std::isnan(r.params.Find("n")->as_float()));
  Result<Value> v = ParseJsonValue(R"(["\u0000-Inf", -Infinity])");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->as_list()[0].as_string(), std::string("\0-Inf", 5));
  EXPECT_EQ(v->as_list()[1].as_float(), -HUGE_VAL);
}

TEST(JsonHostileTest, NonFiniteLiteralsAsKeysStayErrors) {
  // Python's json.loads refuses `{NaN: 1}`; the rewrite must not turn it into a key.
  EXPECT_FALSE(ParseScoringRequest(R"({"inputs": {NaN: 1}})").ok());
  EXPECT_FALSE(ParseJsonValue(R"({Infinity : 1})").ok());
}

TEST(JsonHostileTest, NumbersBeyondTheDoubleRangeAreInfinite) {
  // 1e400 was refused; Python's json.loads reads it as inf (and MLflow scores it).
  ScoringRequest r =
      MustParse(R"({"dataframe_split": {"columns": ["a"], "data": [[1e400], [-1e400], [1.5], [1e-400]]}})");
  ASSERT_EQ(r.table.column(0).type(), DataType::kFloat64);
  EXPECT_EQ(r.table.column(0).float64_data()[0], HUGE_VAL);
  EXPECT_EQ(r.table.column(0).float64_data()[1], -HUGE_VAL);
  EXPECT_EQ(r.table.column(0).float64_data()[2], 1.5);
  EXPECT_EQ(r.table.column(0).float64_data()[3], 0.0);
}

TEST(JsonHostileTest, IntegersBeyond64BitsAreFloats) {
  // Integers beyond 64 bits were refused. json.loads makes Python ints of them (pandas an
  // object column); a Table has no such column, so they are float64 as the documented
  // rule for integers beyond int64 says.
  ScoringRequest r = MustParse(
      R"({"dataframe_split": {"columns": ["a"], "data": [[123456789012345678901234567890], [18446744073709551616], [-9223372036854775809], [1]]}})");
  ASSERT_EQ(r.table.column(0).type(), DataType::kFloat64);
  EXPECT_EQ(r.table.column(0).float64_data()[0], 123456789012345678901234567890.0);
  EXPECT_EQ(r.table.column(0).float64_data()[1], 18446744073709551616.0);
  EXPECT_EQ(r.table.column(0).float64_data()[2], -9223372036854775809.0);
  EXPECT_EQ(r.table.column(0).float64_data()[3], 1.0);
  Result<Value> v = ParseJsonValue("[123456789012345678901234567890, " + std::string(400, '9') + "]");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->as_list()[0].as_float(), 123456789012345678901234567890.0);
  EXPECT_EQ(v->as_list()[1].as_float(), HUGE_VAL);
}

TEST(JsonHostileTest, ShortSplitRowsArePaddedAsMlflowDoes) {
  // MLflow 3 (infer_and_parse_data → pandas.DataFrame(data, columns)) pads a short row
  // of dataframe_split with NaN and answers 200; a long one is its 400
  // "2 columns passed, passed data had 3 columns".
  ScoringRequest r = MustParse(R"({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}})");
  EXPECT_EQ(r.table.ToString(), "a:int64 | b:int64\n1 | 2\n3 | null\n");
  Result<ScoringRequest> wide =
      ParseScoringRequest(R"({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4, 5]]}})");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("row has 3 values, but there are 2 columns"), std::string::npos);
}

TEST(JsonHostileTest, SplitWithNoColumnsIsRowsWithoutColumns) {
  // Read the first name of an empty list (a crash of serve and predict) before.
  ScoringRequest r = MustParse(R"({"dataframe_split": {"columns": [], "data": [[], [], []]}})");
  EXPECT_EQ(r.table.num_columns(), 0);
  EXPECT_EQ(r.table.num_rows(), 3);
  Result<ScoringRequest> value = ParseScoringRequest(R"({"dataframe_split": {"columns": [], "data": [[1]]}})");
  ASSERT_FALSE(value.ok());
  EXPECT_NE(value.status().message().find("row has 1 values, but there are 0 columns"), std::string::npos)
      << value.status().message();
}

TEST(JsonHostileTest, DeepNestingIsAnErrorNotARecursion) {
  // ToValue recursed once per level of a client's nesting (params, unified LLM bodies).
  const std::string deep = std::string(1000, '[') + std::string(1000, ']');
  Result<ScoringRequest> r = ParseScoringRequest("{\"inputs\": [1], \"params\": {\"p\": " + deep + "}}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "$.params: nested deeper than 128 levels");
  Result<ScoringRequest> llm = ParseScoringRequest("{\"messages\": " + deep + "}");
  ASSERT_FALSE(llm.ok());
  EXPECT_NE(llm.status().message().find("nested deeper than 128 levels"), std::string::npos);
  const std::string ok = std::string(100, '[') + std::string(100, ']');
  EXPECT_TRUE(ParseScoringRequest("{\"inputs\": [1], \"params\": {\"p\": " + ok + "}}").ok());
  // Beyond simdjson's own depth limit it is a JSON error.
  EXPECT_FALSE(ParseScoringRequest("{\"inputs\": " + std::string(5000, '[') + std::string(5000, ']') + "}").ok());
}

}  // namespace
}  // namespace pyfunc

namespace pyfunc {
namespace {

// Named multi-input tensors and records of arrays were refused ("expected a number,
// string, boolean or null, found array"); they travel whole, as JSON, to be made into
// ndarrays in the worker as MLflow makes them.
TEST(JsonCodecTest, NestedTensorInputsTravelAsJson) {
  for (const char* body :
       {R"({"inputs": {"a": [[1, 2]], "b": [[3]]}})", R"({"instances": [{"a": [1, 2]}, {"a": [3, 4]}]})",
        R"({"inputs": [[[1], [2]], [[3], [4]]]})"}) {
    Result<ScoringRequest> req = ParseScoringRequest(body);
    ASSERT_TRUE(req.ok()) << body << ": " << req.status().ToString();
    EXPECT_EQ(req->shape, InputShape::kTensorsJson) << body;
    ASSERT_EQ(req->table.num_rows(), 1);
    EXPECT_EQ(std::string(req->table.column(0).string_value(0)).rfind("{\"in", 0), 0u) << body;
  }
  Result<ScoringRequest> flat = ParseScoringRequest(R"({"inputs": [[1, 2], [3, 4]]})");
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->shape, InputShape::kArray2D);
}

}  // namespace
}  // namespace pyfunc
