// Parquet and Arrow IPC files (src/files/table_files.h): what is written reads back the
// same, batch by batch, and bad files are errors naming them.
#include "files/table_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test_util.h"

namespace pyfunc {
namespace {

using ::pyfunc::testing::TempDir;
using ::testing::HasSubstr;

using ::pyfunc::testing::FixedColumn;

// Four rows of every column type pyfunc has, nulls in most, offset `k` in the values.
Table Rows(int64_t k) {
  std::vector<std::string> names;
  std::vector<Column> cols;
  auto add = [&](const char* name, Column c) {
    names.push_back(name);
    cols.push_back(std::move(c));
  };
  add("i8", FixedColumn<int8_t>(DataType::kInt8, {int8_t(k), -1, 0, 127}, 2));
  add("i32", FixedColumn<int32_t>(DataType::kInt32, {int32_t(k), 1, 2, 3}));
  add("i64", FixedColumn<int64_t>(DataType::kInt64, {k, -5, 1ll << 60, 3}, 3));
  add("u64", FixedColumn<uint64_t>(DataType::kUInt64, {uint64_t(k), 1, 2, 18446744073709551615ull}));
  add("f16", FixedColumn<uint16_t>(DataType::kFloat16, {0x3c00, 0x2e66, 0x7c00, 0x7e00}));
  add("f32", FixedColumn<float>(DataType::kFloat32, {0.1f, float(k), 1e6f, -0.0f}, 1));
  add("f64", FixedColumn<double>(DataType::kFloat64, {0.5, double(k), 2.5, 3.5}));
  ColumnBuilder b(DataType::kBool), s(DataType::kString), bin(DataType::kBinary), ts(DataType::kTimestamp);
  for (int i = 0; i < 4; ++i) {
    if (i == 1) {
      b.AppendNull();
      s.AppendNull();
      bin.AppendNull();
      ts.AppendNull();
      continue;
    }
    b.AppendBool(i % 2 == 0);
    s.AppendString("row " + std::to_string(k + i) + " \xc3\xa9");
    bin.AppendString(std::string("\0\xff", 2) + std::to_string(i));
    ts.AppendTimestamp((k + i) * 1000000000ll);
  }
  add("b", b.Finish());
  add("s", s.Finish());
  add("bin", bin.Finish());
  add("ts", ts.Finish().WithTimeUnit(TimeUnit::kMicrosecond));
  return *Table::Make(std::move(names), std::move(cols));
}

class TableFilesTest : public ::testing::TestWithParam<TableFileFormat> {
 protected:
  void SetUp() override {
    if (!ArrowFilesAvailable()) GTEST_SKIP() << "built without Arrow C++";
  }
  std::string Write(const std::vector<Table>& batches) {
    const std::string path = dir_.Join("t.out");
    Result<OutputFile> out = OutputFile::Open(path);
    EXPECT_TRUE(out.ok());
    Result<std::unique_ptr<TableFileWriter>> w = OpenTableFileWriter(GetParam(), &*out);
    EXPECT_TRUE(w.ok());
    for (const Table& t : batches) PYFUNC_EXPECT_OK((*w)->Write(t));
    PYFUNC_EXPECT_OK((*w)->Finish());
    PYFUNC_EXPECT_OK(out->Commit());
    return path;
  }
  Result<std::unique_ptr<TableFileReader>> Open(const std::string& path, int64_t batch_rows) {
    int fd = ::open(path.c_str(), O_RDONLY);
    auto r = GetParam() == TableFileFormat::kParquet ? OpenParquetReader(fd, path, batch_rows)
                                                     : OpenArrowReader(fd, path, batch_rows);
    ::close(fd);  // the reader holds its own descriptor
    return r;
  }
  std::vector<Table> ReadAll(const std::string& path, int64_t batch_rows) {
    std::vector<Table> out;
    Result<std::unique_ptr<TableFileReader>> r = Open(path, batch_rows);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    for (;;) {
      Result<std::optional<Table>> t = (*r)->Next();
      EXPECT_TRUE(t.ok()) << t.status().ToString();
      if (!t.ok() || !t->has_value()) break;
      out.push_back(std::move(**t));
    }
    return out;
  }
  TempDir dir_;
};

TEST_P(TableFilesTest, EveryTypeRoundTripsWithNullsAndTimeUnits) {
  const std::string path = Write({Rows(0), Rows(10), Rows(20)});
  std::vector<Table> got = ReadAll(path, 0);
  Result<Table> all = Table::Concat(got);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  Result<Table> want = Table::Concat({Rows(0), Rows(10), Rows(20)});
  EXPECT_TRUE(all->Equals(*want));
  EXPECT_EQ(all->FindColumn("ts")->time_unit(), TimeUnit::kMicrosecond);
}

TEST_P(TableFilesTest, BatchesAreSplitToBatchRowsInOrder) {
  const std::string path = Write({Rows(0), Rows(10)});
  std::vector<Table> got = ReadAll(path, 3);
  int64_t rows = 0;
  for (const Table& t : got) {
    EXPECT_LE(t.num_rows(), 3);
    rows += t.num_rows();
  }
  EXPECT_EQ(rows, 8);
  EXPECT_TRUE(Table::Concat(got)->Equals(*Table::Concat({Rows(0), Rows(10)})));
}

TEST_P(TableFilesTest, LaterBatchesAreCastToTheFirstBatchsTypes) {
  Table ints = *Table::Make({"p"}, {FixedColumn<int64_t>(DataType::kInt64, {1, 2})});
  Table floats = *Table::Make({"p"}, {FixedColumn<double>(DataType::kFloat64, {0.5, 1.5})});
  Table nulls = *Table::Make({"p"}, {Column::Nulls(DataType::kString, 2)});
  const std::string path = Write({floats, ints, nulls});
  Table got = *Table::Concat(ReadAll(path, 0));
  ASSERT_EQ(got.num_rows(), 6);
  EXPECT_EQ(got.column(0).type(), DataType::kFloat64);
  EXPECT_EQ(got.column(0).float64_data()[2], 1.0);
  EXPECT_EQ(got.column(0).null_count(), 2);

  Result<OutputFile> out = OutputFile::Open(dir_.Join("bad.out"));
  auto w = OpenTableFileWriter(GetParam(), &*out);
  PYFUNC_ASSERT_OK((*w)->Write(floats));
  Table other = *Table::Make({"q"}, {floats.column(0)});
  EXPECT_THAT((*w)->Write(other).message(), HasSubstr("column 'q' where the first had 'p'"));
  Table strings = *Table::Make({"p"}, {Rows(0).column(8)});
  EXPECT_THAT((*w)->Write(strings).message(), HasSubstr("column 'p' is string in a batch, float64 in the first"));
}

TEST_P(TableFilesTest, TruncatedAndForeignFilesAreErrorsNamingThem) {
  const std::string path = Write({Rows(0)});
  std::string bytes = ::pyfunc::testing::ReadFile(path);
  const std::string cut = dir_.Join("cut.bin");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  auto r = Open(cut, 0);
  if (r.ok()) {  // a stream's schema may survive the cut; its batches do not
    Result<std::optional<Table>> t = (*r)->Next();
    ASSERT_FALSE(t.ok());
    EXPECT_THAT(t.status().message(), HasSubstr(cut));
  } else {
    EXPECT_THAT(r.status().message(), HasSubstr(cut));
  }
  const std::string text = dir_.Join("text.bin");
  std::ofstream(text) << "a,b\n1,2\n";
  Result<std::unique_ptr<TableFileReader>> t = Open(text, 0);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr(text + ": not a"));
}

TEST_P(TableFilesTest, NoBatchesWriteAValidEmptyFile) {
  const std::string path = Write({});
  EXPECT_TRUE(ReadAll(path, 0).empty());
}

INSTANTIATE_TEST_SUITE_P(Formats, TableFilesTest,
                         ::testing::Values(TableFileFormat::kParquet, TableFileFormat::kArrowFile,
                                           TableFileFormat::kArrowStream),
                         [](const auto& info) {
                           return info.param == TableFileFormat::kParquet     ? std::string("Parquet")
                                  : info.param == TableFileFormat::kArrowFile ? std::string("ArrowFile")
                                                                              : std::string("ArrowStream");
                         });

}  // namespace
}  // namespace pyfunc
