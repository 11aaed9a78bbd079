#include "sealwal/snap/keyring.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::snap {

absl::StatusOr<encryption::SecretKey> HkdfSha256(const encryption::SecretKey& ikm,
                                                 absl::string_view salt,
                                                 absl::string_view info, size_t out_len) {
  if (out_len == 0 || out_len > 255 * 32) {
    return absl::InvalidArgumentError(absl::StrCat("HKDF-SHA256 cannot produce ", out_len, " bytes"));
  }
  // OpenSSL's HKDF (EVP_KDF), never a hand-written one.
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return absl::InternalError("OpenSSL has no HKDF");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return absl::InternalError("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.bytes().data()), ikm.size());
  params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                const_cast<char*>(salt.data()), salt.size());
  params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                const_cast<char*>(info.data()), info.size());
  params[4] = OSSL_PARAM_construct_end();
  std::string out(out_len, '\0');
  const int ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out_len, params);
  EVP_KDF_CTX_free(ctx);  // wipes its copy of the key
  absl::StatusOr<encryption::SecretKey> key =
      ok == 1 ? encryption::SecretKey::FromBytes(out)
              : absl::StatusOr<encryption::SecretKey>(absl::InternalError("EVP_KDF_derive failed"));
  OPENSSL_cleanse(out.data(), out.size());
  return key;
}

Keyring::Keyring() : decrypter_(encryption::MultiDecrypter::Create()) {}
Keyring::~Keyring() = default;

absl::StatusOr<std::shared_ptr<Keyring>> Keyring::ForDek(const encryption::Dek& dek) {
  auto k = std::make_shared<Keyring>();
  SEALWAL_RETURN_IF_ERROR(k->AddKey(dek));
  return k;
}

absl::Status Keyring::AddKey(const encryption::Dek& dek) {
  if (dek.id == encryption::KeyId() || dek.algorithm == encryption::Algorithm::kNotEncrypted ||
      dek.key.size() != encryption::kAeadKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a usable DEK for snapshots: ", dek.DebugString()));
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = keys_.find(dek.id);
  if (it != keys_.end()) {
    if (it->second.key == dek.key && it->second.algorithm == dek.algorithm) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("another DEK already has key id ", encryption::FormatKeyId(dek.id)));
  }
  SEALWAL_RETURN_IF_ERROR(decrypter_->AddKey(dek.id, dek.algorithm, dek.key.Clone()));
  keys_.emplace(dek.id, dek.Clone());
  if (!write_key_.has_value()) write_key_ = dek.id;
  return absl::OkStatus();
}

absl::Status Keyring::SetWriteKey(encryption::KeyId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (!keys_.contains(id)) {
    return absl::NotFoundError(absl::StrCat("no DEK with key id ", encryption::FormatKeyId(id)));
  }
  write_key_ = id;
  return absl::OkStatus();
}

std::optional<encryption::KeyId> Keyring::write_key_id() const {
  std::lock_guard<std::mutex> l(mu_);
  return write_key_;
}

bool Keyring::HasKey(encryption::KeyId id) const {
  std::lock_guard<std::mutex> l(mu_);
  return keys_.contains(id);
}

absl::StatusOr<std::unique_ptr<encryption::Encrypter>> Keyring::NewEncrypter() const {
  std::lock_guard<std::mutex> l(mu_);
  if (!write_key_.has_value()) return absl::FailedPreconditionError("the keyring holds no DEK");
  SEALWAL_ASSIGN_OR_RETURN(auto enc, encryption::AeadEncrypter::Create(keys_.at(*write_key_)));
  return std::unique_ptr<encryption::Encrypter>(std::move(enc));
}

absl::StatusOr<encryption::Algorithm> Keyring::AlgorithmOf(encryption::KeyId id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat("no DEK with key id ", encryption::FormatKeyId(id),
                                            " (is the key file the right one?)"));
  }
  return it->second.algorithm;
}

absl::StatusOr<encryption::SecretKey> Keyring::DeriveStreamKey(encryption::KeyId id,
                                                               absl::string_view salt,
                                                               absl::string_view info) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat("no DEK with key id ", encryption::FormatKeyId(id),
                                            " (is the key file the right one?)"));
  }
  return HkdfSha256(it->second.key, salt, info, encryption::kAeadKeySize);
}

}  // namespace sealwal::snap
