#include "sealwal/encryption/decrypter.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::encryption {

// A borrowed context plus the AAD buffer that goes with it: both are
// reused, so a steady-state Decrypt allocates nothing but its output.
struct Slot {
  std::unique_ptr<Aead> aead;
  std::string aad;
};

struct MultiDecrypter::KeyEntry {
  KeyEntry(KeyId id, Algorithm algorithm, SecretKey key, size_t max_idle)
      : id(id), algorithm(algorithm), key(std::move(key)), max_idle(max_idle) {}

  // Takes an idle slot, or makes one when all are in use.
  absl::StatusOr<std::unique_ptr<Slot>> Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        std::unique_ptr<Slot> slot = std::move(idle.back());
        idle.pop_back();
        return slot;
      }
    }
    // Outside the lock: setting up a context costs a key schedule.
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<Aead> aead, Aead::Create(algorithm, key));
    auto slot = std::make_unique<Slot>();
    slot->aead = std::move(aead);
    slot->aad.reserve(kMaxAadSizeWithoutExtra);
    return slot;
  }

  void Release(std::unique_ptr<Slot> slot) {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < max_idle) idle.push_back(std::move(slot));
  }

  const KeyId id;
  const Algorithm algorithm;
  const SecretKey key;  // immutable after construction: read without mu
  const size_t max_idle;
  std::mutex mu;  // held only to push/pop `idle`
  std::vector<std::unique_ptr<Slot>> idle;  // guarded by mu
};

// The fields of an EncryptedRecord, viewed in place.
struct internal::EncryptedRecordView {
  int algorithm = 0;
  absl::string_view data;
  absl::string_view nonce;
  uint32_t key_id = 0;
};

namespace {

using RecordView = internal::EncryptedRecordView;

bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

// Reads the canonical encoding (what Encrypter and protobuf write: known
// fields once each, in field order, one-byte algorithm) without copying.
// Returns false for anything else. Only this encoding is accepted from disk:
// a record has exactly one byte form, so nobody can rewrite a stored record
// into another encoding that still authenticates (the key file's records
// are held to the same rule).
template <typename View>
bool ParseCanonical(absl::string_view in, View* v) {
  size_t pos = 0;
  int last_field = 0;
  while (pos < in.size()) {
    const uint8_t tag = static_cast<uint8_t>(in[pos++]);
    const int field = tag >> 3;
    if (field <= last_field) return false;
    last_field = field;
    switch (tag) {
      case 0x08: {  // algorithm
        if (pos >= in.size() || (static_cast<uint8_t>(in[pos]) & 0x80) != 0) return false;
        v->algorithm = static_cast<uint8_t>(in[pos++]);
        break;
      }
      case 0x12:    // data
      case 0x1a: {  // nonce
        uint64_t len = 0;
        if (!ReadVarint(in, &pos, &len) || len > in.size() - pos) return false;
        (tag == 0x12 ? v->data : v->nonce) = in.substr(pos, static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
        break;
      }
      case 0x25: {  // key_id
        if (in.size() - pos < 4) return false;
        v->key_id = LoadLE32(in.data() + pos);  // fixed32: little-endian
        pos += 4;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// What a payload that is not a canonical EncryptedRecord gets: kDataLoss,
// whether it is another valid protobuf encoding or not protobuf at all.
absl::Status NotCanonical(absl::string_view bytes, const AadContext& ctx) {
  encryptionpb::EncryptedRecord record;
  const bool parses = record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  return absl::DataLossError(absl::StrCat(
      "payload for ", DescribeAadContext(ctx),
      parses ? " is an EncryptedRecord in a non-canonical encoding (refused: one record, one "
               "byte form) ("
             : " is not an EncryptedRecord (",
      bytes.size(), " bytes)"));
}

RecordView ViewOf(const encryptionpb::EncryptedRecord& record) {
  RecordView v;
  v.algorithm = record.algorithm();
  v.data = record.data();
  v.nonce = record.nonce();
  v.key_id = record.key_id();
  return v;
}

}  // namespace

MultiDecrypter::MultiDecrypter(const MultiDecrypterOptions& options) : options_(options) {}
MultiDecrypter::~MultiDecrypter() = default;

std::unique_ptr<MultiDecrypter> MultiDecrypter::Create(const MultiDecrypterOptions& options) {
  return std::unique_ptr<MultiDecrypter>(new MultiDecrypter(options));
}

absl::Status MultiDecrypter::AddKey(KeyId key_id, Algorithm algorithm, SecretKey key) {
  if (key_id == KeyId()) {
    return absl::InvalidArgumentError("cannot add a DEK with key id 0 (0 means none)");
  }
  if (algorithm == Algorithm::kNotEncrypted) {
    return absl::InvalidArgumentError(
        absl::StrCat("DEK ", FormatKeyId(key_id), " needs a real algorithm, not not-encrypted"));
  }
  // Build the first context now: it validates algorithm and key, and the
  // first reader finds a warm slot.
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<Aead> aead, Aead::Create(algorithm, key));
  auto entry = std::make_shared<KeyEntry>(key_id, algorithm, std::move(key),
                                          std::max<size_t>(1, options_.max_idle_contexts_per_key));
  auto slot = std::make_unique<Slot>();
  slot->aead = std::move(aead);
  slot->aad.reserve(kMaxAadSizeWithoutExtra);
  entry->Release(std::move(slot));

  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = keys_.find(key_id);
  if (it != keys_.end()) {
    if (it->second->algorithm == algorithm && it->second->key == entry->key) {
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "a different DEK with key id ", FormatKeyId(key_id), " is already held"));
  }
  keys_.emplace(key_id, std::move(entry));
  return absl::OkStatus();
}

absl::Status MultiDecrypter::RemoveKey(KeyId key_id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (keys_.erase(key_id) == 0) {
    return absl::NotFoundError(absl::StrCat("no DEK with key id ", FormatKeyId(key_id)));
  }
  return absl::OkStatus();
}

bool MultiDecrypter::HasKey(KeyId key_id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return keys_.contains(key_id);
}

std::vector<KeyId> MultiDecrypter::KeyIds() const {
  std::vector<KeyId> ids;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    ids.reserve(keys_.size());
    for (const auto& [id, entry] : keys_) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end(),
            [](KeyId a, KeyId b) { return a.value() < b.value(); });
  return ids;
}

std::shared_ptr<MultiDecrypter::KeyEntry> MultiDecrypter::Find(KeyId key_id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = keys_.find(key_id);
  return it == keys_.end() ? nullptr : it->second;
}

struct MultiDecrypter::Borrowed {
  std::shared_ptr<KeyEntry> entry;  // null until the first record
  std::unique_ptr<Slot> slot;

  ~Borrowed() { Return(); }
  void Return() {
    if (entry != nullptr && slot != nullptr) entry->Release(std::move(slot));
    slot.reset();
    entry.reset();
  }
};

absl::Status MultiDecrypter::DecryptView(const RecordView& record, const AadContext& ctx,
                                         std::string* out, char* in_place,
                                         Borrowed* borrowed) const {
  if (out != nullptr) out->clear();
  absl::StatusOr<Algorithm> algorithm = AlgorithmFromProto(record.algorithm);
  if (!algorithm.ok()) {
    return absl::DataLossError(absl::StrCat("cannot decrypt ", DescribeAadContext(ctx), ": ",
                                            algorithm.status().message()));
  }
  if (*algorithm == Algorithm::kNotEncrypted) {
    if (!options_.allow_not_encrypted) {
      return absl::DataLossError(absl::StrCat(
          "refusing a NOT_ENCRYPTED record for ", DescribeAadContext(ctx),
          ": an encrypted store accepts no plaintext (a downgrade would let anyone who can "
          "write the disk replace data)"));
    }
    if (out != nullptr) out->assign(record.data.data(), record.data.size());
    return absl::OkStatus();
  }
  if (record.nonce.size() != kAeadNonceSize) {
    return absl::DataLossError(absl::StrCat("record for ", DescribeAadContext(ctx), " has a ",
                                            record.nonce.size(), "-byte nonce, want ",
                                            kAeadNonceSize));
  }
  const KeyId key_id(record.key_id);
  if (key_id == KeyId()) {
    return absl::DataLossError(absl::StrCat("encrypted record for ", DescribeAadContext(ctx),
                                            " names no key (key id 0)"));
  }
  // A session that used this key last still holds its entry and context.
  const bool held = borrowed != nullptr && borrowed->entry != nullptr &&
                    borrowed->entry->id == key_id && borrowed->slot != nullptr;
  std::shared_ptr<KeyEntry> entry = held ? borrowed->entry : Find(key_id);
  if (entry == nullptr) {
    return MissingKeyError(key_id, absl::StrCat("record: ", DescribeAadContext(ctx)));
  }
  if (entry->algorithm != *algorithm) {
    return absl::DataLossError(absl::StrCat(
        "record for ", DescribeAadContext(ctx), " claims ", AlgorithmName(*algorithm),
        " but DEK ", FormatKeyId(key_id), " is a ", AlgorithmName(entry->algorithm), " key"));
  }
  std::unique_ptr<Slot> slot;
  if (held) {
    slot = std::move(borrowed->slot);
  } else {
    SEALWAL_ASSIGN_OR_RETURN(slot, entry->Acquire());
  }
  slot->aad.clear();
  absl::Status s = AppendAssociatedData(ctx, key_id, &slot->aad);
  if (s.ok()) {
    s = out == nullptr ? slot->aead->OpenInPlace(record.nonce, slot->aad,
                                                 absl::MakeSpan(in_place, record.data.size()))
                       : slot->aead->Open(record.nonce, slot->aad, record.data, out);
  }
  // An Aead stays usable after a failed Open, so the slot goes back either
  // way: to the session, or to the key's pool.
  if (borrowed != nullptr) {
    if (!held) borrowed->Return();
    borrowed->entry = entry;
    borrowed->slot = std::move(slot);
  } else {
    entry->Release(std::move(slot));
  }
  if (s.code() == absl::StatusCode::kDataLoss) {
    return absl::DataLossError(absl::StrCat(
        "cannot authenticate ", DescribeAadContext(ctx), " under key id ", FormatKeyId(key_id),
        " (", AlgorithmName(*algorithm),
        "): the ciphertext, its nonce, its key id or its place was altered, or the key is "
        "wrong"));
  }
  return s;
}

absl::Status MultiDecrypter::Decrypt(const encryptionpb::EncryptedRecord& record,
                                     const AadContext& ctx, std::string* out) const {
  return DecryptView(ViewOf(record), ctx, out);
}

absl::Status MultiDecrypter::DecryptSerialized(absl::string_view serialized_record,
                                               const AadContext& ctx, std::string* out) const {
  return DecryptSerializedWith(serialized_record, ctx, out, nullptr);
}

absl::Status MultiDecrypter::DecryptSerializedWith(absl::string_view serialized_record,
                                                   const AadContext& ctx, std::string* out,
                                                   Borrowed* borrowed) const {
  RecordView view;
  if (ParseCanonical(serialized_record, &view)) {
    return DecryptView(view, ctx, out, nullptr, borrowed);
  }
  out->clear();
  return NotCanonical(serialized_record, ctx);
}

class MultiDecrypter::MultiSession final : public Decrypter::Session {
 public:
  explicit MultiSession(const MultiDecrypter* owner) : owner_(owner) {}
  absl::Status DecryptSerialized(absl::string_view serialized_record, const AadContext& ctx,
                                 std::string* out) override {
    return owner_->DecryptSerializedWith(serialized_record, ctx, out, &borrowed_);
  }
  absl::Status DecryptSerializedInPlace(absl::Span<char> serialized_record, const AadContext& ctx,
                                        std::string* scratch,
                                        absl::string_view* plaintext) override {
    return owner_->DecryptSerializedInPlaceWith(serialized_record, ctx, scratch, plaintext,
                                                &borrowed_);
  }

 private:
  const MultiDecrypter* const owner_;
  Borrowed borrowed_;  // given back to its key's pool on destruction
};

std::unique_ptr<Decrypter::Session> MultiDecrypter::NewSession() const {
  return std::make_unique<MultiSession>(this);
}

absl::Status MultiDecrypter::DecryptSerializedInPlace(absl::Span<char> serialized_record,
                                                      const AadContext& ctx,
                                                      std::string* scratch,
                                                      absl::string_view* plaintext) const {
  return DecryptSerializedInPlaceWith(serialized_record, ctx, scratch, plaintext, nullptr);
}

absl::Status MultiDecrypter::DecryptSerializedInPlaceWith(absl::Span<char> serialized_record,
                                                          const AadContext& ctx,
                                                          std::string* scratch,
                                                          absl::string_view* plaintext,
                                                          Borrowed* borrowed) const {
  const absl::string_view bytes(serialized_record.data(), serialized_record.size());
  RecordView view;
  if (!ParseCanonical(bytes, &view)) return NotCanonical(bytes, ctx);
  // An empty data field may view nothing at all (a null pointer): no
  // offset to take then, and nothing to decrypt.
  char* data = view.data.empty() ? serialized_record.data()
                                 : serialized_record.data() + (view.data.data() - bytes.data());
  SEALWAL_RETURN_IF_ERROR(DecryptView(view, ctx, nullptr, data, borrowed));
  // DecryptView succeeded, so the algorithm parsed; only AEADs carry a tag.
  const bool tagged = view.algorithm != encryptionpb::EncryptedRecord::NOT_ENCRYPTED;
  *plaintext = absl::string_view(data, view.data.size() - (tagged ? kAeadTagSize : 0));
  return absl::OkStatus();
}

absl::StatusOr<KeyId> MultiDecrypter::KeyIdOf(absl::string_view serialized_record) {
  RecordView view;
  if (ParseCanonical(serialized_record, &view)) return KeyId(view.key_id);
  encryptionpb::EncryptedRecord record;
  if (!record.ParseFromArray(serialized_record.data(),
                             static_cast<int>(serialized_record.size()))) {
    return absl::DataLossError("not an EncryptedRecord");
  }
  return KeyId(record.key_id());
}

absl::Status MissingKeyError(KeyId id, absl::string_view context) {
  absl::Status s = absl::NotFoundError(
      absl::StrCat("no DEK with key id ", FormatKeyId(id), " (is the key file the right one?)",
                   context.empty() ? "" : "; ", context));
  s.SetPayload(kMissingKeyPayload, absl::Cord(FormatKeyId(id)));
  return s;
}

bool IsMissingKeyError(const absl::Status& status) {
  return absl::IsNotFound(status) && status.GetPayload(kMissingKeyPayload).has_value();
}

}  // namespace sealwal::encryption
