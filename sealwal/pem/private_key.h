// sealwal/pem/private_key.h: the node's TLS private key, read and written through
// OpenSSL's own PEM / PKCS#8 / EVP_PKEY code (docs/format.md §11).
//
// sealwal writes nothing about the key itself: whatever OpenSSL reads
// (EC, RSA, Ed25519, ...; PKCS#8, encrypted PKCS#8, or the traditional
// "EC PRIVATE KEY" / "RSA PRIVATE KEY" forms, legacy-encrypted included) is
// accepted, and it is always written back as PKCS#8:
//
//   unlocked  "-----BEGIN PRIVATE KEY-----"            PrivateKeyInfo
//   locked    "-----BEGIN ENCRYPTED PRIVATE KEY-----"  EncryptedPrivateKeyInfo,
//             PBES2 { PBKDF2 { 16-byte random salt, kPbkdf2Iterations,
//             PRF hmacWithSHA256 }, AES-256-CBC with a random IV }
//
// so that `openssl pkey -in F [-passin pass:...]` and any TLS stack load
// it. Why PBKDF2 and this iteration count: the password is always a
// 256-bit random unlock key, never something a person chose, so no
// iteration count adds strength against guessing; a moderate count keeps
// lock/unlock/rotate fast (and the tests short) while staying inside what
// every PKCS#8 reader accepts. Reading caps the PBKDF2 iteration count at
// kMaxPbkdf2Iterations, so a damaged or hostile file cannot make a read
// spin for minutes. (scrypt-protected keys made by other tools are read
// too; OpenSSL bounds their memory.)
//
// Every key read is checked with EVP_PKEY_check (where OpenSSL implements
// it), so a damaged unencrypted key whose DER still parses (a flipped bit
// in an EC scalar) is reported instead of silently becoming another key.
//
// Ownership: PrivateKey owns one reference to an EVP_PKEY; Clone() takes
// another (the key is immutable once loaded). Key bytes are only ever in
// OpenSSL's structures and in secure-memory BIOs, which clear themselves.
// Thread-safety: const methods may run concurrently.
#ifndef SEALWAL_PEM_PRIVATE_KEY_H_
#define SEALWAL_PEM_PRIVATE_KEY_H_

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sealwal::pem {

inline constexpr int kPbkdf2Iterations = 10000;
inline constexpr long kMaxPbkdf2Iterations = 10'000'000;

class PrivateKey {
 public:
  // A fresh EC P-256 key (what `sealwal key init` makes).
  static absl::StatusOr<PrivateKey> GenerateEcP256();

  // Reads the first private-key PEM block in `pem`. `password` is used only
  // when the block is encrypted. Errors:
  //   kPermissionDenied  encrypted, and no password or it does not decrypt
  //                      (with PBES2-CBC a damaged ciphertext looks the
  //                      same; the key file tells them apart, see
  //                      key_file.h)
  //   kFailedPrecondition encrypted with PBKDF2 over kMaxPbkdf2Iterations
  //   kDataLoss          not a key OpenSSL reads, or it fails its check
  static absl::StatusOr<PrivateKey> FromPem(absl::string_view pem,
                                            std::optional<absl::string_view> password);

  // PKCS#8 PEM text (see the top of this file); encrypted when `password`
  // is given. The result holds the key: the caller wipes it.
  absl::StatusOr<std::string> ToPkcs8Pem(std::optional<absl::string_view> password) const;

  // "EC P-256", "RSA 2048", "ED25519": algorithm and size, no key bytes.
  std::string Description() const;
  // Same key (EVP_PKEY_eq: public and private parts).
  bool Equals(const PrivateKey& other) const;
  // Another reference to the same key.
  PrivateKey Clone() const;
  EVP_PKEY* get() const { return pkey_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  };
  explicit PrivateKey(EVP_PKEY* pkey) : pkey_(pkey) {}
  std::unique_ptr<EVP_PKEY, Free> pkey_;
};

// The most recent OpenSSL error queue entry as text (and clears the
// queue), for error messages. Never contains key material.
std::string TakeOpenSslError();

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_PRIVATE_KEY_H_
