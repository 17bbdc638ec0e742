// Data-driven codec cases: every tests/data/codecs/<case>.csv or .json is decoded and
// compared with <case>.expected (the Table rendering) or <case>.error (a fragment of the
// expected error message). Run with PYFUNC_UPDATE_GOLDEN=1 to (re)write missing
// .expected files from the current output, then review them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"
#include "test_util.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;

using ::pyfunc::testing::ReadFile;

const char* ShapeName(InputShape s) {
  switch (s) {
    case InputShape::kDataFrame: return "dataframe";
    case InputShape::kColumns: return "columns";
    case InputShape::kRecords: return "records";
    case InputShape::kArray1D: return "array1d";
    case InputShape::kArray2D: return "array2d";
    case InputShape::kScalar: return "scalar";
    case InputShape::kJson: return "json";
    case InputShape::kPlainRecords: return "plain_records";
    case InputShape::kTensorsJson: return "tensors_json";
    case InputShape::kFrameJson: return "frame_json";
    case InputShape::kParquet: return "parquet";
  }
  return "?";
}

// The decoded rendering of one case, or its error message.
Result<std::string> Decode(const fs::path& input) {
  std::string data = ReadFile(input);
  if (input.extension() == ".csv") {
    CsvReadOptions options;
    options.source_name = input.filename().string();
    PYFUNC_ASSIGN_OR_RETURN(Table t, ReadCsv(data, options));
    return t.ToString();
  }
  PYFUNC_ASSIGN_OR_RETURN(ScoringRequest req, ParseScoringRequest(data));
  std::string out = std::string(RequestFormatName(req.format)) + " " + ShapeName(req.shape) + "\n";
  out += req.table.ToString();
  if (!req.params.is_null()) out += "params: " + ToJson(req.params) + "\n";
  return out;
}

TEST(CodecCorpusTest, EveryCaseMatches) {
  const fs::path dir = fs::path(PYFUNC_TEST_DATA_DIR) / "codecs";
  const bool update = std::getenv("PYFUNC_UPDATE_GOLDEN") != nullptr;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path input = entry.path();
    if (input.extension() != ".csv" && input.extension() != ".json") continue;
    ++cases;
    SCOPED_TRACE(input.filename().string());
    fs::path expected = input;
    expected.replace_extension(".expected");
    fs::path error = input;
    error.replace_extension(".error");
    Result<std::string> got = Decode(input);
    if (fs::exists(error)) {
      std::string fragment = ReadFile(error);
      while (!fragment.empty() && fragment.back() == '\n') fragment.pop_back();
      ASSERT_FALSE(got.ok()) << "expected an error containing: " << fragment << "\ngot:\n" << *got;
      EXPECT_NE(got.status().message().find(fragment), std::string::npos)
          << "message: " << got.status().message() << "\nexpected fragment: " << fragment;
      continue;
    }
    if (!fs::exists(expected) && update && got.ok()) {
      std::ofstream(expected, std::ios::binary) << *got;
      continue;
    }
    ASSERT_TRUE(fs::exists(expected)) << "no .expected or .error file";
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, ReadFile(expected));
  }
  EXPECT_GE(cases, 40);
}

}  // namespace
}  // namespace pyfunc
