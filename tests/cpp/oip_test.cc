// The Open Inference Protocol codec against hostile request bodies: every cost bounded
// by the body or by OipLimits, every malformed body an InvalidArgument.
#include "server/oip.h"

#include "server/http_errors.h"

#include <cmath>
#include <string>

#include "test_util.h"

namespace pyfunc::server {
namespace {

std::string Nested(int depth, const std::string& leaf) {
  return std::string(depth, '[') + leaf + std::string(depth, ']');
}

TEST(OipTest, ParsesColumnsAndTwoDimensionalTensors) {
  Result<OipRequest> r =
      ParseOipRequest(R"({"id":"7","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4]]}],)"
                      R"("parameters":{"k":3,"content_type":"np"}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "7");
  ASSERT_EQ(r->table.num_columns(), 2);
  EXPECT_EQ(r->table.column_name(1), "1");
  EXPECT_EQ(r->table.column(1).float64_data()[1], 4.0);
  EXPECT_EQ(ToJson(r->params), R"({"k": 3})");
}

// A shape whose product overflows int64 (1024 * 2^54 wraps to 0) matched empty data,
// and the server then indexed the empty vector: SIGSEGV.
TEST(OipTest, ParsesEveryDatatypeFamily) {
  Result<OipRequest> r =
      ParseOipRequest(R"({"inputs":[{"name":"i","shape":[3],"datatype":"INT64","data":[1,-2,9223372036854775807]},)"
                      R"({"name":"f","shape":[3],"datatype":"FP32","data":[0.5,NaN,-Infinity]},)"
                      R"({"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,null]},)"
                      R"({"name":"s","shape":[3],"datatype":"BYTES","data":["x","\u00e9",""]}]})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->table.num_columns(), 4);
  EXPECT_EQ(r->table.column(0).int64_data()[2], INT64_MAX);
  EXPECT_EQ(r->table.column(0).int64_data()[1], -2);
  EXPECT_TRUE(std::isnan(r->table.column(1).float64_data()[1]));
  EXPECT_EQ(r->table.column(1).float64_data()[2], -HUGE_VAL);
  EXPECT_TRUE(r->table.column(2).bool_value(0));
  EXPECT_TRUE(r->table.column(2).IsNull(2));
  EXPECT_EQ(r->table.column(3).string_value(1), "\xc3\xa9");
  r = ParseOipRequest(R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":[1]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("expected string data, found <class 'int'>"));
}

TEST(OipTest, ShapeProductOverflowIsRefused) {
  Result<OipRequest> r =
      ParseOipRequest(R"({"inputs":[{"name":"x","shape":[1024,18014398509481984],"datatype":"FP64","data":[]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("columns"));
  r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[4611686018427387904,2],"datatype":"FP64","data":[]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("holds more values than any request can carry"));
  r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[18446744073709551615],"datatype":"FP64","data":[]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("shape[0] is not a size"));
  r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP64","data":[]}]})");
  ASSERT_FALSE(r.ok());
}

// shape [0, 2000000] with empty data (82 bytes) built 2M columns (991 MB) and answered
// 20.9 MB of column names.
TEST(OipTest, ColumnCountIsBounded) {
  Result<OipRequest> r =
      ParseOipRequest(R"({"inputs":[{"name":"x","shape":[0,2000000],"datatype":"FP64","data":[]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("more than 65536 columns"));
  EXPECT_LT(r.status().message().size(), 200u);
  OipLimits small;
  small.max_columns = 2;
  r = ParseOipRequest(R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]},)"
                      R"({"name":"b","shape":[1],"datatype":"FP64","data":[1]},)"
                      R"({"name":"c","shape":[1],"datatype":"FP64","data":[1]}]})",
                      small);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("at most 2"));
}

// `data` nested 100,000 deep made the recursive flattening overflow the stack.
TEST(OipTest, DeeplyNestedDataIsRefusedWithoutRecursion) {
  const std::string body =
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":)" + Nested(100000, "1") + "}]}";
  Result<OipRequest> r = ParseOipRequest(body);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("deeper than 64 levels"));
}

// `parameters` nested 200,000 deep overflowed the stack converting them to a Value.
TEST(OipTest, DeeplyNestedParametersAreRefused) {
  const std::string body = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],)"
                           R"("parameters":{"p":)" +
                           Nested(200000, "") + "}}";
  Result<OipRequest> r = ParseOipRequest(body);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("deeper than"));
}

TEST(OipTest, DataLengthMustMatchTheShape) {
  Result<OipRequest> r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[3],"datatype":"INT64","data":[1,2]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("holds 3 values, data has 2"));
  r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1,2,3,4]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("data has 2 or more"));
  r = ParseOipRequest(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[18446744073709551615]}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("does not fit a 64-bit integer"));
}

TEST(OipTest, ErrorBodiesAreBounded) {
  const std::string long_message(1 << 20, 'x');
  const std::string body = HttpErrorFromStatus(Status::ModelError(long_message)).OipBody();
  EXPECT_LT(body.size(), 70u * 1024);
  EXPECT_THAT(body, ::testing::HasSubstr("more bytes]"));
}

}  // namespace
}  // namespace pyfunc::server
