// The narrow numeric types and binary: tables, Arrow, frames and the writers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/table.h"
#include "runtime/frame.h"
#include "test_util.h"

namespace pyfunc {
namespace {

using ::pyfunc::testing::FixedColumn;

// One column of every type, 5 rows, a null in most.
Table EveryType() {
  std::vector<std::string> names;
  std::vector<Column> cols;
  auto add = [&](const char* name, Column c) {
    names.push_back(name);
    cols.push_back(std::move(c));
  };
  add("i8", FixedColumn<int8_t>(DataType::kInt8, {-128, -1, 0, 1, 127}, 2));
  add("i16", FixedColumn<int16_t>(DataType::kInt16, {-32768, -300, 0, 300, 32767}));
  add("i32", FixedColumn<int32_t>(DataType::kInt32, {-70000, 1, 2, 3, 2147483647}, 4));
  add("u8", FixedColumn<uint8_t>(DataType::kUInt8, {0, 1, 128, 250, 255}));
  add("u16", FixedColumn<uint16_t>(DataType::kUInt16, {0, 1, 2, 3, 65535}, 0));
  add("u32", FixedColumn<uint32_t>(DataType::kUInt32, {0, 1, 2, 3, 4000000000u}));
  add("u64", FixedColumn<uint64_t>(DataType::kUInt64, {0, 1, 2, 9223372036854775815ull, 18446744073709551615ull}));
  add("f16", FixedColumn<uint16_t>(DataType::kFloat16, {0x3c00, 0x2e66, 0x7c00, 0x7e00, 0x0001}));
  add("f32", FixedColumn<float>(DataType::kFloat32, {0.1f, 1e-5f, 1e6f, 123456.7f, -0.0f}, 1));
  ColumnBuilder bin(DataType::kBinary);
  bin.AppendString(std::string("\0\xff", 2));
  bin.AppendNull();
  bin.AppendString("");
  bin.AppendString(std::string(60, 'x'));
  bin.AppendString("ab");
  add("bin", bin.Finish());
  ColumnBuilder f64(DataType::kFloat64);
  for (double v : {0.5, 1.5, 2.5, 3.5, 4.5}) f64.AppendFloat64(v);
  add("f64", f64.Finish());
  Result<Table> t = Table::Make(std::move(names), std::move(cols));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

TEST(NarrowTypesTest, NamesWidthsAndHalfFloats) {
  for (int t = 0; t < kNumDataTypes; ++t) {
    const auto type = static_cast<DataType>(t);
    Result<DataType> parsed = ParseDataType(DataTypeName(type));
    ASSERT_TRUE(parsed.ok()) << DataTypeName(type);
    EXPECT_EQ(*parsed, type);
  }
  EXPECT_EQ(ByteWidth(DataType::kInt8), 1);
  EXPECT_EQ(ByteWidth(DataType::kFloat16), 2);
  EXPECT_EQ(ByteWidth(DataType::kUInt32), 4);
  EXPECT_EQ(ByteWidth(DataType::kTimestamp), 8);
  EXPECT_EQ(ByteWidth(DataType::kBinary), 0);
  EXPECT_EQ(HalfToDouble(0x3c00), 1.0);
  EXPECT_EQ(HalfToDouble(0xc000), -2.0);
  EXPECT_EQ(HalfToDouble(0x2e66), 0.0999755859375);
  EXPECT_EQ(HalfToDouble(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(HalfToDouble(0x7bff), 65504.0);
  EXPECT_TRUE(std::isinf(HalfToDouble(0x7c00)));
  EXPECT_TRUE(std::isnan(HalfToDouble(0x7e00)));
}

TEST(NarrowTypesTest, SliceConcatAndEqualsKeepTypesAndValues) {
  Table t = EveryType();
  Result<Table> head = t.Slice(0, 2), tail = t.Slice(2, 3);
  ASSERT_TRUE(head.ok() && tail.ok());
  Result<Table> back = Table::Concat({*head, *tail});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->Equals(t)) << back->ToString() << "\n" << t.ToString();
  EXPECT_EQ(back->column(2).type(), DataType::kInt32);
  EXPECT_EQ(back->column(9).string_value(0), std::string("\0\xff", 2));
  EXPECT_EQ(t.column(6).data_as<uint64_t>()[4], 18446744073709551615ull);
  EXPECT_EQ(t.column(0).null_count(), 1);
}

TEST(NarrowTypesTest, CastsWidenWithoutLoss) {
  Table t = EveryType();
  Result<Column> wide = t.column(2).CastTo(DataType::kInt64);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->int64_data()[0], -70000);
  EXPECT_TRUE(wide->IsNull(4));
  Result<Column> f = t.column(8).CastTo(DataType::kFloat64);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->float64_data()[0], static_cast<double>(0.1f));
  EXPECT_FALSE(t.column(6).CastTo(DataType::kInt64).ok());  // uint64 does not fit
  EXPECT_FALSE(t.column(9).CastTo(DataType::kString).ok());
}

TEST(NarrowTypesTest, ArrowRoundTripKeepsEveryType) {
  Table t = EveryType();
  ArrowSchema schema;
  ArrowArray array;
  ASSERT_TRUE(ExportTable(t, &schema, &array).ok());
  EXPECT_STREQ(schema.children[0]->format, "c");
  EXPECT_STREQ(schema.children[7]->format, "e");
  EXPECT_STREQ(schema.children[9]->format, "Z");
  Result<Table> back = ImportTable(&schema, &array);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->Equals(t));
}

TEST(NarrowTypesTest, FramesRoundTripEveryTypeAndRefuseUnknownOnes) {
  Table t = EveryType();
  const size_t size = runtime::FrameSize(t);
  std::vector<uint8_t> buf(size + 64);
  uint8_t* frame = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  runtime::EncodeFrame(t, 0, frame);
  Result<Prediction> back = runtime::DecodeFrame(frame, size);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->table.Equals(t)) << back->table.ToString();
  // Column 0's descriptor: type byte at offset 12 of the 64-byte entry after the header.
  frame[64 + 12] = 16;
  Result<Prediction> bad = runtime::DecodeFrame(frame, size);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown type 16"), std::string::npos) << bad.status().message();
  frame[64 + 12] = 0;
  EXPECT_FALSE(runtime::DecodeFrame(frame, size).ok());
  frame[64 + 12] = 6;
  frame[64 + 14] = 3;  // the null spelling byte
  bad = runtime::DecodeFrame(frame, size);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown null spelling 3"), std::string::npos) << bad.status().message();
  frame[64 + 14] = 0;
  // A float32 column whose values size is that of float64.
  frame[64 + 12] = 6;
  uint8_t* f32 = frame + 64 + 8 * 64;
  uint64_t values_size;
  std::memcpy(&values_size, f32 + 32, 8);
  EXPECT_EQ(values_size, 4u * 5);
  values_size = 8 * 5;
  std::memcpy(f32 + 32, &values_size, 8);
  bad = runtime::DecodeFrame(frame, size);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("column 8: values out of bounds"), std::string::npos);
}

TEST(NarrowTypesTest, TimestampsKeepTheirTimeUnitThroughTablesAndFrames) {
  ColumnBuilder b(DataType::kTimestamp);
  b.AppendTimestamp(1'000'000'000);
  b.AppendNull();
  b.AppendTimestamp(2'000'000'000);
  Column us = b.Finish().WithTimeUnit(TimeUnit::kMicrosecond);
  EXPECT_EQ(us.time_unit(), TimeUnit::kMicrosecond);
  EXPECT_EQ(us.Slice(1, 2)->time_unit(), TimeUnit::kMicrosecond);
  EXPECT_EQ(Column::Concat({us, us})->time_unit(), TimeUnit::kMicrosecond);
  EXPECT_EQ(Column::Concat({us, us.WithTimeUnit(TimeUnit::kSecond)})->time_unit(), TimeUnit::kNanosecond);
  EXPECT_FALSE(us.Equals(us.WithTimeUnit(TimeUnit::kNanosecond)));
  ColumnBuilder ints(DataType::kInt64);
  ints.AppendInt64(1);
  EXPECT_EQ(ints.Finish().WithTimeUnit(TimeUnit::kSecond).time_unit(), TimeUnit::kNanosecond);  // not a timestamp

  Table t = *Table::Make({"t"}, {us});
  EXPECT_EQ(t.ToString().substr(0, 16), "t:timestamp[us]\n");
  const size_t size = runtime::FrameSize(t);
  std::vector<uint8_t> buf(size + 64);
  uint8_t* frame = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  runtime::EncodeFrame(t, 0, frame);
  EXPECT_EQ(frame[64 + 56], 1);  // the time unit byte
  Result<Prediction> back = runtime::DecodeFrame(frame, size);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->table.Equals(t));
  frame[64 + 56] = 4;
  Result<Prediction> bad = runtime::DecodeFrame(frame, size);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("time unit 4"), std::string::npos) << bad.status().message();
  frame[64 + 56] = 1;
  frame[64 + 12] = 1;  // an int64 column with a time unit
  EXPECT_FALSE(runtime::DecodeFrame(frame, size).ok());
}

// What MLflow's scoring server writes for the same DataFrame (to_dict("records") and its
// NumpyEncoder: float32 values as Python floats, bytes as base64.encodebytes).
TEST(NarrowTypesTest, JsonPredictionsAreWhatMlflowWrites) {
  Prediction p;
  p.shape = PredictionShape::kDataFrame;
  Result<Table> t = EveryType().Slice(0, 1);
  ASSERT_TRUE(t.ok());
  p.table = *t;
  EXPECT_EQ(PredictionsToJson(p),
            "{\"predictions\": [{\"i8\": -128, \"i16\": -32768, \"i32\": -70000, \"u8\": 0, \"u16\": null, "
            "\"u32\": 0, \"u64\": 0, \"f16\": 1.0, \"f32\": 0.10000000149011612, \"bin\": \"AP8=\\n\", "
            "\"f64\": 0.5}]}");
  ColumnBuilder bin(DataType::kBinary);
  bin.AppendString(std::string(60, 'x'));
  p.shape = PredictionShape::kArray1D;
  p.table = *Table::Make({""}, {bin.Finish()});
  // 80 base64 characters: a newline after the 76th and at the end.
  std::string b64;
  for (int i = 0; i < 20; ++i) b64 += "eHh4";
  EXPECT_EQ(PredictionsToJson(p), "{\"predictions\": [\"" + b64.substr(0, 76) + "\\n" + b64.substr(76) + "\\n\"]}");
}

// A dict of arrays is written as MLflow writes one: {"name": [values...], ...}.
TEST(NarrowTypesTest, ColumnsPredictionsAreADictOfLists) {
  Prediction p;
  p.shape = PredictionShape::kColumns;
  Result<Table> t = EveryType().Slice(0, 2);
  ASSERT_TRUE(t.ok());
  p.table = *Table::Make({"i32", "f32"}, {t->column(2), t->column(8)});
  EXPECT_EQ(PredictionsToJson(p), "{\"predictions\": {\"i32\": [-70000, 1], \"f32\": [0.10000000149011612, NaN]}}");
}

// pandas' to_csv of a float32 column writes numpy's str() of each value.
TEST(NarrowTypesTest, CsvWritesFloat32AsPandasDoes) {
  Result<Table> t =
      Table::Make({"f32"}, {FixedColumn<float>(DataType::kFloat32, {0.1f, 1e-5f, 1e6f, 123456.7f, -0.0f})});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(WriteCsvString(*t), "f32\n0.1\n1e-05\n1e+06\n123456.7\n-0.0\n");
}

}  // namespace
}  // namespace pyfunc
