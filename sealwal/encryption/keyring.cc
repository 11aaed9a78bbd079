#include "sealwal/encryption/keyring.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::encryption {

absl::StatusOr<SecretKey> HkdfSha256(const SecretKey& ikm, absl::string_view salt,
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
  absl::StatusOr<SecretKey> key =
      ok == 1 ? SecretKey::FromBytes(out)
              : absl::StatusOr<SecretKey>(absl::InternalError("EVP_KDF_derive failed"));
  OPENSSL_cleanse(out.data(), out.size());
  return key;
}

Keyring::Keyring(KeyringOptions options)
    : options_(std::move(options)), decrypter_(MultiDecrypter::Create()) {}
Keyring::~Keyring() = default;

absl::StatusOr<std::shared_ptr<Keyring>> Keyring::ForDek(const Dek& dek, uint64_t encryptions,
                                                         KeyringOptions options) {
  auto k = std::make_shared<Keyring>(std::move(options));
  SEALWAL_RETURN_IF_ERROR(k->AddKey(dek, encryptions));
  return k;
}

const Keyring::Entry* Keyring::FindLocked(KeyId id) const {
  auto it = keys_.find(id);
  return it == keys_.end() ? nullptr : &it->second;
}

absl::Status Keyring::AddKey(const Dek& dek, uint64_t encryptions) {
  if (dek.id == KeyId() || dek.algorithm == Algorithm::kNotEncrypted ||
      dek.key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("not a usable DEK: ", dek.DebugString()));
  }
  if (options_.rotation_threshold == 0 || options_.rotation_threshold > kMaxEncryptionsPerKey) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rotation threshold ", options_.rotation_threshold, " is outside 1 .. 2^32"));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (const Entry* e = FindLocked(dek.id); e != nullptr) {
    if (e->dek.key == dek.key && e->dek.algorithm == dek.algorithm) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("another DEK already has key id ", FormatKeyId(dek.id)));
  }
  SEALWAL_RETURN_IF_ERROR(decrypter_->AddKey(dek.id, dek.algorithm, dek.key.Clone()));
  auto usage = std::make_shared<KeyUsage>(dek.id, encryptions, options_.reserver,
                                          options_.reservation_block);
  keys_.emplace(dek.id, Entry{dek.Clone(), std::move(usage)});
  if (!write_key_.has_value()) {
    write_key_ = dek.id;
    write_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  return absl::OkStatus();
}

absl::Status Keyring::SetWriteKey(KeyId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (FindLocked(id) == nullptr) return MissingKeyError(id, "cannot make it the write key");
  if (write_key_ != id) {
    write_key_ = id;
    write_generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  return absl::OkStatus();
}

absl::Status Keyring::RemoveKey(KeyId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (FindLocked(id) == nullptr) return MissingKeyError(id, "cannot remove it");
  if (write_key_ == id) {
    return absl::FailedPreconditionError(
        absl::StrCat("key id ", FormatKeyId(id), " is the write key; it cannot be removed"));
  }
  SEALWAL_RETURN_IF_ERROR(decrypter_->RemoveKey(id));
  keys_.erase(id);
  return absl::OkStatus();
}

std::optional<KeyId> Keyring::write_key_id() const {
  std::lock_guard<std::mutex> l(mu_);
  return write_key_;
}

bool Keyring::HasKey(KeyId id) const {
  std::lock_guard<std::mutex> l(mu_);
  return FindLocked(id) != nullptr;
}

std::vector<KeyId> Keyring::KeyIds() const { return decrypter_->KeyIds(); }

absl::StatusOr<std::unique_ptr<Encrypter>> Keyring::NewEncrypter(EncrypterOptions options) const {
  std::lock_guard<std::mutex> l(mu_);
  if (!write_key_.has_value()) return absl::FailedPreconditionError("the keyring holds no DEK");
  const Entry& e = *FindLocked(*write_key_);
  options.usage = e.usage;
  options.rotation_threshold = options_.rotation_threshold;
  if (options.seal_threads == 0) options.seal_threads = options_.seal_threads;
  SEALWAL_ASSIGN_OR_RETURN(auto enc, AeadEncrypter::Create(e.dek, options));
  return std::unique_ptr<Encrypter>(std::move(enc));
}

absl::StatusOr<Algorithm> Keyring::AlgorithmOf(KeyId id) const {
  std::lock_guard<std::mutex> l(mu_);
  const Entry* e = FindLocked(id);
  if (e == nullptr) return MissingKeyError(id);
  return e->dek.algorithm;
}

absl::StatusOr<SecretKey> Keyring::DeriveStreamKey(KeyId id, absl::string_view salt,
                                                   absl::string_view info) const {
  std::lock_guard<std::mutex> l(mu_);
  const Entry* e = FindLocked(id);
  if (e == nullptr) return MissingKeyError(id);
  return HkdfSha256(e->dek.key, salt, info, kAeadKeySize);
}

absl::StatusOr<SecretKey> Keyring::DeriveStreamKeyForWriting(KeyId id, absl::string_view salt,
                                                             absl::string_view info) const {
  std::shared_ptr<KeyUsage> usage = UsageOf(id);
  if (usage == nullptr) return MissingKeyError(id);
  // Outside mu_: a reservation writes the key file.
  SEALWAL_RETURN_IF_ERROR(usage->Consume(1));
  return DeriveStreamKey(id, salt, info);
}

std::shared_ptr<KeyUsage> Keyring::UsageOf(KeyId id) const {
  std::lock_guard<std::mutex> l(mu_);
  const Entry* e = FindLocked(id);
  return e == nullptr ? nullptr : e->usage;
}

uint64_t Keyring::encryptions() const {
  std::optional<KeyId> id = write_key_id();
  if (!id.has_value()) return 0;
  return UsageOf(*id)->used();
}

bool Keyring::rotation_required() const {
  std::optional<KeyId> id = write_key_id();
  return id.has_value() && UsageOf(*id)->used() >= options_.rotation_threshold;
}

}  // namespace sealwal::encryption
