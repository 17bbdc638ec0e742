// SHA-256 (OpenSSL's), as hex: the cache keys of environments and embedded files.
#ifndef PYFUNC_SRC_BASE_HASH_H_
#define PYFUNC_SRC_BASE_HASH_H_

#include <memory>
#include <string>
#include <string_view>

namespace pyfunc::base {

// Hashes data given in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  // The digest as 64 lowercase hex digits; the hasher is spent afterwards.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The SHA-256 of `data` as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view data);

}  // namespace pyfunc::base

#endif  // PYFUNC_SRC_BASE_HASH_H_
