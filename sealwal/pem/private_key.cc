#include "sealwal/pem/private_key.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sealwal::pem {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr ReadBio(absl::string_view s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

// The password handed to OpenSSL's PEM readers. Without one, the callback
// refuses instead of letting OpenSSL prompt on a terminal.
struct Password {
  std::optional<absl::string_view> text;
};

int PasswordCallback(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* pw = static_cast<const Password*>(u);
  if (pw == nullptr || !pw->text.has_value()) return -1;
  if (pw->text->size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, pw->text->data(), pw->text->size());
  return static_cast<int>(pw->text->size());
}

// What PEM_read_bio says about the first block, without decrypting it.
struct BlockInfo {
  std::string name;
  bool encrypted = false;  // PKCS#8 EncryptedPrivateKeyInfo or Proc-Type ENCRYPTED
  long pbkdf2_iterations = 0;  // PKCS#8 with PBES2/PBKDF2 only
  // Set when the PKCS#8 encryption scheme is not one we accept: only PBES2
  // with PBKDF2 (iterations capped) or scrypt (cost capped), so that a
  // hostile key block cannot make a read spin for minutes (e.g. PKCS#12
  // PBE with 2^31 iterations, or scrypt with a huge p).
  std::string scheme_error;
};

// scrypt cost limits: N <= 2^20, r <= 8, p <= 16 (OpenSSL's defaults are
// N = 2^14, r = 8, p = 1).
bool ScryptWithinLimits(const SCRYPT_PARAMS* sp) {
  auto get = [](const ASN1_INTEGER* v) -> long { return v == nullptr ? -1 : ASN1_INTEGER_get(v); };
  const long n = get(sp->costParameter), r = get(sp->blockSize),
             p = get(sp->parallelizationParameter);
  return n > 1 && n <= (1L << 20) && r >= 1 && r <= 8 && p >= 1 && p <= 16;
}

absl::StatusOr<BlockInfo> InspectBlock(absl::string_view pem) {
  BioPtr bio = ReadBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
    return absl::DataLossError(
        absl::StrCat("private key block does not decode: ", TakeOpenSslError()));
  }
  BlockInfo info;
  info.name = name;
  info.encrypted = info.name == PEM_STRING_PKCS8 || absl::StrContains(header, "ENCRYPTED");
  if (info.name == PEM_STRING_PKCS8) {
    // Read the PBES2 parameters so that an absurd iteration count is
    // refused before OpenSSL starts deriving.
    const unsigned char* p = data;
    X509_SIG* sig = d2i_X509_SIG(nullptr, &p, len);
    if (sig != nullptr) {
      const X509_ALGOR* alg = nullptr;
      X509_SIG_get0(sig, &alg, nullptr);
      info.scheme_error = "unsupported PKCS#8 encryption scheme (only PBES2 with PBKDF2 or scrypt)";
      if (alg != nullptr && OBJ_obj2nid(alg->algorithm) == NID_pbes2 &&
          alg->parameter != nullptr) {
        auto* pbe2 = static_cast<PBE2PARAM*>(
            ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter));
        const int kdf_nid = pbe2 != nullptr && pbe2->keyfunc != nullptr
                                ? OBJ_obj2nid(pbe2->keyfunc->algorithm)
                                : NID_undef;
        if (kdf_nid == NID_id_pbkdf2 && pbe2->keyfunc->parameter != nullptr) {
          auto* kdf = static_cast<PBKDF2PARAM*>(
              ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter));
          if (kdf != nullptr) {
            info.pbkdf2_iterations = ASN1_INTEGER_get(kdf->iter);
            if (info.pbkdf2_iterations < 0) info.pbkdf2_iterations = LONG_MAX;
            info.scheme_error.clear();
            PBKDF2PARAM_free(kdf);
          }
        } else if (kdf_nid == NID_id_scrypt && pbe2->keyfunc->parameter != nullptr) {
          auto* sp = static_cast<SCRYPT_PARAMS*>(
              ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter));
          if (sp != nullptr) {
            if (ScryptWithinLimits(sp)) {
              info.scheme_error.clear();
            } else {
              info.scheme_error = "the private key's scrypt parameters exceed N <= 2^20, r <= 8, p <= 16";
            }
            SCRYPT_PARAMS_free(sp);
          }
        }
        PBE2PARAM_free(pbe2);
      }
      X509_SIG_free(sig);
    }
  }
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_clear_free(data, static_cast<size_t>(len));
  ERR_clear_error();
  return info;
}

}  // namespace

std::string TakeOpenSslError() {
  unsigned long e = ERR_get_error();
  unsigned long last = e;
  while (e != 0) {  // the last entry is the most specific
    last = e;
    e = ERR_get_error();
  }
  if (last == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<PrivateKey> PrivateKey::GenerateEcP256() {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  if (pkey == nullptr) {
    return absl::InternalError(absl::StrCat("EC P-256 key generation failed: ", TakeOpenSslError()));
  }
  return PrivateKey(pkey);
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(absl::string_view pem,
                                               std::optional<absl::string_view> password) {
  absl::StatusOr<BlockInfo> info = InspectBlock(pem);
  if (!info.ok()) return info.status();
  if (!info->scheme_error.empty()) return absl::FailedPreconditionError(info->scheme_error);
  if (info->encrypted && !password.has_value()) {
    return absl::PermissionDeniedError(
        "the private key is locked (encrypted PKCS#8): an unlock key is needed");
  }
  if (info->pbkdf2_iterations > kMaxPbkdf2Iterations) {
    return absl::FailedPreconditionError(
        absl::StrCat("the private key's PBKDF2 iteration count ", info->pbkdf2_iterations,
                     " exceeds the limit of ", kMaxPbkdf2Iterations));
  }
  BioPtr bio = ReadBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  Password pw{password};
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, PasswordCallback, &pw);
  if (pkey == nullptr) {
    const std::string why = TakeOpenSslError();
    if (info->encrypted) {
      return absl::PermissionDeniedError(
          absl::StrCat("the private key does not decrypt with this unlock key (", why, ")"));
    }
    return absl::DataLossError(absl::StrCat("the private key does not parse: ", why));
  }
  PrivateKey key(pkey);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  if (ctx == nullptr) return absl::InternalError("EVP_PKEY_CTX_new_from_pkey failed");
  const int rc = EVP_PKEY_check(ctx);
  EVP_PKEY_CTX_free(ctx);
  if (rc != 1 && rc != -2) {  // -2: OpenSSL has no check for this key type
    return absl::DataLossError(
        absl::StrCat("the private key fails its consistency check: ", TakeOpenSslError()));
  }
  ERR_clear_error();
  return key;
}

absl::StatusOr<std::string> PrivateKey::ToPkcs8Pem(
    std::optional<absl::string_view> password) const {
  // A secure-memory BIO clears its buffer when freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr) return absl::InternalError("BIO_new failed");
  if (!password.has_value()) {
    if (PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                      nullptr) != 1) {
      return absl::InternalError(absl::StrCat("writing PKCS#8 failed: ", TakeOpenSslError()));
    }
  } else {
    unsigned char salt[16];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return absl::InternalError("RAND_bytes failed");
    // PBES2: PBKDF2-HMAC-SHA256 with our salt, AES-256-CBC with a random IV.
    X509_ALGOR* pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), kPbkdf2Iterations, salt,
                                        sizeof(salt), nullptr, NID_hmacWithSHA256);
    if (pbe == nullptr) {
      return absl::InternalError(absl::StrCat("PBES2 setup failed: ", TakeOpenSslError()));
    }
    PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(pkey_.get());
    if (p8 == nullptr) {
      X509_ALGOR_free(pbe);
      return absl::InternalError(absl::StrCat("EVP_PKEY2PKCS8 failed: ", TakeOpenSslError()));
    }
    X509_SIG* sig = PKCS8_set0_pbe(password->data(), static_cast<int>(password->size()), p8, pbe);
    PKCS8_PRIV_KEY_INFO_free(p8);  // frees (and clears) the plaintext key info
    if (sig == nullptr) {
      X509_ALGOR_free(pbe);
      return absl::InternalError(absl::StrCat("PKCS#8 encryption failed: ", TakeOpenSslError()));
    }
    const int rc = PEM_write_bio_PKCS8(bio.get(), sig);
    X509_SIG_free(sig);
    if (rc != 1) {
      return absl::InternalError(absl::StrCat("writing PKCS#8 failed: ", TakeOpenSslError()));
    }
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  if (n <= 0 || data == nullptr) return absl::InternalError("empty PKCS#8 output");
  return std::string(data, static_cast<size_t>(n));
}

std::string PrivateKey::Description() const {
  EVP_PKEY* k = pkey_.get();
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1) {
      std::string g(group, len);
      if (g == "prime256v1" || g == "P-256") g = "P-256";
      if (g == "secp384r1") g = "P-384";
      if (g == "secp521r1") g = "P-521";
      return absl::StrCat("EC ", g);
    }
    return "EC";
  }
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
    return absl::StrCat("RSA ", EVP_PKEY_get_bits(k));
  }
  const char* name = EVP_PKEY_get0_type_name(k);
  return name != nullptr ? std::string(name) : absl::StrCat("key type ", EVP_PKEY_get_id(k));
}

bool PrivateKey::Equals(const PrivateKey& other) const {
  return EVP_PKEY_eq(pkey_.get(), other.pkey_.get()) == 1;
}

PrivateKey PrivateKey::Clone() const {
  EVP_PKEY_up_ref(pkey_.get());
  return PrivateKey(pkey_.get());
}

}  // namespace sealwal::pem
