// sealwal/kek/pkcs11_session.h (internal): PKCS#11 modules and sessions for
// the PKCS#11 KEK source.
//
// Modules are shared by every source in the process: one dlopen handle and
// one C_Initialize per module, reference-counted, C_Finalize (only when
// sealwal called C_Initialize) and dlclose when the last user goes. A
// session logs out only when it is the last one on its token and the login
// was sealwal's (login state belongs to the whole process in PKCS#11).
#ifndef SEALWAL_KEK_PKCS11_SESSION_H_
#define SEALWAL_KEK_PKCS11_SESSION_H_

#include <p11-kit/pkcs11.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/kek/pkcs11_uri.h"

namespace sealwal::kek {

// "CKR_PIN_INCORRECT" rather than 0xa0, for messages.
std::string RvName(CK_RV rv);

// C_Decrypt codes that mean the token went away or broke; any other failure
// is the wrapped bytes not authenticating. CKR_GENERAL_ERROR is not one:
// SoftHSM2 answers a GCM tag mismatch with it.
bool IsUnreachable(CK_RV rv);

class ModuleRef;

// A session (logged in when a PIN is given) on the token the spec names.
class TokenSession {
 public:
  // `read_write` for creating keys. Without a PIN, logs in only when the
  // token needs it (then kPermissionDenied). kUnavailable: no module or no
  // such token; kPermissionDenied: a wrong PIN; kFailedPrecondition:
  // several tokens with the label.
  static absl::StatusOr<std::unique_ptr<TokenSession>> Open(const Pkcs11Uri& spec,
                                                            const KekSourceOptions& options,
                                                            bool read_write);
  ~TokenSession();

  CK_FUNCTION_LIST* f() const;
  CK_SESSION_HANDLE session() const { return session_; }

  // "PKCS#11 token "LABEL" (/path/module.so)", and with the key, for messages.
  std::string Where() const;
  std::string WhereKey() const;
  absl::Status Error(absl::StatusCode code, absl::string_view call, CK_RV rv) const;

  // The handles of the secret keys labelled spec.object (at most 8).
  absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindSecretKeys();

 private:
  TokenSession(const Pkcs11Uri& spec, std::unique_ptr<ModuleRef> module);

  Pkcs11Uri spec_;
  std::unique_ptr<ModuleRef> module_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE session_ = 0;
  bool open_ = false;
};

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_PKCS11_SESSION_H_
