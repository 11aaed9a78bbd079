#include "sealwal/kek/pkcs11_source.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/kek/pkcs11_session.h"
#include "sealwal/kek/pkcs11_uri.h"

namespace sealwal::kek {
namespace {

using encryption::SecretKey;

constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kAesKeySize = 32;
// version || IV || at least one byte of ciphertext || tag.
constexpr size_t kMinWrappedSize = 1 + kIvSize + 1 + kTagSize;
constexpr size_t kMaxSecretSize = kMaxWrappedSize - (1 + kIvSize + kTagSize);

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
  SEALWAL_ASSIGN_OR_RETURN(Pkcs11Uri parsed, ParsePkcs11Uri(spec));
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
  SEALWAL_ASSIGN_OR_RETURN(Pkcs11Uri parsed, ParsePkcs11Uri(spec));
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
