// wal_fault_test: a scripted workload (create, saves of varied sizes and
// batches, tail overrides, segment cuts, snapshot records, a reopen, close)
// run over env::FaultInjectionFileSystem with a fault injected at every
// write step:
//
//   CrashAfterOps(n)   for n = 0, 1, 2, ... until the workload completes;
//                      then power loss (DropUnsyncedData) or a plain process
//                      crash (page cache kept).
//   TearWriteAt(t)     a torn append whose prefix reaches the disk
//                      (DropUnsyncedData(keep_torn_prefix=true)).
//   SetWriteLimit(n)   ENOSPC during preallocation or append.
//
// After each fault the WAL must reopen (Open for append; on a torn tail,
// Repair and reopen), return every entry whose Save was acknowledged, and
// return nothing that was not written: what comes back must be exactly the
// log after some prefix of the records the workload attempted, no shorter
// than its last acknowledged (synced) operation. The reopened WAL must then
// accept new entries and read them back.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "testing/fault_injection_file_system.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/wal_entries.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::HS;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kDir[] = "/data/wal";
// The entries these tests save (tests/testing/wal_entries.h).
constexpr auto E = &::sealwal::testing::PatternEntry;
constexpr auto Range = &::sealwal::testing::PatternRange;
constexpr char kMetadata[] = "workload-metadata";
constexpr uint64_t kSegmentSize = 4096;  // the minimum: cuts every few saves

bool IsEmpty(const raftpb::HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

bool SameState(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

bool SameEntries(const std::vector<raftpb::Entry>& a, const std::vector<raftpb::Entry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index() != b[i].index() || a[i].term() != b[i].term() ||
        a[i].type() != b[i].type() || a[i].data() != b[i].data() ||
        a[i].has_data() != b[i].has_data()) {
      return false;
    }
  }
  return true;
}

std::string Summary(const std::vector<raftpb::Entry>& ents, const raftpb::HardState& hs) {
  std::string s = absl::StrCat("hs{", hs.term(), ",", hs.vote(), ",", hs.commit(), "} [");
  for (const auto& e : ents) absl::StrAppend(&s, e.index(), "/", e.term(), " ");
  return s + "]";
}

// ---------------------------------------------------------------------------
// The workload and its model.

struct Op {
  enum Kind { kCreate, kSave, kSnapshot, kReopen, kClose } kind;
  raftpb::HardState hs;
  std::vector<raftpb::Entry> ents;
  SnapshotPosition snap;
  bool syncs = false;  // OK from this op means everything up to it is durable
};

// What ReadAll must return after some prefix of the records written: the
// records are entries (in order) and then the HardState, op after op.
struct Checkpoint {
  std::vector<raftpb::Entry> log;
  raftpb::HardState hs;
};

struct Workload {
  std::vector<Op> ops;
  std::vector<Checkpoint> cps;  // cps[0]: the empty log just created
  std::vector<size_t> op_end;   // index in cps once op i is wholly written
};

Workload MakeWorkload() {
  Workload w;
  auto save = [&](raftpb::HardState hs, std::vector<raftpb::Entry> ents) {
    Op op{Op::kSave, hs, std::move(ents), {}};
    w.ops.push_back(std::move(op));
  };
  w.ops.push_back({Op::kCreate, {}, {}, {}});
  save(HS(1, 1, 0), Range(1, 1, 1, 20));
  save(HS(1, 1, 1), Range(2, 5, 1, 40));  // a batch
  save(HS(1, 1, 3), {});                  // commit only: not synced
  save(HS(1, 1, 5), Range(6, 6, 1, 1500));  // spans sectors
  save({}, Range(7, 9, 1, 300));            // no state
  w.ops.push_back({Op::kSnapshot, {}, {}, {5, 1}});
  save(HS(2, 2, 5), Range(8, 10, 2, 200));  // a new leader overrides from 8
  save(HS(2, 2, 8), Range(11, 11, 2, 3000));
  save(HS(2, 2, 9), Range(12, 16, 2, 400));
  w.ops.push_back({Op::kReopen, {}, {}, {}});
  save(HS(2, 2, 12), Range(17, 17, 2, 100));
  save(HS(3, 0, 12), {});  // term change only: synced
  save(HS(3, 3, 16), Range(18, 20, 3, 700));
  w.ops.push_back({Op::kSnapshot, {}, {}, {15, 2}});
  save(HS(3, 3, 20), Range(21, 25, 3, 10));
  save(HS(3, 3, 24), {});  // commit only
  save(HS(3, 3, 25), Range(26, 26, 3, 2500));
  save(HS(3, 3, 26), Range(27, 27, 3, 2000));  // cuts
  save(HS(3, 3, 27), Range(28, 31, 3, 600));
  save(HS(3, 3, 28), Range(32, 32, 3, 1800));
  save(HS(4, 4, 28), Range(29, 33, 4, 500));  // overrides across a cut
  w.ops.push_back({Op::kSnapshot, {}, {}, {25, 3}});
  save(HS(4, 4, 33), Range(34, 35, 4, 2500));
  save(HS(4, 4, 35), {});  // commit only, then cut by the next
  save(HS(4, 4, 35), Range(36, 36, 4, 64));
  w.ops.push_back({Op::kClose, {}, {}, {}});

  Checkpoint cur;
  w.cps.push_back(cur);
  raftpb::HardState last;  // the WAL's state_: last non-empty HardState
  for (Op& op : w.ops) {
    switch (op.kind) {
      case Op::kSave:
        op.syncs = !op.ents.empty() || op.hs.term() != last.term() || op.hs.vote() != last.vote();
        for (const auto& e : op.ents) {
          cur.log.resize(e.index() - 1);
          cur.log.push_back(e);
          w.cps.push_back(cur);
        }
        if (!IsEmpty(op.hs)) {
          last = op.hs;
          cur.hs = op.hs;
          w.cps.push_back(cur);
        }
        break;
      default:
        op.syncs = true;
        break;
    }
    w.op_end.push_back(w.cps.size() - 1);
  }
  return w;
}

const Workload& TheWorkload() {
  static const Workload* w = new Workload(MakeWorkload());
  return *w;
}

struct Outcome {
  bool create_ok = false;
  int last_durable = -1;  // last op that returned OK and synced
  int last_attempted = -1;
  absl::Status first_error;
  bool completed = false;
};

WalOptions Options(env::FileSystem* fs, Preallocation mode) {
  WalOptions o;
  o.fs = fs;
  o.segment_size = kSegmentSize;
  o.preallocation = mode;
  return o;
}

// Runs the workload until the first error.
Outcome RunWorkload(env::FileSystem* fs, Preallocation mode) {
  const Workload& wl = TheWorkload();
  const WalOptions opts = Options(fs, mode);
  Outcome out;
  std::unique_ptr<Wal> w;
  for (size_t i = 0; i < wl.ops.size(); ++i) {
    const Op& op = wl.ops[i];
    out.last_attempted = static_cast<int>(i);
    absl::Status s;
    switch (op.kind) {
      case Op::kCreate: {
        auto c = Wal::Create(kDir, kMetadata, opts);
        s = c.status();
        if (c.ok()) w = std::move(*c);
        out.create_ok = s.ok();
        break;
      }
      case Op::kSave:
        s = w->Save(op.hs, op.ents);
        break;
      case Op::kSnapshot:
        s = w->SaveSnapshot(op.snap);
        break;
      case Op::kReopen: {
        s = w->Close();
        w.reset();
        if (!s.ok()) break;
        auto o = Wal::Open(kDir, {}, opts);
        s = o.status();
        if (!o.ok()) break;
        w = std::move(*o);
        WalContents c;
        s = w->ReadAll(&c);
        if (s.ok()) {
          // Everything before was acknowledged: the log is exactly the model.
          const Checkpoint& want = wl.cps[wl.op_end[i]];
          EXPECT_TRUE(SameEntries(c.entries, want.log) && SameState(c.hardstate, want.hs))
              << "reopen in the workload read " << Summary(c.entries, c.hardstate);
        }
        break;
      }
      case Op::kClose:
        s = w->Close();
        break;
    }
    if (!s.ok()) {
      out.first_error = s;
      // Sticky: the WAL refuses the next write with the same error.
      if (w != nullptr && op.kind != Op::kClose && op.kind != Op::kReopen) {
        EXPECT_EQ(w->Sync(), s);
      }
      break;
    }
    if (op.syncs) out.last_durable = static_cast<int>(i);
    if (i + 1 == wl.ops.size()) out.completed = true;
  }
  w.reset();  // Close; errors ignored (the file system may be down)
  return out;
}

// Every file in dir (name -> bytes), to prove that a call changed nothing.
std::map<std::string, std::string> DirContents(env::FileSystem* fs, const std::string& dir) {
  std::map<std::string, std::string> m;
  auto names = fs->ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return m;
  for (const auto& n : *names) {
    auto data = env::ReadFileToString(fs, env::JoinPath(dir, n));
    EXPECT_TRUE(data.ok()) << data.status();
    if (data.ok()) m[n] = *data;
  }
  return m;
}

struct RecoveryStats {
  int runs = 0, no_wal = 0, repaired = 0, unrecoverable = 0;
};

// Reopens the WAL after a fault and checks it against the model. With
// `must_open` false the reopen may fail with a corruption error (a torn
// write that the format cannot tell from corruption); it must then be
// reported as kDataLoss, Repair must refuse it without touching a file,
// and read mode must not return anything wrong either.
void Recover(env::FileSystem* fs, Preallocation mode, const Outcome& out, bool must_open,
             RecoveryStats* stats, const std::string& label) {
  SCOPED_TRACE(label);
  const Workload& wl = TheWorkload();
  const WalOptions opts = Options(fs, mode);
  ++stats->runs;
  const size_t lo = out.last_durable >= 0 ? wl.op_end[static_cast<size_t>(out.last_durable)] : 0;
  const size_t hi = wl.op_end[static_cast<size_t>(out.last_attempted)];
  auto check = [&](const WalContents& c, const char* what) {
    EXPECT_EQ(c.metadata, kMetadata) << what;
    bool found = false;
    for (size_t k = lo; k <= hi && !found; ++k) {
      found = SameEntries(c.entries, wl.cps[k].log) && SameState(c.hardstate, wl.cps[k].hs);
    }
    EXPECT_TRUE(found) << what << ": read " << Summary(c.entries, c.hardstate)
                       << "; acknowledged " << Summary(wl.cps[lo].log, wl.cps[lo].hs)
                       << "; attempted up to " << Summary(wl.cps[hi].log, wl.cps[hi].hs);
    return found;
  };

  auto w = Wal::Open(kDir, {}, opts);
  if (!w.ok()) {
    // Only an unacknowledged Create may leave no WAL (never half of one).
    EXPECT_FALSE(out.create_ok) << w.status();
    EXPECT_EQ(GetWalErrorClass(w.status()), WalErrorClass::kFileNotFound) << w.status();
    ++stats->no_wal;
    return;
  }
  WalContents c;
  absl::Status s = (*w)->ReadAll(&c);
  if (GetWalErrorClass(s) == WalErrorClass::kUnexpectedEof) {
    w = absl::CancelledError("closed");
    auto r = Wal::Repair(kDir, opts);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(*r);
    ++stats->repaired;
    w = Wal::Open(kDir, {}, opts);
    ASSERT_TRUE(w.ok()) << w.status();
    s = (*w)->ReadAll(&c);
  }
  if (!s.ok() && !must_open) {
    ++stats->unrecoverable;
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_NE(GetWalErrorClass(s), WalErrorClass::kUnexpectedEof) << s;
    w = absl::CancelledError("closed");
    // Repair refuses it and changes nothing.
    const auto before = DirContents(fs, kDir);
    auto r = Wal::Repair(kDir, opts);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(DirContents(fs, kDir) == before);
    // Read mode reports it too, or stops at a torn tail before it.
    auto rd = Wal::OpenForRead(kDir, {}, opts);
    ASSERT_TRUE(rd.ok()) << rd.status();
    WalContents rc;
    absl::Status rs = (*rd)->ReadAll(&rc);
    if (rs.ok()) check(rc, "read mode");
    return;
  }
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(c.torn_tail);
  if (!check(c, "reopened")) return;
  const std::vector<raftpb::Entry> got = c.entries;
  const uint64_t last = got.empty() ? 0 : got.back().index();
  EXPECT_EQ((*w)->last_index(), last);

  // Every acknowledged snapshot record is still there to open at.
  for (int i = 0; i <= out.last_durable; ++i) {
    const Op& op = wl.ops[static_cast<size_t>(i)];
    if (op.kind != Op::kSnapshot) continue;
    auto rd = Wal::OpenForRead(kDir, op.snap, opts);
    ASSERT_TRUE(rd.ok()) << rd.status();
    WalContents sc;
    ASSERT_OK((*rd)->ReadAll(&sc));
    std::vector<raftpb::Entry> after;
    for (const auto& e : got) {
      if (e.index() > op.snap.index) after.push_back(e);
    }
    EXPECT_TRUE(SameEntries(sc.entries, after)) << "from snapshot " << op.snap.index;
  }

  // The recovered WAL takes new entries after what it returned.
  const raftpb::Entry fresh = E(last + 1, 100, 777);
  ASSERT_OK((*w)->Save(HS(100, 1, last), {fresh}));
  ASSERT_OK((*w)->Close());
  w = absl::CancelledError("closed");
  auto rd = Wal::OpenForRead(kDir, {}, opts);
  ASSERT_TRUE(rd.ok()) << rd.status();
  WalContents after;
  ASSERT_OK((*rd)->ReadAll(&after));
  EXPECT_FALSE(after.torn_tail);
  std::vector<raftpb::Entry> want = got;
  want.push_back(fresh);
  EXPECT_TRUE(SameEntries(after.entries, want)) << Summary(after.entries, after.hardstate);
  EXPECT_TRUE(SameState(after.hardstate, HS(100, 1, last)));
  EXPECT_OK(Wal::Verify(kDir, {}, opts));
}

// A fresh mem FS under a fault wrapper, with /data durable.
struct Env {
  std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
  std::unique_ptr<env::FaultInjectionFileSystem> fault =
      std::make_unique<env::FaultInjectionFileSystem>(mem.get());
  Env() {
    EXPECT_OK(env::CreateDirAll(fault.get(), "/data"));
    EXPECT_OK(fault->SyncDir("/"));
  }
};

const char* ModeName(Preallocation m) {
  return m == Preallocation::kZeroFill ? "zero-fill" : "fallocate";
}

// ---------------------------------------------------------------------------
// A crash at every write step.

struct CrashParam {
  Preallocation mode;
  bool power_loss;
};

class WalCrashTest : public ::testing::TestWithParam<CrashParam> {};

TEST_P(WalCrashTest, CrashAtEveryWriteStepLosesNoAcknowledgedEntry) {
  const auto [mode, power_loss] = GetParam();
  RecoveryStats stats;
  int64_t n = 0;
  for (;; ++n) {
    ASSERT_LT(n, 5000) << "the workload never completes";
    Env env;
    env.fault->CrashAfterOps(n);
    const Outcome out = RunWorkload(env.fault.get(), mode);
    const bool crashed = env.fault->crashed();
    if (crashed) {
      if (!out.first_error.ok()) {
        EXPECT_THAT(out.first_error, StatusIs(absl::StatusCode::kUnavailable,
                                              HasSubstr("injected crash")));
      }
    } else {
      EXPECT_TRUE(out.completed) << out.first_error;
    }
    if (power_loss) {
      ASSERT_OK(env.fault->DropUnsyncedData());
    }
    env.fault->Reactivate();
    Recover(env.fault.get(), mode, out, /*must_open=*/true, &stats,
            absl::StrCat("crash after ", n, " ops (", ModeName(mode),
                         power_loss ? ", power loss)" : ", process crash)"));
    if (::testing::Test::HasFatalFailure()) return;
    if (!crashed) break;
  }
  std::cout << "crash points: " << n << ", no WAL: " << stats.no_wal
            << ", repaired: " << stats.repaired << "\n";
  EXPECT_GT(n, 50);  // the workload really has many write steps
}

INSTANTIATE_TEST_SUITE_P(
    Modes, WalCrashTest,
    ::testing::Values(CrashParam{Preallocation::kZeroFill, true},
                      CrashParam{Preallocation::kZeroFill, false},
                      CrashParam{Preallocation::kFallocate, true},
                      CrashParam{Preallocation::kFallocate, false}),
    [](const auto& info) {
      return absl::StrCat(info.param.mode == Preallocation::kZeroFill ? "ZeroFill" : "Fallocate",
                          info.param.power_loss ? "PowerLoss" : "ProcessCrash");
    });

// ---------------------------------------------------------------------------
// Torn writes.

// Records every Append: which file, at which offset, how long (in order).
class AppendRecorder final : public env::FileSystem {
 public:
  struct Append {
    std::string path;
    uint64_t offset, len;
  };
  explicit AppendRecorder(env::FileSystem* base) : base_(base) {}

  std::vector<Append> appends() const {
    absl::MutexLock l(&mu_);
    return appends_;
  }

  absl::StatusOr<std::unique_ptr<env::SequentialFile>> NewSequentialFile(
      const std::string& p) override {
    return base_->NewSequentialFile(p);
  }
  absl::StatusOr<std::unique_ptr<env::RandomAccessFile>> NewRandomAccessFile(
      const std::string& p) override {
    return base_->NewRandomAccessFile(p);
  }
  absl::StatusOr<std::unique_ptr<env::WritableFile>> NewWritableFile(
      const std::string& p, const env::WritableFileOptions& o) override {
    auto f = base_->NewWritableFile(p, o);
    if (!f.ok()) return f.status();
    return std::unique_ptr<env::WritableFile>(new File(this, p, std::move(*f)));
  }
  absl::Status FileExists(const std::string& p) override { return base_->FileExists(p); }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& p) override {
    return base_->GetFileSize(p);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& d) override {
    return base_->ListDir(d);
  }
  absl::Status CreateDir(const std::string& d, mode_t m) override { return base_->CreateDir(d, m); }
  absl::Status RemoveDir(const std::string& d) override { return base_->RemoveDir(d); }
  absl::Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  absl::Status Rename(const std::string& f, const std::string& t) override {
    return base_->Rename(f, t);
  }
  absl::Status SyncDir(const std::string& d) override { return base_->SyncDir(d); }
  absl::StatusOr<std::unique_ptr<env::FileLock>> LockFile(const std::string& p) override {
    return base_->LockFile(p);
  }

 private:
  class File final : public env::WritableFile {
   public:
    File(AppendRecorder* r, std::string path, std::unique_ptr<env::WritableFile> f)
        : r_(r), path_(std::move(path)), f_(std::move(f)) {}
    absl::Status Append(absl::string_view data) override {
      {
        absl::MutexLock l(&r_->mu_);
        r_->appends_.push_back({path_, f_->Position(), data.size()});
      }
      return f_->Append(data);
    }
    absl::Status Flush() override { return f_->Flush(); }
    absl::Status Sync() override { return f_->Sync(); }
    absl::Status Fallocate(uint64_t o, uint64_t n) override { return f_->Fallocate(o, n); }
    absl::Status Truncate(uint64_t n) override { return f_->Truncate(n); }
    absl::Status Seek(uint64_t o) override { return f_->Seek(o); }
    uint64_t Position() const override { return f_->Position(); }
    absl::Status Close() override { return f_->Close(); }

   private:
    AppendRecorder* const r_;
    const std::string path_;
    std::unique_ptr<env::WritableFile> f_;
  };

  env::FileSystem* const base_;
  mutable absl::Mutex mu_;
  std::vector<Append> appends_;
};

// Tears every append of the workload at its sector boundaries (a disk
// writes whole 512-byte sectors, so a power cut leaves a prefix of whole
// sectors: etcd's torn-write model) and at a few byte offsets inside
// sectors (a torn sector, which the format cannot always tell from
// corruption). With kFallocate every append is a record write made on the
// workload's thread, so byte offsets are deterministic.
TEST(WalTornWriteTest, TornAppendAtManyOffsetsKeepsEveryAcknowledgedEntry) {
  std::vector<AppendRecorder::Append> appends;
  {
    Env env;
    AppendRecorder rec(env.fault.get());
    const Outcome out = RunWorkload(&rec, Preallocation::kFallocate);
    ASSERT_TRUE(out.completed) << out.first_error;
    appends = rec.appends();
    uint64_t total = 0;
    for (const auto& a : appends) total += a.len;
    ASSERT_EQ(total, env.fault->bytes_appended());
  }
  struct Tear {
    uint64_t at;
    bool sector_aligned;
  };
  std::vector<Tear> tears;
  uint64_t cum = 0;
  for (const auto& a : appends) {
    std::set<uint64_t> unaligned = {1, a.len / 2, a.len - 1};
    for (uint64_t d = 97; d < a.len; d += 97) unaligned.insert(d);
    for (uint64_t s = (a.offset / 512 + 1) * 512; s < a.offset + a.len; s += 512) {
      tears.push_back({cum + (s - a.offset), true});
      unaligned.erase(s - a.offset);
    }
    tears.push_back({cum, true});  // nothing of this append reaches the disk
    for (uint64_t d : unaligned) {
      if (d > 0 && d < a.len) tears.push_back({cum + d, false});
    }
    cum += a.len;
  }
  RecoveryStats aligned_stats, unaligned_stats;
  for (const Tear& t : tears) {
    Env env;
    env.fault->TearWriteAt(t.at);
    const Outcome out = RunWorkload(env.fault.get(), Preallocation::kFallocate);
    ASSERT_TRUE(env.fault->crashed()) << t.at;
    ASSERT_OK(env.fault->DropUnsyncedData(/*keep_torn_prefix=*/true));
    env.fault->Reactivate();
    Recover(env.fault.get(), Preallocation::kFallocate, out, /*must_open=*/t.sector_aligned,
            t.sector_aligned ? &aligned_stats : &unaligned_stats,
            absl::StrCat("tear at byte ", t.at, t.sector_aligned ? " (sector-aligned)" : ""));
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::cout << "appends: " << appends.size() << ", sector-aligned tears: " << aligned_stats.runs
            << " (repaired " << aligned_stats.repaired << "), mid-sector tears: "
            << unaligned_stats.runs << " (repaired " << unaligned_stats.repaired
            << ", reported as corruption " << unaligned_stats.unrecoverable << ")\n";
  EXPECT_GT(aligned_stats.repaired, 0);
}

// With kZeroFill the next segment is zero-filled on a background thread, so
// the append order (and what a byte offset tears) varies from run to run:
// tear at a stride of byte offsets without classifying them, and hold every
// outcome to the safety rules (never wrong data; a reopen that fails is a
// reported corruption that Repair leaves alone).
TEST(WalTornWriteTest, TornAppendWithZeroFillNeverReturnsWrongData) {
  uint64_t total;
  {
    Env env;
    ASSERT_TRUE(RunWorkload(env.fault.get(), Preallocation::kZeroFill).completed);
    total = env.fault->bytes_appended();
  }
  RecoveryStats stats;
  for (uint64_t t = 0; t < total; t += 61) {
    Env env;
    env.fault->TearWriteAt(t);
    const Outcome out = RunWorkload(env.fault.get(), Preallocation::kZeroFill);
    if (!env.fault->crashed()) continue;  // this run appended less (fewer zero fills)
    ASSERT_OK(env.fault->DropUnsyncedData(/*keep_torn_prefix=*/true));
    env.fault->Reactivate();
    Recover(env.fault.get(), Preallocation::kZeroFill, out, /*must_open=*/false, &stats,
            absl::StrCat("zero-fill tear at byte ", t));
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::cout << "tears: " << stats.runs << ", repaired: " << stats.repaired
            << ", reported as corruption: " << stats.unrecoverable << "\n";
  EXPECT_GT(stats.runs, 100);
  EXPECT_LT(stats.unrecoverable, stats.runs / 4);
}

// A crash at every step of Repair itself: the next Repair (or the first,
// if the crash came before anything changed) finishes the job, and the log
// reads back as everything before the torn record.
TEST(WalRepairCrashTest, CrashAtEveryStepOfRepair) {
  const auto acked = Range(1, 5, 1, 100);
  auto make_torn = [&](Env* env) {
    const WalOptions o = Options(env->fault.get(), Preallocation::kFallocate);
    auto w = Wal::Create(kDir, kMetadata, o);
    ASSERT_OK(w.status());
    ASSERT_OK((*w)->Save(HS(1, 1, 0), acked));
    // Entry 6's frame spans several sectors; only its first 600 bytes land.
    env->fault->TearWriteAt(env->fault->bytes_appended() + 600);
    ASSERT_FALSE((*w)->Save(HS(1, 1, 5), Range(6, 6, 1, 3000)).ok());
    w = absl::CancelledError("closed");
    ASSERT_OK(env->fault->DropUnsyncedData(/*keep_torn_prefix=*/true));
    env->fault->Reactivate();
    auto r = Wal::Open(kDir, {}, o);
    ASSERT_OK(r.status());
    ASSERT_EQ(GetWalErrorClass((*r)->ReadAll().status()), WalErrorClass::kUnexpectedEof);
  };
  int64_t n = 0;
  for (;; ++n) {
    ASSERT_LT(n, 200);
    Env env;
    make_torn(&env);
    if (::testing::Test::HasFatalFailure()) return;
    const WalOptions o = Options(env.fault.get(), Preallocation::kFallocate);
    env.fault->CrashAfterOps(n);
    auto first = Wal::Repair(kDir, o);
    const bool crashed = env.fault->crashed();
    if (!crashed) {
      ASSERT_TRUE(first.ok() && *first) << first.status();
    }
    ASSERT_OK(env.fault->DropUnsyncedData());
    env.fault->Reactivate();
    SCOPED_TRACE(absl::StrCat("repair crashed after ", n, " ops"));
    auto again = Wal::Repair(kDir, o);
    ASSERT_TRUE(again.ok()) << again.status();
    auto w = Wal::Open(kDir, {}, o);
    ASSERT_OK(w.status());
    WalContents c;
    ASSERT_OK((*w)->ReadAll(&c));
    EXPECT_TRUE(SameEntries(c.entries, acked)) << Summary(c.entries, c.hardstate);
    ASSERT_OK((*w)->Save(HS(1, 1, 5), Range(6, 6, 2, 10)));
    ASSERT_OK((*w)->Close());
    if (!crashed) break;
  }
  EXPECT_GE(n, 5);  // copy, sync, close, truncate, sync, close, sync dir
}

// ---------------------------------------------------------------------------
// ENOSPC.

struct EnospcParam {
  Preallocation mode;
  bool power_loss;
};

class WalEnospcTest : public ::testing::TestWithParam<EnospcParam> {};

TEST_P(WalEnospcTest, EnospcIsAClearErrorAndTheWalReopens) {
  const auto [mode, power_loss] = GetParam();
  uint64_t total;
  {
    Env env;
    ASSERT_TRUE(RunWorkload(env.fault.get(), mode).completed);
    total = env.fault->bytes_written();
  }
  RecoveryStats stats;
  int failed_runs = 0;
  std::set<std::string> where;
  constexpr int kLimits = 97;
  for (int i = 0; i <= kLimits; ++i) {
    const uint64_t limit = total * static_cast<uint64_t>(i) / kLimits;
    Env env;
    env.fault->SetWriteLimit(limit);
    const Outcome out = RunWorkload(env.fault.get(), mode);
    if (!out.completed) {
      ++failed_runs;
      EXPECT_THAT(out.first_error, StatusIs(absl::StatusCode::kResourceExhausted,
                                            HasSubstr("No space left on device")))
          << "limit " << limit;
      where.insert(std::string(out.first_error.message().substr(0, 5)));
    }
    env.fault->ClearWriteLimit();
    if (power_loss) {
      ASSERT_OK(env.fault->DropUnsyncedData());
    } else {
      env.fault->InvalidateOpenFiles();  // process restart, page cache kept
    }
    env.fault->Reactivate();
    Recover(env.fault.get(), mode, out, /*must_open=*/true, &stats,
            absl::StrCat("write limit ", limit, " of ", total));
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::cout << "limits: " << kLimits + 1 << ", ENOSPC runs: " << failed_runs
            << ", repaired: " << stats.repaired << ", failing calls:";
  for (const auto& w : where) std::cout << " " << w;
  std::cout << "\n";
  EXPECT_GT(failed_runs, kLimits / 2);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, WalEnospcTest,
    ::testing::Values(EnospcParam{Preallocation::kZeroFill, true},
                      EnospcParam{Preallocation::kZeroFill, false},
                      EnospcParam{Preallocation::kFallocate, true},
                      EnospcParam{Preallocation::kFallocate, false}),
    [](const auto& info) {
      return absl::StrCat(info.param.mode == Preallocation::kZeroFill ? "ZeroFill" : "Fallocate",
                          info.param.power_loss ? "PowerLoss" : "Restart");
    });

}  // namespace
}  // namespace sealwal::wal
