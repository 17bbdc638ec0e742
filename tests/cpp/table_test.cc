#include "pyfunc/table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace pyfunc {
namespace {

Table SampleTable() {
  TableBuilder b({{"i", DataType::kInt64},
                  {"f", DataType::kFloat64},
                  {"b", DataType::kBool},
                  {"s", DataType::kString},
                  {"t", DataType::kTimestamp}});
  for (int r = 0; r < 21; ++r) {
    if (r % 5 == 3)
      b.column(0).AppendNull();
    else
      b.column(0).AppendInt64(r * 10);
    if (r % 7 == 1)
      b.column(1).AppendNull();
    else
      b.column(1).AppendFloat64(r / 4.0);
    if (r % 6 == 2)
      b.column(2).AppendNull();
    else
      b.column(2).AppendBool(r % 3 == 0);
    if (r % 4 == 0)
      b.column(3).AppendNull();
    else
      b.column(3).AppendString(std::string("s") + std::string(static_cast<size_t>(r), 'x') + std::string(1, '\0'));
    b.column(4).AppendTimestamp(int64_t{1700000000} * 1000000000 + r);
  }
  Result<Table> t = b.Finish();
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

TEST(TableTest, BuffersAreAlignedAndArrowShaped) {
  Table t = SampleTable();
  ASSERT_EQ(t.num_rows(), 21);
  for (const Column& c : t.columns()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c.values()->data()) % 64, 0u);
    if (c.validity()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(c.validity()->data()) % 64, 0u);
      EXPECT_EQ(c.validity()->size(), 3u);  // ceil(21 / 8)
    }
  }
  EXPECT_EQ(t.column(0).values()->size(), 21u * 8);
  EXPECT_EQ(t.column(0).null_count(), 4);
  EXPECT_EQ(t.column(2).values()->size(), 3u);
  EXPECT_EQ(t.column(3).values()->size(), 22u * 8);  // int64 offsets
  EXPECT_EQ(t.column(4).validity(), nullptr);
  // LSB-first validity: row 3 of column i is null.
  EXPECT_EQ((t.column(0).validity()->data()[0] >> 3) & 1, 0);
  EXPECT_EQ((t.column(0).validity()->data()[0] >> 2) & 1, 1);
  EXPECT_EQ(t.column(3).string_value(5), std::string("sxxxxx") + std::string(1, '\0'));
  EXPECT_TRUE(t.column(3).IsNull(4));
}

TEST(TableTest, SliceAndConcatRoundTrip) {
  Table t = SampleTable();
  std::vector<Table> parts;
  for (int64_t off : {0, 3, 11, 19}) {
    int64_t end = off == 19 ? 21 : (off == 0 ? 3 : off == 3 ? 11 : 19);
    Result<Table> s = t.Slice(off, end - off);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->num_rows(), end - off);
    for (const Column& c : s->columns()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(c.values()->data()) % 64, 0u);
    }
    parts.push_back(std::move(s).value());
  }
  EXPECT_TRUE(parts[1].column(0).IsNull(0));  // row 3
  EXPECT_EQ(parts[1].column(3).string_value(2), std::string("sxxxxx") + std::string(1, '\0'));
  Result<Table> joined = Table::Concat(parts);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_TRUE(joined->Equals(t)) << joined->ToString() << "\nvs\n" << t.ToString();
  EXPECT_EQ(joined->ToString(), t.ToString());
  Result<Table> empty = t.Slice(21, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->num_rows(), 0);
}

TEST(TableTest, SliceOutOfRangeIsAnError) {
  Table t = SampleTable();
  EXPECT_FALSE(t.Slice(-1, 2).ok());
  EXPECT_FALSE(t.Slice(20, 2).ok());
  EXPECT_FALSE(t.Slice(0, INT64_MAX).ok());
}

TEST(TableTest, ConcatRejectsDifferentSchemas) {
  Table a = Table::EmptyWithSchema({{"x", DataType::kInt64}});
  Table b = Table::EmptyWithSchema({{"x", DataType::kFloat64}});
  Table c = Table::EmptyWithSchema({{"y", DataType::kInt64}});
  Result<Table> r = Table::Concat({a, b});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'x':float64"), std::string::npos) << r.status().message();
  EXPECT_FALSE(Table::Concat({a, c}).ok());
  EXPECT_TRUE(Table::Concat({a, a}).ok());
}

TEST(TableTest, MakeChecksLengths) {
  ColumnBuilder x(DataType::kInt64);
  x.AppendInt64(1);
  ColumnBuilder y(DataType::kInt64);
  Result<Table> t = Table::Make({"x", "y"}, {x.Finish(), y.Finish()});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("column 'y' has 0 rows"), std::string::npos);
}

TEST(TableTest, ColumnMakeValidatesBuffers) {
  auto offsets = Buffer::Allocate(3 * 8);
  auto* o = reinterpret_cast<int64_t*>(offsets->mutable_data());
  o[0] = 0;
  o[1] = 5;
  o[2] = 3;
  EXPECT_FALSE(Column::Make(DataType::kString, 2, nullptr, offsets, Buffer::Allocate(5)).ok());
  o[2] = 9;
  EXPECT_FALSE(Column::Make(DataType::kString, 2, nullptr, offsets, Buffer::Allocate(5)).ok());
  o[2] = 5;
  EXPECT_TRUE(Column::Make(DataType::kString, 2, nullptr, offsets, Buffer::Allocate(5)).ok());
  EXPECT_FALSE(Column::Make(DataType::kInt64, 4, nullptr, Buffer::Allocate(8)).ok());
}

TEST(TableTest, CastIntToFloatKeepsNulls) {
  ColumnBuilder b(DataType::kInt64);
  b.AppendInt64(3);
  b.AppendNull();
  Result<Column> c = b.Finish().CastTo(DataType::kFloat64);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->float64_data()[0], 3.0);
  EXPECT_TRUE(c->IsNull(1));
  ColumnBuilder s(DataType::kString);
  EXPECT_FALSE(s.Finish().CastTo(DataType::kInt64).ok());
}

TEST(TableTest, ArrowExportImportRoundTrip) {
  Table t = SampleTable();
  ArrowSchema schema;
  ArrowArray array;
  ASSERT_TRUE(ExportTable(t, &schema, &array).ok());
  EXPECT_STREQ(schema.format, "+s");
  ASSERT_EQ(schema.n_children, 5);
  EXPECT_STREQ(schema.children[3]->format, "U");
  EXPECT_STREQ(schema.children[4]->format, "tsn:UTC");
  EXPECT_STREQ(schema.children[1]->name, "f");
  EXPECT_EQ(array.length, 21);
  EXPECT_EQ(array.children[0]->null_count, 4);
  // The exported buffers are the table's own (no copy).
  EXPECT_EQ(array.children[0]->buffers[1], t.column(0).values()->data());
  Result<Table> back = ImportTable(&schema, &array);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(schema.release, nullptr);
  EXPECT_EQ(array.release, nullptr);
  EXPECT_TRUE(back->Equals(t)) << back->ToString();
}

TEST(TableTest, ArrowExportOutlivesTable) {
  ArrowSchema schema;
  ArrowArray array;
  {
    Table t = SampleTable();
    ASSERT_TRUE(ExportTable(t, &schema, &array).ok());
  }
  const auto* values = static_cast<const int64_t*>(array.children[0]->buffers[1]);
  EXPECT_EQ(values[2], 20);
  // A consumer may move a child out; the parent's release must skip it.
  ArrowArray moved = *array.children[1];
  array.children[1]->release = nullptr;
  array.release(&array);
  schema.release(&schema);
  EXPECT_EQ(static_cast<const double*>(moved.buffers[1])[4], 1.0);
  moved.release(&moved);
}

// A hand-built foreign array: int32 string offsets, an array offset, int32 values.
TEST(TableTest, ArrowImportHonoursOffsetsAndNarrowTypes) {
  static int32_t ints[] = {7, 8, 9, 10};
  static uint8_t validity[] = {0b1101};
  static int32_t offsets[] = {0, 1, 3, 6, 10};
  static const char chars[] = "abbcccdddd";
  static const void* int_buffers[] = {validity, ints};
  static const void* str_buffers[] = {nullptr, offsets, chars};
  static bool released[4];
  auto release_array = [](ArrowArray* a) {
    released[reinterpret_cast<intptr_t>(a->private_data)] = true;
    a->release = nullptr;
  };
  auto release_schema = [](ArrowSchema* s) {
    released[reinterpret_cast<intptr_t>(s->private_data)] = true;
    s->release = nullptr;
  };
  ArrowSchema child_schemas[2] = {
      {"i", "n", nullptr, 2, 0, nullptr, nullptr, release_schema, reinterpret_cast<void*>(0)},
      {"u", "s", nullptr, 2, 0, nullptr, nullptr, release_schema, reinterpret_cast<void*>(1)}};
  ArrowSchema* schema_children[] = {&child_schemas[0], &child_schemas[1]};
  ArrowArray child_arrays[2] = {
      {4, 1, 0, 2, 0, int_buffers, nullptr, nullptr, release_array, reinterpret_cast<void*>(2)},
      {4, 0, 0, 3, 0, str_buffers, nullptr, nullptr, release_array, reinterpret_cast<void*>(3)}};
  ArrowArray* array_children[] = {&child_arrays[0], &child_arrays[1]};
  static const void* struct_buffers[] = {nullptr};
  ArrowSchema schema = {"+s",
                        "",
                        nullptr,
                        0,
                        2,
                        schema_children,
                        nullptr,
                        [](ArrowSchema* s) {
                          for (int i = 0; i < 2; ++i) s->children[i]->release(s->children[i]);
                          s->release = nullptr;
                        },
                        nullptr};
  ArrowArray array = {3,
                      0,
                      1,
                      1,
                      2,
                      struct_buffers,
                      array_children,
                      nullptr,
                      [](ArrowArray* a) {
                        for (int i = 0; i < 2; ++i) a->children[i]->release(a->children[i]);
                        a->release = nullptr;
                      },
                      nullptr};
  Result<Table> t = ImportTable(&schema, &array);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->ToString(), "n:int32 | s:string\nnull | \"bb\"\n9 | \"ccc\"\n10 | \"dddd\"\n");
  for (bool r : released) EXPECT_TRUE(r);
}

TEST(TableTest, ArrowImportRejectsUnsupportedFormats) {
  Table t = SampleTable();
  ArrowSchema schema;
  ArrowArray array;
  ASSERT_TRUE(ExportColumn(t.column(0), "i", &schema, &array).ok());
  Result<Table> r = ImportTable(&schema, &array);  // not a struct
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'+s'"), std::string::npos);
  EXPECT_EQ(array.release, nullptr);  // consumed even on failure
}

TEST(TableTest, ParseDataTypeAcceptsMlflowNames) {
  EXPECT_EQ(*ParseDataType("long"), DataType::kInt64);
  EXPECT_EQ(*ParseDataType("double"), DataType::kFloat64);
  EXPECT_EQ(*ParseDataType("boolean"), DataType::kBool);
  EXPECT_EQ(*ParseDataType("datetime"), DataType::kTimestamp);
  EXPECT_EQ(*ParseDataType("binary"), DataType::kBinary);
  EXPECT_EQ(*ParseDataType("float32"), DataType::kFloat32);
  EXPECT_FALSE(ParseDataType("array").ok());
}

}  // namespace
}  // namespace pyfunc
