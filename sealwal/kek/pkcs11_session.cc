#include "sealwal/kek/pkcs11_session.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::kek {

std::string RvName(CK_RV rv) {
  switch (rv) {
#define SEALWAL_CKR(name) \
  case name:              \
    return #name;
    SEALWAL_CKR(CKR_OK)
    SEALWAL_CKR(CKR_CANCEL)
    SEALWAL_CKR(CKR_HOST_MEMORY)
    SEALWAL_CKR(CKR_SLOT_ID_INVALID)
    SEALWAL_CKR(CKR_GENERAL_ERROR)
    SEALWAL_CKR(CKR_FUNCTION_FAILED)
    SEALWAL_CKR(CKR_ARGUMENTS_BAD)
    SEALWAL_CKR(CKR_CANT_LOCK)
    SEALWAL_CKR(CKR_ATTRIBUTE_READ_ONLY)
    SEALWAL_CKR(CKR_ATTRIBUTE_SENSITIVE)
    SEALWAL_CKR(CKR_ATTRIBUTE_TYPE_INVALID)
    SEALWAL_CKR(CKR_ATTRIBUTE_VALUE_INVALID)
    SEALWAL_CKR(CKR_DATA_INVALID)
    SEALWAL_CKR(CKR_DATA_LEN_RANGE)
    SEALWAL_CKR(CKR_DEVICE_ERROR)
    SEALWAL_CKR(CKR_DEVICE_MEMORY)
    SEALWAL_CKR(CKR_DEVICE_REMOVED)
    SEALWAL_CKR(CKR_ENCRYPTED_DATA_INVALID)
    SEALWAL_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE)
    SEALWAL_CKR(CKR_FUNCTION_CANCELED)
    SEALWAL_CKR(CKR_FUNCTION_NOT_SUPPORTED)
    SEALWAL_CKR(CKR_KEY_HANDLE_INVALID)
    SEALWAL_CKR(CKR_KEY_SIZE_RANGE)
    SEALWAL_CKR(CKR_KEY_TYPE_INCONSISTENT)
    SEALWAL_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED)
    SEALWAL_CKR(CKR_MECHANISM_INVALID)
    SEALWAL_CKR(CKR_MECHANISM_PARAM_INVALID)
    SEALWAL_CKR(CKR_OBJECT_HANDLE_INVALID)
    SEALWAL_CKR(CKR_OPERATION_ACTIVE)
    SEALWAL_CKR(CKR_OPERATION_NOT_INITIALIZED)
    SEALWAL_CKR(CKR_PIN_INCORRECT)
    SEALWAL_CKR(CKR_PIN_INVALID)
    SEALWAL_CKR(CKR_PIN_LEN_RANGE)
    SEALWAL_CKR(CKR_PIN_EXPIRED)
    SEALWAL_CKR(CKR_PIN_LOCKED)
    SEALWAL_CKR(CKR_SESSION_CLOSED)
    SEALWAL_CKR(CKR_SESSION_COUNT)
    SEALWAL_CKR(CKR_SESSION_HANDLE_INVALID)
    SEALWAL_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    SEALWAL_CKR(CKR_SESSION_READ_ONLY)
    SEALWAL_CKR(CKR_SESSION_EXISTS)
    SEALWAL_CKR(CKR_SESSION_READ_ONLY_EXISTS)
    SEALWAL_CKR(CKR_TEMPLATE_INCOMPLETE)
    SEALWAL_CKR(CKR_TEMPLATE_INCONSISTENT)
    SEALWAL_CKR(CKR_TOKEN_NOT_PRESENT)
    SEALWAL_CKR(CKR_TOKEN_NOT_RECOGNIZED)
    SEALWAL_CKR(CKR_TOKEN_WRITE_PROTECTED)
    SEALWAL_CKR(CKR_USER_ALREADY_LOGGED_IN)
    SEALWAL_CKR(CKR_USER_NOT_LOGGED_IN)
    SEALWAL_CKR(CKR_USER_PIN_NOT_INITIALIZED)
    SEALWAL_CKR(CKR_USER_TYPE_INVALID)
    SEALWAL_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    SEALWAL_CKR(CKR_USER_TOO_MANY_TYPES)
    SEALWAL_CKR(CKR_BUFFER_TOO_SMALL)
    SEALWAL_CKR(CKR_CRYPTOKI_NOT_INITIALIZED)
    SEALWAL_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef SEALWAL_CKR
    default:
      return absl::StrFormat("CKR 0x%08x", static_cast<unsigned long>(rv));
  }
}

// C_Decrypt codes that mean the token went away or broke; any other failure
// is the wrapped bytes not authenticating. CKR_GENERAL_ERROR is not here:
// SoftHSM2 answers a GCM tag mismatch with it.
bool IsUnreachable(CK_RV rv) {
  switch (rv) {
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
      return true;
    default:
      return false;
  }
}

namespace {

struct SlotUse {
  int sessions = 0;
  bool logged_in_by_us = false;
};

struct Module {
  CK_FUNCTION_LIST* fns = nullptr;
  bool initialized_by_us = false;
  int users = 0;
  std::map<CK_SLOT_ID, SlotUse> slots;
};

std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

// dlopen handle -> module. Leaked: sources may outlive static destructors.
std::map<void*, Module>& Registry() {
  static auto* modules = new std::map<void*, Module>;
  return *modules;
}

}  // namespace

// One user's reference to a loaded, initialised module.
class ModuleRef {
 public:
  static absl::StatusOr<ModuleRef> Acquire(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return absl::UnavailableError(
          absl::StrCat("PKCS#11 module ", path, " not found: ", std::strerror(errno)));
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      return absl::UnavailableError(absl::StrCat(
          "PKCS#11 module ", path, " does not load: ", err != nullptr ? err : "dlopen failed"));
    }
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto it = Registry().find(handle);
    if (it != Registry().end()) {
      ++it->second.users;
      return ModuleRef(handle, it->second.fns);
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST* fns = nullptr;
    if (get_list == nullptr) {
      dlclose(handle);
      return absl::UnavailableError(
          absl::StrCat("PKCS#11 module ", path, " is not a PKCS#11 module (no C_GetFunctionList)"));
    }
    CK_RV rv = get_list(&fns);
    if (rv != CKR_OK || fns == nullptr) {
      dlclose(handle);
      return absl::UnavailableError(
          absl::StrCat("PKCS#11 module ", path, ": C_GetFunctionList: ", RvName(rv)));
    }
    CK_C_INITIALIZE_ARGS args;
    std::memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = fns->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      dlclose(handle);
      return absl::UnavailableError(
          absl::StrCat("PKCS#11 module ", path, ": C_Initialize: ", RvName(rv)));
    }
    Module& m = Registry()[handle];
    m.fns = fns;
    m.initialized_by_us = rv == CKR_OK;
    m.users = 1;
    return ModuleRef(handle, fns);
  }

  ModuleRef(ModuleRef&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), fns_(other.fns_) {}
  ModuleRef& operator=(ModuleRef&&) = delete;
  ModuleRef(const ModuleRef&) = delete;
  ~ModuleRef() {
    if (handle_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(RegistryMutex());
      auto it = Registry().find(handle_);
      if (it != Registry().end() && --it->second.users == 0) {
        if (it->second.initialized_by_us) it->second.fns->C_Finalize(nullptr);
        Registry().erase(it);
      }
    }
    dlclose(handle_);
  }

  CK_FUNCTION_LIST* fns() const { return fns_; }

  // Session bookkeeping for the logout rule (pkcs11_source.h).
  void SessionOpened(CK_SLOT_ID slot) {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    ++Registry()[handle_].slots[slot].sessions;
  }
  void LoggedIn(CK_SLOT_ID slot) {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry()[handle_].slots[slot].logged_in_by_us = true;
  }
  // Closes `session`, logging out first when it is our last one on the
  // slot and we logged in.
  void CloseSession(CK_SLOT_ID slot, CK_SESSION_HANDLE session) {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Module& m = Registry()[handle_];
    SlotUse& use = m.slots[slot];
    if (--use.sessions <= 0) {
      if (use.logged_in_by_us) fns_->C_Logout(session);
      m.slots.erase(slot);
    }
    fns_->C_CloseSession(session);
  }

 private:
  ModuleRef(void* handle, CK_FUNCTION_LIST* fns) : handle_(handle), fns_(fns) {}

  void* handle_;
  CK_FUNCTION_LIST* fns_;
};

absl::StatusOr<std::unique_ptr<TokenSession>> TokenSession::Open(const Pkcs11Uri& spec,
                                                                 const KekSourceOptions& options,
                                                                 bool read_write) {
  SEALWAL_ASSIGN_OR_RETURN(ModuleRef module, ModuleRef::Acquire(spec.module_path));
  std::unique_ptr<TokenSession> s(
      new TokenSession(spec, std::make_unique<ModuleRef>(std::move(module))));
  CK_FUNCTION_LIST* f = s->module_->fns();

  CK_ULONG count = 0;
  CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return s->Error(absl::StatusCode::kUnavailable, "C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(count);
  if (count > 0) {
    rv = f->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv != CKR_OK) return s->Error(absl::StatusCode::kUnavailable, "C_GetSlotList", rv);
    slots.resize(count);
  }
  std::vector<CK_SLOT_ID> matches;
  CK_FLAGS token_flags = 0;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    // A slot whose token vanished in between is not ours.
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (std::memcmp(info.label, spec.padded_token.data(), kTokenLabelSize) != 0) continue;
    matches.push_back(slot);
    token_flags = info.flags;
  }
  if (matches.empty()) {
    return absl::UnavailableError(absl::StrCat("PKCS#11 module ", spec.module_path,
                                               " has no token labelled \"", spec.token, "\""));
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("PKCS#11 module ", spec.module_path, " has ", matches.size(),
                     " tokens labelled \"", spec.token, "\"; the label must name one"));
  }
  s->slot_ = matches[0];

  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  rv = f->C_OpenSession(s->slot_, flags, nullptr, nullptr, &s->session_);
  if (rv != CKR_OK) return s->Error(absl::StatusCode::kUnavailable, "C_OpenSession", rv);
  s->open_ = true;
  s->module_->SessionOpened(s->slot_);

  const bool have_pin = options.pkcs11_pin.has_value() && !options.pkcs11_pin->empty();
  if (!have_pin) {
    if ((token_flags & CKF_LOGIN_REQUIRED) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(s->Where(), ": a PIN is needed to log in"));
    }
    return s;
  }
  absl::string_view pin = options.pkcs11_pin->bytes();
  rv = f->C_Login(s->session_, CKU_USER,
                  reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(pin.data())), pin.size());
  switch (rv) {
    case CKR_OK:
      s->module_->LoggedIn(s->slot_);
      return s;
    case CKR_USER_ALREADY_LOGGED_IN:
      return s;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      return absl::PermissionDeniedError(
          absl::StrCat(s->Where(), ": wrong PIN (", RvName(rv), ")"));
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
      return s->Error(absl::StatusCode::kPermissionDenied, "C_Login", rv);
    default:
      return s->Error(absl::StatusCode::kUnavailable, "C_Login", rv);
  }
}

TokenSession::TokenSession(const Pkcs11Uri& spec, std::unique_ptr<ModuleRef> module)
    : spec_(spec), module_(std::move(module)) {}

TokenSession::~TokenSession() {
  if (open_) module_->CloseSession(slot_, session_);
}

CK_FUNCTION_LIST* TokenSession::f() const { return module_->fns(); }

std::string TokenSession::Where() const {
  return absl::StrCat("PKCS#11 token \"", spec_.token, "\" (", spec_.module_path, ")");
}

std::string TokenSession::WhereKey() const {
  return absl::StrCat("key \"", spec_.object, "\" on ", Where());
}

absl::Status TokenSession::Error(absl::StatusCode code, absl::string_view call, CK_RV rv) const {
  return absl::Status(code, absl::StrCat(Where(), ": ", call, ": ", RvName(rv)));
}

absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> TokenSession::FindSecretKeys() {
  CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &klass, sizeof(klass)},
      {CKA_LABEL, const_cast<char*>(spec_.object.data()), spec_.object.size()},
  };
  CK_RV rv = f()->C_FindObjectsInit(session_, tmpl, 2);
  if (rv != CKR_OK) return Error(absl::StatusCode::kUnavailable, "C_FindObjectsInit", rv);
  std::vector<CK_OBJECT_HANDLE> found(8);
  CK_ULONG n = 0;
  rv = f()->C_FindObjects(session_, found.data(), found.size(), &n);
  CK_RV final_rv = f()->C_FindObjectsFinal(session_);
  if (rv != CKR_OK) return Error(absl::StatusCode::kUnavailable, "C_FindObjects", rv);
  if (final_rv != CKR_OK) {
    return Error(absl::StatusCode::kUnavailable, "C_FindObjectsFinal", final_rv);
  }
  found.resize(n);
  return found;
}

}  // namespace sealwal::kek
