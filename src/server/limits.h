// Bounds the scoring server puts on what it sends back. Private to src/server.
#ifndef PYFUNC_SERVER_LIMITS_H_
#define PYFUNC_SERVER_LIMITS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include <fmt/core.h>

namespace pyfunc::server {

// Longest error message in a response body. A model's exception text, or a list of
// missing columns a client chose, can be arbitrarily long; the start says what failed.
inline constexpr size_t kMaxErrorMessageBytes = 64 * 1024;

// `message`, cut to `limit` bytes (at a UTF-8 character boundary) with a note of how
// much was left out.
inline std::string BoundMessage(std::string_view message, size_t limit = kMaxErrorMessageBytes) {
  if (message.size() <= limit) return std::string(message);
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}... [{} more bytes]", message.substr(0, cut), message.size() - cut);
}

}  // namespace pyfunc::server

#endif  // PYFUNC_SERVER_LIMITS_H_
