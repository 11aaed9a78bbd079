#include "encryption/encrypter.h"

#include <openssl/rand.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace sealwal::encryption {
namespace {

// Protobuf wire-format tags of EncryptedRecord's fields: (number << 3) | type.
constexpr char kTagAlgorithm = 0x08;  // field 1, varint
constexpr char kTagData = 0x12;       // field 2, length-delimited
constexpr char kTagNonce = 0x1a;      // field 3, length-delimited
constexpr char kTagKeyId = 0x25;      // field 4, fixed32

// Appends the varint encoding of v (at most 10 bytes) in one append.
void PutVarint(uint64_t v, std::string* out) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

}  // namespace

AeadEncrypter::AeadEncrypter(KeyId key_id, std::unique_ptr<Aead> aead, const EncrypterOptions& options)
    : key_id_(key_id),
      aead_(std::move(aead)),
      rotation_threshold_(options.rotation_threshold),
      encryptions_(options.initial_encryptions) {
  aad_.reserve(kMaxAadSizeWithoutExtra);
}

AeadEncrypter::~AeadEncrypter() = default;

absl::StatusOr<std::unique_ptr<AeadEncrypter>> AeadEncrypter::Create(
    const Dek& dek, EncrypterOptions options) {
  options.algorithm = dek.algorithm;
  return Create(dek.id, dek.key, options);
}

absl::StatusOr<std::unique_ptr<AeadEncrypter>> AeadEncrypter::Create(
    KeyId key_id, const SecretKey& key, const EncrypterOptions& options) {
  if (key_id == KeyId()) {
    return absl::InvalidArgumentError("an Encrypter needs a key id other than 0 (0 means none)");
  }
  if (options.algorithm == Algorithm::kNotEncrypted) {
    return absl::InvalidArgumentError(
        "an Encrypter needs a real algorithm; store plaintext without a codec instead");
  }
  if (options.rotation_threshold == 0 || options.rotation_threshold > kMaxEncryptionsPerKey) {
    return absl::InvalidArgumentError(absl::StrCat("rotation threshold ",
                                                   options.rotation_threshold,
                                                   " is outside 1 .. 2^32"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Aead> aead, Aead::Create(options.algorithm, key));
  std::unique_ptr<AeadEncrypter> e(new AeadEncrypter(key_id, std::move(aead), options));
  // A random starting point in the 96-bit space per Encrypter: a restarted
  // writer under the same DEK does not replay the previous run's nonces.
  unsigned char start[kAeadNonceSize];
  if (RAND_bytes(start, sizeof(start)) != 1) {
    return absl::InternalError("RAND_bytes failed while choosing a nonce start");
  }
  for (int i = 0; i < 4; ++i) e->nonce_[i] = static_cast<char>(start[i]);
  uint64_t counter = 0;
  for (int i = 4; i < 12; ++i) counter = counter << 8 | start[i];
  e->nonce_counter_ = counter;
  return e;
}

absl::Status AeadEncrypter::Prepare(const AadContext& ctx) {
  const uint64_t used = encryptions_.load(std::memory_order_relaxed);
  if (used >= kMaxEncryptionsPerKey) {
    return absl::ResourceExhaustedError(
        absl::StrCat("DEK exhausted, rotate: key id ", FormatKeyId(key_id_), " has sealed ",
                     used, " messages and may seal at most 2^32"));
  }
  aad_.clear();
  RETURN_IF_ERROR(AppendAssociatedData(ctx, key_id_, &aad_));
  uint64_t c = nonce_counter_++;  // wraps mod 2^64 by design
  for (int i = 11; i >= 4; --i) {
    nonce_[i] = static_cast<char>(c & 0xff);
    c >>= 8;
  }
  // Counted before sealing: a nonce handed to OpenSSL is spent even if the
  // seal then fails, and the limit is about nonces.
  encryptions_.store(used + 1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<sealwalpb::EncryptedRecord> AeadEncrypter::Encrypt(const AadContext& ctx,
                                                                  absl::string_view plaintext) {
  RETURN_IF_ERROR(Prepare(ctx));
  const absl::string_view nonce(nonce_.data(), nonce_.size());
  sealwalpb::EncryptedRecord record;
  record.set_algorithm(ToProto(aead_->algorithm()));
  std::string* data = record.mutable_data();
  data->reserve(plaintext.size() + kAeadTagSize);
  RETURN_IF_ERROR(aead_->Seal(nonce, aad_, plaintext, data));
  record.set_nonce(nonce.data(), nonce.size());
  record.set_key_id(key_id_.value());
  return record;
}

absl::Status AeadEncrypter::EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                                      std::string* serialized_record) {
  serialized_record->clear();
  RETURN_IF_ERROR(Prepare(ctx));
  const absl::string_view nonce(nonce_.data(), nonce_.size());
  const uint64_t data_len = plaintext.size() + kAeadTagSize;
  // Fields in field-number order, defaults omitted: exactly protobuf's own
  // serialization, so records compare equal whichever path wrote them.
  // 2 (algorithm) + 11 (data tag + varint) + 14 (nonce) + 5 (key id).
  serialized_record->reserve(32 + data_len);
  // Built in small arrays and appended whole: byte-wise push_back showed
  // up in profiles of small records.
  const char head[3] = {kTagAlgorithm, static_cast<char>(ToProto(aead_->algorithm())), kTagData};
  serialized_record->append(head, sizeof(head));
  PutVarint(data_len, serialized_record);
  absl::Status s = aead_->Seal(nonce, aad_, plaintext, serialized_record);
  if (!s.ok()) {
    serialized_record->clear();
    return s;
  }
  char tail[2 + kAeadNonceSize + 5];
  tail[0] = kTagNonce;
  tail[1] = static_cast<char>(kAeadNonceSize);
  std::memcpy(tail + 2, nonce.data(), kAeadNonceSize);
  tail[2 + kAeadNonceSize] = kTagKeyId;
  const uint32_t id = key_id_.value();
  for (int i = 0; i < 4; ++i) tail[3 + kAeadNonceSize + i] = static_cast<char>(id >> (8 * i));
  serialized_record->append(tail, sizeof(tail));
  return absl::OkStatus();
}

namespace {

class NotEncryptedEncrypter final : public Encrypter {
 public:
  absl::StatusOr<sealwalpb::EncryptedRecord> Encrypt(const AadContext&,
                                                     absl::string_view plaintext) override {
    sealwalpb::EncryptedRecord record;
    record.set_algorithm(sealwalpb::EncryptedRecord::NOT_ENCRYPTED);
    record.set_data(plaintext.data(), plaintext.size());
    return record;
  }
  absl::Status EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                         std::string* serialized_record) override {
    serialized_record->clear();
    ASSIGN_OR_RETURN(sealwalpb::EncryptedRecord record, Encrypt(ctx, plaintext));
    if (!record.SerializeToString(serialized_record)) {
      serialized_record->clear();
      return absl::InternalError("cannot serialize a NOT_ENCRYPTED record");
    }
    return absl::OkStatus();
  }
  KeyId key_id() const override { return KeyId(); }
  Algorithm algorithm() const override { return Algorithm::kNotEncrypted; }
  uint64_t encryptions() const override { return 0; }
  bool rotation_required() const override { return false; }
};

}  // namespace

std::unique_ptr<Encrypter> NewNotEncryptedEncrypter() {
  return std::make_unique<NotEncryptedEncrypter>();
}

}  // namespace sealwal::encryption
