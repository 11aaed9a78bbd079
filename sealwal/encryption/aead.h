// sealwal/encryption/aead.h: authenticated encryption with associated data over
// OpenSSL 3 EVP. The only ciphers sealwal writes (docs/format.md §9,
// AEAD only, never unauthenticated CTR):
//
//   AES-256-GCM         default; uses AES-NI/VAES where the CPU has them
//   ChaCha20-Poly1305   RFC 8439; for CPUs without AES instructions
//
// Both take a 32-byte key and a 96-bit (12-byte) nonce and produce a
// 16-byte tag. The output of Seal, and the input of Open, is
//
//   +---------------------------+----------------+
//   | ciphertext (= len(plain)) | tag (16 bytes) |
//   +---------------------------+----------------+
//
// which is what EncryptedRecord.data holds (sealwal/proto/encryption.proto).
//
// A third Algorithm, kNotEncrypted, is a pass-through (Seal and Open copy
// their input, OpenInPlace leaves it, all ignore nonce and AAD): it gives autolocked-off key files
// (docs/format.md §11) the same code path. It authenticates nothing;
// MultiDecrypter refuses such records unless told otherwise.
//
// Performance contract: an Aead object owns one EVP_CIPHER_CTX, set up
// with the cipher and key once, in Create. Each Seal/Open only loads the
// nonce into that context, so no allocation and no key schedule happens
// per message (OpenSSL's EVP_EncryptInit_ex with a null cipher and key).
//
// Thread-safety: an Aead object is NOT thread-safe, not even for Open,
// because its EVP context carries per-message state. Use one object per
// thread; MultiDecrypter keeps a pool of them for concurrent readers.
// Creating objects concurrently is safe.
//
// Nonce discipline is the caller's job: never Seal twice with the same
// (key, nonce). Encrypter (sealwal/encryption/encrypter.h) is the class that does
// this right; use Aead directly only in tests and key wrapping.
#ifndef SEALWAL_ENCRYPTION_AEAD_H_
#define SEALWAL_ENCRYPTION_AEAD_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/proto/encryption.pb.h"

namespace sealwal::encryption {

// The values are EncryptedRecord.Algorithm's, so a static_cast converts;
// prefer ToProto/AlgorithmFromProto, which check.
enum class Algorithm {
  kNotEncrypted = encryptionpb::EncryptedRecord::NOT_ENCRYPTED,           // 0
  kAes256Gcm = encryptionpb::EncryptedRecord::AES_256_GCM,                // 3
  kChaCha20Poly1305 = encryptionpb::EncryptedRecord::CHACHA20_POLY1305,  // 4
};

// The algorithm new DEKs use unless the operator picks another.
inline constexpr Algorithm kDefaultAlgorithm = Algorithm::kAes256Gcm;

inline constexpr size_t kAeadKeySize = 32;    // both AEADs: 256-bit keys
inline constexpr size_t kAeadNonceSize = 12;  // 96-bit nonces
inline constexpr size_t kAeadTagSize = 16;    // 128-bit tags

encryptionpb::EncryptedRecord::Algorithm ToProto(Algorithm algorithm);

// kDataLoss for values sealwal cannot decrypt: swarmkit's secretbox (1) and
// fernet (2), and any value not in the enum (a record written by a newer
// version, or garbage). The message names the value.
absl::StatusOr<Algorithm> AlgorithmFromProto(int proto_value);

// "aes-256-gcm", "chacha20-poly1305", "not-encrypted": the names the CLI's
// --algorithm flag takes (docs/cli.md).
absl::string_view AlgorithmName(Algorithm algorithm);
// The reverse of AlgorithmName; kInvalidArgument for anything else.
absl::StatusOr<Algorithm> ParseAlgorithmName(absl::string_view name);

class Aead {
 public:
  virtual ~Aead() = default;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // An AEAD for `algorithm` under `key`, which is copied into OpenSSL's
  // context (and wiped by OpenSSL when the object is destroyed); the caller
  // keeps ownership of `key`. kInvalidArgument when the key is not 32 bytes
  // (for kNotEncrypted: not empty), kInternal when OpenSSL fails to set up
  // the cipher (e.g. a FIPS provider without ChaCha20).
  static absl::StatusOr<std::unique_ptr<Aead>> Create(Algorithm algorithm,
                                                      const SecretKey& key);

  virtual Algorithm algorithm() const = 0;

  // Encrypts `plaintext`, authenticates it together with `aad`, and
  // APPENDS ciphertext || tag (len(plaintext) + 16 bytes) to *out.
  // `nonce` must be 12 bytes (kInvalidArgument otherwise; nothing is
  // appended). `plaintext` and `aad` must not point into *out. On kInternal
  // (OpenSSL failed) *out is restored to its previous size.
  virtual absl::Status Seal(absl::string_view nonce, absl::string_view aad,
                            absl::string_view plaintext, std::string* out) = 0;

  // Verifies and decrypts `ciphertext_and_tag` (as Seal produced it) and
  // APPENDS the plaintext to *out. kDataLoss when authentication fails (any
  // change to ciphertext, tag, nonce, AAD, or the wrong key) or the input is
  // shorter than a tag; then *out is left as it was and no unauthenticated
  // plaintext is exposed (the bytes written are wiped). kInvalidArgument
  // when `nonce` is not 12 bytes. The object stays usable after a failure.
  virtual absl::Status Open(absl::string_view nonce, absl::string_view aad,
                            absl::string_view ciphertext_and_tag, std::string* out) = 0;

  // As Open, but decrypts in place: on success the first size - 16 bytes
  // of `ciphertext_and_tag` hold the plaintext (for a whole snapshot, this
  // saves a second buffer as large as it). On kDataLoss those bytes are
  // wiped, so no unauthenticated plaintext is left; the tag bytes are kept.
  // `nonce` and `aad` must not overlap the span.
  virtual absl::Status OpenInPlace(absl::string_view nonce, absl::string_view aad,
                                   absl::Span<char> ciphertext_and_tag) = 0;

 protected:
  Aead() = default;
};

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_AEAD_H_
