// sealwal/encryption/secret_key.h: key material and key identifiers.
//
// SecretKey owns the bytes of a key (a DEK, a KEK, a derived stream key).
// It exists so that key bytes are handled in exactly one way everywhere
// (docs/architecture.md):
//   - the bytes live in one heap buffer that the SecretKey owns; they are
//     overwritten with OPENSSL_cleanse before that buffer is freed, both on
//     destruction and when the key is replaced by move assignment;
//   - moving transfers the buffer (no copy of the bytes is made) and leaves
//     the source empty; copying is impossible, and Clone() is the one
//     explicit, greppable way to duplicate a key;
//   - equality runs in constant time (CRYPTO_memcmp) for keys of equal
//     length (the length itself is not secret);
//   - there is no way to print a key: no operator<<, no AbslStringify, no
//     implicit conversion to a string. DebugString() prints the length only.
//
// What the type cannot prevent: bytes() returns a view of the key for the
// crypto library; a caller that copies that view into a std::string owns
// the copy and its wiping. Swapped-out pages and core dumps are out of scope
// (docs/security.md).
//
// KeyId names a DEK inside EncryptedRecord.key_id (docs/format.md §9):
// a random 32-bit value chosen when the DEK is created, never derived from
// the key bytes, so it reveals nothing about the key. 0 means "no key".
// Key ids are not secret and appear in error messages as "0x1a2b3c4d".
//
// Thread-safety: SecretKey and KeyId are values; const methods may be
// called from several threads at once, a non-const one needs exclusive
// access (as for any standard type).
#ifndef SEALWAL_ENCRYPTION_SECRET_KEY_H_
#define SEALWAL_ENCRYPTION_SECRET_KEY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sealwal::encryption {

namespace internal {
// The deleter of SecretKey's buffer: OPENSSL_cleanse, then delete[].
// (Not nested in SecretKey: a nested class with a default member
// initializer is not default-constructible inside its enclosing class.)
struct KeyWiper {
  size_t size = 0;
  void operator()(unsigned char* p) const;
};
}  // namespace internal

class SecretKey {
 public:
  // An empty key (size 0). Also the state of a moved-from key.
  SecretKey() = default;
  // Wipes the bytes (OPENSSL_cleanse) before freeing them.
  ~SecretKey();

  // Moves transfer ownership of the buffer; `other` is left empty. Move
  // assignment wipes the key this object held before.
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // `n` bytes from OpenSSL's CSPRNG (RAND_bytes). kInvalidArgument when n
  // is 0 or larger than 1 MiB (no key is that long; the limit catches a
  // size computed from garbage), kInternal when the CSPRNG fails (for
  // example when it cannot be seeded); no key is returned in that case.
  static absl::StatusOr<SecretKey> Generate(size_t n);

  // Copies `bytes` into a new key. The caller remains responsible for
  // wiping its own copy. kInvalidArgument for more than 1 MiB; an empty
  // view gives an empty key.
  static absl::StatusOr<SecretKey> FromBytes(absl::string_view bytes);

  // An explicit copy (e.g. one DEK handed to both an Encrypter and a
  // MultiDecrypter). Both copies wipe themselves.
  SecretKey Clone() const;

  // A view of the key bytes, valid until this key is destroyed, moved from
  // or assigned to. Never log or print it.
  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(data_.get()), size_);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // "SecretKey(32 bytes)": the length only, never any key byte.
  std::string DebugString() const;

  // Constant time in the contents for keys of equal length; keys of
  // different lengths compare unequal at once.
  friend bool operator==(const SecretKey& a, const SecretKey& b);
  friend bool operator!=(const SecretKey& a, const SecretKey& b) { return !(a == b); }

 private:
  using Wiper = internal::KeyWiper;
  // Takes `n` bytes from `src` (may be null when n is 0).
  static SecretKey CopyOf(const void* src, size_t n);

  std::unique_ptr<unsigned char[], Wiper> data_;
  size_t size_ = 0;
};

// A DEK's identifier: a strong type around uint32_t that supports only
// comparison for equality and hashing, so that a key id
// cannot be mixed up with an index, a term or a length.
class KeyId {
 public:
  // 0: "no key" (EncryptedRecord.key_id's proto3 default).
  constexpr KeyId() = default;
  constexpr explicit KeyId(uint32_t value) : value_(value) {}

  constexpr uint32_t value() const { return value_; }

  // A fresh random id from OpenSSL's CSPRNG, never 0. kInternal when the
  // CSPRNG fails.
  static absl::StatusOr<KeyId> Random();

  // Random() with the byte source replaced, so that tests can feed zeros
  // and check that they are skipped. `fill` writes n bytes or fails.
  static absl::StatusOr<KeyId> RandomFromSourceForTesting(
      absl::FunctionRef<absl::Status(unsigned char* out, size_t n)> fill);

  friend constexpr bool operator==(KeyId a, KeyId b) { return a.value_ == b.value_; }
  friend constexpr bool operator!=(KeyId a, KeyId b) { return a.value_ != b.value_; }

  template <typename H>
  friend H AbslHashValue(H h, KeyId id) {
    return H::combine(std::move(h), id.value_);
  }

 private:
  uint32_t value_ = 0;
};

// "0x1a2b3c4d": eight lower-case hex digits, for error messages and logs.
// Key ids are not secret.
std::string FormatKeyId(KeyId id);

}  // namespace sealwal::encryption

template <>
struct std::hash<sealwal::encryption::KeyId> {
  size_t operator()(sealwal::encryption::KeyId id) const noexcept {
    return std::hash<uint32_t>()(id.value());
  }
};

#endif  // SEALWAL_ENCRYPTION_SECRET_KEY_H_
