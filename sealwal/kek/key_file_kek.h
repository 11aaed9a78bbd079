// sealwal/kek/key_file_kek.h: a key file's unlock key held by a KEK source
// (sealwal/kek/kek_source.h; headers kek-source and kek-wrapped of
// sealwal/pem/key_file.h).
//
// The unlock key is wrapped with associated data
//   "sealwal/v1/kek-wrap\0" || the kek-source spec
// so that wrapped bytes are only accepted for the source they name.
//
// Programs that open a key file: UnlockKeyFromKekSource gives the unlock
// key of a file whose headers name a source; pass it on (StorageOptions::
// unlock_key, KeyReadWriterOptions::unlock_key) like any unlock key. Header
// updates keep the file's binding (KeyReadWriter::ViewAndUpdateHeaders).
//
// Trust: the file names the program or PKCS#11 module that is run or
// loaded to open it. Whoever can write the key file can therefore make
// sealwal run code: keep its directory writable only by sealwal's user, as
// for the private key it holds (docs/security.md).
//
// Secrets: unlock keys live in pem::UnlockKey (wiped); PINs in SecretKeys.
// Thread-safety: functions without shared state; a KekSource is used by one
// call at a time.
#ifndef SEALWAL_KEK_KEY_FILE_KEK_H_
#define SEALWAL_KEK_KEY_FILE_KEK_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/unlock_key.h"

namespace sealwal::kek {

// Environment variables KekSourceOptionsFromEnvironment reads.
inline constexpr char kPinEnvVar[] = "SEALWAL_PKCS11_PIN";
inline constexpr char kPinFileEnvVar[] = "SEALWAL_PKCS11_PIN_FILE";
inline constexpr char kTimeoutEnvVar[] = "SEALWAL_KEK_TIMEOUT";

std::string WrapAad(absl::string_view spec);

struct SourcedUnlockKey {
  pem::UnlockKey unlock_key;
  pem::KekBinding binding;
  std::string key_id;  // the source's name for its key, when it gives one
};

// A fresh unlock key held by `source`: 32 random bytes, wrapped, then
// unwrapped again and compared in constant time, so that a source that
// cannot give the key back is found before any file depends on it
// (kUnavailable "... did not give the key back").
absl::StatusOr<SourcedUnlockKey> NewSourcedUnlockKey(KekSource& source);

// The unlock key `binding` holds: opens its source and unwraps. kDataLoss
// when the source returns something that is not 32 bytes.
absl::StatusOr<pem::UnlockKey> UnwrapBinding(const pem::KekBinding& binding,
                                             const KekSourceOptions& options);

// The unlock key of the key file at `path` when its headers name a KEK
// source; nullopt when they do not, or when the file is missing or does not
// parse (the caller's own read of it reports that). The key is checked
// against the file's DEK headers: kPermissionDenied "the KEK source ...
// returned a key that does not open ..." when it is not theirs (a lying or
// misconfigured KMS). Nothing is written.
absl::StatusOr<std::optional<pem::UnlockKey>> UnlockKeyFromKekSource(
    env::FileSystem* fs, const std::string& path, const KekSourceOptions& options);

// KekSourceOptions from $SEALWAL_PKCS11_PIN (the PIN), else
// $SEALWAL_PKCS11_PIN_FILE (a file holding it, one trailing newline
// dropped), and $SEALWAL_KEK_TIMEOUT (a duration such as "10s", default
// 10s). kInvalidArgument naming the variable for a bad value.
absl::StatusOr<KekSourceOptions> KekSourceOptionsFromEnvironment(env::FileSystem* fs);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_KEY_FILE_KEK_H_
