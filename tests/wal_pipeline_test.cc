// wal_pipeline_test: Wal::Submit, the pipelined append.
//   - the bytes on disk are those Save writes (cut points included);
//   - completions fire once each, in submission order, after the batch is
//     durable, and a reader sees the batch before its completion;
//   - group commit: batches queued behind a sync share one fdatasync
//     (groups of at most half the depth);
//   - back-pressure: at most pipeline_depth batches in flight;
//   - synchronous calls wait for the submissions before them;
//   - a refused batch (gap) returns its error, queues nothing and leaves
//     the WAL usable; overwrites keep Save's semantics;
//   - fsync and write errors complete the batch they hit and every later
//     one with the first error; a crash at every file operation of a
//     pipelined run (power loss or process crash) loses no batch whose
//     completion said durable.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/wal.h"
#include "testing/fault_injection_file_system.h"
#include "testing/status_matchers.h"
#include "testing/wal_entries.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::HS;
using ::sealwal::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kDir[] = "/data/wal";
// The entries these tests save (tests/testing/wal_entries.h).
constexpr auto E = &::sealwal::testing::PatternEntry;
constexpr auto Range = &::sealwal::testing::PatternRange;

struct Batch {
  raftpb::HardState hs;
  std::vector<raftpb::Entry> ents;
};

// Batches of varied sizes (some larger than a 4096-byte segment), a
// commit-only save, and a new leader overwriting the tail.
std::vector<Batch> Workload() {
  std::vector<Batch> w;
  uint64_t next = 1;
  for (int i = 0; i < 24; ++i) {
    const uint64_t n = 1 + (i * 5) % 7;
    const size_t size = 20 + (i * 397) % 900;
    w.push_back({HS(1, 1, next - 1), Range(next, next + n - 1, 1, size)});
    next += n;
    if (i == 9) w.push_back({HS(1, 1, next - 1), {}});  // commit only: no sync
  }
  // A new leader replaces the last 5 entries and goes on.
  next -= 5;
  w.push_back({HS(2, 2, next - 1), Range(next, next + 2, 2, 300)});
  next += 3;
  for (int i = 0; i < 6; ++i) {
    w.push_back({HS(2, 2, next - 1), Range(next, next + i, 2, 150)});
    next += i + 1;
  }
  return w;
}

// The log and HardState after each batch: model[k] after batches [0, k).
struct State {
  std::vector<raftpb::Entry> log;
  raftpb::HardState hs;
};
std::vector<State> Model(const std::vector<Batch>& w) {
  std::vector<State> m(1);
  for (const Batch& b : w) {
    State s = m.back();
    if (!b.ents.empty()) {
      while (!s.log.empty() && s.log.back().index() >= b.ents.front().index()) s.log.pop_back();
      s.log.insert(s.log.end(), b.ents.begin(), b.ents.end());
    }
    if (b.hs.term() != 0 || b.hs.vote() != 0 || b.hs.commit() != 0) s.hs = b.hs;
    m.push_back(std::move(s));
  }
  return m;
}

std::string Summary(const std::vector<raftpb::Entry>& log, const raftpb::HardState& hs) {
  std::string s = absl::StrCat("hs{", hs.term(), ",", hs.vote(), ",", hs.commit(), "} [");
  for (const auto& e : log) absl::StrAppend(&s, e.index(), "/", e.term(), "/", e.data().size(), " ");
  return s + "]";
}

bool Matches(const State& want, const WalContents& got) {
  return Summary(want.log, want.hs) == Summary(got.entries, got.hardstate) &&
         [&] {
           for (size_t i = 0; i < want.log.size(); ++i) {
             if (want.log[i].data() != got.entries[i].data()) return false;
           }
           return true;
         }();
}

// Records completions: which submission, with what status, in what order.
class Recorder {
 public:
  Wal::Completion For(int id) {
    return [this, id](absl::Status s) {
      absl::MutexLock l(&mu_);
      order_.push_back(id);
      status_[id] = std::move(s);
    };
  }
  std::vector<int> order() const {
    absl::MutexLock l(&mu_);
    return order_;
  }
  std::map<int, absl::Status> status() const {
    absl::MutexLock l(&mu_);
    return status_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<int> order_;
  std::map<int, absl::Status> status_;
};

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

class WalPipelineTest : public ::testing::Test {
 protected:
  WalOptions Opts(uint64_t segment_size = 4096, size_t depth = 16) {
    WalOptions o;
    o.fs = fs_.get();
    o.segment_size = segment_size;
    o.pipeline_depth = depth;
    return o;
  }
  std::map<std::string, std::string> Files(const std::string& dir) {
    std::map<std::string, std::string> out;
    const std::vector<std::string> names = *fs_->ListDir(dir);
    for (const std::string& n : names) {
      out[n] = *env::ReadFileToString(fs_.get(), env::JoinPath(dir, n));
    }
    return out;
  }
  std::unique_ptr<env::FileSystem> fs_ = env::NewMemFileSystem();
};

TEST_F(WalPipelineTest, SubmitWritesTheBytesSaveWritesAndCompletesInOrder) {
  const std::vector<Batch> w = Workload();
  {
    auto sync = Wal::Create("/sync", "meta", Opts());
    ASSERT_OK(sync.status());
    for (const Batch& b : w) ASSERT_OK((*sync)->Save(b.hs, b.ents));
    ASSERT_OK((*sync)->Close());
  }
  Recorder rec;
  {
    auto piped = Wal::Create("/piped", "meta", Opts(4096, 4));
    ASSERT_OK(piped.status());
    for (size_t i = 0; i < w.size(); ++i) {
      ASSERT_OK((*piped)->Submit(w[i].hs, w[i].ents, rec.For(static_cast<int>(i))));
    }
    ASSERT_OK((*piped)->Flush());
    EXPECT_GT((*piped)->stats().cuts, 3u);  // the workload crosses segments
    ASSERT_OK((*piped)->Close());
  }
  EXPECT_THAT(rec.order(), ElementsAreArray(Iota(static_cast<int>(w.size()))));
  for (const auto& [id, s] : rec.status()) EXPECT_OK(s) << "batch " << id;
  // Same segment names (cut points) and the same bytes.
  const auto a = Files("/sync"), b = Files("/piped");
  ASSERT_EQ(a.size(), b.size());
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    EXPECT_EQ(ia->first, ib->first);
    EXPECT_TRUE(ia->second == ib->second) << ia->first << " differs";
  }
  auto r = Wal::OpenForRead("/piped", {}, Opts());
  ASSERT_OK(r.status());
  auto c = (*r)->ReadAll();
  ASSERT_OK(c.status());
  EXPECT_TRUE(Matches(Model(w).back(), *c));
}

TEST_F(WalPipelineTest, AReaderSeesABatchBeforeItsCompletion) {
  auto w = Wal::Create(kDir, "", Opts(1 << 20));
  ASSERT_OK(w.status());
  std::unique_ptr<LogReader> reader;
  ASSERT_OK((*w)->ReadAllIndexed({}, &reader));
  std::atomic<int> bad{0};
  for (uint64_t i = 1; i <= 50; ++i) {
    ASSERT_OK((*w)->Submit(HS(1, 1, i), Range(i, i, 1, 64), [&, i](absl::Status s) {
      if (!s.ok() || reader->LastIndex() < i) bad.fetch_add(1);
    }));
  }
  ASSERT_OK((*w)->Flush());
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(reader->LastIndex(), 50u);
  auto e = reader->Entries(50, 51);
  ASSERT_OK(e.status());
  EXPECT_EQ((*e)[0].data(), E(50, 1, 64).data());
}

// The first completion blocks the I/O thread; what is submitted meanwhile
// is written in groups of at most half the depth, one fdatasync each.
TEST_F(WalPipelineTest, BatchesQueuedBehindASyncShareOneFdatasync) {
  constexpr int kDepth = 8;
  auto w = Wal::Create(kDir, "", Opts(1 << 20, kDepth));
  ASSERT_OK(w.status());
  absl::Notification entered, release;
  ASSERT_OK((*w)->Submit(HS(1, 1, 0), Range(1, 1, 1, 100), [&](absl::Status) {
    entered.Notify();
    release.WaitForNotification();
  }));
  entered.WaitForNotification();
  const uint64_t fsyncs_before = (*w)->stats().fsyncs;
  Recorder rec;
  for (int i = 0; i < kDepth - 1; ++i) {
    const uint64_t idx = 2 + i;
    ASSERT_OK((*w)->Submit(HS(1, 1, idx - 1), Range(idx, idx, 1, 100), rec.For(i)));
  }
  release.Notify();
  ASSERT_OK((*w)->Flush());
  EXPECT_EQ((*w)->stats().fsyncs - fsyncs_before, 2u) << "7 batches: groups of 4 and 3";
  EXPECT_THAT(rec.order(), ElementsAreArray(Iota(kDepth - 1)));
  ASSERT_OK((*w)->Close());
}

TEST_F(WalPipelineTest, AtMostDepthBatchesAreInFlight) {
  constexpr int kDepth = 3;
  auto w = Wal::Create(kDir, "", Opts(1 << 20, kDepth));
  ASSERT_OK(w.status());
  absl::Notification release;
  std::atomic<int> submitted{0};
  // The first batch's completion holds the I/O thread: nothing completes,
  // so the submitter must stop after kDepth batches.
  std::thread submitter([&] {
    for (uint64_t i = 1; i <= 10; ++i) {
      auto done = [&, i](absl::Status) {
        if (i == 1) release.WaitForNotification();
      };
      ASSERT_OK((*w)->Submit(HS(1, 1, i - 1), Range(i, i, 1, 10), done));
      submitted.fetch_add(1);
    }
  });
  for (int i = 0; i < 200 && submitted.load() < kDepth; ++i) absl::SleepFor(absl::Milliseconds(5));
  absl::SleepFor(absl::Milliseconds(100));  // time to run past the bound, were there none
  EXPECT_EQ(submitted.load(), kDepth);
  release.Notify();
  submitter.join();
  EXPECT_EQ(submitted.load(), 10);
  ASSERT_OK((*w)->Flush());
  ASSERT_OK((*w)->Close());
}

TEST_F(WalPipelineTest, SynchronousCallsWaitForTheSubmissionsBeforeThem) {
  auto w = Wal::Create(kDir, "", Opts());
  ASSERT_OK(w.status());
  Recorder rec;
  for (int i = 0; i < 20; ++i) {
    const uint64_t idx = 1 + i;
    ASSERT_OK((*w)->Submit(HS(1, 1, idx - 1), Range(idx, idx, 1, 300), rec.For(i)));
  }
  ASSERT_OK((*w)->Save(HS(1, 1, 20), Range(21, 21, 1, 10)));
  EXPECT_EQ(rec.order().size(), 20u) << "Save returned before earlier submissions completed";
  ASSERT_OK((*w)->Submit(HS(1, 1, 21), Range(22, 22, 1, 10), rec.For(20)));
  ASSERT_OK((*w)->SaveSnapshot({22, 1}));
  EXPECT_EQ(rec.order().size(), 21u);
  ASSERT_OK((*w)->Submit(HS(1, 1, 22), {}, rec.For(21)));  // commit only
  ASSERT_OK((*w)->Close());
  EXPECT_THAT(rec.order(), ElementsAreArray(Iota(22)));
  auto r = Wal::OpenForRead(kDir, {}, Opts());
  ASSERT_OK(r.status());
  auto c = (*r)->ReadAll();
  ASSERT_OK(c.status());
  EXPECT_EQ(c->entries.size(), 22u);
  EXPECT_EQ(c->hardstate.commit(), 22u);
}

TEST_F(WalPipelineTest, ARefusedBatchQueuesNothingAndTheWalGoesOn) {
  auto w = Wal::Create(kDir, "", Opts());
  ASSERT_OK(w.status());
  Recorder rec;
  ASSERT_OK((*w)->Submit(HS(1, 1, 0), Range(1, 3, 1, 10), rec.For(0)));
  EXPECT_THAT((*w)->Submit(HS(1, 1, 0), Range(5, 6, 1, 10), rec.For(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contiguous")));
  ASSERT_OK((*w)->Submit(HS(1, 1, 3), Range(4, 4, 1, 10), rec.For(2)));
  // A new leader's entries replace 3 and 4.
  ASSERT_OK((*w)->Submit(HS(2, 2, 2), Range(3, 3, 2, 10), rec.For(3)));
  ASSERT_OK((*w)->Flush());
  EXPECT_THAT(rec.order(), ElementsAreArray({0, 2, 3}));
  ASSERT_OK((*w)->Close());
  auto r = Wal::OpenForRead(kDir, {}, Opts());
  ASSERT_OK(r.status());
  auto c = (*r)->ReadAll();
  ASSERT_OK(c.status());
  EXPECT_EQ(Summary(c->entries, c->hardstate), "hs{2,2,2} [1/1/10 2/1/10 3/2/10 ]");
}

TEST_F(WalPipelineTest, DestroyingTheWalCompletesEverySubmission) {
  Recorder rec;
  {
    auto w = Wal::Create(kDir, "", Opts());
    ASSERT_OK(w.status());
    for (int i = 0; i < 30; ++i) {
      const uint64_t idx = 1 + i;
      ASSERT_OK((*w)->Submit(HS(1, 1, idx - 1), Range(idx, idx, 1, 200), rec.For(i)));
    }
  }
  EXPECT_THAT(rec.order(), ElementsAreArray(Iota(30)));
  for (const auto& [id, s] : rec.status()) EXPECT_OK(s) << id;
}

// Errors: the first failed fsync (or write) completes its batch and every
// later one with that error; later calls return it; what completed OK is
// on disk.
class WalPipelineFaultTest : public ::testing::TestWithParam<bool> {
 protected:
  WalOptions Opts() {
    WalOptions o;
    o.fs = &fs_;
    o.segment_size = 4096;
    o.pipeline_depth = 6;
    return o;
  }
  std::unique_ptr<env::FileSystem> base_ = env::NewMemFileSystem();
  env::FaultInjectionFileSystem fs_{base_.get()};
};

TEST_P(WalPipelineFaultTest, TheFirstIoErrorFailsItsBatchAndEveryLaterOne) {
  const bool fail_write = GetParam();
  const std::vector<Batch> w = Workload();
  auto wal = Wal::Create(kDir, "meta", Opts());
  ASSERT_OK(wal.status());
  Recorder rec;
  const size_t fail_at = w.size() / 2;
  size_t submitted = 0;
  absl::Status refused;
  for (size_t i = 0; i < w.size(); ++i) {
    if (i == fail_at) {
      if (fail_write) {
        fs_.SetWriteLimit(fs_.bytes_written() + 10);
      } else {
        fs_.FailSyncs(absl::DataLossError("injected EIO on fsync"));
      }
    }
    absl::Status s = (*wal)->Submit(w[i].hs, w[i].ents, rec.For(static_cast<int>(i)));
    if (!s.ok()) {
      refused = s;
      break;
    }
    ++submitted;
  }
  const absl::Status flushed = (*wal)->Flush();
  EXPECT_FALSE(flushed.ok());
  // Every submission completed, in order; OKs first, then the one error.
  EXPECT_THAT(rec.order(), ElementsAreArray(Iota(static_cast<int>(submitted))));
  int last_ok = -1;  // the last batch durable by its completion (not commit-only)
  bool failed = false;
  for (const auto& [id, s] : rec.status()) {
    if (s.ok()) {
      EXPECT_FALSE(failed) << "batch " << id << " completed OK after a failed one";
      if (!w[id].ents.empty()) last_ok = id;
    } else {
      failed = true;
      EXPECT_EQ(s, flushed) << "batch " << id << " got another error than the first";
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_LT(last_ok, static_cast<int>(fail_at));
  if (!refused.ok()) {
    EXPECT_EQ(refused, flushed);
  }
  EXPECT_EQ((*wal)->Submit(HS(9, 9, 0), {}, [](absl::Status) {}), flushed);
  EXPECT_EQ((*wal)->Save(HS(9, 9, 0), {}), flushed);
  EXPECT_EQ((*wal)->Close(), flushed);
  wal->reset();

  // Power loss, then what completed OK must read back.
  fs_.ClearSyncFailures();
  fs_.ClearWriteLimit();
  ASSERT_OK(fs_.DropUnsyncedData());
  fs_.Reactivate();
  ASSERT_OK(Wal::Repair(kDir, Opts()).status());
  auto re = Wal::Open(kDir, {}, Opts());
  ASSERT_OK(re.status());
  auto c = (*re)->ReadAll();
  ASSERT_OK(c.status());
  const std::vector<State> model = Model(w);
  bool found = false;
  for (size_t k = static_cast<size_t>(last_ok + 1); k < model.size() && !found; ++k) {
    found = Matches(model[k], *c);
  }
  EXPECT_TRUE(found) << "recovered " << Summary(c->entries, c->hardstate)
                     << "; batches completed OK: 0.." << last_ok;
}

INSTANTIATE_TEST_SUITE_P(FsyncOrWrite, WalPipelineFaultTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Write" : "Fsync"; });

// A crash at every file operation of a pipelined run: power loss (unsynced
// data dropped) or a process crash (page cache kept). The log that comes
// back is the log after some batch at or after the last one completed OK.
class WalPipelineCrashTest : public ::testing::TestWithParam<bool> {};

TEST_P(WalPipelineCrashTest, ACrashAtEveryFileOperationLosesNoCompletedBatch) {
  const bool power_loss = GetParam();
  const std::vector<Batch> w = Workload();
  const std::vector<State> model = Model(w);
  int crashes = 0;
  for (int64_t n = 0;; ++n) {
    auto base = env::NewMemFileSystem();
    env::FaultInjectionFileSystem fs(base.get());
    WalOptions o;
    o.fs = &fs;
    o.segment_size = 4096;
    o.pipeline_depth = 4;
    fs.CrashAfterOps(n);
    Recorder rec;
    {
      auto wal = Wal::Create(kDir, "meta", o);
      if (wal.ok()) {
        for (size_t i = 0; i < w.size(); ++i) {
          if (!(*wal)->Submit(w[i].hs, w[i].ents, rec.For(static_cast<int>(i))).ok()) break;
        }
        (*wal)->Close().IgnoreError();
      }
    }
    if (!fs.crashed()) break;  // the whole run fit: every step was crashed
    ++crashes;
    // The last batch durable by its completion: a commit-only batch
    // (raft needs no sync) completes once written, and may be lost.
    int last_ok = -1;
    for (const auto& [id, s] : rec.status()) {
      if (s.ok() && !w[id].ents.empty()) last_ok = std::max(last_ok, id);
    }
    if (power_loss) {
      ASSERT_OK(fs.DropUnsyncedData());
    }
    fs.Reactivate();
    if (!fs.FileExists(kDir).ok()) {
      EXPECT_EQ(last_ok, -1) << "n=" << n << ": no WAL, but batches completed";
      continue;
    }
    ASSERT_OK(Wal::Repair(kDir, o).status()) << "n=" << n;
    auto re = Wal::Open(kDir, {}, o);
    ASSERT_OK(re.status()) << "n=" << n;
    auto c = (*re)->ReadAll();
    ASSERT_OK(c.status()) << "n=" << n;
    bool found = false;
    for (size_t k = static_cast<size_t>(last_ok + 1); k < model.size() && !found; ++k) {
      found = Matches(model[k], *c);
    }
    ASSERT_TRUE(found) << "n=" << n << ": recovered " << Summary(c->entries, c->hardstate)
                       << "; batches completed OK: 0.." << last_ok;
    // The reopened WAL takes a pipelined batch and reads it back.
    const uint64_t next = c->entries.empty() ? 1 : c->entries.back().index() + 1;
    absl::Status done_status = absl::UnknownError("not completed");
    ASSERT_OK((*re)->Submit(HS(3, 3, 0), Range(next, next, 3, 50),
                            [&](absl::Status s) { done_status = s; }));
    ASSERT_OK((*re)->Close());
    EXPECT_OK(done_status);
  }
  EXPECT_GT(crashes, 50);
}

INSTANTIATE_TEST_SUITE_P(PowerLossOrProcessCrash, WalPipelineCrashTest,
                         ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "PowerLoss" : "ProcessCrash"; });

}  // namespace
}  // namespace sealwal::wal
