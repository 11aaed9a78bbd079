#include "sealwal/encryption/secret_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/endian.h"

namespace sealwal::encryption {
namespace {

// No key we handle is anywhere near this; a larger size is a bug upstream.
constexpr size_t kMaxKeySize = size_t{1} << 20;

absl::Status RandFailure(absl::string_view what) {
  return absl::InternalError(absl::StrCat("RAND_bytes failed while generating ", what,
                                          " (is the OpenSSL CSPRNG seeded?)"));
}

}  // namespace

void internal::KeyWiper::operator()(unsigned char* p) const {
  if (p == nullptr) return;
  OPENSSL_cleanse(p, size);
  delete[] p;
}

SecretKey::~SecretKey() = default;  // the Wiper cleanses

SecretKey::SecretKey(SecretKey&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    // unique_ptr's move assignment frees (and so wipes) our old buffer with
    // our old deleter before taking the new buffer and its deleter.
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretKey SecretKey::CopyOf(const void* src, size_t n) {
  SecretKey key;
  if (n == 0) return key;
  key.data_ = std::unique_ptr<unsigned char[], Wiper>(new unsigned char[n], Wiper{n});
  std::memcpy(key.data_.get(), src, n);
  key.size_ = n;
  return key;
}

absl::StatusOr<SecretKey> SecretKey::Generate(size_t n) {
  if (n == 0 || n > kMaxKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("cannot generate a key of ", n, " bytes"));
  }
  SecretKey key;
  key.data_ = std::unique_ptr<unsigned char[], Wiper>(new unsigned char[n], Wiper{n});
  key.size_ = n;
  // RAND_bytes takes an int; kMaxKeySize keeps n well inside it.
  if (RAND_bytes(key.data_.get(), static_cast<int>(n)) != 1) {
    return RandFailure("a key");  // `key` wipes whatever was written
  }
  return key;
}

absl::StatusOr<SecretKey> SecretKey::FromBytes(absl::string_view bytes) {
  if (bytes.size() > kMaxKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("key of ", bytes.size(), " bytes is implausibly long"));
  }
  return CopyOf(bytes.data(), bytes.size());
}

SecretKey SecretKey::Clone() const { return CopyOf(data_.get(), size_); }

std::string SecretKey::DebugString() const {
  return absl::StrCat("SecretKey(", size_, " bytes)");
}

bool operator==(const SecretKey& a, const SecretKey& b) {
  // Lengths are public (every DEK is 32 bytes); only the contents must not
  // leak through timing.
  if (a.size_ != b.size_) return false;
  if (a.size_ == 0) return true;
  return CRYPTO_memcmp(a.data_.get(), b.data_.get(), a.size_) == 0;
}

absl::StatusOr<KeyId> KeyId::Random() {
  return RandomFromSourceForTesting([](unsigned char* out, size_t n) -> absl::Status {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) return RandFailure("a key id");
    return absl::OkStatus();
  });
}

absl::StatusOr<KeyId> KeyId::RandomFromSourceForTesting(
    absl::FunctionRef<absl::Status(unsigned char* out, size_t n)> fill) {
  // 0 means "no key", so draw again; with a working CSPRNG this loops with
  // probability 2^-32, and a source stuck at zero must not hang us.
  for (int attempt = 0; attempt < 64; ++attempt) {
    unsigned char b[4];
    absl::Status s = fill(b, sizeof(b));
    if (!s.ok()) return s;
    const uint32_t v = LoadLE32(b);
    if (v != 0) return KeyId(v);
  }
  return absl::InternalError("random source returned only zeros for a key id");
}

std::string FormatKeyId(KeyId id) { return absl::StrFormat("0x%08x", id.value()); }

}  // namespace sealwal::encryption
