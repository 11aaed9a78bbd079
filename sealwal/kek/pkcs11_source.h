// sealwal/kek/pkcs11_source.h: a KekSource whose key never leaves a PKCS#11
// token (docs/kek-providers.md).
//
// Spec: a subset of RFC 7512 PKCS#11 URIs, parsed with p11-kit's parser:
//   pkcs11:token=LABEL;object=LABEL?module-path=/abs/module.so
// `token` is the token's label (at most 32 bytes), `object` the CKA_LABEL
// of an AES secret key on it, `module-path` the absolute path of the
// PKCS#11 module (dlopen'ed). Values may be percent-encoded; whitespace
// must be (p11-kit would silently drop it, so it is refused). Nothing else
// is accepted: no pin-value (PINs never go into the key file) or
// pin-source (the PIN comes from KekSourceOptions::pkcs11_pin), no
// module-name, id, slot or library attributes. Spec() returns the
// canonical form: token, object, module-path in that order, percent-encoded
// where RFC 7512 requires it.
//
// Wrapped format (opaque to callers, kept in the key file's kek-wrapped
// header):
//   0x01 (version) || IV (12 random bytes) || AES-GCM ciphertext || tag (16)
// computed by the token (CKM_AES_GCM, 96-bit IV, the aad as GCM's AAD,
// 128-bit tag) under the object's key, so 61 bytes for a 32-byte secret.
//
// Errors, besides those of sealwal/kek/kek_source.h:
//   kInvalidArgument    a spec outside the subset above (one line saying
//                       what is wrong); wrapped bytes that are too short or
//                       carry an unknown version byte; an empty secret or
//                       one too large for kMaxWrappedSize
//   kUnavailable        the module file is missing or does not load, no
//                       initialised token has the label, the token fails a
//                       call (the CKR_ name is in the message)
//   kPermissionDenied   no PIN when the token needs one, a wrong or locked
//                       PIN, no secret key with the label visible after
//                       login, wrapped bytes that do not authenticate under
//                       the key (other aad, damage, another key; any
//                       C_Decrypt failure but a token gone away)
//   kFailedPrecondition several secret keys or tokens with the label, a key
//                       that is not AES or may not encrypt/decrypt
//   kAlreadyExists      CreatePkcs11AesKey: a secret key with the label exists
// Messages name the module path, the token and object labels and the CKR_
// code; never a PIN or key bytes.
//
// Ownership: the returned source owns one read-only session on the token
// and a reference to the module. Modules are shared process-wide: every
// source (and CreatePkcs11AesKey) using the same module file shares one
// dlopen handle and one C_Initialize, done by the first user and undone
// (C_Finalize, only if this code called C_Initialize; dlclose) by the last.
// A module that something else in the process initialised
// (CKR_CRYPTOKI_ALREADY_INITIALIZED) is used but never finalised.
// Destroying a source logs out (when it is the process's last sealwal
// session on that token and the login was ours) and closes its session.
//
// PKCS#11 logins belong to the process, not the session: while another
// source in this process is logged in to the same token, C_Login answers
// CKR_USER_ALREADY_LOGGED_IN and the PIN given to a second source is not
// checked again.
//
// Thread-safety: one call at a time per source (as for every KekSource);
// different sources may be used from different threads (the module is
// initialised with CKF_OS_LOCKING_OK). Not usable in a child after fork().
#ifndef SEALWAL_KEK_PKCS11_SOURCE_H_
#define SEALWAL_KEK_PKCS11_SOURCE_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/kek/kek_source.h"

namespace sealwal::kek {

// The first byte of every wrapped key this source writes.
inline constexpr uint8_t kPkcs11WrappedVersion = 0x01;

// `spec` starts with "pkcs11:" (sealwal/kek/kek_source.h). Loads the module,
// finds the token, logs in with options.pkcs11_pin (an empty PIN counts as
// none) and finds the key; errors as above.
absl::StatusOr<std::unique_ptr<KekSource>> OpenPkcs11Source(absl::string_view spec,
                                                            const KekSourceOptions& options);

// Generates the AES-256 key that `spec` names inside its token (operators'
// setup and tests): C_GenerateKey(CKM_AES_KEY_GEN) with CKA_TOKEN,
// CKA_PRIVATE, CKA_SENSITIVE, CKA_ENCRYPT and CKA_DECRYPT true,
// CKA_EXTRACTABLE false and CKA_LABEL = object. kAlreadyExists when a
// secret key with that label is on the token (checked first; two processes
// creating the same label at once can still both succeed). Other errors as
// for OpenPkcs11Source.
absl::Status CreatePkcs11AesKey(absl::string_view spec, const KekSourceOptions& options);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_PKCS11_SOURCE_H_
