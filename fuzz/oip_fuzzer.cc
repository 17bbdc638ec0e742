// libFuzzer harness for Open Inference Protocol request bodies (ParseOipRequest).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/oip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)pyfunc::server::ParseOipRequest(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
