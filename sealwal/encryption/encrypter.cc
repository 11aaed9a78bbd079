#include "sealwal/encryption/encrypter.h"

#include <openssl/rand.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

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
      usage_(options.usage != nullptr
                 ? options.usage
                 : std::make_shared<KeyUsage>(key_id, options.initial_encryptions)) {
  aad_.reserve(kMaxAadSizeWithoutExtra);
}

// One helper thread that runs one job at a time for EncryptBatchTo. A
// persistent thread: starting one per Save would cost more than it saves.
//
// The job's state is an atomic that the caller never sleeps on: at the end
// of a batch the job is either taken back before the helper started it or
// about to finish (the helper seals one chunk at a time), so the caller
// spins. Sleeping there on a condition variable cost a futex sleep and
// wake-up per batch, as much as the helper saved at 100 KiB batches. The
// helper itself sleeps between jobs (spinning for the next batch gained
// nothing measurable on our VMs and would burn a core).
class AeadEncrypter::Helper {
 public:
  Helper() : thread_([this] { Loop(); }) {}
  ~Helper() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Hands `job` to the thread. The previous job must be finished or taken
  // back (TakeBackOrWait).
  void Start(std::function<void()> job) {
    job_ = std::move(job);
    {
      std::lock_guard<std::mutex> l(mu_);
      state_.store(kPending, std::memory_order_release);
    }
    cv_.notify_one();
  }

  // Takes the job back if the thread has not started it (its work was all
  // done meanwhile), else waits, spinning, for it to return.
  void TakeBackOrWait() {
    State expected = kPending;
    if (state_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel)) {
      job_ = nullptr;
      return;
    }
    for (int spins = 0; state_.load(std::memory_order_acquire) != kIdle; ++spins) {
      if (spins < 1000) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();  // the helper may have lost its core
      }
    }
  }

 private:
  enum State : uint32_t { kIdle, kPending, kRunning };

  void Loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stop_ || state_.load(std::memory_order_relaxed) == kPending; });
        if (stop_) return;
      }
      State expected = kPending;
      if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
        continue;  // taken back meanwhile
      }
      job_();
      job_ = nullptr;
      state_.store(kIdle, std::memory_order_release);
    }
  }

  std::function<void()> job_;  // written by Start, run by whoever claims it
  std::atomic<State> state_{kIdle};
  std::mutex mu_;  // for sleeping between jobs
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;  // last: starts after the fields above exist
};

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
  if (options.usage != nullptr && options.usage->id() != key_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the usage counter of key id ", FormatKeyId(options.usage->id()),
        " cannot count an Encrypter for key id ", FormatKeyId(key_id)));
  }
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<Aead> aead, Aead::Create(options.algorithm, key));
  std::unique_ptr<AeadEncrypter> e(new AeadEncrypter(key_id, std::move(aead), options));
  if (options.seal_threads < 0 || options.seal_threads > kMaxSealThreads) {
    return absl::InvalidArgumentError(absl::StrCat("seal_threads ", options.seal_threads,
                                                   " is outside 0 .. ", kMaxSealThreads));
  }
  int threads = options.seal_threads;
  if (threads == 0) {
    threads = static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1,
                                                    kMaxSealThreads));
  }
  e->workers_.resize(static_cast<size_t>(threads - 1));
  for (Worker& w : e->workers_) {
    SEALWAL_ASSIGN_OR_RETURN(w.aead, Aead::Create(options.algorithm, key));
    w.aad.reserve(kMaxAadSizeWithoutExtra);
  }
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

absl::StatusOr<uint64_t> AeadEncrypter::Reserve(uint64_t n) {
  // Counted (and, for a persistent counter, reserved in the key file)
  // before sealing: a nonce handed to OpenSSL is spent even if the seal
  // then fails, and the limit is about nonces.
  SEALWAL_RETURN_IF_ERROR(usage_->Consume(n));
  const uint64_t first = nonce_counter_;
  nonce_counter_ += n;  // wraps mod 2^64 by design
  return first;
}

absl::Status AeadEncrypter::Prepare(const AadContext& ctx) {
  SEALWAL_ASSIGN_OR_RETURN(uint64_t c, Reserve(1));
  aad_.clear();
  SEALWAL_RETURN_IF_ERROR(AppendAssociatedData(ctx, key_id_, &aad_));
  for (int i = 11; i >= 4; --i) {
    nonce_[i] = static_cast<char>(c & 0xff);
    c >>= 8;
  }
  return absl::OkStatus();
}

absl::StatusOr<encryptionpb::EncryptedRecord> AeadEncrypter::Encrypt(const AadContext& ctx,
                                                                  absl::string_view plaintext) {
  SEALWAL_RETURN_IF_ERROR(Prepare(ctx));
  const absl::string_view nonce(nonce_.data(), nonce_.size());
  encryptionpb::EncryptedRecord record;
  record.set_algorithm(ToProto(aead_->algorithm()));
  std::string* data = record.mutable_data();
  data->reserve(plaintext.size() + kAeadTagSize);
  SEALWAL_RETURN_IF_ERROR(aead_->Seal(nonce, aad_, plaintext, data));
  record.set_nonce(nonce.data(), nonce.size());
  record.set_key_id(key_id_.value());
  return record;
}

absl::Status AeadEncrypter::EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                                      std::string* serialized_record) {
  serialized_record->clear();
  SEALWAL_ASSIGN_OR_RETURN(uint64_t counter, Reserve(1));
  return SealRecord(aead_.get(), &aad_, ctx, counter, plaintext, serialized_record);
}

absl::Status AeadEncrypter::SealRecord(Aead* aead, std::string* aad, const AadContext& ctx,
                                       uint64_t counter, absl::string_view plaintext,
                                       std::string* out) const {
  out->clear();
  aad->clear();
  SEALWAL_RETURN_IF_ERROR(AppendAssociatedData(ctx, key_id_, aad));
  char nonce[kAeadNonceSize];
  std::memcpy(nonce, nonce_.data(), 4);  // this encrypter's prefix
  for (int i = 11; i >= 4; --i) {
    nonce[i] = static_cast<char>(counter & 0xff);
    counter >>= 8;
  }
  const uint64_t data_len = plaintext.size() + kAeadTagSize;
  // Fields in field-number order, defaults omitted: exactly protobuf's own
  // serialization, so records compare equal whichever path wrote them.
  // 2 (algorithm) + 11 (data tag + varint) + 14 (nonce) + 5 (key id).
  out->reserve(32 + data_len);
  // Built in small arrays and appended whole: byte-wise push_back showed
  // up in profiles of small records.
  const char head[3] = {kTagAlgorithm, static_cast<char>(ToProto(aead->algorithm())), kTagData};
  out->append(head, sizeof(head));
  PutVarint(data_len, out);
  absl::Status s = aead->Seal(absl::string_view(nonce, kAeadNonceSize), *aad, plaintext, out);
  if (!s.ok()) {
    out->clear();
    return s;
  }
  char tail[2 + kAeadNonceSize + 5];
  tail[0] = kTagNonce;
  tail[1] = static_cast<char>(kAeadNonceSize);
  std::memcpy(tail + 2, nonce, kAeadNonceSize);
  tail[2 + kAeadNonceSize] = kTagKeyId;
  const uint32_t id = key_id_.value();
  for (int i = 0; i < 4; ++i) tail[3 + kAeadNonceSize + i] = static_cast<char>(id >> (8 * i));
  out->append(tail, sizeof(tail));
  return absl::OkStatus();
}

absl::Status AeadEncrypter::EncryptBatchTo(absl::Span<const AadContext> ctxs,
                                           absl::Span<const absl::string_view> plains,
                                           std::string* outs, BatchReady ready) {
  const size_t n = ctxs.size();
  if (n == 0) return absl::OkStatus();
  if (plains.size() != n) return absl::InvalidArgumentError("EncryptBatchTo: size mismatch");
  size_t bytes = 0;
  for (absl::string_view p : plains) bytes += p.size();
  SEALWAL_ASSIGN_OR_RETURN(const uint64_t first, Reserve(n));
  auto seal_range = [&](Aead* aead, std::string* aad, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      absl::Status s = SealRecord(aead, aad, ctxs[i], first + i, plains[i], &outs[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (n < 2 || bytes < kParallelMinBytes || workers_.empty()) {
    SEALWAL_RETURN_IF_ERROR(seal_range(aead_.get(), &aad_, 0, n));
    return ready(0, n);
  }

  // Chunks of about 1/32 of the batch (4 to 64 KiB): small enough that
  // every thread stays busy to the end and the caller starts early, large
  // enough that claiming one costs nothing next to sealing it.
  const size_t target = std::clamp<size_t>(bytes / 32, 4 << 10, 64 << 10);
  chunk_begin_.clear();
  for (size_t i = 0, acc = target; i < n; ++i) {
    if (acc >= target) {
      chunk_begin_.push_back(i);
      acc = 0;
    }
    acc += plains[i].size() + 1;  // +1: empty payloads still cost a seal
  }
  const size_t chunks = chunk_begin_.size();
  chunk_begin_.push_back(n);
  if (chunk_capacity_ < chunks) {
    chunk_state_ = std::make_unique<std::atomic<uint8_t>[]>(chunks);
    chunk_capacity_ = chunks;
  }
  enum : uint8_t { kPending, kSealed, kFailed };
  for (size_t c = 0; c < chunks; ++c) chunk_state_[c].store(kPending, std::memory_order_relaxed);

  std::atomic<size_t> next_claim{0};
  std::atomic<bool> stop{false};
  auto seal_chunk = [&](Aead* aead, std::string* aad, size_t c) {
    absl::Status s = seal_range(aead, aad, chunk_begin_[c], chunk_begin_[c + 1]);
    chunk_state_[c].store(s.ok() ? kSealed : kFailed, std::memory_order_release);
    return s;
  };
  for (Worker& w : workers_) {
    if (w.thread == nullptr) w.thread = std::make_unique<Helper>();
    w.status = absl::OkStatus();
    w.thread->Start([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t c = next_claim.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks) return;
        absl::Status s = seal_chunk(w.aead.get(), &w.aad, c);
        if (!s.ok()) {
          w.status = std::move(s);
          return;
        }
      }
    });
  }

  // This thread reports chunks in order; while the next one is not sealed
  // it seals one of its own, and only when none is left unclaimed does it
  // wait for the helper to finish the chunk it holds.
  absl::Status s;
  size_t next_ready = 0;
  while (s.ok() && next_ready < chunks) {
    const uint8_t state = chunk_state_[next_ready].load(std::memory_order_acquire);
    if (state == kSealed) {
      s = ready(chunk_begin_[next_ready], chunk_begin_[next_ready + 1]);
      ++next_ready;
      continue;
    }
    if (state == kFailed) break;  // a helper's error, read below
    if (next_claim.load(std::memory_order_relaxed) < chunks) {
      const size_t c = next_claim.fetch_add(1, std::memory_order_relaxed);
      if (c < chunks) s = seal_chunk(aead_.get(), &aad_, c);
      continue;
    }
    std::this_thread::yield();  // a helper holds chunk next_ready
  }
  stop.store(true, std::memory_order_relaxed);
  for (Worker& w : workers_) w.thread->TakeBackOrWait();
  if (s.ok() && next_ready < chunks) {
    for (Worker& w : workers_) {
      if (!w.status.ok()) return w.status;
    }
  }
  return s;
}

namespace {

class NotEncryptedEncrypter final : public Encrypter {
 public:
  absl::StatusOr<encryptionpb::EncryptedRecord> Encrypt(const AadContext&,
                                                     absl::string_view plaintext) override {
    encryptionpb::EncryptedRecord record;
    record.set_algorithm(encryptionpb::EncryptedRecord::NOT_ENCRYPTED);
    record.set_data(plaintext.data(), plaintext.size());
    return record;
  }
  absl::Status EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                         std::string* serialized_record) override {
    serialized_record->clear();
    SEALWAL_ASSIGN_OR_RETURN(encryptionpb::EncryptedRecord record, Encrypt(ctx, plaintext));
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
