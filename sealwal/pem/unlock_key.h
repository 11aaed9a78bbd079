// sealwal/pem/unlock_key.h: the unlock key of an autolocked node key file, and the
// key-encryption key (KEK) derived from it (docs/format.md §11,
// docs/format.md §11 "Unlock keys and the KEK").
//
// An unlock key is 32 random bytes, shown to the operator once as
//
//   SEALWAL-1-<43 characters of unpadded base64url (RFC 4648 section 5)>
//
// e.g. "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" (bytes
// 0x00..0x1f). "1" is the format version. Parse() accepts exactly that
// (surrounding whitespace, such as the newline at the end of a key file,
// is trimmed) and otherwise says what is wrong: a missing or unknown
// prefix, a wrong length, a character outside the base64url alphabet, or
// a non-canonical last character. It cannot tell a typo inside the 43
// characters from a different key: that is a wrong key, which the key
// file reports as kPermissionDenied without touching anything.
//
// The unlock key protects two things in the key file:
//   - the private key, as PKCS#8 EncryptedPrivateKeyInfo whose password is
//     the text form above (so `openssl pkey -passin pass:SEALWAL-1-...`
//     reads it);
//   - the DEK headers, sealed under the KEK:
//       KEK || kek_id = HKDF-SHA256(ikm = the 32 key bytes, salt = "",
//                                   info = "sealwal/v1/kek", L = 36)
//     The first 32 bytes are the AES-256-GCM KEK; the last 4, read
//     little-endian (0 becomes 1), are the KEK's key id, written into the
//     EncryptedRecord.key_id of every wrapped DEK. A key id that does not
//     match tells "wrong unlock key" from "damaged header" before any
//     decryption. (It is derived, unlike a DEK's random id, so that the
//     unlock key alone finds its KEK; it is an independent HKDF output and
//     reveals nothing useful about a 256-bit key.)
//   - the whole file, by the file MAC of a version-2 file info (key_file.h):
//       mac_key = HKDF-SHA256(ikm = the 32 key bytes, salt = "",
//                             info = "sealwal/v1/key-file-mac", L = 32)
//     an independent HKDF output: knowing it tells nothing of the KEK.
//
// Secrets: the key bytes and the text form both live in SecretKeys (wiped
// on destruction, compared in constant time); nothing here logs them.
// Thread-safety: values; const methods may run concurrently.
#ifndef SEALWAL_PEM_UNLOCK_KEY_H_
#define SEALWAL_PEM_UNLOCK_KEY_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/env/file_system.h"

namespace sealwal::pem {

inline constexpr absl::string_view kUnlockKeyPrefix = "SEALWAL-1-";
inline constexpr size_t kUnlockKeyBytes = 32;
// 32 bytes in unpadded base64: ceil(32 * 4 / 3) = 43 characters.
inline constexpr size_t kUnlockKeyTextSize = kUnlockKeyPrefix.size() + 43;
// The environment variable the CLI reads an unlock key from.
inline constexpr char kUnlockKeyEnvVar[] = "SEALWAL_UNLOCK_KEY";

// The KEK derived from an unlock key.
struct Kek {
  encryption::KeyId id;
  encryption::SecretKey key;  // 32 bytes, AES-256-GCM
};

class UnlockKey {
 public:
  // 32 bytes from OpenSSL's CSPRNG. kInternal when it fails.
  static absl::StatusOr<UnlockKey> Generate();
  // Parses the text form (see the top of this file). kInvalidArgument with
  // a message saying what is wrong; the message never echoes the input.
  static absl::StatusOr<UnlockKey> Parse(absl::string_view text);
  // From 32 raw bytes (tests). kInvalidArgument for another length.
  static absl::StatusOr<UnlockKey> FromBytes(absl::string_view bytes);

  UnlockKey(UnlockKey&&) noexcept = default;
  UnlockKey& operator=(UnlockKey&&) noexcept = default;
  UnlockKey Clone() const { return UnlockKey(bytes_.Clone(), text_.Clone()); }

  // The 32 key bytes and the text form "SEALWAL-1-...". Secret: show the
  // text to the operator once, never log either.
  const encryption::SecretKey& bytes() const { return bytes_; }
  absl::string_view text() const { return text_.bytes(); }

  // The KEK and its key id (HKDF, above). kInternal if OpenSSL fails.
  absl::StatusOr<Kek> DeriveKek() const;
  // The key file MAC key (HKDF, above): 32 bytes, wiped on destruction.
  // kInternal if OpenSSL fails.
  absl::StatusOr<encryption::SecretKey> DeriveFileMacKey() const;

  friend bool operator==(const UnlockKey& a, const UnlockKey& b) { return a.bytes_ == b.bytes_; }
  friend bool operator!=(const UnlockKey& a, const UnlockKey& b) { return !(a == b); }

 private:
  UnlockKey(encryption::SecretKey bytes, encryption::SecretKey text)
      : bytes_(std::move(bytes)), text_(std::move(text)) {}
  encryption::SecretKey bytes_;
  encryption::SecretKey text_;
};

// Reads an unlock key file (the text form, trailing newline allowed).
// kInvalidArgument naming the path ("unlock key file PATH: ...") when it
// cannot be read or parsed; the message never holds key bytes.
absl::StatusOr<UnlockKey> ReadUnlockKeyFile(env::FileSystem* fs, const std::string& path);

// Where the CLI takes the unlock key from (docs/cli.md): the file when `file`
// is given (an empty path is kInvalidArgument), else $SEALWAL_UNLOCK_KEY when
// set and non-empty, else nullopt. Errors name the file or the variable;
// callers that took the path from a flag add the flag's name themselves.
absl::StatusOr<std::optional<UnlockKey>> UnlockKeyFromFileOrEnv(
    env::FileSystem* fs, const std::optional<std::string>& file);

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_UNLOCK_KEY_H_
