// wal_test: the API semantics of wal::Wal, mostly on the in-memory file
// system (fast, and byte-level surgery is easy), with the fault-injection
// wrapper where durability matters and a POSIX temp dir for real locks.
#include "sealwal/wal/wal.h"

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "sealwal/base/crc32c.h"
#include "testing/fault_injection_file_system.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/proto/walpb.pb.h"
#include "testing/status_matchers.h"
#include "testing/wal_entries.h"
#include "testing/test_util.h"
#include "sealwal/wal/decoder.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::HS;
using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

raftpb::Entry E(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::EntryNormal);
  if (data.empty()) data = absl::StrCat("entry-", index, "-term-", term);
  e.set_data(std::move(data));
  return e;
}

std::vector<raftpb::Entry> Range(uint64_t from, uint64_t to, uint64_t term, size_t size = 0) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = from; i <= to; ++i) {
    v.push_back(E(i, term, size == 0 ? "" : std::string(size, static_cast<char>('a' + i % 26))));
  }
  return v;
}

std::string Describe(const raftpb::Entry& e) {
  return absl::StrCat("{", e.index(), "/", e.term(), " type ", e.type(), " ", e.data().size(),
                      "B}");
}

void ExpectEntries(const std::vector<raftpb::Entry>& got, const std::vector<raftpb::Entry>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index(), want[i].index()) << i;
    EXPECT_EQ(got[i].term(), want[i].term()) << i;
    EXPECT_EQ(got[i].type(), want[i].type()) << i;
    EXPECT_EQ(got[i].data(), want[i].data()) << i << " " << Describe(got[i]);
  }
}

void ExpectHardState(const raftpb::HardState& got, const raftpb::HardState& want) {
  EXPECT_EQ(got.term(), want.term());
  EXPECT_EQ(got.vote(), want.vote());
  EXPECT_EQ(got.commit(), want.commit());
}

std::string ReadFile(env::FileSystem* fs, const std::string& path) {
  auto s = env::ReadFileToString(fs, path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

void WriteFile(env::FileSystem* fs, const std::string& path, const std::string& data) {
  auto f = fs->NewWritableFile(path);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_OK((*f)->Append(data));
  ASSERT_OK((*f)->Close());
}

// Every file in dir (name -> bytes), to prove that a call changed nothing.
std::map<std::string, std::string> DirContents(env::FileSystem* fs, const std::string& dir) {
  std::map<std::string, std::string> m;
  auto names = fs->ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return m;
  for (const auto& n : *names) m[n] = ReadFile(fs, env::JoinPath(dir, n));
  return m;
}

class WalTest : public ::testing::Test {
 protected:
  WalOptions Opts(uint64_t segment_size = 1 << 20) {
    WalOptions o;
    o.fs = fs_.get();
    o.segment_size = segment_size;
    return o;
  }
  absl::StatusOr<WalContents> ReadBack(SnapshotPosition snap = {}, uint64_t segment_size = 1 << 20) {
    auto w = Wal::OpenForRead(dir_, snap, Opts(segment_size));
    if (!w.ok()) return w.status();
    return (*w)->ReadAll();
  }

  std::unique_ptr<env::FileSystem> fs_ = env::NewMemFileSystem();
  const std::string dir_ = "/data/wal";
};

// ---------------------------------------------------------------------------
// Round trip, snapshots, overrides, gaps.

TEST_F(WalTest, CreateSaveCloseOpenReadAllRoundTrip) {
  ASSERT_OK(env::CreateDirAll(fs_.get(), "/data"));
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "cluster-metadata", Opts()));
  auto first = Range(1, 3, 1);
  first[1].set_type(raftpb::EntryConfChange);
  first[2].clear_data();  // an entry without data (raft's empty leader entry)
  ASSERT_OK(w->Save(HS(1, 1, 0), first));
  ASSERT_OK(w->Save(HS(1, 1, 3), {}));  // commit only
  EXPECT_EQ(w->last_index(), 3u);
  ASSERT_OK(w->Close());
  ASSERT_OK(w->Close());  // idempotent

  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
  ASSERT_OK_AND_ASSIGN(WalContents c, w->ReadAll());
  EXPECT_TRUE(c.has_metadata);
  EXPECT_EQ(c.metadata, "cluster-metadata");
  ExpectHardState(c.hardstate, HS(1, 1, 3));
  ExpectEntries(c.entries, first);
  EXPECT_FALSE(c.entries[2].has_data());
  EXPECT_FALSE(c.torn_tail);
  EXPECT_EQ(w->last_index(), 3u);
  // ReadAll reads once.
  EXPECT_THAT(w->ReadAll().status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  // Appending after a reopen continues the log (and the CRC chain).
  ASSERT_OK(w->Save(HS(2, 1, 3), Range(4, 5, 2)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(c, ReadBack());
  auto want = first;
  for (auto& e : Range(4, 5, 2)) want.push_back(e);
  ExpectEntries(c.entries, want);
  ExpectHardState(c.hardstate, HS(2, 1, 3));
  EXPECT_OK(Wal::Verify(dir_, {}, Opts()));
}

// A codec may implement only Encode and Decode: PayloadCodec's defaults
// then encode a batch in order (one ready range) and decode through a
// forwarding session, on one thread or several.
class ReversingCodec final : public PayloadCodec {
 public:
  absl::Status Encode(const PayloadContext&, absl::string_view plain,
                      std::string* out) override {
    out->assign("R:");
    out->append(plain.rbegin(), plain.rend());
    return absl::OkStatus();
  }
  absl::Status Decode(const PayloadContext& ctx, absl::string_view stored,
                      std::string* out) const override {
    if (!absl::ConsumePrefix(&stored, "R:")) {
      return absl::DataLossError(absl::StrCat("no R: prefix at index ", ctx.index));
    }
    out->assign(stored.rbegin(), stored.rend());
    return absl::OkStatus();
  }
};

TEST_F(WalTest, CodecWithOnlyEncodeAndDecodeUsesTheDefaults) {
  ASSERT_OK(env::CreateDirAll(fs_.get(), "/data"));
  ReversingCodec codec;
  WalOptions o = Opts();
  o.codec = &codec;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", o));
  auto ents = Range(1, 600, 1);  // saved as one small batch and one large one
  for (auto& e : ents) e.set_data(absl::StrCat("entry ", e.index(), std::string(100, '.')));
  ASSERT_OK(w->Save(HS(1, 1, 1), std::vector<raftpb::Entry>(ents.begin(), ents.begin() + 1)));
  ASSERT_OK(w->Save(HS(1, 1, 600), std::vector<raftpb::Entry>(ents.begin() + 1, ents.end())));
  ASSERT_OK(w->Close());
  // Stored reversed: the codec's bytes, not the entry's, are on disk.
  ASSERT_OK_AND_ASSIGN(auto names, fs_->ListDir(dir_));
  ASSERT_OK_AND_ASSIGN(std::string seg, env::ReadFileToString(fs_.get(), dir_ + "/" + names[0]));
  const std::string data = ents[7].data();
  EXPECT_EQ(seg.find(data), std::string::npos);
  EXPECT_NE(seg.find("R:" + std::string(data.rbegin(), data.rend())), std::string::npos);
  for (int threads : {1, 2}) {
    o.decode_threads = threads;
    ASSERT_OK_AND_ASSIGN(auto r, Wal::OpenForRead(dir_, {}, o));
    ASSERT_OK_AND_ASSIGN(WalContents c, r->ReadAll());
    ExpectEntries(c.entries, ents);
  }
}

TEST_F(WalTest, CreateRefusesNonEmptyDirAndAcceptsEmptyOne) {
  ASSERT_OK(env::CreateDirAll(fs_.get(), dir_));
  {
    ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));  // empty dir: replaced
    ASSERT_OK(w->Close());
  }
  EXPECT_THAT(Wal::Create(dir_, "m", Opts()).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(dir_)));
  // Too small a segment is refused up front.
  EXPECT_THAT(Wal::Create("/data/other", "m", Opts(100)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(WalTest, EmptyMetadataRoundTrips) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "", Opts()));
  ASSERT_OK(w->Save(HS(1, 0, 0), Range(1, 1, 1)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack());
  EXPECT_EQ(c.metadata, "");
  ExpectEntries(c.entries, Range(1, 1, 1));
}

TEST_F(WalTest, ReadAllFromSnapshotReturnsEntriesAfterIt) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Save(HS(1, 1, 10), Range(1, 10, 1)));
  ASSERT_OK(w->SaveSnapshot({5, 1}));
  ASSERT_OK(w->Save(HS(2, 1, 12), Range(11, 12, 2)));
  ASSERT_OK(w->Close());

  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack({5, 1}));
  auto want = Range(6, 10, 1);
  for (auto& e : Range(11, 12, 2)) want.push_back(e);
  ExpectEntries(c.entries, want);
  ExpectHardState(c.hardstate, HS(2, 1, 12));

  // From the start: everything.
  ASSERT_OK_AND_ASSIGN(c, ReadBack({0, 0}));
  EXPECT_EQ(c.entries.size(), 12u);

  // Opening for append at the snapshot works too, and appends after 12.
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {5, 1}, Opts()));
  ASSERT_OK_AND_ASSIGN(c, w->ReadAll());
  ExpectEntries(c.entries, want);
  EXPECT_EQ(w->last_index(), 12u);
  ASSERT_OK(w->Save(HS(2, 1, 13), Range(13, 13, 2)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(c, ReadBack({5, 1}));
  EXPECT_EQ(c.entries.back().index(), 13u);
  EXPECT_EQ(c.entries.front().index(), 6u);
}

TEST_F(WalTest, LaterEntryWithSeenIndexOverridesTheTail) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Save(HS(1, 1, 2), Range(1, 5, 1)));
  // A new leader (term 2) rewrites from index 3.
  ASSERT_OK(w->Save(HS(2, 2, 2), Range(3, 4, 2)));
  EXPECT_EQ(w->last_index(), 4u);
  // The next entry must follow the new tail (4), not the old one (5).
  EXPECT_THAT(w->Save({}, Range(6, 6, 2)), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(w->Save({}, Range(5, 5, 2)));
  ASSERT_OK(w->Close());

  std::vector<raftpb::Entry> want = Range(1, 2, 1);
  for (auto& e : Range(3, 5, 2)) want.push_back(e);
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack());
  ExpectEntries(c.entries, want);

  // Overriding across a reopen, from before the snapshot-free start.
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
  ASSERT_OK(w->ReadAll().status());
  ASSERT_OK(w->Save(HS(3, 3, 1), Range(2, 2, 3)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(c, ReadBack());
  want = Range(1, 1, 1);
  want.push_back(E(2, 3));
  ExpectEntries(c.entries, want);
  ExpectHardState(c.hardstate, HS(3, 3, 1));
}

TEST_F(WalTest, GapIsRejectedAndTheWalStaysUsable) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 3, 1)));
  const WalStats before = w->stats();

  // A batch that starts past last+1.
  EXPECT_THAT(w->Save(HS(1, 1, 3), Range(5, 6, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contiguous")));
  // A batch with a hole inside.
  std::vector<raftpb::Entry> holey = {E(4, 1), E(6, 1)};
  EXPECT_THAT(w->Save(HS(1, 1, 3), holey), StatusIs(absl::StatusCode::kInvalidArgument));
  // A batch going backwards inside.
  std::vector<raftpb::Entry> back = {E(4, 1), E(3, 1)};
  EXPECT_THAT(w->Save(HS(1, 1, 3), back), StatusIs(absl::StatusCode::kInvalidArgument));
  // Nothing reached the file, nothing was synced, and no state moved.
  EXPECT_EQ(w->stats().bytes_written, before.bytes_written);
  EXPECT_EQ(w->stats().fsyncs, before.fsyncs);
  EXPECT_EQ(w->last_index(), 3u);

  // Not sticky: the WAL keeps working.
  ASSERT_OK(w->Save(HS(1, 1, 4), Range(4, 4, 1)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack());
  ExpectEntries(c.entries, Range(1, 4, 1));
  ExpectHardState(c.hardstate, HS(1, 1, 4));
}

// ---------------------------------------------------------------------------
// When Save syncs.

TEST_F(WalTest, SaveSyncsExactlyWhenEtcdWould) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  uint64_t fsyncs = w->stats().fsyncs;
  EXPECT_GE(fsyncs, 1u);  // Create syncs the first segment
  auto expect_syncs = [&](uint64_t n, const char* what) {
    EXPECT_EQ(w->stats().fsyncs - fsyncs, n) << what;
    fsyncs = w->stats().fsyncs;
  };
  ASSERT_OK(w->Save({}, {}));
  expect_syncs(0, "empty state, no entries: nothing to do");
  ASSERT_OK(w->Save(HS(1, 0, 0), {}));
  expect_syncs(1, "term changed");
  ASSERT_OK(w->Save(HS(1, 0, 0), {}));
  expect_syncs(0, "same state");
  ASSERT_OK(w->Save(HS(1, 0, 0), Range(1, 2, 1)));
  expect_syncs(1, "entries present");
  ASSERT_OK(w->Save(HS(1, 0, 2), {}));
  expect_syncs(0, "commit only");
  ASSERT_OK(w->Save(HS(1, 3, 2), {}));
  expect_syncs(1, "vote changed");
  ASSERT_OK(w->Save({}, Range(3, 3, 1)));
  expect_syncs(1, "entries with an empty state");
  ASSERT_OK(w->SaveSnapshot({2, 1}));
  expect_syncs(1, "snapshot");
  ASSERT_OK(w->SaveSnapshot({2, 1}));
  expect_syncs(1, "snapshot again: always syncs");
  ASSERT_OK(w->Save(HS(2, 0, 3), {}));
  expect_syncs(1, "term changed (vote reset)");
  ASSERT_OK(w->Save(HS(2, 0, 3), {}));
  expect_syncs(0, "same again");
  ASSERT_OK(w->Sync());
  expect_syncs(1, "explicit Sync");
  ASSERT_OK(w->Close());
}

// What the sync policy means on disk: a commit-only Save is not durable until
// the next sync, everything else is durable when Save returns.
TEST_F(WalTest, SyncedSavesSurvivePowerLossAndCommitOnlySavesMayNot) {
  env::FaultInjectionFileSystem fault(fs_.get());
  WalOptions o = Opts();
  o.fs = &fault;
  ASSERT_OK(env::CreateDirAll(&fault, "/data"));
  ASSERT_OK(fault.SyncDir("/"));
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", o));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 3, 1)));
  ASSERT_OK(w->Save(HS(1, 1, 3), {}));  // not synced
  ASSERT_OK(fault.DropUnsyncedData());
  fault.Reactivate();
  w.reset();
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, o));
  ASSERT_OK_AND_ASSIGN(WalContents c, w->ReadAll());
  ExpectEntries(c.entries, Range(1, 3, 1));
  ExpectHardState(c.hardstate, HS(1, 1, 0));
  ASSERT_OK(w->Close());
}

// ---------------------------------------------------------------------------
// Segments.

struct SegmentInfo {
  std::string name;
  uint64_t seq = 0, index = 0;
  std::vector<uint64_t> entry_indexes;
  uint64_t size = 0;
};

std::vector<SegmentInfo> Segments(env::FileSystem* fs, const std::string& dir) {
  std::vector<SegmentInfo> out;
  auto names = Wal::SegmentNames(dir, fs);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return out;
  for (const auto& n : *names) {
    SegmentInfo s;
    s.name = n;
    EXPECT_TRUE(ParseSegmentFileName(n, &s.seq, &s.index)) << n;
    const std::string path = env::JoinPath(dir, n);
    s.size = *fs->GetFileSize(path);
    Decoder d(fs, {path});
    DecodedRecord rec;
    for (;;) {
      auto more = d.Next(&rec);
      EXPECT_TRUE(more.ok()) << more.status();
      if (!more.ok() || !*more) break;
      if (rec.type == static_cast<int64_t>(RecordType::kCrc)) d.UpdateCrc(rec.crc);
      if (rec.type == static_cast<int64_t>(RecordType::kEntry)) {
        raftpb::Entry e;
        EXPECT_TRUE(e.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size())));
        s.entry_indexes.push_back(e.index());
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

TEST_F(WalTest, SmallSegmentsCutIntoCorrectlyNamedFilesAndReadBack) {
  constexpr uint64_t kSeg = 4096;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts(kSeg)));
  std::vector<raftpb::Entry> all;
  for (uint64_t i = 1; i <= 60; ++i) {
    auto e = E(i, 1, std::string(100 + (i * 37) % 700, static_cast<char>('A' + i % 26)));
    all.push_back(e);
    ASSERT_OK(w->Save(HS(1, 1, i - 1), {e}));
  }
  ASSERT_OK(w->SaveSnapshot({30, 1}));
  const uint64_t cuts = w->stats().cuts;
  EXPECT_GE(cuts, 5u);
  ASSERT_OK(w->Close());

  // Only segments remain (the pipeline's prepared .tmp is removed on close).
  ASSERT_OK_AND_ASSIGN(auto listing, fs_->ListDir(dir_));
  // Exactly "%016x-%016x.wal", lower-case hex.
  auto is_segment_name = [](const std::string& n) {
    if (n.size() != 37 || n[16] != '-' || n.substr(33) != ".wal") return false;
    for (size_t i = 0; i < 33; ++i) {
      if (i != 16 && !((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f'))) {
        return false;
      }
    }
    return true;
  };
  for (const auto& n : listing) EXPECT_TRUE(is_segment_name(n)) << n;

  auto segs = Segments(fs_.get(), dir_);
  ASSERT_EQ(segs.size(), cuts + 1);
  uint64_t next_index = 1;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& s = segs[i];
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.name, absl::StrFormat("%016x-%016x.wal", s.seq, s.index));
    EXPECT_EQ(s.seq, i);  // contiguous sequence numbers
    // The name's index is the first entry that may follow: the previous
    // segment ended just before it.
    EXPECT_EQ(s.index, i == 0 ? 0 : next_index);
    if (!s.entry_indexes.empty()) {
      if (i > 0) {
        EXPECT_EQ(s.entry_indexes.front(), s.index);
      }
      next_index = s.entry_indexes.back() + 1;
    }
    if (i + 1 < segs.size()) {
      // Closed segments are cut back to their used length; each holds at
      // least segment_size bytes of frames, like etcd's.
      EXPECT_GE(s.size, kSeg);
      EXPECT_LT(s.size, kSeg + 2048);
    } else {
      EXPECT_GE(s.size, kSeg);  // the tail stays preallocated
    }
  }
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack({}, kSeg));
  ExpectEntries(c.entries, all);
  ExpectHardState(c.hardstate, HS(1, 1, 59));
  ASSERT_OK_AND_ASSIGN(c, ReadBack({30, 1}, kSeg));
  ExpectEntries(c.entries, std::vector<raftpb::Entry>(all.begin() + 30, all.end()));
  EXPECT_OK(Wal::Verify(dir_, {30, 1}, Opts(kSeg)));

  // Reopen for appending at the end and keep cutting.
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {30, 1}, Opts(kSeg)));
  ASSERT_OK(w->ReadAll().status());
  for (uint64_t i = 61; i <= 80; ++i) {
    all.push_back(E(i, 2, std::string(500, 'z')));
    ASSERT_OK(w->Save(HS(2, 1, i - 1), {all.back()}));
  }
  EXPECT_GE(w->stats().cuts, 1u);
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(c, ReadBack({}, kSeg));
  ExpectEntries(c.entries, all);
  auto segs2 = Segments(fs_.get(), dir_);
  for (size_t i = 0; i < segs2.size(); ++i) EXPECT_EQ(segs2[i].seq, i);
}

TEST_F(WalTest, BigBatchCutsOnceAndReadsBack) {
  constexpr uint64_t kSeg = 4096;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts(kSeg)));
  // One batch much larger than a segment: written whole, then cut.
  auto batch = Range(1, 40, 1, 900);
  ASSERT_OK(w->Save(HS(1, 1, 0), batch));
  ASSERT_OK(w->Save(HS(1, 1, 40), Range(41, 41, 1)));  // this one cuts
  ASSERT_OK(w->Save(HS(1, 1, 41), Range(42, 42, 1)));
  ASSERT_OK(w->Close());
  auto segs = Segments(fs_.get(), dir_);
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[1].index, 42u);
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack({}, kSeg));
  batch.push_back(E(41, 1));
  batch.push_back(E(42, 1));
  ExpectEntries(c.entries, batch);
}

// ---------------------------------------------------------------------------
// Locks.

TEST_F(WalTest, ReleaseLockToUnlocksOnlyWholeOlderSegments) {
  constexpr uint64_t kSeg = 4096;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts(kSeg)));
  for (uint64_t i = 1; i <= 40; ++i) ASSERT_OK(w->Save(HS(1, 1, i), Range(i, i, 1, 600)));
  auto segs = Segments(fs_.get(), dir_);
  ASSERT_GE(segs.size(), 4u);
  auto locked = [&](size_t i) {
    auto l = fs_->LockFile(env::JoinPath(dir_, segs[i].name));
    if (l.ok()) return false;
    EXPECT_THAT(l.status(), StatusIs(absl::StatusCode::kUnavailable));
    return true;
  };
  for (size_t i = 0; i < segs.size(); ++i) EXPECT_TRUE(locked(i)) << i;

  // Index inside segment 2: segments 0 and 1 are released (etcd keeps the
  // one before the first segment starting at or after the index).
  const uint64_t idx = segs[2].index + 1;
  ASSERT_LT(idx, segs[3].index);
  ASSERT_OK(w->ReleaseLockTo(idx));
  EXPECT_FALSE(locked(0));
  EXPECT_FALSE(locked(1));
  for (size_t i = 2; i < segs.size(); ++i) EXPECT_TRUE(locked(i)) << i;

  // An index equal to a segment's first index keeps the segment before it.
  ASSERT_OK(w->ReleaseLockTo(segs[3].index));
  EXPECT_TRUE(locked(2));
  // Past everything: all but the tail are released; the tail stays locked.
  ASSERT_OK(w->ReleaseLockTo(1000));
  for (size_t i = 0; i + 1 < segs.size(); ++i) EXPECT_FALSE(locked(i)) << i;
  EXPECT_TRUE(locked(segs.size() - 1));
  // The WAL still appends.
  ASSERT_OK(w->Save(HS(1, 1, 41), Range(41, 41, 1)));
  ASSERT_OK(w->Close());
  for (size_t i = 0; i < segs.size(); ++i) EXPECT_FALSE(locked(i)) << i;
}

void ExpectSecondWriterRefused(env::FileSystem* fs, const std::string& dir) {
  WalOptions o;
  o.fs = fs;
  o.segment_size = 64 * 1024;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir, "m", o));
  ASSERT_OK(w->Save(HS(1, 1, 1), Range(1, 3, 1)));

  auto second = Wal::Open(dir, {}, o);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kUnavailable));
  // The message says what is wrong and where.
  EXPECT_THAT(std::string(second.status().message()),
              ::testing::AllOf(HasSubstr(dir), HasSubstr("lock"), HasSubstr("another")));

  // Readers need no lock.
  ASSERT_OK_AND_ASSIGN(auto r, Wal::OpenForRead(dir, {}, o));
  ASSERT_OK_AND_ASSIGN(WalContents c, r->ReadAll());
  EXPECT_EQ(c.entries.size(), 3u);
  // Repair takes the lock too.
  EXPECT_THAT(Wal::Repair(dir, o).status(), StatusIs(absl::StatusCode::kUnavailable));

  // Once the first writer closes, a second one gets in.
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir, {}, o));
  ASSERT_OK(w->ReadAll().status());
  ASSERT_OK(w->Close());
}

TEST_F(WalTest, SecondWriterIsRefusedInMemory) { ExpectSecondWriterRefused(fs_.get(), dir_); }

TEST(WalPosixTest, SecondWriterIsRefusedOnPosix) {
  testing::TempDir tmp;
  ExpectSecondWriterRefused(env::DefaultFileSystem(), tmp.Sub("wal"));
}

// ---------------------------------------------------------------------------
// Error classes.

// A frame exactly as the writer lays it out.
std::string Frame(RecordType type, uint32_t crc, const std::string* data) {
  walpb::Record r;
  r.set_type(static_cast<int64_t>(type));
  r.set_crc(crc);
  if (data != nullptr) r.set_data(*data);
  const std::string rec = r.SerializeAsString();
  size_t pad;
  const uint64_t word = EncodeFrameLength(rec.size(), &pad);
  std::string out(8, '\0');
  std::memcpy(out.data(), &word, 8);
  return out + rec + std::string(pad, '\0');
}

TEST_F(WalTest, MetadataConflictSnapshotMismatchAndNotFoundAreDistinct) {
  // Two segments with a correct CRC chain but different metadata.
  ASSERT_OK(env::CreateDirAll(fs_.get(), dir_));
  uint32_t crc = 0;
  std::string seg0 = Frame(RecordType::kCrc, 0, nullptr);
  const std::string meta_a = "metadata-a", meta_b = "metadata-b";
  crc = crc32c::Extend(crc, meta_a);
  seg0 += Frame(RecordType::kMetadata, crc, &meta_a);
  walpb::Snapshot snap0;
  snap0.set_index(0);
  snap0.set_term(0);
  const std::string snap0_data = snap0.SerializeAsString();
  crc = crc32c::Extend(crc, snap0_data);
  seg0 += Frame(RecordType::kSnapshot, crc, &snap0_data);
  std::string seg1 = Frame(RecordType::kCrc, crc, nullptr);
  crc = crc32c::Extend(crc, meta_b);
  seg1 += Frame(RecordType::kMetadata, crc, &meta_b);
  WriteFile(fs_.get(), env::JoinPath(dir_, SegmentFileName(0, 0)), seg0);
  WriteFile(fs_.get(), env::JoinPath(dir_, SegmentFileName(1, 1)), seg1);
  auto conflict = ReadBack();
  EXPECT_THAT(conflict.status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(GetWalErrorClass(conflict.status()), WalErrorClass::kMetadataConflict);
  EXPECT_EQ(EtcdErrorText(conflict.status()), "wal: conflicting metadata found");
  // The same metadata in both: fine.
  seg1 = Frame(RecordType::kCrc, crc32c::Extend(crc32c::Extend(0, meta_a), snap0_data), nullptr);
  seg1 += Frame(RecordType::kMetadata,
                crc32c::Extend(crc32c::Extend(crc32c::Extend(0, meta_a), snap0_data), meta_a),
                &meta_a);
  WriteFile(fs_.get(), env::JoinPath(dir_, SegmentFileName(1, 1)), seg1);
  EXPECT_OK(ReadBack().status());

  // A real WAL for the snapshot errors.
  const std::string dir2 = "/data/wal2";
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir2, "m", Opts()));
  ASSERT_OK(w->Save(HS(2, 1, 5), Range(1, 8, 2)));
  ASSERT_OK(w->SaveSnapshot({5, 2}));
  ASSERT_OK(w->Close());
  auto read_at = [&](SnapshotPosition p, WalContents* c) {
    auto r = Wal::OpenForRead(dir2, p, Opts());
    if (!r.ok()) return r.status();
    return (*r)->ReadAll(c);
  };
  WalContents c;
  absl::Status mismatch = read_at({5, 3}, &c);
  EXPECT_THAT(mismatch, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(GetWalErrorClass(mismatch), WalErrorClass::kSnapshotMismatch);
  EXPECT_EQ(EtcdErrorText(mismatch), "wal: snapshot mismatch");

  absl::Status not_found = read_at({6, 2}, &c);
  EXPECT_THAT(not_found, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(GetWalErrorClass(not_found), WalErrorClass::kSnapshotNotFound);
  EXPECT_EQ(EtcdErrorText(not_found), "wal: snapshot not found");
  // As etcd: everything is still returned with ErrSnapshotNotFound.
  ExpectEntries(c.entries, Range(7, 8, 2));
  ExpectHardState(c.hardstate, HS(2, 1, 5));

  // No segment at all.
  ASSERT_OK(env::CreateDirAll(fs_.get(), "/data/empty"));
  auto no_file = Wal::Open("/data/empty", {}, Opts());
  EXPECT_THAT(no_file.status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(GetWalErrorClass(no_file.status()), WalErrorClass::kFileNotFound);
  auto no_dir = Wal::Open("/data/missing", {}, Opts());
  EXPECT_THAT(no_dir.status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(GetWalErrorClass(no_dir.status()), WalErrorClass::kFileNotFound);

  // All distinct.
  std::set<WalErrorClass> classes = {
      GetWalErrorClass(conflict.status()), GetWalErrorClass(mismatch),
      GetWalErrorClass(not_found), GetWalErrorClass(no_file.status())};
  EXPECT_EQ(classes.size(), 4u);

  // Verify reports the same classes.
  EXPECT_EQ(GetWalErrorClass(Wal::Verify(dir2, {5, 3}, Opts())), WalErrorClass::kSnapshotMismatch);
  EXPECT_EQ(GetWalErrorClass(Wal::Verify(dir2, {6, 2}, Opts())), WalErrorClass::kSnapshotNotFound);
  EXPECT_OK(Wal::Verify(dir2, {5, 2}, Opts()));
}

TEST_F(WalTest, ReadModeAndMisuseErrors) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Close());
  EXPECT_THAT(w->Save(HS(1, 1, 0), Range(1, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
  EXPECT_THAT(w->Save(HS(1, 1, 0), Range(1, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ReadAll")));
  ASSERT_OK(w->ReadAll().status());
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 1, 1)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(auto r, Wal::OpenForRead(dir_, {}, Opts()));
  ASSERT_OK(r->ReadAll().status());
  EXPECT_THAT(r->Save(HS(1, 1, 0), Range(2, 2, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(r->SaveSnapshot({1, 1}), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// ---------------------------------------------------------------------------
// Sticky failures.

class WalFaultTest : public WalTest {
 protected:
  WalOptions FaultOpts(uint64_t segment_size = 1 << 20) {
    WalOptions o = Opts(segment_size);
    o.fs = &fault_;
    return o;
  }
  env::FaultInjectionFileSystem fault_{fs_.get()};
};

// A Create that fails (an fsync EIO, or ENOSPC at any byte of the first
// segment) leaves neither the WAL nor its <dir>.tmp behind.
TEST_F(WalFaultTest, FailedCreateLeavesNoTmpDir) {
  ASSERT_OK(env::CreateDirAll(&fault_, "/data"));
  ASSERT_OK(fault_.SyncDir("/"));
  const std::string eio_dir = "/data/eio";
  fault_.FailSyncs(absl::InternalError("fdatasync: Input/output error (injected EIO)"));
  EXPECT_THAT(Wal::Create(eio_dir, "m", FaultOpts(4096)).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("Input/output")));
  fault_.ClearSyncFailures();
  EXPECT_THAT(fault_.FileExists(eio_dir + ".tmp"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fault_.FileExists(eio_dir), StatusIs(absl::StatusCode::kNotFound));

  for (uint64_t limit : {0u, 1u, 100u, 4095u}) {
    SCOPED_TRACE(absl::StrCat("write limit ", limit));
    const std::string dir = absl::StrCat("/data/enospc-", limit);
    fault_.SetWriteLimit(fault_.bytes_written() + limit);
    EXPECT_THAT(Wal::Create(dir, "m", FaultOpts(4096)).status(),
                StatusIs(absl::StatusCode::kResourceExhausted));
    fault_.ClearWriteLimit();
    EXPECT_THAT(fault_.FileExists(dir + ".tmp"), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(fault_.FileExists(dir), StatusIs(absl::StatusCode::kNotFound));
  }
  // And a Create that succeeds afterwards works as usual.
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(eio_dir, "m", FaultOpts(4096)));
  EXPECT_OK(w->Close());
}

TEST_F(WalFaultTest, FailedFsyncIsStickyAndNeverRetried) {
  ASSERT_OK(env::CreateDirAll(&fault_, "/data"));
  ASSERT_OK(fault_.SyncDir("/"));
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", FaultOpts()));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 5, 1)));

  fault_.FailSyncs(absl::InternalError("fdatasync: Input/output error (injected EIO)"));
  const uint64_t fsyncs = w->stats().fsyncs;
  absl::Status first = w->Save(HS(1, 1, 5), Range(6, 7, 1));
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kInternal, HasSubstr("Input/output")));
  EXPECT_EQ(w->stats().fsyncs, fsyncs);  // a failed fsync is not counted as one
  fault_.ClearSyncFailures();             // the disk "recovers"...

  // ...but the WAL does not: every write returns the first error and touches
  // no file (no append, and in particular no second fsync).
  const int64_t ops = fault_.mutating_ops();
  EXPECT_EQ(w->Save(HS(1, 1, 7), Range(8, 8, 1)), first);
  EXPECT_EQ(w->Save(HS(2, 1, 7), {}), first);
  EXPECT_EQ(w->Save(HS(1, 1, 9), {}), first);  // even one that would not sync
  EXPECT_EQ(w->SaveSnapshot({5, 1}), first);
  EXPECT_EQ(w->Sync(), first);
  EXPECT_EQ(w->stats().fsyncs, fsyncs);
  // Close cannot sync either, and says so (once); it releases the locks.
  EXPECT_EQ(w->Close(), first);
  EXPECT_OK(w->Close());
  EXPECT_EQ(fault_.mutating_ops(), ops);
  w.reset();

  // After a restart (and power loss: the failed fsync may have lost pages),
  // everything acknowledged before the failure is there.
  ASSERT_OK(fault_.DropUnsyncedData());
  fault_.ResetState();
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, FaultOpts()));
  WalContents c;
  absl::Status s = w->ReadAll(&c);
  if (GetWalErrorClass(s) == WalErrorClass::kUnexpectedEof) {
    w.reset();
    ASSERT_OK(Wal::Repair(dir_, FaultOpts()).status());
    ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, FaultOpts()));
    s = w->ReadAll(&c);
  }
  ASSERT_OK(s);
  ASSERT_GE(c.entries.size(), 5u);
  ExpectEntries(std::vector<raftpb::Entry>(c.entries.begin(), c.entries.begin() + 5),
                Range(1, 5, 1));
  ASSERT_OK(w->Close());
}

TEST_F(WalFaultTest, FailedFsyncDuringCutIsSticky) {
  ASSERT_OK(env::CreateDirAll(&fault_, "/data"));
  ASSERT_OK(fault_.SyncDir("/"));
  // A commit-only Save does not sync unless it cuts: find the first k for
  // which k synced Saves make the next commit-only Save cut, and make that
  // cut's fsyncs fail.
  bool cut_failed = false;
  for (uint64_t k = 1; k < 40 && !cut_failed; ++k) {
    const std::string dir = absl::StrCat("/data/wal-", k);
    ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir, "m", FaultOpts(4096)));
    for (uint64_t i = 1; i <= k; ++i) ASSERT_OK(w->Save(HS(1, 1, i - 1), Range(i, i, 1, 300)));
    ASSERT_EQ(w->stats().cuts, 0u);
    fault_.FailSyncs(absl::InternalError("injected EIO"));
    absl::Status first = w->Save(HS(1, 1, k), {});
    fault_.ClearSyncFailures();
    if (first.ok()) {
      ASSERT_OK(w->Close());
      continue;
    }
    cut_failed = true;
    EXPECT_THAT(first, StatusIs(absl::StatusCode::kInternal, HasSubstr("injected EIO")));
    const int64_t ops = fault_.mutating_ops();
    EXPECT_EQ(w->Save(HS(1, 1, k + 1), Range(k + 1, k + 1, 1)), first);
    EXPECT_EQ(w->Save(HS(1, 1, k + 1), {}), first);
    EXPECT_EQ(w->Sync(), first);
    EXPECT_EQ(fault_.mutating_ops(), ops);
    w.reset();
    // Everything synced before the failed cut reads back.
    ASSERT_OK(fault_.DropUnsyncedData());
    fault_.Reactivate();
    ASSERT_OK_AND_ASSIGN(auto r, Wal::Open(dir, {}, FaultOpts(4096)));
    ASSERT_OK_AND_ASSIGN(WalContents c, r->ReadAll());
    ExpectEntries(c.entries, Range(1, k, 1, 300));
  }
  EXPECT_TRUE(cut_failed);
}

TEST_F(WalFaultTest, EnospcIsAClearStickyError) {
  ASSERT_OK(env::CreateDirAll(&fault_, "/data"));
  ASSERT_OK(fault_.SyncDir("/"));
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", FaultOpts()));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 5, 1)));
  fault_.SetWriteLimit(fault_.bytes_written() + 100);
  absl::Status first = w->Save(HS(1, 1, 5), Range(6, 20, 1, 50));
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space")));
  fault_.ClearWriteLimit();
  EXPECT_EQ(w->Save(HS(1, 1, 5), Range(6, 6, 1)), first);
  w.reset();
  // A plain restart (no power loss): the WAL reopens with what was acked.
  fault_.InvalidateOpenFiles();
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, FaultOpts()));
  WalContents c;
  absl::Status s = w->ReadAll(&c);
  if (GetWalErrorClass(s) == WalErrorClass::kUnexpectedEof) {
    w.reset();
    ASSERT_OK(Wal::Repair(dir_, FaultOpts()).status());
    ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, FaultOpts()));
    s = w->ReadAll(&c);
  }
  ASSERT_OK(s);
  ASSERT_GE(c.entries.size(), 5u);
  ExpectEntries(std::vector<raftpb::Entry>(c.entries.begin(), c.entries.begin() + 5),
                Range(1, 5, 1));
}

// ---------------------------------------------------------------------------
// Repair.

// Byte offsets of the frames of one segment file: [start, end) of each.
std::vector<std::pair<uint64_t, uint64_t>> FrameOffsets(env::FileSystem* fs,
                                                        const std::string& path) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Decoder d(fs, {path});
  DecodedRecord rec;
  for (;;) {
    const uint64_t start = d.last_valid_offset();
    auto more = d.Next(&rec);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    out.emplace_back(start, d.last_valid_offset());
  }
  return out;
}

void ExpectRepair(const std::string& dir, const WalOptions& o, bool truncated) {
  auto r = Wal::Repair(dir, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, truncated);
}

// The offset of the last byte of a frame's record (not its padding).
uint64_t LastRecordByte(const std::string& bytes, uint64_t frame_start) {
  uint64_t word;
  std::memcpy(&word, bytes.data() + frame_start, 8);
  uint64_t rec, pad;
  DecodeFrameLength(word, &rec, &pad);
  return frame_start + 8 + rec - 1;
}

TEST_F(WalTest, RepairTruncatesATornTail) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 5, 1)));
  ASSERT_OK(w->Save(HS(1, 1, 5), Range(6, 6, 1, 1500)));  // spans sectors
  ASSERT_OK(w->Close());
  ExpectRepair(dir_, Opts(), false);  // nothing to do
  const std::string seg = env::JoinPath(dir_, SegmentFileName(0, 0));
  const auto frames = FrameOffsets(fs_.get(), seg);
  ASSERT_GE(frames.size(), 4u);
  // The last two frames are entry 6 and the state: tear entry 6 as a crash
  // would (its later sectors never reached the disk), drop the state.
  const auto [e6_start, e6_end] = frames[frames.size() - 2];
  std::string bytes = ReadFile(fs_.get(), seg);
  const uint64_t keep = (e6_start / 512 + 1) * 512;  // first sector of the frame survives
  ASSERT_LT(keep, e6_end);
  std::fill(bytes.begin() + static_cast<long>(keep), bytes.end(), '\0');
  WriteFile(fs_.get(), seg, bytes);
  const auto before = DirContents(fs_.get(), dir_);

  // Write mode refuses a torn tail; read mode stops at it.
  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
  absl::Status s = w->ReadAll().status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(GetWalErrorClass(s), WalErrorClass::kUnexpectedEof);
  w.reset();
  EXPECT_EQ(DirContents(fs_.get(), dir_), before);  // the refusal changed nothing
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack());
  EXPECT_TRUE(c.torn_tail);
  ExpectEntries(c.entries, Range(1, 5, 1));
  EXPECT_OK(Wal::Verify(dir_, {}, Opts()));  // etcd's Verify tolerates a torn tail

  ExpectRepair(dir_, Opts(), true);
  // The original is kept as .broken; the segment ends at the last good frame.
  EXPECT_EQ(ReadFile(fs_.get(), seg + ".broken"), bytes);
  EXPECT_EQ(*fs_->GetFileSize(seg), e6_start);
  ExpectRepair(dir_, Opts(), false);

  ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
  ASSERT_OK_AND_ASSIGN(c, w->ReadAll());
  ExpectEntries(c.entries, Range(1, 5, 1));
  ExpectHardState(c.hardstate, HS(1, 1, 0));
  ASSERT_OK(w->Save(HS(2, 1, 6), Range(6, 7, 2)));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(c, ReadBack());
  auto want = Range(1, 5, 1);
  for (auto& e : Range(6, 7, 2)) want.push_back(e);
  ExpectEntries(c.entries, want);
  EXPECT_FALSE(c.torn_tail);
}

TEST_F(WalTest, RepairRefusesACrcFlipAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", Opts()));
  ASSERT_OK(w->Save(HS(1, 1, 0), Range(1, 5, 1)));
  ASSERT_OK(w->Close());
  const std::string seg = env::JoinPath(dir_, SegmentFileName(0, 0));
  const auto frames = FrameOffsets(fs_.get(), seg);
  const std::string orig = ReadFile(fs_.get(), seg);
  // Entry 3 (middle) and the last record (the state): a flipped data byte.
  for (size_t f : {frames.size() - 4, frames.size() - 1}) {
    SCOPED_TRACE(f);
    std::string bytes = orig;
    bytes[LastRecordByte(orig, frames[f].first)] ^= 0x01;  // the last data byte
    WriteFile(fs_.get(), seg, bytes);
    const auto before = DirContents(fs_.get(), dir_);
    auto r = Wal::Repair(dir_, Opts());
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(GetWalErrorClass(r.status()), WalErrorClass::kCrcMismatch) << r.status();
    EXPECT_EQ(DirContents(fs_.get(), dir_), before);  // no .broken, no truncation
    ASSERT_OK_AND_ASSIGN(w, Wal::Open(dir_, {}, Opts()));
    EXPECT_EQ(GetWalErrorClass(w->ReadAll().status()), WalErrorClass::kCrcMismatch);
    w.reset();
    EXPECT_EQ(DirContents(fs_.get(), dir_), before);
    EXPECT_EQ(GetWalErrorClass(ReadBack().status()), WalErrorClass::kCrcMismatch);
  }
}

// ---------------------------------------------------------------------------
// Create: <dir>.tmp, then rename.

// Logs the namespace operations made through it.
class LoggingFileSystem final : public env::FileSystem {
 public:
  explicit LoggingFileSystem(env::FileSystem* base) : base_(base) {}
  std::vector<std::string> log;

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
    log.push_back("create " + p);
    return base_->NewWritableFile(p, o);
  }
  absl::Status FileExists(const std::string& p) override { return base_->FileExists(p); }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& p) override {
    return base_->GetFileSize(p);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& d) override {
    return base_->ListDir(d);
  }
  absl::Status CreateDir(const std::string& d, mode_t m) override {
    log.push_back("mkdir " + d);
    return base_->CreateDir(d, m);
  }
  absl::Status RemoveDir(const std::string& d) override {
    log.push_back("rmdir " + d);
    return base_->RemoveDir(d);
  }
  absl::Status RemoveFile(const std::string& p) override {
    log.push_back("rm " + p);
    return base_->RemoveFile(p);
  }
  absl::Status Rename(const std::string& f, const std::string& t) override {
    log.push_back("rename " + f + " " + t);
    return base_->Rename(f, t);
  }
  absl::Status SyncDir(const std::string& d) override {
    log.push_back("syncdir " + d);
    return base_->SyncDir(d);
  }
  absl::StatusOr<std::unique_ptr<env::FileLock>> LockFile(const std::string& p) override {
    return base_->LockFile(p);
  }

 private:
  env::FileSystem* const base_;
};

TEST_F(WalTest, CreateBuildsInTmpDirThenRenames) {
  ASSERT_OK(env::CreateDirAll(fs_.get(), "/data"));
  // A leftover from an earlier crashed Create is cleared away.
  ASSERT_OK(env::CreateDirAll(fs_.get(), dir_ + ".tmp"));
  WriteFile(fs_.get(), dir_ + ".tmp/" + SegmentFileName(0, 0), "half a segment");
  LoggingFileSystem logfs(fs_.get());
  WalOptions o = Opts();
  o.fs = &logfs;
  ASSERT_OK_AND_ASSIGN(auto w, Wal::Create(dir_, "m", o));
  const std::vector<std::string> want_order = {
      "create " + dir_ + ".tmp/" + SegmentFileName(0, 0),
      "rename " + dir_ + ".tmp " + dir_,
      "syncdir /data",
  };
  size_t at = 0;
  for (const auto& l : logfs.log) {
    if (at < want_order.size() && l == want_order[at]) ++at;
    // Nothing is created in the final directory before the rename.
    if (at < 2) {
      EXPECT_THAT(l, ::testing::Not(HasSubstr("create " + dir_ + "/"))) << l;
    }
  }
  EXPECT_EQ(at, want_order.size()) << ::testing::PrintToString(logfs.log);
  EXPECT_THAT(fs_->FileExists(dir_ + ".tmp"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(w->Close());
  ASSERT_OK_AND_ASSIGN(WalContents c, ReadBack());
  EXPECT_EQ(c.metadata, "m");
  EXPECT_TRUE(c.entries.empty());
}

// A crash at any step of Create leaves either no WAL or a whole one.
TEST_F(WalFaultTest, CrashDuringCreateLeavesNoWalOrAWholeOne) {
  ASSERT_OK(env::CreateDirAll(&fault_, "/data"));
  ASSERT_OK(fault_.SyncDir("/"));
  int wholes = 0, nones = 0;
  for (int64_t n = 0;; ++n) {
    ASSERT_LT(n, 1000);
    fault_.CrashAfterOps(n);
    auto w = Wal::Create(dir_, "meta", FaultOpts(8192));
    const bool created = w.ok();
    const bool saved = created && (*w)->Save(HS(1, 1, 0), Range(1, 1, 1)).ok();
    const bool crashed = fault_.crashed();
    w = absl::UnknownError("dropped");
    ASSERT_OK(fault_.DropUnsyncedData());
    fault_.Reactivate();
    auto r = Wal::Open(dir_, {}, FaultOpts(8192));
    if (!r.ok()) {
      EXPECT_FALSE(created) << n;
      EXPECT_EQ(GetWalErrorClass(r.status()), WalErrorClass::kFileNotFound) << r.status();
      ++nones;
    } else {
      WalContents c;
      ASSERT_OK((*r)->ReadAll(&c)) << "n=" << n;
      EXPECT_EQ(c.metadata, "meta");
      if (saved) ExpectEntries(c.entries, Range(1, 1, 1));
      ++wholes;
    }
    r = absl::UnknownError("dropped");
    // Clean up for the next round (a real Create would find the leftovers).
    if (fault_.FileExists(dir_).ok()) {
      ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, fault_.ListDir(dir_));
      for (const auto& name : names) {
        ASSERT_OK(fault_.RemoveFile(env::JoinPath(dir_, name)));
      }
      ASSERT_OK(fault_.RemoveDir(dir_));
    }
    ASSERT_OK(fault_.SyncDir("/data"));
    if (!crashed) break;
  }
  EXPECT_GT(wholes, 0);
  EXPECT_GT(nones, 0);
}

}  // namespace
}  // namespace sealwal::wal
