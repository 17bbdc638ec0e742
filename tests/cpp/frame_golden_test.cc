// Golden frames: result frames written by the Python worker (tests/data/frames/*.bin,
// the worker's encode_frame) decode to the tables in *.expected; truncated or corrupted
// copies are malformed frames, never a crash. tests/python/test_frames.py decodes the
// same files with the worker's decoder.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "pyfunc/prediction.h"
#include "runtime/frame.h"
#include "test_util.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;

using ::pyfunc::testing::ReadFile;

// Frames live in 64-byte aligned memory.
Result<Prediction> Decode(const std::string& bytes) {
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(
      static_cast<uint8_t*>(std::aligned_alloc(64, (bytes.size() + 63) / 64 * 64 + 64)), &std::free);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  return runtime::DecodeFrame(buf.get(), bytes.size());
}

TEST(FrameGoldenTest, WorkerWrittenFramesDecodeToTheirTables) {
  const fs::path dir = fs::path(::pyfunc::testing::TestDataDir()) / "frames";
  const bool update = std::getenv("PYFUNC_UPDATE_GOLDEN") != nullptr;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".bin") continue;
    ++cases;
    SCOPED_TRACE(entry.path().filename().string());
    const std::string bytes = ReadFile(entry.path());
    Result<Prediction> p = Decode(bytes);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    const std::string got = "shape " + std::to_string(static_cast<int>(p->shape)) + "\n" + p->table.ToString();
    fs::path expected = entry.path();
    expected.replace_extension(".expected");
    if (update && !fs::exists(expected)) std::ofstream(expected, std::ios::binary) << got;
    ASSERT_TRUE(fs::exists(expected));
    EXPECT_EQ(got, ReadFile(expected));
    // Every truncation of it is refused; so is a frame of another version or magic.
    for (size_t cut : {size_t{0}, size_t{63}, bytes.size() / 2, bytes.size() - 1}) {
      EXPECT_FALSE(Decode(bytes.substr(0, cut)).ok()) << "cut at " << cut;
    }
    std::string other = bytes;
    other[4] = 2;  // version 2
    EXPECT_FALSE(Decode(other).ok());
    other = bytes;
    other[0] = 'X';
    EXPECT_FALSE(Decode(other).ok());
  }
  EXPECT_GE(cases, 7);
}

}  // namespace
}  // namespace pyfunc
