// libFuzzer harness for the worker frame decoder: a frame comes from another process,
// so every offset and length in it is untrusted. A decoded frame must re-encode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "runtime/frame.h"

namespace {
// Frames live in 64-byte-aligned shared memory; the buffers here are aligned the same.
std::unique_ptr<uint8_t, decltype(&std::free)> Aligned(size_t size) {
  const size_t rounded = (size + 63) / 64 * 64 + 64;
  return {static_cast<uint8_t*>(std::aligned_alloc(64, rounded)), &std::free};
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto buf = Aligned(size);
  if (size > 0) std::memcpy(buf.get(), data, size);
  pyfunc::Result<pyfunc::Prediction> p = pyfunc::runtime::DecodeFrame(buf.get(), size);
  if (p.ok()) {
    auto out = Aligned(pyfunc::runtime::FrameSize(p->table));
    pyfunc::runtime::EncodeFrame(p->table, static_cast<uint32_t>(p->shape), out.get());
  }
  return 0;
}
