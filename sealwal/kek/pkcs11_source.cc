#include "sealwal/kek/pkcs11_source.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::kek {
namespace {

using encryption::SecretKey;

constexpr absl::string_view kScheme = "pkcs11:";
constexpr size_t kLabelSize = 32;  // CK_TOKEN_INFO.label, blank-padded
constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kAesKeySize = 32;
// version || IV || at least one byte of ciphertext || tag.
constexpr size_t kMinWrappedSize = 1 + kIvSize + 1 + kTagSize;
constexpr size_t kMaxSecretSize = kMaxWrappedSize - (1 + kIvSize + kTagSize);

// ---------------------------------------------------------------------------
// CK_RV names: the common ones, so that messages say CKR_PIN_INCORRECT
// rather than 0xa0.

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

// ---------------------------------------------------------------------------
// The spec.

struct ParsedSpec {
  std::string token;  // the label as given, without padding
  std::array<unsigned char, kLabelSize> padded_token{};
  std::string object;
  std::string module_path;
  std::string canonical;
};

struct UriDeleter {
  void operator()(P11KitUri* uri) const { p11_kit_uri_free(uri); }
};
using UriPtr = std::unique_ptr<P11KitUri, UriDeleter>;

struct FreeDeleter {
  void operator()(char* p) const { free(p); }
};

absl::StatusOr<std::string> Format(P11KitUri* uri) {
  char* out = nullptr;
  int rc = p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &out);
  std::unique_ptr<char, FreeDeleter> owned(out);
  if (rc != P11_KIT_URI_OK || out == nullptr) {
    return absl::InternalError(
        absl::StrCat("pkcs11 spec: cannot format: ", p11_kit_uri_message(rc)));
  }
  return std::string(out);
}

// A URI in the state p11_kit_uri_parse leaves for "pkcs11:", so that
// formatting it and a parsed spec differ only in what the spec set.
absl::StatusOr<UriPtr> EmptyUri() {
  UriPtr uri(p11_kit_uri_new());
  if (uri == nullptr || p11_kit_uri_parse("pkcs11:", P11_KIT_URI_FOR_ANY, uri.get()) != 0) {
    return absl::InternalError("pkcs11 spec: p11-kit cannot create a URI");
  }
  return uri;
}

// RFC 7512 query value: unreserved characters and '/' as they are, the
// rest percent-encoded.
std::string EncodeQueryValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~' || c == '/') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", static_cast<unsigned char>(c)));
    }
  }
  return out;
}

absl::StatusOr<ParsedSpec> ParseSpec(absl::string_view spec) {
  // p11-kit compares only the first six characters of the scheme.
  if (!absl::StartsWith(spec, kScheme)) {
    return absl::InvalidArgumentError("pkcs11 spec must start with \"pkcs11:\"");
  }
  if (spec.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("pkcs11 spec holds a NUL byte");
  }
  // p11-kit drops whitespace anywhere in a URI (RFC 7512 §2.3), which would
  // silently turn "my token" into "mytoken".
  for (char c : spec) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "pkcs11 spec holds whitespace; write a space in a label or path as %20");
    }
  }
  const std::string text(spec);
  SEALWAL_ASSIGN_OR_RETURN(UriPtr uri, EmptyUri());
  int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
  if (rc != P11_KIT_URI_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("pkcs11 spec is not a PKCS#11 URI: ", p11_kit_uri_message(rc)));
  }
  // The PIN check comes first: its message must be the one an operator sees.
  if (p11_kit_uri_get_pin_value(uri.get()) != nullptr) {
    return absl::InvalidArgumentError(
        "pkcs11 spec must not hold a PIN (pin-value): the key file would record it; pass the "
        "PIN separately");
  }
  if (p11_kit_uri_get_pin_source(uri.get()) != nullptr) {
    return absl::InvalidArgumentError(
        "pkcs11 spec: pin-source is not supported; pass the PIN separately");
  }
  if (p11_kit_uri_any_unrecognized(uri.get())) {
    return absl::InvalidArgumentError(
        "pkcs11 spec has an attribute sealwal does not know or a value too long (a token "
        "label is at most 32 bytes)");
  }

  ParsedSpec out;
  const CK_TOKEN_INFO* token = p11_kit_uri_get_token_info(uri.get());
  std::memcpy(out.padded_token.data(), token->label, kLabelSize);
  size_t end = kLabelSize;
  while (end > 0 && (token->label[end - 1] == ' ' || token->label[end - 1] == '\0')) --end;
  out.token.assign(reinterpret_cast<const char*>(token->label), end);
  if (out.token.empty()) {
    return absl::InvalidArgumentError("pkcs11 spec needs a non-empty token=LABEL");
  }
  const CK_ATTRIBUTE* label = p11_kit_uri_get_attribute(uri.get(), CKA_LABEL);
  if (label == nullptr || label->ulValueLen == 0 || label->pValue == nullptr) {
    return absl::InvalidArgumentError("pkcs11 spec needs a non-empty object=LABEL");
  }
  out.object.assign(static_cast<const char*>(label->pValue), label->ulValueLen);
  const char* path = p11_kit_uri_get_module_path(uri.get());
  if (path == nullptr || *path == '\0') {
    return absl::InvalidArgumentError("pkcs11 spec needs ?module-path=/absolute/path/to/module.so");
  }
  out.module_path = path;
  if (out.module_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("pkcs11 spec: module-path must be absolute, got \"", out.module_path, "\""));
  }

  // Anything beyond token, object and module-path (id, type, slot, library,
  // module-name, vendor queries) makes the two formats differ.
  SEALWAL_ASSIGN_OR_RETURN(UriPtr canon, EmptyUri());
  std::memcpy(p11_kit_uri_get_token_info(canon.get())->label, out.padded_token.data(), kLabelSize);
  CK_ATTRIBUTE attr = {CKA_LABEL, out.object.data(), out.object.size()};
  if (p11_kit_uri_set_attribute(canon.get(), &attr) != P11_KIT_URI_OK) {
    return absl::InternalError("pkcs11 spec: p11-kit cannot set the object label");
  }
  // p11-kit writes module-path with every '/' as %2F; the canonical form
  // keeps the path readable (RFC 7512 allows '/' in the query).
  SEALWAL_ASSIGN_OR_RETURN(std::string path_part, Format(canon.get()));
  out.canonical = absl::StrCat(path_part, "?module-path=", EncodeQueryValue(out.module_path));
  p11_kit_uri_set_module_path(canon.get(), out.module_path.c_str());
  SEALWAL_ASSIGN_OR_RETURN(std::string given, Format(uri.get()));
  SEALWAL_ASSIGN_OR_RETURN(std::string expected, Format(canon.get()));
  if (given != expected) {
    return absl::InvalidArgumentError(
        "pkcs11 spec may hold only token=, object= and ?module-path= (no id, type, slot, "
        "library, module-name or other attributes)");
  }
  return out;
}

// ---------------------------------------------------------------------------
// Modules, shared by every source in the process.

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

// ---------------------------------------------------------------------------
// A logged-in session on the spec's token.

class TokenSession {
 public:
  // `read_write` for creating keys. Without a PIN, logs in only when the
  // token needs it (then kPermissionDenied).
  static absl::StatusOr<std::unique_ptr<TokenSession>> Open(const ParsedSpec& spec,
                                                            const KekSourceOptions& options,
                                                            bool read_write) {
    SEALWAL_ASSIGN_OR_RETURN(ModuleRef module, ModuleRef::Acquire(spec.module_path));
    std::unique_ptr<TokenSession> s(new TokenSession(spec, std::move(module)));
    CK_FUNCTION_LIST* f = s->module_.fns();

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
      if (std::memcmp(info.label, spec.padded_token.data(), kLabelSize) != 0) continue;
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
    s->module_.SessionOpened(s->slot_);

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
        s->module_.LoggedIn(s->slot_);
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

  ~TokenSession() {
    if (open_) module_.CloseSession(slot_, session_);
  }

  CK_FUNCTION_LIST* f() const { return module_.fns(); }
  CK_SESSION_HANDLE session() const { return session_; }

  // "PKCS#11 token "LABEL" (/path/module.so)", for messages.
  std::string Where() const {
    return absl::StrCat("PKCS#11 token \"", spec_.token, "\" (", spec_.module_path, ")");
  }
  std::string WhereKey() const { return absl::StrCat("key \"", spec_.object, "\" on ", Where()); }
  absl::Status Error(absl::StatusCode code, absl::string_view call, CK_RV rv) const {
    return absl::Status(code, absl::StrCat(Where(), ": ", call, ": ", RvName(rv)));
  }

  // The handles of the secret keys labelled spec.object (at most a few).
  absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindSecretKeys() {
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

 private:
  TokenSession(const ParsedSpec& spec, ModuleRef module)
      : spec_(spec), module_(std::move(module)) {}

  ParsedSpec spec_;
  ModuleRef module_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE session_ = 0;
  bool open_ = false;
};

// ---------------------------------------------------------------------------
// The source.

class Pkcs11Source : public KekSource {
 public:
  Pkcs11Source(std::string spec, std::unique_ptr<TokenSession> session, CK_OBJECT_HANDLE key)
      : spec_(std::move(spec)), session_(std::move(session)), key_(key) {}

  std::string Spec() const override { return spec_; }

  absl::StatusOr<std::string> Wrap(const SecretKey& secret, absl::string_view aad) override {
    if (secret.empty() || secret.size() > kMaxSecretSize) {
      return absl::InvalidArgumentError(absl::StrCat("a PKCS#11 source wraps 1 to ", kMaxSecretSize,
                                                     " bytes, got ", secret.size()));
    }
    std::string out(1 + kIvSize + secret.size() + kTagSize, '\0');
    unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
    p[0] = kPkcs11WrappedVersion;
    if (RAND_bytes(p + 1, kIvSize) != 1) {
      return absl::InternalError("RAND_bytes failed to make an IV");
    }
    CK_GCM_PARAMS params = GcmParams(p + 1, aad);
    CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof(params)};
    CK_FUNCTION_LIST* f = session_->f();
    CK_RV rv = f->C_EncryptInit(session_->session(), &mech, key_);
    if (rv != CKR_OK) return KeyError("C_EncryptInit", rv);
    CK_ULONG n = out.size() - 1 - kIvSize;
    absl::string_view pt = secret.bytes();
    rv = f->C_Encrypt(session_->session(), reinterpret_cast<CK_BYTE*>(const_cast<char*>(pt.data())),
                      pt.size(), p + 1 + kIvSize, &n);
    if (rv != CKR_OK) return KeyError("C_Encrypt", rv);
    if (n != secret.size() + kTagSize) {
      return absl::UnavailableError(absl::StrCat(session_->WhereKey(), ": C_Encrypt returned ", n,
                                                 " bytes, expected ", secret.size() + kTagSize));
    }
    return out;
  }

  absl::StatusOr<SecretKey> Unwrap(absl::string_view wrapped, absl::string_view aad) override {
    if (wrapped.size() < kMinWrappedSize || wrapped.size() > kMaxWrappedSize) {
      return absl::InvalidArgumentError(absl::StrCat("PKCS#11-wrapped key is ", wrapped.size(),
                                                     " bytes; expected ", kMinWrappedSize, " to ",
                                                     kMaxWrappedSize));
    }
    if (static_cast<uint8_t>(wrapped[0]) != kPkcs11WrappedVersion) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "PKCS#11-wrapped key has format version 0x%02x; this sealwal reads 0x%02x",
          static_cast<uint8_t>(wrapped[0]), kPkcs11WrappedVersion));
    }
    // The token reads from these; copies so that nothing writes through a view.
    std::string iv(wrapped.substr(1, kIvSize));
    std::string ct(wrapped.substr(1 + kIvSize));
    CK_GCM_PARAMS params = GcmParams(reinterpret_cast<unsigned char*>(iv.data()), aad);
    CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof(params)};
    CK_FUNCTION_LIST* f = session_->f();
    CK_RV rv = f->C_DecryptInit(session_->session(), &mech, key_);
    if (rv != CKR_OK) return KeyError("C_DecryptInit", rv);
    // Some modules want room for ciphertext||tag even though the tag is
    // not returned.
    std::vector<unsigned char> pt(ct.size());
    CK_ULONG n = pt.size();
    rv = f->C_Decrypt(session_->session(), reinterpret_cast<CK_BYTE*>(ct.data()), ct.size(),
                      pt.data(), &n);
    absl::StatusOr<SecretKey> key;
    if (rv != CKR_OK) {
      if (IsUnreachable(rv)) {
        key = session_->Error(absl::StatusCode::kUnavailable, "C_Decrypt", rv);
      } else {
        key = absl::PermissionDeniedError(absl::StrCat(
            "wrapped key does not authenticate under the token's key (", session_->WhereKey(), ": ",
            RvName(rv), "): another key or aad, or damaged bytes"));
      }
    } else if (n != ct.size() - kTagSize) {
      key = absl::UnavailableError(absl::StrCat(session_->WhereKey(), ": C_Decrypt returned ", n,
                                                " bytes, expected ", ct.size() - kTagSize));
    } else {
      key = SecretKey::FromBytes(absl::string_view(reinterpret_cast<const char*>(pt.data()), n));
    }
    OPENSSL_cleanse(pt.data(), pt.size());
    return key;
  }

 private:
  static CK_GCM_PARAMS GcmParams(unsigned char* iv, absl::string_view aad) {
    static unsigned char kNoAad = 0;  // some modules reject a null pointer
    CK_GCM_PARAMS params;
    std::memset(&params, 0, sizeof(params));
    params.pIv = iv;
    params.ulIvLen = kIvSize;
    params.ulIvBits = kIvSize * 8;
    params.pAAD =
        aad.empty() ? &kNoAad : reinterpret_cast<unsigned char*>(const_cast<char*>(aad.data()));
    params.ulAADLen = aad.size();
    params.ulTagBits = kTagSize * 8;
    return params;
  }

  absl::Status KeyError(absl::string_view call, CK_RV rv) const {
    absl::StatusCode code = absl::StatusCode::kUnavailable;
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT ||
        rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID) {
      code = absl::StatusCode::kFailedPrecondition;
    }
    return absl::Status(code, absl::StrCat(session_->WhereKey(), ": ", call, ": ", RvName(rv)));
  }

  const std::string spec_;
  std::unique_ptr<TokenSession> session_;
  const CK_OBJECT_HANDLE key_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KekSource>> OpenPkcs11Source(absl::string_view spec,
                                                            const KekSourceOptions& options) {
  SEALWAL_ASSIGN_OR_RETURN(ParsedSpec parsed, ParseSpec(spec));
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<TokenSession> session,
                           TokenSession::Open(parsed, options, /*read_write=*/false));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys, session->FindSecretKeys());
  if (keys.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(session->Where(),
                                                    " has no secret key labelled \"", parsed.object,
                                                    "\" visible to this user"));
  }
  if (keys.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        session->Where(), " has ", keys.size() >= 8 ? "8 or more" : absl::StrCat(keys.size()),
        " secret keys labelled \"", parsed.object, "\"; the label must name one"));
  }
  CK_KEY_TYPE type = 0;
  CK_ATTRIBUTE attr = {CKA_KEY_TYPE, &type, sizeof(type)};
  CK_RV rv = session->f()->C_GetAttributeValue(session->session(), keys[0], &attr, 1);
  if (rv != CKR_OK) {
    return session->Error(absl::StatusCode::kUnavailable, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
  }
  if (type != CKK_AES) {
    return absl::FailedPreconditionError(absl::StrCat(
        session->WhereKey(), " is not an AES key (CKA_KEY_TYPE 0x", absl::Hex(type), ")"));
  }
  return std::unique_ptr<KekSource>(
      new Pkcs11Source(std::move(parsed.canonical), std::move(session), keys[0]));
}

absl::Status CreatePkcs11AesKey(absl::string_view spec, const KekSourceOptions& options) {
  SEALWAL_ASSIGN_OR_RETURN(ParsedSpec parsed, ParseSpec(spec));
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<TokenSession> session,
                           TokenSession::Open(parsed, options, /*read_write=*/true));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys, session->FindSecretKeys());
  if (!keys.empty()) {
    return absl::AlreadyExistsError(absl::StrCat(
        session->Where(), " already has a secret key labelled \"", parsed.object, "\""));
  }
  CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_ULONG len = kAesKeySize;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &klass, sizeof(klass)}, {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},   {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_LABEL, parsed.object.data(), parsed.object.size()},
  };
  CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = 0;
  CK_RV rv = session->f()->C_GenerateKey(session->session(), &mech, tmpl,
                                         sizeof(tmpl) / sizeof(tmpl[0]), &key);
  if (rv != CKR_OK) {
    return session->Error(absl::StatusCode::kUnavailable, "C_GenerateKey(CKM_AES_KEY_GEN)", rv);
  }
  return absl::OkStatus();
}

}  // namespace sealwal::kek
