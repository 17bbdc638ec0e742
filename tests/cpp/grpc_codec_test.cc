// The Open Inference Protocol's gRPC codec: typed and raw contents give the columns the
// REST codec gives for the same tensors, answers are raw little-endian outputs, and every
// malformed request is an InvalidArgument naming the tensor, its cost bounded by the
// message.
#include "server/grpc_codec.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "server/oip.h"
#include "test_util.h"

namespace pyfunc::server {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::testing::HasSubstr;

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest* r, const std::string& name,
                                              const std::string& datatype, std::vector<int64_t> shape) {
  auto* t = r->add_inputs();
  t->set_name(name);
  t->set_datatype(datatype);
  for (int64_t d : shape) t->add_shape(d);
  return t;
}

// Appends `values` to a repeated field of contents.
template <typename E>
void Fill(google::protobuf::RepeatedField<E>* field, std::type_identity_t<std::initializer_list<E>> values) {
  field->Add(values.begin(), values.end());
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string RawBytes(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += v;
  }
  return out;
}

std::string Error(const ModelInferRequest& r, const OipLimits& limits = {}) {
  Result<OipRequest> parsed = ParseGrpcInferRequest(r, limits);
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().message();
}

// The REST codec's table for a JSON body, the reference of every parse below.
Table Rest(const std::string& body) {
  Result<OipRequest> r = ParseOipRequest(body);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->table : Table();
}

void ExpectSameTable(const Table& want, const Table& got) {
  ASSERT_EQ(got.column_names(), want.column_names());
  for (int i = 0; i < want.num_columns(); ++i) {
    EXPECT_TRUE(got.column(i).Equals(want.column(i))) << "column " << want.column_name(i);
  }
}

TEST(GrpcCodecTest, TypedContentsGiveTheColumnsOfTheRestCodec) {
  ModelInferRequest r;
  r.set_id("7");
  Fill(AddInput(&r, "i", "INT32", {3})->mutable_contents()->mutable_int_contents(), {1, -2, 3});
  Fill(AddInput(&r, "l", "INT64", {3, 1})->mutable_contents()->mutable_int64_contents(), {1, 2, INT64_MAX});
  Fill(AddInput(&r, "u", "UINT64", {3})->mutable_contents()->mutable_uint64_contents(), {0, 5, 6});
  Fill(AddInput(&r, "f", "FP32", {3})->mutable_contents()->mutable_fp32_contents(), {0.5f, -1.25f, 2});
  Fill(AddInput(&r, "d", "FP64", {3})->mutable_contents()->mutable_fp64_contents(), {0.1, 1e300, -0.0});
  Fill(AddInput(&r, "b", "BOOL", {3})->mutable_contents()->mutable_bool_contents(), {true, false, true});
  auto* s = AddInput(&r, "s", "BYTES", {3})->mutable_contents()->mutable_bytes_contents();
  *s->Add() = "x";
  *s->Add() = "\xc3\xa9";
  *s->Add() = "";
  (*r.mutable_parameters())["mode"].set_string_param("sum");
  (*r.mutable_parameters())["k"].set_int64_param(3);
  (*r.mutable_parameters())["content_type"].set_string_param("np");
  Result<OipRequest> got = ParseGrpcInferRequest(r);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->id, "7");
  EXPECT_EQ(ToJson(got->params), R"({"k": 3, "mode": "sum"})");
  ExpectSameTable(Rest(R"({"inputs":[{"name":"i","shape":[3],"datatype":"INT32","data":[1,-2,3]},)"
                       R"({"name":"l","shape":[3,1],"datatype":"INT64","data":[1,2,9223372036854775807]},)"
                       R"({"name":"u","shape":[3],"datatype":"UINT64","data":[0,5,6]},)"
                       R"({"name":"f","shape":[3],"datatype":"FP32","data":[0.5,-1.25,2]},)"
                       R"({"name":"d","shape":[3],"datatype":"FP64","data":[0.1,1e300,-0.0]},)"
                       R"({"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,true]},)"
                       R"({"name":"s","shape":[3],"datatype":"BYTES","data":["x","\u00e9",""]}]})"),
                  got->table);
}

TEST(GrpcCodecTest, RawContentsGiveTheSameColumnsAsTypedOnes) {
  ModelInferRequest r;
  AddInput(&r, "x", "FP32", {2, 3});
  r.add_raw_input_contents(Raw<float>({1, 2, 3, 4, 5, 6}));
  Result<OipRequest> got = ParseGrpcInferRequest(r);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectSameTable(Rest(R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]})"),
                  got->table);

  ModelInferRequest all;
  AddInput(&all, "i8", "INT8", {2});
  all.add_raw_input_contents(Raw<int8_t>({-1, 7}));
  AddInput(&all, "u16", "UINT16", {2});
  all.add_raw_input_contents(Raw<uint16_t>({65535, 1}));
  AddInput(&all, "h", "FP16", {2});
  all.add_raw_input_contents(Raw<uint16_t>({0x3c00, 0xc000}));  // 1.0, -2.0
  AddInput(&all, "b", "BOOL", {2});
  all.add_raw_input_contents(std::string("\x01\x00", 2));
  AddInput(&all, "s", "BYTES", {2});
  all.add_raw_input_contents(RawBytes({"ab", std::string("\0z", 2)}));
  got = ParseGrpcInferRequest(all);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectSameTable(Rest(R"({"inputs":[{"name":"i8","shape":[2],"datatype":"INT8","data":[-1,7]},)"
                       R"({"name":"u16","shape":[2],"datatype":"UINT16","data":[65535,1]},)"
                       R"({"name":"h","shape":[2],"datatype":"FP16","data":[1,-2]},)"
                       R"({"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},)"
                       R"({"name":"s","shape":[2],"datatype":"BYTES","data":["ab","\u0000z"]}]})"),
                  got->table);
}

TEST(GrpcCodecTest, ShapesFollowTheRestRules) {
  ModelInferRequest overflow;  // 1024 * 2^54 wraps int64 to 0, which empty data would match
  AddInput(&overflow, "x", "FP64", {1024, int64_t{1} << 54});
  EXPECT_THAT(Error(overflow), HasSubstr("inputs[0] 'x': shape [1024, 18014398509481984] has more than"));
  ModelInferRequest wide;
  AddInput(&wide, "x", "FP64", {int64_t{1} << 40, int64_t{1} << 30});
  EXPECT_THAT(Error(wide, OipLimits{64, size_t{1} << 31}), HasSubstr("holds more values than any request"));
  ModelInferRequest rank;
  AddInput(&rank, "x", "FP64", {1, 1, 1});
  EXPECT_THAT(Error(rank), HasSubstr("inputs[0] 'x': shape must be [N] or [N, K]"));
  ModelInferRequest negative;
  AddInput(&negative, "x", "FP64", {-1});
  EXPECT_THAT(Error(negative), HasSubstr("shape[0] is not a size: -1"));
  ModelInferRequest amplification;  // [0, K] has no data to bound K
  AddInput(&amplification, "x", "FP64", {0, 2000000});
  EXPECT_THAT(Error(amplification), HasSubstr("has more than 65536 columns"));
  ModelInferRequest two_wide;
  Fill(AddInput(&two_wide, "x", "FP64", {1, 2})->mutable_contents()->mutable_fp64_contents(), {1, 2});
  AddInput(&two_wide, "y", "FP64", {1})->mutable_contents()->mutable_fp64_contents()->Add(3);
  EXPECT_THAT(Error(two_wide), HasSubstr("must be the only input"));
  ModelInferRequest none;
  EXPECT_THAT(Error(none), HasSubstr("'inputs' must be a non-empty list"));
}

TEST(GrpcCodecTest, MalformedContentsAreRefusedNamingTheTensor) {
  ModelInferRequest count;
  Fill(AddInput(&count, "x", "FP64", {3})->mutable_contents()->mutable_fp64_contents(), {1, 2});
  EXPECT_THAT(Error(count), HasSubstr("inputs[0] 'x': shape [3, 1] holds 3 values, data has 2"));
  ModelInferRequest field;
  Fill(AddInput(&field, "x", "FP32", {2})->mutable_contents()->mutable_fp64_contents(), {1, 2});
  EXPECT_THAT(Error(field),
              HasSubstr("inputs[0] 'x': FP32 elements go in fp32_contents; the tensor has fp64_contents"));
  ModelInferRequest datatype;
  AddInput(&datatype, "x", "COMPLEX64", {1})->mutable_contents()->mutable_fp32_contents()->Add(1);
  EXPECT_THAT(Error(datatype), HasSubstr("inputs[0] 'x': unsupported datatype 'COMPLEX64'"));
  ModelInferRequest big;
  AddInput(&big, "u", "UINT64", {1})->mutable_contents()->mutable_uint64_contents()->Add(UINT64_MAX);
  EXPECT_THAT(Error(big), HasSubstr("inputs[0] 'u': 18446744073709551615 does not fit a 64-bit integer"));
  ModelInferRequest fp16;
  AddInput(&fp16, "h", "FP16", {1})->mutable_contents()->mutable_fp32_contents()->Add(1);
  EXPECT_THAT(Error(fp16), HasSubstr("FP16 elements go in raw_input_contents"));
  ModelInferRequest fp16_empty;
  AddInput(&fp16_empty, "h", "FP16", {2});
  EXPECT_THAT(Error(fp16_empty), HasSubstr("inputs[0] 'h': FP16 has no typed contents; its elements go in "
                                           "raw_input_contents"));
}

TEST(GrpcCodecTest, MalformedRawContentsAreRefusedNamingTheTensor) {
  ModelInferRequest size;
  AddInput(&size, "x", "FP32", {3});
  size.add_raw_input_contents(Raw<float>({1, 2}));
  EXPECT_THAT(Error(size), HasSubstr("inputs[0] 'x': raw contents of 8 bytes; shape [3, 1] of FP32 takes 12 bytes"));
  ModelInferRequest huge;  // a shape far beyond the bytes present is refused before any allocation
  AddInput(&huge, "x", "FP64", {int64_t{1} << 40});
  huge.add_raw_input_contents(Raw<double>({1}));
  EXPECT_THAT(Error(huge), HasSubstr("takes 1099511627776 x 8 bytes"));
  ModelInferRequest mixed;
  AddInput(&mixed, "a", "FP64", {1});
  AddInput(&mixed, "b", "FP64", {1});
  mixed.add_raw_input_contents(Raw<double>({1}));
  EXPECT_THAT(Error(mixed), HasSubstr("raw_input_contents has 1 entries for 2 inputs"));
  ModelInferRequest both;
  AddInput(&both, "a", "FP64", {1})->mutable_contents()->mutable_fp64_contents()->Add(1);
  both.add_raw_input_contents(Raw<double>({1}));
  EXPECT_THAT(Error(both), HasSubstr("inputs[0] 'a': the tensor has fp64_contents beside raw_input_contents"));
  ModelInferRequest past_end;
  AddInput(&past_end, "s", "BYTES", {2});
  past_end.add_raw_input_contents(RawBytes({"ab"}) + std::string("\x09\x00\x00\x00xy", 6));
  EXPECT_THAT(Error(past_end), HasSubstr("inputs[0] 's': BYTES element 1 of 9 bytes runs past"));
  ModelInferRequest too_many;
  AddInput(&too_many, "s", "BYTES", {1});
  too_many.add_raw_input_contents(RawBytes({"a", "b"}));
  EXPECT_THAT(Error(too_many), HasSubstr("holds 1 values, raw contents have more"));
  ModelInferRequest cut_length;
  AddInput(&cut_length, "s", "BYTES", {2});
  cut_length.add_raw_input_contents(RawBytes({"abc"}) + "\x01");
  EXPECT_THAT(Error(cut_length), HasSubstr("raw contents end inside the length of BYTES element 1"));
  ModelInferRequest bytes_count;  // 2^40 elements cannot fit 5 bytes, refused before reserving
  AddInput(&bytes_count, "s", "BYTES", {int64_t{1} << 40});
  bytes_count.add_raw_input_contents(RawBytes({"a"}));
  EXPECT_THAT(Error(bytes_count), HasSubstr("raw contents of 5 bytes hold at most 1"));
  ModelInferRequest bools;
  AddInput(&bools, "b", "BOOL", {2});
  bools.add_raw_input_contents(std::string("\x01\x02", 2));
  EXPECT_THAT(Error(bools), HasSubstr("inputs[0] 'b': BOOL element 1 is the byte 2, not 0 or 1"));
}

TEST(GrpcCodecTest, AnswersAreRawOutputsOfTheRestCodecsTensors) {
  TableBuilder tb({{"score", DataType::kFloat64}, {"label", DataType::kString}, {"n", DataType::kInt64}});
  tb.column(0).AppendFloat64(0.5);
  tb.column(0).AppendNull();
  tb.column(1).AppendString("yes");
  tb.column(1).AppendString("");
  tb.column(2).AppendInt64(3);
  tb.column(2).AppendNull();
  Result<Table> t = tb.Finish();
  ASSERT_TRUE(t.ok());
  Prediction p{*t, PredictionShape::kDataFrame, {}};
  ModelInferResponse res;
  WriteGrpcInferResponse("m", "id1", p, &res);
  EXPECT_EQ(res.model_name(), "m");
  EXPECT_EQ(res.id(), "id1");
  ASSERT_EQ(res.outputs_size(), 3);
  ASSERT_EQ(res.raw_output_contents_size(), 3);
  EXPECT_EQ(res.outputs(0).name(), "score");
  EXPECT_EQ(res.outputs(0).datatype(), "FP64");
  EXPECT_EQ(res.outputs(0).shape_size(), 1);
  EXPECT_EQ(res.outputs(0).shape(0), 2);
  double scores[2];
  ASSERT_EQ(res.raw_output_contents(0).size(), sizeof scores);
  std::memcpy(scores, res.raw_output_contents(0).data(), sizeof scores);
  EXPECT_EQ(scores[0], 0.5);
  EXPECT_TRUE(std::isnan(scores[1]));  // raw contents have no null: NaN
  EXPECT_EQ(res.outputs(1).datatype(), "BYTES");
  EXPECT_EQ(res.raw_output_contents(1), RawBytes({"yes", ""}));
  EXPECT_EQ(res.raw_output_contents(2), Raw<int64_t>({3, 0}));

  // A 2-D array: one [N, K] tensor "predict", row-major, as the REST answer.
  TableBuilder wide({{"0", DataType::kFloat32}, {"1", DataType::kFloat32}});
  for (float v : {1.0f, 3.0f}) wide.column(0).AppendFixed(&v);
  for (float v : {2.0f, 4.0f}) wide.column(1).AppendFixed(&v);
  Result<Table> w = wide.Finish();
  ASSERT_TRUE(w.ok()) << w.status().message();
  Prediction p2{*w, PredictionShape::kArray2D, {}};
  ModelInferResponse res2;
  WriteGrpcInferResponse("m", "", p2, &res2);
  ASSERT_EQ(res2.outputs_size(), 1);
  EXPECT_EQ(res2.outputs(0).name(), "predict");
  EXPECT_EQ(res2.outputs(0).shape(1), 2);
  EXPECT_EQ(res2.outputs(0).datatype(), "FP32");
  EXPECT_EQ(res2.raw_output_contents(0), Raw<float>({1, 2, 3, 4}));
  EXPECT_THAT(OipResponse("m", std::nullopt, p2),
              HasSubstr(R"("shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0])"));
}

// Random mutations of valid requests (bytes flipped, inserted, cut) parse to a request or
// an InvalidArgument: nothing crashes, throws or allocates beyond the message.
TEST(GrpcCodecTest, MutatedRequestsNeverCrash) {
  std::vector<std::string> seeds;
  {
    ModelInferRequest r;
    AddInput(&r, "x", "FP32", {2, 3});
    r.add_raw_input_contents(Raw<float>({1, 2, 3, 4, 5, 6}));
    seeds.push_back(r.SerializeAsString());
  }
  {
    ModelInferRequest r;
    AddInput(&r, "s", "BYTES", {2});
    r.add_raw_input_contents(RawBytes({"ab", "c"}));
    AddInput(&r, "u", "UINT64", {2});
    r.add_raw_input_contents(Raw<uint64_t>({1, 2}));
    seeds.push_back(r.SerializeAsString());
  }
  {
    ModelInferRequest r;
    Fill(AddInput(&r, "i", "INT32", {2})->mutable_contents()->mutable_int_contents(), {1, 2});
    *AddInput(&r, "s", "BYTES", {1})->mutable_contents()->add_bytes_contents() = "x";
    (*r.mutable_parameters())["p"].set_double_param(0.5);
    seeds.push_back(r.SerializeAsString());
  }
  uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  int parsed = 0, refused = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string m = seeds[iter % seeds.size()];
    for (uint32_t k = 0, edits = 1 + next() % 4; k < edits && !m.empty(); ++k) {
      const size_t at = next() % m.size();
      switch (next() % 4) {
        case 0: m[at] = static_cast<char>(next()); break;
        case 1: m.insert(at, 1, static_cast<char>(next())); break;
        case 2: m.erase(at, 1); break;
        default: m[at] = static_cast<char>(m[at] ^ (1 << (next() % 8))); break;
      }
    }
    ModelInferRequest r;
    if (!r.ParseFromString(m)) continue;
    Result<OipRequest> got = ParseGrpcInferRequest(r);
    if (got.ok()) {
      ++parsed;
    } else {
      ++refused;
      EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status().message();
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace pyfunc::server
