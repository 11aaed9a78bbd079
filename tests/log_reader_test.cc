// wal::LogReader (sealwal/wal/log_reader.h) against Wal::ReadAll on the same
// WALs, plaintext and encrypted: several segments, overridden tails, a
// snapshot position mid-log, a torn tail, ReleaseLockTo + CompactTo;
// Entries' max_bytes, the cache, Term without I/O, out-of-range errors, a
// byte changed after the scan, write-mode recovery + Save read back.
#include "sealwal/wal/log_reader.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "testing/status_matchers.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kMetadata[] = "log-reader-test metadata";

raftpb::Entry E(uint64_t index, uint64_t term, size_t size = 300) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::EntryNormal);
  std::string d = absl::StrCat("entry-", index, "-term-", term, "-");
  d.resize(std::max(size, d.size()), static_cast<char>('a' + index % 26));
  e.set_data(std::move(d));
  return e;
}

std::vector<raftpb::Entry> Range(uint64_t from, uint64_t to, uint64_t term, size_t size = 300) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(E(i, term, size));
  return v;
}

raftpb::HardState HS(uint64_t term, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(1);
  hs.set_commit(commit);
  return hs;
}

void ExpectSame(const std::vector<raftpb::Entry>& got, const std::vector<raftpb::Entry>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index(), want[i].index()) << i;
    EXPECT_EQ(got[i].term(), want[i].term()) << i;
    EXPECT_EQ(got[i].type(), want[i].type()) << i;
    EXPECT_EQ(got[i].data(), want[i].data()) << i;
  }
}

class LogReaderTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    fs_ = env::NewMemFileSystem();
    ASSERT_OK(env::CreateDirAll(fs_.get(), "/d"));
    dir_ = encrypted() ? "/d/wal-v3-encrypted" : "/d/wal";
    if (encrypted()) {
      ASSERT_OK_AND_ASSIGN(dek_, encryption::Dek::Generate());
      ASSERT_OK_AND_ASSIGN(codec_, walcrypt::WalCodec::ForDek(dek_));
    }
  }
  bool encrypted() const { return GetParam(); }

  WalOptions Options() const {
    WalOptions o;
    o.fs = fs_.get();
    o.segment_size = 16 * 1024;  // many segments
    o.codec = codec_.get();
    return o;
  }

  // Entries 1..300 (term 1), a snapshot record at 150, then 250..420 at
  // term 2 overriding 250..300, spread over many segments.
  void WriteLog() {
    ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, kMetadata, Options()));
    // Batches of 10: a cut can follow any Save.
    auto save = [&](uint64_t from, uint64_t to, uint64_t term) {
      for (uint64_t i = from; i <= to; i += 10) {
        ASSERT_OK(w->Save(HS(term, i), Range(i, std::min(to, i + 9), term)));
      }
    };
    save(1, 150, 1);
    ASSERT_OK(w->SaveSnapshot({150, 1}));
    save(151, 300, 1);
    save(250, 260, 2);
    save(261, 420, 2);
    ASSERT_OK(w->Close());
  }

  absl::StatusOr<WalContents> ReadAll(SnapshotPosition snap) {
    auto w = Wal::OpenForRead(dir_, snap, Options());
    if (!w.ok()) return w.status();
    return (*w)->ReadAll();
  }

  std::unique_ptr<LogReader> OpenReader(SnapshotPosition snap, LogReaderOptions o = {}) {
    std::unique_ptr<LogReader> r;
    EXPECT_OK(LogReader::Open(dir_, snap, Options(), o, &r));
    return r;
  }

  // `recovered`: also what the recovery pass found (not for a reader
  // that has followed Saves since: its HardState is the recovered one).
  void ExpectMatchesReadAll(LogReader& r, const WalContents& c, SnapshotPosition snap,
                            bool recovered = true) {
    EXPECT_EQ(r.FirstIndex(), snap.index + 1);
    EXPECT_EQ(r.LastIndex(), c.entries.empty() ? snap.index : c.entries.back().index());
    EXPECT_EQ(r.has_metadata(), c.has_metadata);
    EXPECT_EQ(r.metadata(), c.metadata);
    if (recovered) {
      EXPECT_EQ(r.hardstate().SerializeAsString(), c.hardstate.SerializeAsString());
    }
    EXPECT_EQ(r.torn_tail(), c.torn_tail);
    ASSERT_OK_AND_ASSIGN(uint64_t t0, r.Term(snap.index));
    EXPECT_EQ(t0, snap.term);
    for (const auto& e : c.entries) {
      ASSERT_OK_AND_ASSIGN(uint64_t t, r.Term(e.index()));
      EXPECT_EQ(t, e.term()) << e.index();
    }
    ASSERT_OK_AND_ASSIGN(auto got, r.Entries(r.FirstIndex(), r.LastIndex() + 1));
    ExpectSame(got, c.entries);
  }

  // The position of entry `index`'s live record (the last one written).
  RecordPosition PositionOf(uint64_t index) {
    auto reader = RecordReader::Open(dir_, {}, fs_.get());
    EXPECT_OK(reader.status());
    Record rec;
    RecordPosition pos;
    while ((*reader)->ReadRecord(&rec)) {
      raftpb::Entry e;
      if (rec.type == 2 && e.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size())) &&
          e.index() == index) {
        pos = rec.position;
      }
    }
    return pos;
  }
  std::string SegmentPath(uint64_t seq) {
    auto names = Wal::SegmentNames(dir_, fs_.get());
    EXPECT_OK(names.status());
    for (const auto& n : *names) {
      uint64_t s, i;
      if (ParseSegmentFileName(n, &s, &i) && s == seq) return env::JoinPath(dir_, n);
    }
    return "";
  }
  void FlipByte(const std::string& path, uint64_t offset) {
    ASSERT_OK_AND_ASSIGN(std::string data, env::ReadFileToString(fs_.get(), path));
    env::WritableFileOptions o;
    o.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
    o.offset = offset;
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(path, o));
    ASSERT_OK(f->Append(std::string(1, static_cast<char>(data[offset] ^ 0x40))));
    ASSERT_OK(f->Close());
  }

  std::unique_ptr<env::FileSystem> fs_;
  std::string dir_;
  encryption::Dek dek_;
  std::unique_ptr<walcrypt::WalCodec> codec_;
};

TEST_P(LogReaderTest, MatchesReadAllFromTheStartAndMidLog) {
  WriteLog();
  ASSERT_OK_AND_ASSIGN(auto names, Wal::SegmentNames(dir_, fs_.get()));
  EXPECT_GT(names.size(), 5u);
  for (SnapshotPosition snap : {SnapshotPosition{0, 0}, SnapshotPosition{150, 1}}) {
    SCOPED_TRACE(snap.index);
    ASSERT_OK_AND_ASSIGN(WalContents c, ReadAll(snap));
    ASSERT_EQ(c.entries.back().index(), 420u);
    EXPECT_EQ(c.entries[260 - snap.index - 1].term(), 2u);  // overridden tail
    auto r = OpenReader(snap);
    ASSERT_NE(r, nullptr);
    ExpectMatchesReadAll(*r, c, snap);
    // Chunks of every shape, through the cache and around it.
    for (uint64_t lo = snap.index + 1; lo <= 420; lo += 37) {
      const uint64_t hi = std::min<uint64_t>(421, lo + 53);
      ASSERT_OK_AND_ASSIGN(auto got, r->Entries(lo, hi));
      ExpectSame(got, std::vector<raftpb::Entry>(c.entries.begin() + (lo - snap.index - 1),
                                                 c.entries.begin() + (hi - snap.index - 1)));
    }
  }
}

TEST_P(LogReaderTest, IndexIsSixteenBytesPerEntry) {
  WriteLog();
  auto r = OpenReader({});
  ASSERT_NE(r, nullptr);
  const LogReader::Stats s = r->stats();
  // One 4096-slot block of 16 bytes holds all 420 entries (plus its
  // pointer); two term runs.
  EXPECT_EQ(s.index_bytes, 4096u * 16 + 8 + 2 * 16);
}

TEST_P(LogReaderTest, MaxBytesAsRaftLimitSize) {
  WriteLog();
  auto r = OpenReader({});
  ASSERT_NE(r, nullptr);
  ASSERT_OK_AND_ASSIGN(auto all, r->Entries(1, 421));
  for (uint64_t max : {uint64_t{0}, uint64_t{1}, uint64_t{500}, uint64_t{5000}, uint64_t{40000}}) {
    // raft's limitSize: the first entry, then while the sum stays <= max.
    size_t n = 0;
    uint64_t total = 0;
    for (const auto& e : all) {
      if (n > 0 && total + e.ByteSizeLong() > max) break;
      total += e.ByteSizeLong();
      ++n;
    }
    ASSERT_OK_AND_ASSIGN(auto got, r->Entries(1, 421, max));
    EXPECT_EQ(got.size(), n) << max;
    ExpectSame(got, std::vector<raftpb::Entry>(all.begin(), all.begin() + n));
  }
  ASSERT_OK_AND_ASSIGN(auto none, r->Entries(5, 5, 0));
  EXPECT_TRUE(none.empty());
}

TEST_P(LogReaderTest, CacheServesRepeatsAndEvicts) {
  WriteLog();
  LogReaderOptions o;
  o.cache_bytes = 8192;  // about 24 entries of ~330 bytes
  auto r = OpenReader({}, o);
  ASSERT_NE(r, nullptr);
  ASSERT_OK(r->Entries(10, 20).status());
  LogReader::Stats s1 = r->stats();
  EXPECT_EQ(s1.cache_misses, 10u);
  EXPECT_GT(s1.disk_reads, 0u);
  ASSERT_OK_AND_ASSIGN(auto again, r->Entries(10, 20));
  LogReader::Stats s2 = r->stats();
  EXPECT_EQ(s2.cache_hits, 10u);
  EXPECT_EQ(s2.disk_reads, s1.disk_reads);  // no I/O for cached entries
  EXPECT_EQ(again.front().index(), 10u);
  // Read far more than the cache holds: the early entries are evicted.
  ASSERT_OK(r->Entries(100, 300).status());
  LogReader::Stats s3 = r->stats();
  EXPECT_LE(s3.cached_bytes, o.cache_bytes);
  EXPECT_GT(s3.cached_bytes, 0u);
  ASSERT_OK(r->Entries(10, 11).status());
  EXPECT_EQ(r->stats().cache_misses, s3.cache_misses + 1);
  // Disabled cache: nothing kept.
  o.cache_bytes = 0;
  auto r0 = OpenReader({}, o);
  ASSERT_OK(r0->Entries(10, 20).status());
  ASSERT_OK(r0->Entries(10, 20).status());
  EXPECT_EQ(r0->stats().cache_hits, 0u);
  EXPECT_EQ(r0->stats().cached_bytes, 0u);
}

TEST_P(LogReaderTest, TermNeedsNoIo) {
  WriteLog();
  auto r = OpenReader({});
  ASSERT_NE(r, nullptr);
  // Remove every segment: Term still answers from memory, Entries cannot.
  ASSERT_OK_AND_ASSIGN(auto names, Wal::SegmentNames(dir_, fs_.get()));
  for (const auto& n : names) ASSERT_OK(fs_->RemoveFile(env::JoinPath(dir_, n)));
  for (uint64_t i = 0; i <= 420; ++i) {
    ASSERT_OK_AND_ASSIGN(uint64_t t, r->Term(i));
    EXPECT_EQ(t, i == 0 ? 0u : (i < 250 ? 1u : 2u)) << i;
  }
  EXPECT_EQ(r->stats().disk_reads, 0u);
  EXPECT_THAT(r->Entries(1, 2).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(LogReaderTest, OutOfRange) {
  WriteLog();
  auto r = OpenReader({150, 1});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->FirstIndex(), 151u);
  EXPECT_EQ(r->LastIndex(), 420u);
  ASSERT_OK_AND_ASSIGN(uint64_t t, r->Term(150));
  EXPECT_EQ(t, 1u);
  EXPECT_THAT(r->Term(149), StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("compacted")));
  EXPECT_THAT(r->Term(421), StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("unavailable")));
  EXPECT_THAT(r->Entries(150, 160).status(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("compacted")));
  EXPECT_THAT(r->Entries(400, 422).status(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("unavailable")));
  EXPECT_THAT(r->Entries(300, 200).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(r->Entries(400, 421).status());
}

TEST_P(LogReaderTest, ByteChangedAfterTheScanIsDataLoss) {
  WriteLog();
  auto r = OpenReader({});
  ASSERT_NE(r, nullptr);
  const RecordPosition pos = PositionOf(77);
  FlipByte(SegmentPath(pos.segment), pos.offset + 30);  // inside the entry's data
  auto got = r->Entries(70, 80);
  EXPECT_THAT(got.status(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 77")));
  EXPECT_EQ(GetWalErrorClass(got.status()), WalErrorClass::kCrcMismatch);
  ASSERT_OK(r->Entries(70, 77).status());  // the others are intact
  ASSERT_OK(r->Entries(78, 90).status());
}

TEST_P(LogReaderTest, TornTailAsReadAll) {
  WriteLog();
  // Cut the last record short.
  const RecordPosition pos = PositionOf(420);
  const std::string path = SegmentPath(pos.segment);
  {
    env::WritableFileOptions o;
    o.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(path, o));
    ASSERT_OK(f->Truncate(pos.offset + 20));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadAll({}));
  ASSERT_TRUE(c.torn_tail);
  auto r = OpenReader({});
  ASSERT_NE(r, nullptr);
  ExpectMatchesReadAll(*r, c, {});
  EXPECT_EQ(r->LastIndex(), 419u);
  EXPECT_EQ(r->torn_detail(), c.torn_detail);
  // Write mode refuses a torn tail, as ReadAll does.
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Open(dir_, {}, Options()));
  std::unique_ptr<LogReader> wr;
  absl::Status s = w->ReadAllIndexed({}, &wr);
  EXPECT_EQ(GetWalErrorClass(s), WalErrorClass::kUnexpectedEof) << s;
  EXPECT_EQ(wr, nullptr);
}

TEST_P(LogReaderTest, WriteModeRecoveryThenSavesAreVisible) {
  WriteLog();
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Open(dir_, {150, 1}, Options()));
  std::unique_ptr<LogReader> r;
  ASSERT_OK(w->ReadAllIndexed({}, &r));
  EXPECT_THAT(w->ReadAll().status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(r->LastIndex(), 420u);
  EXPECT_EQ(w->last_index(), 420u);
  ASSERT_OK(r->Entries(400, 421).status());  // cached now
  // Appends, an override of a cached range (a new leader), and enough
  // bytes for cuts.
  ASSERT_OK(w->Save(HS(2, 420), Range(421, 500, 2)));
  EXPECT_EQ(r->LastIndex(), 500u);
  ASSERT_OK(w->Save(HS(3, 420), Range(410, 600, 3)));
  EXPECT_GT(w->stats().cuts, 0u);
  EXPECT_EQ(r->LastIndex(), 600u);
  ASSERT_OK_AND_ASSIGN(uint64_t t409, r->Term(409));
  ASSERT_OK_AND_ASSIGN(uint64_t t410, r->Term(410));
  EXPECT_EQ(t409, 2u);
  EXPECT_EQ(t410, 3u);
  ASSERT_OK_AND_ASSIGN(auto mid, r->Entries(405, 415));
  ASSERT_EQ(mid.size(), 10u);
  EXPECT_EQ(mid[4].data(), E(409, 2).data());
  EXPECT_EQ(mid[5].data(), E(410, 3).data());
  // A failed Save publishes nothing.
  EXPECT_FALSE(w->Save(HS(3, 420), Range(700, 701, 3)).ok());
  EXPECT_EQ(r->LastIndex(), 600u);
  // Snapshot at 550: release, compact, remove the old segments.
  ASSERT_OK(w->SaveSnapshot({550, 3}));
  ASSERT_OK(w->ReleaseLockTo(550));
  ASSERT_OK(r->CompactTo(550));
  EXPECT_EQ(r->FirstIndex(), 551u);
  ASSERT_OK_AND_ASSIGN(uint64_t t550, r->Term(550));
  EXPECT_EQ(t550, 3u);
  EXPECT_THAT(r->Entries(500, 560).status(), StatusIs(absl::StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(auto names, Wal::SegmentNames(dir_, fs_.get()));
  for (size_t i = 0; i + 2 < names.size(); ++i) {
    uint64_t seq, first;
    ASSERT_TRUE(ParseSegmentFileName(names[i], &seq, &first));
    uint64_t s2, next_first;
    ASSERT_TRUE(ParseSegmentFileName(names[i + 1], &s2, &next_first));
    if (next_first <= 550) {
      ASSERT_OK(fs_->RemoveFile(env::JoinPath(dir_, names[i])));
    }
  }
  ASSERT_OK(w->Close());
  // The reader outlives the Wal.
  w.reset();
  ASSERT_OK_AND_ASSIGN(auto tail, r->Entries(551, 601));
  // A fresh ReadAll at the snapshot agrees.
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadAll({550, 3}));
  ExpectSame(tail, c.entries);
  ExpectMatchesReadAll(*r, c, {550, 3}, /*recovered=*/false);
}

// Readers on other threads while Saves override entries: every result is
// one consistent view (Entries decodes without the lock and starts over
// when entries left the index meanwhile).
TEST_P(LogReaderTest, ConcurrentReadersSeeConsistentEntries) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, kMetadata, Options()));
  std::unique_ptr<LogReader> r;
  ASSERT_OK(w->ReadAllIndexed({}, &r));
  ASSERT_OK(w->Save(HS(1, 1), Range(1, 200, 1)));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto got = r->Entries(100, 201);
        if (!got.ok()) {
          ++bad;
          continue;
        }
        for (size_t k = 0; k < got->size(); ++k) {
          const raftpb::Entry& e = (*got)[k];
          // Terms never go down along a result, and data matches its term.
          if (e.index() != 100 + k || e.data() != E(e.index(), e.term()).data() ||
              (k > 0 && e.term() < (*got)[k - 1].term())) {
            ++bad;
          }
        }
        ++reads;
      }
    });
  }
  for (uint64_t term = 2; term <= 20; ++term) {
    ASSERT_OK(w->Save(HS(term, 1), Range(150, 200, term)));
  }
  while (reads.load() < 10) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto last, r->Entries(150, 201));
  for (const auto& e : last) EXPECT_EQ(e.term(), 20u);
  ASSERT_OK(w->Close());
}

TEST_P(LogReaderTest, FreshWalFollowsSaves) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, kMetadata, Options()));
  std::unique_ptr<LogReader> r;
  ASSERT_OK(w->ReadAllIndexed({}, &r));
  EXPECT_EQ(r->FirstIndex(), 1u);
  EXPECT_EQ(r->LastIndex(), 0u);
  EXPECT_EQ(r->metadata(), kMetadata);
  ASSERT_OK(w->Save(HS(1, 1), Range(1, 300, 1)));
  ASSERT_OK_AND_ASSIGN(auto got, r->Entries(1, 301));
  ExpectSame(got, Range(1, 300, 1));
  ASSERT_OK(w->Close());
}

// An EntryVisitor that applies truncations to what it saw, and checks that
// it is never called concurrently.
class RecordingVisitor final : public EntryVisitor {
 public:
  void Visit(const EntryView& v) override {
    Enter();
    raftpb::Entry e;
    e.set_index(v.index);
    e.set_term(v.term);
    e.set_type(static_cast<raftpb::EntryType>(v.type));
    e.set_data(std::string(v.data));
    if (!entries.empty() && v.index != entries.back().index() + 1) ++gaps;
    entries.push_back(std::move(e));
    Leave();
  }
  void Truncate(uint64_t index) override {
    Enter();
    ++truncations;
    while (!entries.empty() && entries.back().index() >= index) entries.pop_back();
    Leave();
  }
  std::vector<raftpb::Entry> entries;
  int truncations = 0;
  int gaps = 0;
  std::atomic<int> concurrent{0};

 private:
  void Enter() {
    if (in_.exchange(true)) concurrent.fetch_add(1);
  }
  void Leave() { in_.store(false); }
  std::atomic<bool> in_{false};
};

TEST_P(LogReaderTest, VisitorSeesTheLogWithTruncationsApplied) {
  WriteLog();
  for (SnapshotPosition snap : {SnapshotPosition{0, 0}, SnapshotPosition{150, 1}}) {
    SCOPED_TRACE(snap.index);
    ASSERT_OK_AND_ASSIGN(WalContents c, ReadAll(snap));
    RecordingVisitor v;
    LogReaderOptions o;
    o.cache_bytes = 0;
    o.visitor = &v;
    auto r = OpenReader(snap, o);
    ASSERT_NE(r, nullptr);
    ExpectSame(v.entries, c.entries);  // every visit came before Open returned
    EXPECT_EQ(v.truncations, 1);       // 250..300 replaced at term 2
    EXPECT_EQ(v.gaps, 0);
    EXPECT_EQ(v.concurrent.load(), 0);
    ExpectMatchesReadAll(*r, c, snap);
  }
}

TEST_P(LogReaderTest, VisitorKeepsOrderAcrossManyBatchesAndThreads) {
  // 20,000 entries of 200 bytes: many scan batches decoded on several
  // threads; visits must still come in log order, one at a time.
  WalOptions wo = Options();
  wo.segment_size = 1 << 20;
  wo.decode_threads = 4;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, kMetadata, wo));
  for (uint64_t i = 1; i <= 20000; i += 500) {
    ASSERT_OK(w->Save(HS(1, i), Range(i, i + 499, 1, 200)));
  }
  ASSERT_OK(w->Close());
  RecordingVisitor v;
  LogReaderOptions o;
  o.visitor = &v;
  std::unique_ptr<LogReader> r;
  ASSERT_OK(LogReader::Open(dir_, {}, wo, o, &r));
  ASSERT_EQ(v.entries.size(), 20000u);
  for (uint64_t i = 0; i < 20000; ++i) {
    ASSERT_EQ(v.entries[i].index(), i + 1);
    ASSERT_EQ(v.entries[i].data(), E(i + 1, 1, 200).data()) << i;
  }
  EXPECT_EQ(v.truncations, 0);
  EXPECT_EQ(v.concurrent.load(), 0);
}

// Payload verification needs a codec: these run on encrypted WALs only.
class EncryptedLogReaderTest : public LogReaderTest {};

TEST_P(EncryptedLogReaderTest, VerifyPayloadsFindsWhatReadAllFinds) {
  WriteLog();
  // A reader holding another key: ReadAll and the reader fail alike.
  ASSERT_OK_AND_ASSIGN(auto other, encryption::Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto wrong, walcrypt::WalCodec::ForDek(other));
  WalOptions o = Options();
  o.codec = wrong.get();
  ASSERT_OK_AND_ASSIGN(auto w, Wal::OpenForRead(dir_, {}, o));
  absl::Status want = w->ReadAll().status();
  EXPECT_EQ(GetWalErrorClass(want), WalErrorClass::kDecryptFailed);
  std::unique_ptr<LogReader> r;
  absl::Status got = LogReader::Open(dir_, {}, o, {}, &r);
  EXPECT_EQ(got, want);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->LastIndex(), 0u);  // entries before the first failure: none
  // Without the scan-time check only metadata is decoded; entries fail
  // when read.
  LogReaderOptions lazy;
  lazy.verify_payloads = false;
  absl::Status got2 = LogReader::Open(dir_, {}, o, lazy, &r);
  EXPECT_EQ(GetWalErrorClass(got2), WalErrorClass::kDecryptFailed);
  EXPECT_THAT(std::string(got2.message()), HasSubstr("metadata"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->LastIndex(), 420u);
  EXPECT_EQ(GetWalErrorClass(r->Entries(1, 2).status()), WalErrorClass::kDecryptFailed);
}

// A codec that refuses to decode payloads starting with "bad" (stored as
// they are otherwise): which undecodable entries count is ReadAll's rule,
// the first *live* one in index order.
class RefusingCodec final : public PayloadCodec {
 public:
  absl::Status Encode(const PayloadContext&, absl::string_view plain, std::string* out) override {
    out->assign(plain.data(), plain.size());
    return absl::OkStatus();
  }
  absl::Status Decode(const PayloadContext& ctx, absl::string_view stored,
                      std::string* out) const override {
    if (stored.substr(0, 3) == "bad") {
      return absl::DataLossError(absl::StrCat("refused ", ctx.index));
    }
    out->assign(stored.data(), stored.size());
    return absl::OkStatus();
  }
};

raftpb::Entry Bad(uint64_t index, uint64_t term) {
  raftpb::Entry e = E(index, term);
  e.set_data(absl::StrCat("bad-", index));
  return e;
}

TEST(LogReaderScanTest, OnlyLiveUndecodableEntriesCount) {
  auto fs = env::NewMemFileSystem();
  RefusingCodec codec;
  WalOptions o;
  o.fs = fs.get();
  o.codec = &codec;
  // 1..6000 with 1000..5999 undecodable (more failures than the scan
  // keeps), all of them overridden at term 2 by good entries; then 7000 is
  // undecodable and live.
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create("/wal", kMetadata, o));
  std::vector<raftpb::Entry> ents;
  for (uint64_t i = 1; i <= 6000; ++i) ents.push_back(i >= 1000 && i < 6000 ? Bad(i, 1) : E(i, 1));
  ASSERT_OK(w->Save(HS(1, 1), ents));
  ASSERT_OK(w->Save(HS(2, 1), Range(1000, 6999, 2)));
  ASSERT_OK(w->Close());
  {
    ASSERT_OK_AND_ASSIGN(auto r0, Wal::OpenForRead("/wal", {}, o));
    ASSERT_OK_AND_ASSIGN(WalContents c, r0->ReadAll());
    std::unique_ptr<LogReader> r;
    ASSERT_OK(LogReader::Open("/wal", {}, o, {}, &r));
    EXPECT_EQ(r->LastIndex(), c.entries.back().index());
    ASSERT_OK_AND_ASSIGN(auto got, r->Entries(1, r->LastIndex() + 1));
    ExpectSame(got, c.entries);
    // A visitor skips the undecodable entries, and the truncation that
    // replaced them makes its view the log again.
    RecordingVisitor v;
    LogReaderOptions vo;
    vo.visitor = &v;
    ASSERT_OK(LogReader::Open("/wal", {}, o, vo, &r));
    ExpectSame(v.entries, c.entries);
    EXPECT_EQ(v.truncations, 1);
  }
  ASSERT_OK_AND_ASSIGN(auto w2, Wal::Open("/wal", {}, o));
  ASSERT_OK(w2->ReadAll().status());
  ASSERT_OK(w2->Save(HS(2, 1), {Bad(7000, 2), E(7001, 2)}));
  ASSERT_OK(w2->Close());
  ASSERT_OK_AND_ASSIGN(auto r1, Wal::OpenForRead("/wal", {}, o));
  WalContents c;
  absl::Status want = r1->ReadAll(&c);
  EXPECT_THAT(want, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 7000")));
  std::unique_ptr<LogReader> r;
  EXPECT_EQ(LogReader::Open("/wal", {}, o, {}, &r), want);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->LastIndex(), 6999u);
  EXPECT_EQ(c.entries.back().index(), 6999u);
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, LogReaderTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plaintext"; });
INSTANTIATE_TEST_SUITE_P(Encrypted, EncryptedLogReaderTest, ::testing::Values(true),
                         [](const auto&) { return "Encrypted"; });

}  // namespace
}  // namespace sealwal::wal
