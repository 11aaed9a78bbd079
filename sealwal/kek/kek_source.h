// sealwal/kek/kek_source.h: where a locked key file's KEK comes from when it
// is not an unlock key the operator holds: a PKCS#11 token or an external KMS
// reached through a command (docs/kek-providers.md).
//
// Envelope: the key file's unlock key (pem::UnlockKey, 32 random bytes, from
// which the KEK that wraps the DEKs is derived, and whose text form
// encrypts the private key) is never stored. The KEK source wraps it, and
// the key file keeps only the source's spec and the wrapped bytes (headers
// `kek-source` and `kek-wrapped`, docs/format.md §11). Opening the file
// asks the source to unwrap them; without the token or the KMS the file
// holds nothing that opens the data.
//
// Specs (the `kek-source` header and the CLI's --kek):
//   pkcs11:token=LABEL;object=LABEL?module-path=/abs/module.so
//       an AES key labelled `object` on the token labelled `token`
//       (sealwal/kek/pkcs11_source.h); the PIN comes from options, never
//       from the spec
//   command:/abs/path/to/plugin[ ARG...]
//       an external program speaking the JSON protocol of
//       sealwal/kek/plugin_protocol.h (sealwal/kek/command_source.h)
//
// Errors (every source): kInvalidArgument a malformed spec; kUnavailable
// the source cannot be reached or misbehaves (no module or token, a plugin
// that fails, hangs past the timeout or answers garbage); kPermissionDenied
// the source refuses (wrong PIN, no such key) or the wrapped bytes do not
// authenticate under its key (a plugin's refusal is kUnavailable: the
// protocol does not say why). Messages never hold key bytes or PINs.
//
// Ownership and threads: a KekSource is owned by its caller; one call at a
// time (the CLI and the storage use it once per open or KEK change).
#ifndef SEALWAL_KEK_KEK_SOURCE_H_
#define SEALWAL_KEK_KEK_SOURCE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/pem/key_file.h"

namespace sealwal::kek {

class KekSource {
 public:
  virtual ~KekSource() = default;

  // The spec as the key file's kek-source header records it. No secrets.
  virtual std::string Spec() const = 0;

  // Wraps `secret` (32 bytes), bound to `aad`: Unwrap with any other aad
  // fails. The result is opaque, at most kMaxWrappedSize bytes.
  virtual absl::StatusOr<std::string> Wrap(const encryption::SecretKey& secret,
                                           absl::string_view aad) = 0;

  // The inverse of Wrap.
  virtual absl::StatusOr<encryption::SecretKey> Unwrap(absl::string_view wrapped,
                                                       absl::string_view aad) = 0;

  // What the source said its key is called in the last successful Wrap
  // (a KMS key id); empty when it does not say. Not secret.
  virtual std::string last_key_id() const { return {}; }
};

inline constexpr size_t kMaxWrappedSize = pem::kMaxKekWrappedSize;

struct KekSourceOptions {
  // The PKCS#11 user PIN (see PinFromEnvironment). Secret.
  std::optional<encryption::SecretKey> pkcs11_pin;
  // How long one plugin invocation may take before it is killed.
  absl::Duration command_timeout = absl::Seconds(10);
};

// Opens the source `spec` names. kInvalidArgument for an unknown scheme or
// a malformed spec; the source's own errors (above) when it cannot start.
absl::StatusOr<std::unique_ptr<KekSource>> OpenKekSource(absl::string_view spec,
                                                         const KekSourceOptions& options);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_KEK_SOURCE_H_
