#include "pyfunc/csv.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace pyfunc {
namespace {

Table MustRead(std::string_view csv, CsvReadOptions options = {}) {
  Result<Table> t = ReadCsv(csv, std::move(options));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : Table();
}

std::string ErrorOf(std::string_view csv, CsvReadOptions options = {}) {
  Result<Table> t = ReadCsv(csv, std::move(options));
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.status().message();
}

TEST(CsvTest, TypeOverridesAndSchema) {
  CsvReadOptions o;
  o.schema = {{"a", DataType::kFloat64}, {"when", DataType::kTimestamp}, {"missing", DataType::kInt64}};
  o.column_types = {{"b", DataType::kString}};
  Table t = MustRead("a,b,when\n1,2,2024-01-02 03:04:05.5\n3,,2024-01-02T00:00:00+01:00\n", o);
  EXPECT_EQ(t.ToString(),
            "a:float64 | b:string | when:timestamp\n"
            "1.0 | \"2\" | 2024-01-02T03:04:05.500000\n"
            "3.0 | null | 2024-01-01T23:00:00\n");
}

TEST(CsvTest, TypedColumnErrorNamesLineAndField) {
  CsvReadOptions o;
  o.source_name = "input.csv";
  o.column_types = {{"b", DataType::kInt64}};
  EXPECT_EQ(ErrorOf("a,b\n1,2\n\"x\ny\",3\n4,five\n", o), "input.csv:5:2: cannot parse \"five\" as int64 (column 'b')");
}

TEST(CsvTest, LongFields) {
  std::string big(1 << 21, 'q');
  big[1000] = ',';
  big[2000] = '\n';
  std::string csv = "id,text\n1,\"" + big + "\"\n2," + std::string(300000, 'z') + "\n";
  Table t = MustRead(csv);
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.column(1).string_value(0), big);
  EXPECT_EQ(t.column(1).string_value(1).size(), 300000u);
}

TEST(CsvTest, NoInputNeverReadsOutOfBounds) {
  // Truncations of a tricky input at every byte: each either parses or fails cleanly.
  std::string csv = "a,\"b\"\"c\",d\r\n1,\"x\r\ny\",\"\"\r\n\"2\",3.5,\"q\"\"\"\n";
  for (size_t n = 0; n <= csv.size(); ++n) {
    Result<Table> t = ReadCsv(csv.substr(0, n));
    if (!t.ok()) EXPECT_FALSE(t.status().message().empty());
  }
}

TEST(CsvTest, StreamsAMillionRowsInSmallBatches) {
  // Generated, not stored: 1M rows, read through an istream in batches of 4096.
  std::string csv = "id,x,label\n";
  const int kRows = 1000000;
  csv.reserve(static_cast<size_t>(kRows) * 24);
  for (int i = 0; i < kRows; ++i) {
    csv += std::to_string(i);
    csv += ',';
    csv += std::to_string(i % 1000);
    csv += (i % 3 == 0) ? ",\"a,b\"\n" : ",c\n";
  }
  std::istringstream in(csv);
  CsvReadOptions o;
  o.batch_rows = 4096;
  auto reader = CsvReader::FromStream(&in, o);
  ASSERT_TRUE(reader.ok());
  int64_t rows = 0, batches = 0, sum = 0;
  for (;;) {
    Result<std::optional<Table>> batch = (*reader)->Next();
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (!*batch) break;
    const Table& t = **batch;
    ASSERT_LE(t.num_rows(), 4096);
    ASSERT_EQ(t.column(0).type(), DataType::kInt64);
    ASSERT_EQ(t.column(2).type(), DataType::kString);
    const int64_t* ids = t.column(0).int64_data();
    for (int64_t r = 0; r < t.num_rows(); ++r) {
      ASSERT_EQ(ids[r], rows + r);
      sum += t.column(1).int64_data()[r];
    }
    rows += t.num_rows();
    ++batches;
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(batches, (kRows + 4095) / 4096);
  EXPECT_EQ(sum, int64_t{499500} * 1000);
  EXPECT_EQ((*reader)->lines_read(), kRows + 1);
}

TEST(CsvTest, LaterBatchWidensIntToFloat) {
  CsvReadOptions o;
  o.batch_rows = 2;
  auto reader = CsvReader::FromString("x,y\n1,\n2,\n3.5,a\n4,b\n", o);
  ASSERT_TRUE(reader.ok());
  auto b1 = (*reader)->Next();
  ASSERT_TRUE(b1.ok() && *b1);
  EXPECT_EQ((*b1)->ToString(), "x:int64 | y:float64\n1 | null\n2 | null\n");
  auto b2 = (*reader)->Next();
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  // x widens; y had only nulls, so it is inferred again.
  EXPECT_EQ((*b2)->ToString(), "x:float64 | y:string\n3.5 | \"a\"\n4.0 | \"b\"\n");
  auto end = (*reader)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(CsvTest, LaterBatchTextInNumericColumnIsAClearError) {
  CsvReadOptions o;
  o.batch_rows = 2;
  o.source_name = "big.csv";
  auto reader = CsvReader::FromString("x\n1\n2\nthree\n", o);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Next().ok());
  auto b2 = (*reader)->Next();
  ASSERT_FALSE(b2.ok());
  EXPECT_EQ(b2.status().message(),
            "big.csv:4:1: value \"three\" does not fit column 'x' of type int64 inferred from the "
            "first batch of rows; pass a type for this column");
  EXPECT_FALSE((*reader)->Next().ok());  // sticky
}

TEST(CsvTest, HeaderOnlyStreamYieldsOneEmptyBatch) {
  auto reader = CsvReader::FromString("a,b\n");
  ASSERT_TRUE(reader.ok());
  auto names = (*reader)->ColumnNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 2u);
  auto b = (*reader)->Next();
  ASSERT_TRUE(b.ok() && *b);
  EXPECT_EQ((*b)->num_rows(), 0);
  auto end = (*reader)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(CsvTest, MissingFileIsNotFound) {
  auto r = CsvReader::OpenFile("/nonexistent/x.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(CsvTest, WriterMatchesPandasToCsv) {
  Table t = MustRead("i,f,s,b\n1,1.0,\"a,b\",True\n,1e16,\"q\"\"x\",\n3,,\"l1\nl2\",False\n");
  EXPECT_EQ(WriteCsvString(t), "i,f,s,b\n1,1.0,\"a,b\",True\n,1e+16,\"q\"\"x\",\n3,,\"l1\nl2\",False\n");
  Table one = MustRead("s\nx\n\"\"\n");
  EXPECT_EQ(WriteCsvString(one), "s\nx\n\"\"\n");
}

TEST(CsvTest, WriteReadRoundTrip) {
  Table t = MustRead("a,b,c\n1,0.1,x\n-2,2.5e-07,\"y\nz\"\n3,123456789.125,\"\"\"\"\n");
  Table back = MustRead(WriteCsvString(t));
  EXPECT_TRUE(back.Equals(t)) << back.ToString();
}

TEST(CsvTest, FileWriterIsAtomic) {
  std::string path = testing::TempDir() + "/pyfunc_csv_writer_test.csv";
  std::remove(path.c_str());
  Table t = MustRead("a\n1\n");
  {
    auto w = CsvWriter::OpenFile(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(t).ok());
    EXPECT_FALSE(std::filesystem::exists(path));  // not yet renamed
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // destroyed without Close
  auto w = CsvWriter::OpenFile(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(t).ok());
  ASSERT_TRUE((*w)->Write(t).ok());
  ASSERT_TRUE((*w)->Close().ok());
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "a\n1\n1\n");
  std::remove(path.c_str());
}

std::string Names(const Table& t) {
  std::string out;
  for (const std::string& n : t.column_names()) out += (out.empty() ? "" : "|") + n;
  return out;
}

TEST(CsvTest, DuplicateNamesAreRenamedAsPandasDoes) {
  // Cases produced by pandas 2.3's read_csv (C parser) on the header alone.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a,a,a", "a|a.1|a.2"},
      {"a,a,a.1", "a|a.2|a.1"},
      {"a.1,a,a", "a.1|a|a.2"},
      {"a,a,a.1,a.1", "a|a.2|a.1|a.1.1"},
      {",,a,Unnamed: 0", "Unnamed: 0.1|Unnamed: 1|a|Unnamed: 0"},
      {"a,,a", "a|Unnamed: 1|a.1"},
      {"Unnamed: 1,,", "Unnamed: 1|Unnamed: 1.1|Unnamed: 2"},
      {"a,a,a.2,a", "a|a.1|a.2|a.3"},
      {",Unnamed: 0,b,a,Unnamed: 1.1,a.1.1", "Unnamed: 0.1|Unnamed: 0|b|a|Unnamed: 1.1|a.1.1"},
      {"a,a.2,a.1,Unnamed: 0,Unnamed: 1.1,a.1.1,Unnamed: 1", "a|a.2|a.1|Unnamed: 0|Unnamed: 1.1|a.1.1|Unnamed: 1"},
      {"a.1,a.3,a.1.1,a,a.1.1,Unnamed: 1", "a.1|a.3|a.1.1|a|a.1.1.1|Unnamed: 1"},
      {"a.2,Unnamed: 1,a.2,a.1", "a.2|Unnamed: 1|a.2.1|a.1"},
      {"a.3,a.3,Unnamed: 1.1", "a.3|a.3.1|Unnamed: 1.1"},
      {"a.2,a,a", "a.2|a|a.1"},
      {"a.1.1,a.2,a.2", "a.1.1|a.2|a.2.1"},
      {"Unnamed: 0,a.1.1,b,a.1.1", "Unnamed: 0|a.1.1|b|a.1.1.1"},
      {"a.1.1,Unnamed: 1,", "a.1.1|Unnamed: 1|Unnamed: 2"},
      {"Unnamed: 0,Unnamed: 1", "Unnamed: 0|Unnamed: 1"},
      {"a.2,,a.1", "a.2|Unnamed: 1|a.1"},
      {",a.3,a.3,a", "Unnamed: 0|a.3|a.3.1|a"},
      {"Unnamed: 0,a.1,,Unnamed: 0,,Unnamed: 1.1", "Unnamed: 0|a.1|Unnamed: 2|Unnamed: 0.1|Unnamed: 4|Unnamed: 1.1"},
      {"Unnamed: 0,a.2,Unnamed: 1.1,Unnamed: 1.1,a.2,a,",
       "Unnamed: 0|a.2|Unnamed: 1.1|Unnamed: 1.1.1|a.2.1|a|Unnamed: 6"},
      {"b,Unnamed: 1", "b|Unnamed: 1"},
      {"Unnamed: 1,a.3,a,Unnamed: 1.1", "Unnamed: 1|a.3|a|Unnamed: 1.1"},
      {"a.2,a.3", "a.2|a.3"},
      {"a.1,a.1.1,Unnamed: 1.1", "a.1|a.1.1|Unnamed: 1.1"},
      {"b,Unnamed: 0,b,", "b|Unnamed: 0|b.1|Unnamed: 3"},
      {"a.1,a.3,Unnamed: 0,,a", "a.1|a.3|Unnamed: 0|Unnamed: 3|a"},
      {"a.1,a.1.1,Unnamed: 0,b,a.3", "a.1|a.1.1|Unnamed: 0|b|a.3"},
      {"a.2,Unnamed: 0,,b", "a.2|Unnamed: 0|Unnamed: 2|b"},
      {",Unnamed: 0", "Unnamed: 0.1|Unnamed: 0"},
      {"a.2,a.1,a.2,", "a.2|a.1|a.2.1|Unnamed: 3"},
      {"a.2,a,a.1,a.3,b", "a.2|a|a.1|a.3|b"},
      {"a,a.1.1,a.3,Unnamed: 0,", "a|a.1.1|a.3|Unnamed: 0|Unnamed: 4"},
      {"Unnamed: 1,a.2,a,a,Unnamed: 1.1", "Unnamed: 1|a.2|a|a.1|Unnamed: 1.1"},
      {"a.1.1,a.2,a.3,a.2", "a.1.1|a.2|a.3|a.2.1"},
      {"Unnamed: 1,a.1,a.2,Unnamed: 1,Unnamed: 0,a.2,a", "Unnamed: 1|a.1|a.2|Unnamed: 1.1|Unnamed: 0|a.2.1|a"},
      {",a.2,Unnamed: 1.1,a.3,a.2", "Unnamed: 0|a.2|Unnamed: 1.1|a.3|a.2.1"},
      {"Unnamed: 1.1,Unnamed: 1.1,Unnamed: 0,Unnamed: 1.1,,",
       "Unnamed: 1.1|Unnamed: 1.1.1|Unnamed: 0|Unnamed: 1.1.2|Unnamed: 4|Unnamed: 5"},
      {"Unnamed: 1,a.2,a.1,Unnamed: 1,b", "Unnamed: 1|a.2|a.1|Unnamed: 1.1|b"},
      {"Unnamed: 1.1,Unnamed: 0,a.2", "Unnamed: 1.1|Unnamed: 0|a.2"},
      {"Unnamed: 1.1,", "Unnamed: 1.1|Unnamed: 1"},
      {"b,b,Unnamed: 0,a.1,Unnamed: 0,a.3", "b|b.1|Unnamed: 0|a.1|Unnamed: 0.1|a.3"},
      {"a,,Unnamed: 0,b,,Unnamed: 1.1,", "a|Unnamed: 1|Unnamed: 0|b|Unnamed: 4|Unnamed: 1.1|Unnamed: 6"},
      {",Unnamed: 0,a.2,a.3,a,Unnamed: 1.1,b", "Unnamed: 0.1|Unnamed: 0|a.2|a.3|a|Unnamed: 1.1|b"},
      {"Unnamed: 0,,Unnamed: 1.1,", "Unnamed: 0|Unnamed: 1|Unnamed: 1.1|Unnamed: 3"},
      {"Unnamed: 0,Unnamed: 0,,Unnamed: 0,Unnamed: 1,Unnamed: 0",
       "Unnamed: 0|Unnamed: 0.1|Unnamed: 2|Unnamed: 0.2|Unnamed: 1|Unnamed: 0.3"},
      {"Unnamed: 1.1,Unnamed: 0,Unnamed: 0", "Unnamed: 1.1|Unnamed: 0|Unnamed: 0.1"},
  };
  for (const auto& [header, want] : cases) {
    SCOPED_TRACE(header);
    std::string row;
    for (char c : header) row += c == ',' ? "," : "";
    EXPECT_EQ(Names(MustRead(header + "\n1" + row + "\n")), want);
  }
}

double SecondsToRead(const std::string& csv) {
  const auto start = std::chrono::steady_clock::now();
  Result<Table> t = ReadCsv(csv);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(CsvTest, ManyIdenticalHeaderNamesAreLinear) {
  // De-duplication searched the names so far for every candidate: 4,000 identical names
  // (16 KB) took 30 s of CPU.
  std::string header, row;
  for (int i = 0; i < 20000; ++i) {
    header += i ? ",a" : "a";
    row += i ? ",1" : "1";
  }
  EXPECT_LT(SecondsToRead(header + "\n" + row + "\n"), 5.0);
  Table t = MustRead(header + "\n" + row + "\n");
  ASSERT_EQ(t.num_columns(), 20000);
  EXPECT_EQ(t.column_name(19999), "a.19999");
}

TEST(CsvTest, ManyDistinctHeaderNamesAreLinear) {
  // 100,000 distinct names took 12 s: each was looked up in the list of those before it.
  std::string header, row;
  for (int i = 0; i < 100000; ++i) {
    header += (i ? ",c" : "c") + std::to_string(i);
    row += i ? ",1" : "1";
  }
  EXPECT_LT(SecondsToRead(header + "\n" + row + "\n"), 5.0);
}

TEST(CsvTest, HeaderNamesTakenBySuffixesAreLinear) {
  // "a" repeated after "a.1" ... "a.n": the suffix search skips each taken name once.
  std::string header = "a";
  for (int i = 1; i <= 20000; ++i) header += ",a." + std::to_string(i);
  for (int i = 0; i < 20000; ++i) header += ",a";
  std::string row = "1";
  for (int i = 1; i < 40001; ++i) row += ",1";
  EXPECT_LT(SecondsToRead(header + "\n" + row + "\n"), 5.0);
  Table t = MustRead(header + "\n" + row + "\n");
  EXPECT_EQ(t.column_name(20001), "a.20001");
  EXPECT_EQ(t.column_name(40000), "a.40000");
}

TEST(CsvTest, ByteOrderMarkSplitAcrossReads) {
  // A pipe that delivered the byte order mark in two reads left it in the first name.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([fd = fds[1]] {
    const std::string data =
        "\xEF\xBB\xBF"
        "a,b\n1,2\n";
    EXPECT_EQ(::write(fd, data.data(), 1), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(::write(fd, data.data() + 1, 1), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(::write(fd, data.data() + 2, data.size() - 2), static_cast<ssize_t>(data.size() - 2));
    ::close(fd);
  });
  Result<std::unique_ptr<CsvReader>> reader = CsvReader::FromFd(fds[0]);
  ASSERT_TRUE(reader.ok());
  Result<std::vector<std::string>> names = (*reader)->ColumnNames();
  writer.join();
  ::close(fds[0]);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
}

TEST(CsvTest, ShortInputsAfterAPartialByteOrderMark) {
  // Fewer than 3 bytes in all: nothing to skip, and nothing is lost (pandas' answers).
  EXPECT_NE(ErrorOf("\xEF\xBB").find("header is not valid UTF-8"), std::string::npos);
  EXPECT_EQ(Names(MustRead("a")), "a");
  EXPECT_NE(ErrorOf("\xEF\xBB\xBF").find("no columns to parse"), std::string::npos);
}

}  // namespace
}  // namespace pyfunc

namespace pyfunc {
namespace {

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

TEST(CsvFloatRoundingTest, ReadsNumbersAsEachPandasDoes) {
  // What pandas 2.3.3's read_csv gives for these (legacy), and the correctly rounded
  // double (pandas >= 3.1, float(text)).
  struct Case {
    const char* text;
    uint64_t legacy, correct;
  };
  const Case cases[] = {
      {"0.5488135039273248", 0x3fe18fe1565f12a8ULL, 0x3fe18fe1565f12a8ULL},
      {"0.71518936637241929", 0x3fe6e2d4cf608731ULL, 0x3fe6e2d4cf608731ULL},
      {"0.12345678901234567", 0x3fbf9add3746f659ULL, 0x3fbf9add3746f65eULL},
      {"123456789012345678901", 0x441ac53a7e04bcdaULL, 0x441ac53a7e04bcdaULL},
      {"1.7976931348623157e308", 0x7fefffffffffffffULL, 0x7fefffffffffffffULL},
      {"4.9406564584124654e-324", 0x0000000000000001ULL, 0x0000000000000001ULL},
      {"2.2250738585072014e-308", 0x0010000000000000ULL, 0x0010000000000000ULL},
      {"0.000123456789012345678", 0x3f202e85be1804dfULL, 0x3f202e85be180b74ULL},
      {"9007199254740993", 0x4340000000000000ULL, 0x4340000000000000ULL},
      {"1e23", 0x44b52d02c7e14af6ULL, 0x44b52d02c7e14af6ULL},
      {"8.589973e9", 0x42000004b0400000ULL, 0x42000004b0400000ULL},
      {"-0.30000000000000004", 0xbfd3333333333333ULL, 0xbfd3333333333334ULL},
      {"3.141592653589793238", 0x400921fb54442d17ULL, 0x400921fb54442d18ULL},
      {"1.5e-310", 0x00001b9cd1295941ULL, 0x00001b9cd1295941ULL},
  };
  std::string csv = "x\n";
  for (const Case& c : cases) csv += std::string(c.text) + "\n";
  for (FloatRounding rounding : {FloatRounding::kBeforePandas31, FloatRounding::kCorrect}) {
    CsvReadOptions o;
    o.float_rounding = rounding;
    Table t = MustRead(csv, o);
    ASSERT_EQ(t.column(0).type(), DataType::kFloat64);
    for (size_t i = 0; i < std::size(cases); ++i) {
      const uint64_t want = rounding == FloatRounding::kCorrect ? cases[i].correct : cases[i].legacy;
      EXPECT_EQ(Bits(t.column(0).float64_data()[i]), want) << cases[i].text;
    }
  }
}

TEST(CsvFloatRoundingTest, PandasVersions) {
  EXPECT_EQ(FloatRoundingOfPandas("2.3.3"), FloatRounding::kBeforePandas31);
  EXPECT_EQ(FloatRoundingOfPandas("1.5.3"), FloatRounding::kBeforePandas31);
  EXPECT_EQ(FloatRoundingOfPandas("3.0.6"), FloatRounding::kBeforePandas31);
  EXPECT_EQ(FloatRoundingOfPandas("3.1.0"), FloatRounding::kCorrect);
  EXPECT_EQ(FloatRoundingOfPandas("3.1.0rc1"), FloatRounding::kCorrect);
  EXPECT_EQ(FloatRoundingOfPandas("3.10.1"), FloatRounding::kCorrect);
  EXPECT_EQ(FloatRoundingOfPandas("4.0.0"), FloatRounding::kCorrect);
  EXPECT_EQ(FloatRoundingOfPandas(""), FloatRounding::kCorrect);
  EXPECT_EQ(FloatRoundingOfPandas("unknown"), FloatRounding::kCorrect);
}

TEST(CsvFloatRoundingTest, ASourceDecidesBeforeTheFirstValueAndOnce) {
  int calls = 0;
  CsvReadOptions o;
  o.batch_rows = 1;
  o.float_rounding_source = [&calls] {
    ++calls;
    return FloatRounding::kBeforePandas31;
  };
  auto reader = CsvReader::FromString("x\n0.12345678901234567\n0.12345678901234567\n", o);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->ColumnNames().ok());
  EXPECT_EQ(calls, 0);  // the header needs no rounding
  for (int i = 0; i < 2; ++i) {
    auto b = (*reader)->Next();
    ASSERT_TRUE(b.ok() && *b);
    EXPECT_EQ(Bits((*b)->column(0).float64_data()[0]), 0x3fbf9add3746f659ULL);
  }
  EXPECT_EQ(calls, 1);
}

// Random hostile CSV: quoted fields with delimiters, quotes and line breaks, CRLF and
// lone CR, blank lines, short rows, quotes inside unquoted fields, type changes late.
std::string RandomCsv(std::mt19937_64& rng, int rows) {
  const char* cells[] = {"1",          "-7",         "2.5",   "",       "NA", "True", "x",    "\"a,b\"", "\"q\"\"q\"",
                         "\"l1\nl2\"", "\"c\r\nd\"", "ab\"c", "\"x\"y", "  ", "1e5",  "\"\"", "\"\r\"",  "é"};
  const char* ends[] = {"\n", "\r\n", "\r", "\n\n", "\n \t\n"};
  std::string csv = "a,b,c,d\n";
  for (int r = 0; r < rows; ++r) {
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < n; ++j) {
      if (j) csv += ',';
      csv += cells[rng() % std::size(cells)];
    }
    csv += ends[rng() % std::size(ends)];
  }
  return csv;
}

std::vector<std::string> Batches(const std::string& csv, int64_t batch_rows, int threads, std::string* error) {
  CsvReadOptions o;
  o.batch_rows = batch_rows;
  o.threads = threads;
  o.column_types = {{"d", DataType::kString}};
  std::vector<std::string> out;
  auto reader = CsvReader::FromString(csv, o);
  if (!reader.ok()) {
    *error = reader.status().message();
    return out;
  }
  for (;;) {
    auto b = (*reader)->Next();
    if (!b.ok()) {
      *error = b.status().message();
      return out;
    }
    if (!*b) break;
    out.push_back((*b)->ToString());
  }
  out.push_back("lines " + std::to_string((*reader)->lines_read()));
  return out;
}

TEST(CsvThreadsTest, EveryThreadCountGivesTheSameBatches) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 60; ++round) {
    const std::string csv = RandomCsv(rng, 1 + static_cast<int>(rng() % 300));
    for (int64_t batch_rows : {1, 7, 64}) {
      std::string e1, e3;
      const std::vector<std::string> one = Batches(csv, batch_rows, 1, &e1);
      const std::vector<std::string> three = Batches(csv, batch_rows, 3, &e3);
      ASSERT_EQ(e1, e3) << "round " << round << " batch " << batch_rows;
      ASSERT_EQ(one, three) << "round " << round << " batch " << batch_rows;
    }
  }
}

TEST(CsvThreadsTest, BatchesAddUpToTheWholeRead) {
  // The chunk scan and the tokenizer agree on every row boundary: the batches of any
  // size hold exactly the rows of a whole-input read, on the same lines.
  std::mt19937_64 rng(11);
  for (int round = 0; round < 40; ++round) {
    const std::string csv = RandomCsv(rng, 1 + static_cast<int>(rng() % 200));
    CsvReadOptions whole;
    whole.column_types = {
        {"a", DataType::kString}, {"b", DataType::kString}, {"c", DataType::kString}, {"d", DataType::kString}};
    Result<Table> all = ReadCsv(csv, whole);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    for (int64_t batch_rows : {1, 3, 50}) {
      CsvReadOptions o = whole;
      o.batch_rows = batch_rows;
      o.threads = 2;
      auto reader = CsvReader::FromString(csv, o);
      ASSERT_TRUE(reader.ok());
      std::vector<Table> parts;
      for (;;) {
        auto b = (*reader)->Next();
        ASSERT_TRUE(b.ok()) << b.status().ToString();
        if (!*b) break;
        ASSERT_LE((*b)->num_rows(), batch_rows);
        parts.push_back(std::move(**b));
      }
      Result<Table> joined = Table::Concat(parts);
      ASSERT_TRUE(joined.ok());
      ASSERT_EQ(joined->ToString(), all->ToString()) << "round " << round << " batch " << batch_rows;
    }
  }
}

TEST(CsvThreadsTest, ErrorsComeInInputOrderAndNameTheLine) {
  // Batch 3 (lines 6-7) has a row too long, batch 5 an unterminated quote; with threads,
  // later chunks are parsed first, and still the first error in the input is reported,
  // after the batches before it.
  std::string csv = "a,b\n1,2\n3,4\n5,6\n7,8\n9,10,11\n12,13\n14,15\n16,17\n\"open,18\n";
  CsvReadOptions o;
  o.batch_rows = 2;
  o.threads = 4;
  o.source_name = "in.csv";
  auto reader = CsvReader::FromString(csv, o);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Next().ok());
  ASSERT_TRUE((*reader)->Next().ok());
  auto bad = (*reader)->Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "in.csv:6:3: row has 3 fields, header has 2");
  EXPECT_FALSE((*reader)->Next().ok());
}

}  // namespace
}  // namespace pyfunc

namespace pyfunc {
namespace {

TEST(CsvHostileTest, AWideHeaderOverManyBlankLinesReadsAsNoRows) {
  // 100,000 columns, then 70,000 blank lines: the row scan counts them, and reserving
  // rows x columns for them would be 100 GB.
  std::string csv;
  for (int j = 0; j < 100000; ++j) csv += (j ? ",c" : "c") + std::to_string(j);
  csv += "\n" + std::string(70000, '\n');
  for (bool typed : {false, true}) {
    CsvReadOptions o;
    o.batch_rows = 65536;
    if (typed) o.column_types = {{"c0", DataType::kFloat64}};
    auto reader = CsvReader::FromString(csv, o);
    ASSERT_TRUE(reader.ok());
    auto b = (*reader)->Next();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE(*b);
    EXPECT_EQ((*b)->num_rows(), 0);
    EXPECT_EQ((*b)->num_columns(), 100000);
  }
}

}  // namespace
}  // namespace pyfunc
