// Structure-aware fuzzing of the WAL against a model. The input drives a
// random sequence of operations -- Save (appends and overwrites), HardState
// updates, SaveSnapshot, segment cuts (4 KiB segments), injected crashes at
// any write step, simulated power loss, reopen + ReadAll (repairing a torn
// tail) and DEK rotation in an encrypted WAL -- over the fault-injection
// env, and fails on any divergence from the model:
//   - every entry whose Save returned OK (entries are always fsynced) is
//     read back after any crash or power loss, with its data;
//   - a Save that failed may appear not at all or as a prefix of its batch;
//   - nothing else is ever returned.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "testing/fault_injection_file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/wal.h"

namespace {

using namespace sealwal;

void Check(bool ok) {
  if (!ok) std::abort();
}

// SEALWAL_FUZZ_TRACE=1 prints every step, to read a divergence.
const bool kTrace = std::getenv("SEALWAL_FUZZ_TRACE") != nullptr;
#define TRACE(...) \
  do {                                       \
    if (kTrace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

struct ModelEntry {
  uint64_t term;
  std::string data;
};

class Harness {
 public:
  Harness(FuzzedDataProvider* in, bool encrypted)
      : in_(in), mem_(env::NewMemFileSystem()), fault_(mem_.get()), encrypted_(encrypted) {
    if (encrypted_) {
      decrypter_ = encryption::MultiDecrypter::Create();
      RotateKey();
    }
  }

  void Run() {
    wal::WalOptions o = Options();
    auto w = wal::Wal::Create(Dir(), "model", o);
    Check(w.ok());
    wal_ = std::move(*w);
    while (in_->remaining_bytes() > 0) {
      switch (in_->ConsumeIntegralInRange<int>(0, 9)) {
        case 0: case 1: case 2: case 3: Save(); break;
        case 4: SaveState(); break;
        case 5: Snapshot(); break;
        case 6: Crash(in_->ConsumeBool()); break;
        case 7: {
          const int64_t k = in_->ConsumeIntegralInRange<int64_t>(0, 12);
          TRACE("arm crash after %lld ops\n", (long long)k);
          fault_.CrashAfterOps(k);
          break;
        }
        case 8: Reopen(); break;
        case 9: if (encrypted_) { RotateKey(); Reopen(); } break;
      }
    }
    Crash(/*power_loss=*/true);
  }

 private:
  // The directory's name must say what the codec is (Wal::Create/Open).
  const char* Dir() const { return encrypted_ ? "/wal-encrypted" : "/wal"; }

  wal::WalOptions Options() {
    wal::WalOptions o;
    o.fs = &fault_;
    o.segment_size = 4096;
    o.preallocation = in_->ConsumeBool() ? wal::Preallocation::kZeroFill
                                         : wal::Preallocation::kFallocate;
    o.codec = codec_.get();
    return o;
  }

  void RotateKey() {
    auto dek = encryption::Dek::Generate();
    Check(dek.ok());
    Check(decrypter_->AddKey(dek->id, dek->algorithm, dek->key.Clone()).ok());
    auto enc = encryption::AeadEncrypter::Create(*dek);
    Check(enc.ok());
    walcrypt::WalCodecOptions co;
    co.encrypter = std::move(*enc);
    co.decrypter = decrypter_;
    auto codec = walcrypt::WalCodec::Create(std::move(co));
    Check(codec.ok());
    // The WAL borrows the codec: close it before the old codec goes.
    if (wal_ != nullptr) (void)wal_->Close();
    wal_.reset();
    codec_ = std::move(*codec);
  }

  uint64_t last() const { return snap_index_ + log_.size(); }

  void Save() {
    if (wal_ == nullptr) return;
    // Append after the last entry, or overwrite from an earlier index (a
    // new leader); never below the last snapshot.
    uint64_t first = last() + 1;
    if (in_->ConsumeBool() && last() > snap_index_) {
      first = in_->ConsumeIntegralInRange<uint64_t>(snap_index_ + 1, last());
    }
    if (in_->ConsumeBool()) ++term_;
    const int n = in_->ConsumeIntegralInRange<int>(1, 6);
    std::vector<sealwal::raftpb::Entry> batch(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      sealwal::raftpb::Entry& e = batch[static_cast<size_t>(i)];
      e.set_index(first + static_cast<uint64_t>(i));
      e.set_term(term_);
      if (in_->ConsumeBool()) e.set_data(in_->ConsumeRandomLengthString(700));
    }
    sealwal::raftpb::HardState hs;
    hs.set_term(term_);
    hs.set_vote(1);
    hs.set_commit(0);
    absl::Status s = wal_->Save(hs, batch);
    TRACE("save %llu..%llu term %llu: %s\n", (unsigned long long)first,
          (unsigned long long)(first + n - 1), (unsigned long long)term_, s.ToString().c_str());
    if (s.ok()) {
      log_.resize(first - snap_index_ - 1);
      for (const auto& e : batch) log_.push_back({e.term(), e.data()});
      pending_.reset();
    } else {
      pending_ = Pending{first, batch};
      wal_.reset();  // a failed WAL refuses writes; the node restarts it
    }
  }

  void SaveState() {
    if (wal_ == nullptr) return;
    sealwal::raftpb::HardState hs;
    if (in_->ConsumeBool()) ++term_;
    hs.set_term(term_);
    hs.set_vote(in_->ConsumeIntegralInRange<uint64_t>(0, 3));
    hs.set_commit(0);
    absl::Status st = wal_->Save(hs, {});
    TRACE("state term %llu vote %llu: %s\n", (unsigned long long)term_,
          (unsigned long long)hs.vote(), st.ToString().c_str());
    if (!st.ok()) wal_.reset();
  }

  void Snapshot() {
    if (wal_ == nullptr || last() == snap_index_) return;
    // Snapshot records only; ReadAll still starts at {0, 0} and returns
    // every entry, so the model keeps them.
    const uint64_t index = in_->ConsumeIntegralInRange<uint64_t>(snap_index_ + 1, last());
    const uint64_t term = log_[index - snap_index_ - 1].term;
    absl::Status st = wal_->SaveSnapshot({index, term});
    TRACE("snapshot %llu: %s\n", (unsigned long long)index, st.ToString().c_str());
    if (!st.ok()) wal_.reset();
  }

  void Crash(bool power_loss) {
    TRACE("crash power_loss=%d\n", power_loss);
    wal_.reset();
    if (power_loss) Check(fault_.DropUnsyncedData().ok());
    fault_.Reactivate();
    fault_.CrashAfterOps(-1);
    Reopen();
  }

  void Reopen() {
    wal_.reset();
    fault_.CrashAfterOps(-1);
    fault_.Reactivate();
    wal::WalOptions o = Options();
    auto w = wal::Wal::Open(Dir(), {}, o);
    Check(w.ok());
    wal::WalContents c;
    absl::Status s = (*w)->ReadAll(&c);
    TRACE("reopen: %s, %zu entries\n", s.ToString().c_str(), c.entries.size());
    if (!s.ok()) {
      Check(wal::GetWalErrorClass(s) == wal::WalErrorClass::kUnexpectedEof);
      w->reset();
      auto r = wal::Wal::Repair(Dir(), o);
      Check(r.ok() && *r);
      w = wal::Wal::Open(Dir(), {}, o);
      Check(w.ok());
      Check((*w)->ReadAll(&c).ok());
    }
    Check(c.metadata == "model");
    Compare(c.entries);
    // Adopt what was read: a pending batch that made it is now the log.
    log_.clear();
    for (const auto& e : c.entries) log_.push_back({e.term(), e.data()});
    pending_.reset();
    wal_ = std::move(*w);
  }

  // The read log must be the model, or the model with a prefix of the
  // failed batch applied.
  void Compare(const std::vector<sealwal::raftpb::Entry>& got) {
    auto equal_prefix = [&](size_t n_model, const std::vector<sealwal::raftpb::Entry>* batch,
                            size_t n_batch) {
      if (got.size() != n_model + n_batch) return false;
      for (size_t i = 0; i < n_model; ++i) {
        if (got[i].index() != snap_index_ + 1 + i || got[i].term() != log_[i].term ||
            got[i].data() != log_[i].data) {
          return false;
        }
      }
      for (size_t i = 0; i < n_batch; ++i) {
        const sealwal::raftpb::Entry& want = (*batch)[i];
        const sealwal::raftpb::Entry& g = got[n_model + i];
        if (g.index() != want.index() || g.term() != want.term() || g.data() != want.data()) {
          return false;
        }
      }
      return true;
    };
    if (equal_prefix(log_.size(), nullptr, 0)) return;
    if (pending_.has_value()) {
      const size_t keep = pending_->first - snap_index_ - 1;
      for (size_t k = 1; k <= pending_->batch.size(); ++k) {
        if (equal_prefix(keep, &pending_->batch, k)) return;
      }
    }
    if (kTrace) {
      std::fprintf(stderr, "DIVERGENCE: model %zu entries, pending %s; got:\n", log_.size(),
                   pending_.has_value() ? "yes" : "no");
      for (size_t i = 0; i < got.size(); ++i) {
        const bool same = i < log_.size() && got[i].term() == log_[i].term &&
                          got[i].data() == log_[i].data;
        std::fprintf(stderr, "  %llu t%llu %zuB %s\n", (unsigned long long)got[i].index(),
                     (unsigned long long)got[i].term(), got[i].data().size(),
                     same ? "=" : "DIFF");
      }
    }
    std::abort();  // an acknowledged entry was lost, or something wrong came back
  }

  struct Pending {
    uint64_t first;
    std::vector<sealwal::raftpb::Entry> batch;
  };

  FuzzedDataProvider* in_;
  std::unique_ptr<env::FileSystem> mem_;
  env::FaultInjectionFileSystem fault_;
  const bool encrypted_;
  std::shared_ptr<encryption::MultiDecrypter> decrypter_;
  std::unique_ptr<walcrypt::WalCodec> codec_;
  std::unique_ptr<wal::Wal> wal_;
  std::vector<ModelEntry> log_;
  std::optional<Pending> pending_;
  uint64_t snap_index_ = 0;
  uint64_t term_ = 1;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Debian's Abseil runs absl::Mutex's deadlock detector on every lock; the
  // fault-injection env locks on every call, so it dominated each run.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Harness h(&in, in.ConsumeBool());
  h.Run();
  return 0;
}
