#include "sealwal/walcrypt/wal_codec.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::walcrypt {

using encryption::AeadEncrypter;
using encryption::Algorithm;
using encryption::FormatKeyId;
using encryption::MultiDecrypter;
using encryption::Purpose;

bool IsEncryptedWalDir(absl::string_view dir) {
  return wal::IsEncryptedDirName(std::string(dir));
}

AadContext WalAadContext(const wal::PayloadContext& ctx) {
  AadContext aad;
  if (ctx.kind == wal::PayloadContext::Kind::kMetadata) {
    // Metadata has no place in the log beyond "the metadata": its fields
    // stay 0 whatever the WAL passes, so every segment's copy verifies.
    aad.purpose = Purpose::kWalMetadata;
    return aad;
  }
  aad.purpose = Purpose::kWalEntry;
  aad.index = ctx.index;
  aad.term = ctx.term;
  aad.entry_type = ctx.entry_type;
  return aad;
}

WalCodec::WalCodec(std::unique_ptr<Encrypter> encrypter,
                   std::shared_ptr<const Decrypter> decrypter)
    : encrypter_(std::move(encrypter)), decrypter_(std::move(decrypter)) {}

absl::StatusOr<std::unique_ptr<WalCodec>> WalCodec::Create(WalCodecOptions options) {
  if (options.decrypter == nullptr) {
    return absl::InvalidArgumentError("a WAL codec needs a decrypter");
  }
  if (options.encrypter != nullptr) {
    if (options.encrypter->algorithm() == Algorithm::kNotEncrypted) {
      // A plaintext WAL is a WAL without a codec, in a directory not named
      // "-encrypted"; mixing the two would make downgrades look normal.
      return absl::InvalidArgumentError(
          "an encrypted WAL cannot be written with the not-encrypted pass-through");
    }
    if (!options.decrypter->HasKey(options.encrypter->key_id())) {
      return absl::InvalidArgumentError(
          absl::StrCat("the decrypter does not hold the encrypter's key id ",
                       FormatKeyId(options.encrypter->key_id()),
                       ": the WAL could not read back what it writes"));
    }
  }
  return std::unique_ptr<WalCodec>(
      new WalCodec(std::move(options.encrypter), std::move(options.decrypter)));
}

absl::StatusOr<std::unique_ptr<WalCodec>> WalCodec::ForDek(const Dek& dek,
                                                           const EncrypterOptions& options) {
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<AeadEncrypter> enc, AeadEncrypter::Create(dek, options));
  std::shared_ptr<MultiDecrypter> dec = MultiDecrypter::Create();
  SEALWAL_RETURN_IF_ERROR(dec->AddKey(dek.id, dek.algorithm, dek.key.Clone()));
  WalCodecOptions o;
  o.encrypter = std::move(enc);
  o.decrypter = std::move(dec);
  return Create(std::move(o));
}

absl::StatusOr<std::unique_ptr<WalCodec>> WalCodec::ForKeyring(std::shared_ptr<Keyring> keys,
                                                               const EncrypterOptions& options) {
  if (keys == nullptr) return absl::InvalidArgumentError("a WAL codec needs a keyring");
  const uint64_t generation = keys->write_generation();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<Encrypter> enc, keys->NewEncrypter(options));
  std::unique_ptr<WalCodec> codec(new WalCodec(std::move(enc), keys->shared_decrypter()));
  codec->keys_ = std::move(keys);
  codec->generation_ = generation;
  codec->keyring_options_ = options;
  return codec;
}

absl::Status WalCodec::RefreshEncrypter() {
  if (keys_ == nullptr) return absl::OkStatus();
  const uint64_t generation = keys_->write_generation();
  if (generation == generation_) return absl::OkStatus();  // the common case
  SEALWAL_ASSIGN_OR_RETURN(encrypter_, keys_->NewEncrypter(keyring_options_));
  generation_ = generation;
  return absl::OkStatus();
}

absl::Status WalCodec::Encode(const wal::PayloadContext& ctx, absl::string_view plain,
                              std::string* out) {
  if (absl::Status s = RefreshEncrypter(); !s.ok()) {
    out->clear();
    return s;
  }
  if (encrypter_ == nullptr) {
    out->clear();
    return absl::FailedPreconditionError(
        "this WAL codec is read-only (made without an encrypter)");
  }
  return encrypter_->EncryptTo(WalAadContext(ctx), plain, out);
}

absl::Status WalCodec::EncodeBatch(absl::Span<const wal::PayloadContext> ctxs,
                                   absl::Span<const absl::string_view> plains,
                                   std::string* outs) {
  SEALWAL_RETURN_IF_ERROR(RefreshEncrypter());
  if (encrypter_ == nullptr) {
    return absl::FailedPreconditionError(
        "this WAL codec is read-only (made without an encrypter)");
  }
  batch_aad_.resize(ctxs.size());
  for (size_t i = 0; i < ctxs.size(); ++i) batch_aad_[i] = WalAadContext(ctxs[i]);
  return encrypter_->EncryptBatchTo(batch_aad_, plains, outs);
}

namespace {

// The WAL encodes every entry, empty ones too: no payload at all means it
// was stripped, which must not read back as an empty entry.
absl::Status CheckNotStripped(const wal::PayloadContext& ctx, absl::string_view stored,
                              std::string* out) {
  if (!stored.empty()) return absl::OkStatus();
  out->clear();
  return absl::DataLossError(absl::StrCat(
      "no encrypted payload at index ", ctx.index, " term ", ctx.term,
      " (every entry of an encrypted WAL carries one; it was removed)"));
}

}  // namespace

absl::Status WalCodec::Decode(const wal::PayloadContext& ctx, absl::string_view stored,
                              std::string* out) const {
  SEALWAL_RETURN_IF_ERROR(CheckNotStripped(ctx, stored, out));
  // The decrypter's messages already name the place (purpose, index, term,
  // type) and the key id, and keep kNotFound for a missing key apart from
  // kDataLoss for a failed authentication.
  return decrypter_->DecryptSerialized(stored, WalAadContext(ctx), out);
}

std::unique_ptr<wal::PayloadCodec::DecodeSession> WalCodec::NewDecodeSession() const {
  class Session final : public DecodeSession {
   public:
    explicit Session(std::unique_ptr<Decrypter::Session> s) : s_(std::move(s)) {}
    absl::Status Decode(const wal::PayloadContext& ctx, absl::string_view stored,
                        std::string* out) override {
      SEALWAL_RETURN_IF_ERROR(CheckNotStripped(ctx, stored, out));
      return s_->DecryptSerialized(stored, WalAadContext(ctx), out);
    }
    absl::Status DecodeInPlace(const wal::PayloadContext& ctx, absl::Span<char> stored,
                               std::string* scratch, absl::string_view* plain) override {
      SEALWAL_RETURN_IF_ERROR(
          CheckNotStripped(ctx, absl::string_view(stored.data(), stored.size()), scratch));
      return s_->DecryptSerializedInPlace(stored, WalAadContext(ctx), scratch, plain);
    }

   private:
    const std::unique_ptr<Decrypter::Session> s_;
  };
  return std::make_unique<Session>(decrypter_->NewSession());
}

}  // namespace sealwal::walcrypt
