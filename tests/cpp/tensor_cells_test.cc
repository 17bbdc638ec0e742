// Columns of tensor cells (a dict of N-d arrays, an N-d array, DataFrame cells holding
// arrays): tables, frames, the JSON, CSV and OIP writers and the Arrow export.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "pyfunc/arrow_c_data.h"
#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/table.h"
#include "runtime/frame.h"
#include "server/oip.h"

namespace pyfunc {
namespace {

// rows × (2, 3) float32 cells holding 0, 0.5, 1, ... (row-major).
Column Float32Cells(int64_t rows, int null_row = -1) {
  ColumnBuilder b(DataType::kFloat32, {2, 3});
  for (int64_t r = 0; r < rows; ++r) {
    if (r == null_row) {
      b.AppendNull();
      continue;
    }
    float cell[6];
    for (int k = 0; k < 6; ++k) cell[k] = 0.5f * static_cast<float>(r * 6 + k);
    b.AppendFixed(cell);
  }
  return b.Finish();
}

Column Int64s(std::vector<int64_t> v) {
  ColumnBuilder b(DataType::kInt64);
  for (int64_t x : v) b.AppendInt64(x);
  return b.Finish();
}

TEST(TensorCellsTest, BuildSliceConcatCastAndEquals) {
  Column c = Float32Cells(3);
  EXPECT_EQ(c.cell_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(c.cell_size(), 6);
  EXPECT_EQ(c.values()->size(), 3u * 6 * 4);
  EXPECT_EQ(c.NumberAt(7), 3.5);  // row 1, value 1

  Result<Column> tail = c.Slice(1, 2);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->cell_shape(), c.cell_shape());
  EXPECT_EQ(tail->NumberAt(0), 3.0);
  Result<Column> head = c.Slice(0, 1);
  Result<Column> whole = Column::Concat({*head, *tail});
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(whole->Equals(c));

  // Cells of another shape neither concatenate nor compare equal.
  ColumnBuilder other(DataType::kFloat32, {3, 2});
  float cell[6] = {0, 0.5f, 1, 1.5f, 2, 2.5f};
  other.AppendFixed(cell);
  Column transposed = other.Finish();
  EXPECT_FALSE(Column::Concat({*head, transposed}).ok());
  EXPECT_FALSE(head->Equals(transposed));

  Result<Column> wide = c.CastTo(DataType::kFloat64);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->cell_shape(), c.cell_shape());
  EXPECT_EQ(wide->float64_data()[17], 8.5);

  Result<Table> t = Table::Make({"x"}, {c.Slice(0, 1).value()});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToString(), "x:float32[2][3]\n[[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]]\n");
}

TEST(TensorCellsTest, MakeTensorChecksItsBuffers) {
  auto values = Buffer::Allocate(2 * 4 * 4);
  EXPECT_TRUE(Column::MakeTensor(DataType::kInt32, 2, {4}, nullptr, values).ok());
  EXPECT_FALSE(Column::MakeTensor(DataType::kInt32, 3, {4}, nullptr, values).ok());  // too small
  EXPECT_FALSE(Column::MakeTensor(DataType::kInt32, 1, {-1}, nullptr, values).ok());
  EXPECT_FALSE(Column::MakeTensor(DataType::kString, 1, {4}, nullptr, values).ok());
  EXPECT_FALSE(Column::MakeTensor(DataType::kInt8, 1, {INT64_MAX, 4}, nullptr, values).ok());  // overflows
}

TEST(TensorCellsTest, FramesCarryTheCellShapeBothWays) {
  Table t = *Table::Make({"label", "probabilities"}, {Int64s({0, 1, 2}), Float32Cells(3, 1)});
  const size_t size = runtime::FrameSize(t);
  std::vector<uint8_t> frame(size + 64);
  uint8_t* p = frame.data() + (64 - reinterpret_cast<uintptr_t>(frame.data()) % 64) % 64;
  runtime::EncodeFrame(t, static_cast<uint32_t>(PredictionShape::kColumns), p);
  Result<Prediction> back = runtime::DecodeFrame(p, size);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->table.Equals(t));
  EXPECT_EQ(back->table.column(1).cell_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back->table.column(1).null_count(), 1);

  // The second column's descriptor: byte 15 is the number of dimensions, u64 at 48 where
  // they are. Each corruption is a malformed frame, never a crash.
  uint8_t* d = p + 64 + 64;
  uint64_t dims_at;
  std::memcpy(&dims_at, d + 48, 8);
  auto corrupt = [&](auto&& change, const std::string& fragment) {
    std::vector<uint8_t> copy(p, p + size);
    change(copy.data(), copy.data() + 128);
    Result<Prediction> bad = runtime::DecodeFrame(copy.data(), size);
    ASSERT_FALSE(bad.ok()) << fragment;
    EXPECT_NE(bad.status().message().find(fragment), std::string::npos) << bad.status().message();
  };
  corrupt([](uint8_t*, uint8_t* desc) { desc[15] = 200; }, "dimensions");
  corrupt(
      [&](uint8_t*, uint8_t* desc) {
        uint64_t far = size;
        std::memcpy(desc + 48, &far, 8);
      },
      "tensor dimensions out of bounds");
  corrupt(
      [&](uint8_t* f, uint8_t*) {
        int64_t neg = -3;
        std::memcpy(f + dims_at, &neg, 8);
      },
      "tensor dimension -3");
  corrupt(
      [&](uint8_t* f, uint8_t*) {
        int64_t huge = INT64_MAX;
        std::memcpy(f + dims_at + 8, &huge, 8);
      },
      "column 1");  // a cell too large for its values: overflow or out of bounds
  corrupt(
      [&](uint8_t* f, uint8_t*) {
        int64_t four = 4;
        std::memcpy(f + dims_at + 8, &four, 8);
      },
      "values out of bounds");
  corrupt([](uint8_t*, uint8_t* desc) { desc[12] = 4; }, "cells");  // a string column with cells
}

TEST(TensorCellsTest, JsonWritesCellsAsNestedListsAsMlflowDoes) {
  Prediction dict;
  dict.shape = PredictionShape::kColumns;
  dict.table = *Table::Make({"label", "p"}, {Int64s({0, 1}), Float32Cells(2, 1)});
  // MLflow: json.dumps({"label": a.tolist(), "p": b.tolist()}) (float32 as Python floats);
  // a missing row is None.
  EXPECT_EQ(PredictionsToJson(dict),
            R"({"predictions": {"label": [0, 1], "p": [[[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]], null]}})");

  Prediction cube;
  cube.shape = PredictionShape::kArray1D;
  cube.table = *Table::Make({""}, {Float32Cells(1)});
  EXPECT_EQ(PredictionsToJson(cube), R"({"predictions": [[[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]]]})");

  Prediction records;
  records.shape = PredictionShape::kDataFrame;
  ColumnBuilder vec(DataType::kInt32, {2});
  int32_t cell[2] = {7, -8};
  vec.AppendFixed(cell);
  records.table = *Table::Make({"id", "vec"}, {Int64s({3}), vec.Finish()});
  EXPECT_EQ(PredictionsToJson(records), R"({"predictions": [{"id": 3, "vec": [7, -8]}]})");
  EXPECT_EQ(WriteCsvString(records.table), "id,vec\n3,\"[7, -8]\"\n");
}

TEST(TensorCellsTest, OipGivesTheFullShape) {
  Prediction dict;
  dict.shape = PredictionShape::kColumns;
  dict.table = *Table::Make({"p"}, {Float32Cells(2)});
  const std::string body = server::OipResponse("m", std::nullopt, dict);
  EXPECT_NE(body.find(R"("shape": [2, 2, 3])"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("datatype": "FP32")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("data": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5])"), std::string::npos)
      << body;
}

TEST(TensorCellsTest, ArrowExportsNestedFixedSizeLists) {
  Column c = Float32Cells(2, 0);
  ArrowSchema schema;
  ArrowArray array;
  ASSERT_TRUE(ExportColumn(c, "p", &schema, &array).ok());
  EXPECT_STREQ(schema.format, "+w:2");
  EXPECT_STREQ(schema.name, "p");
  ASSERT_EQ(schema.n_children, 1);
  EXPECT_STREQ(schema.children[0]->format, "+w:3");
  EXPECT_STREQ(schema.children[0]->children[0]->format, "f");
  EXPECT_EQ(array.length, 2);
  EXPECT_EQ(array.null_count, 1);
  EXPECT_NE(array.buffers[0], nullptr);
  ASSERT_EQ(array.n_children, 1);
  EXPECT_EQ(array.children[0]->length, 4);
  const ArrowArray* values = array.children[0]->children[0];
  EXPECT_EQ(values->length, 12);
  EXPECT_EQ(static_cast<const float*>(values->buffers[1])[7], 3.5f);
  array.release(&array);
  schema.release(&schema);
  EXPECT_EQ(array.release, nullptr);
  EXPECT_EQ(schema.release, nullptr);
}

}  // namespace
}  // namespace pyfunc
