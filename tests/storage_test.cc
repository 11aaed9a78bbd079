// storage::RaftStorage, the facade a consensus implementation calls: round
// trips (plaintext and encrypted, inline and streamed snapshots), Bootstrap
// returning exactly what was saved, snapshot fall back past a corrupted one,
// a missing key as an error, a DEK rotation driven by the snapshot callback
// (a tiny in-test state machine), a crash at every write step of a rotation
// (fault-injection file system), GC never dropping a key still needed, and
// swarmkit PR #1766 (old-key entries above the snapshot index).
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/snap/format.h"
#include "sealwal/storage/raft_storage.h"
#include "testing/fault_injection_file_system.h"
#include "testing/wal_entries.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::storage {
namespace {

using encryption::KeyId;
using keyrotator::StepKind;
using ::sealwal::testing::HS;
using ::sealwal::testing::StatusIs;

constexpr uint64_t kSeed = 7;
constexpr char kMetadata[] = "node=1 cluster=storage";

std::string Payload(uint64_t index) { return DataGen(kSeed, index, 1, 60 + index % 50); }
std::string SnapData(uint64_t index) { return DataGen(kSeed ^ 0x5a5a, index, 1, 3000); }

std::vector<raftpb::Entry> Entries(uint64_t first, uint64_t last) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = first; i <= last; ++i) {
    raftpb::Entry& e = v.emplace_back();
    e.set_index(i);
    e.set_term(1);
    e.set_type(raftpb::EntryNormal);
    e.set_data(Payload(i));
  }
  return v;
}

raftpb::SnapshotMetadata Meta(uint64_t index) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(1);
  m.mutable_conf_state()->add_voters(1);
  return m;
}

pem::UnlockKey TestUnlockKey() {
  auto k = pem::UnlockKey::FromBytes(std::string(32, '\x42'));
  EXPECT_OK(k.status());
  return std::move(*k);
}

// A tiny state machine: remembers the snapshot the storage asked for and
// answers it (after the next batch, at its last index) with SaveSnapshot.
struct StateMachine {
  std::optional<uint64_t> asked;
  std::vector<uint64_t> asks;
  int promotions = 0;
  bool answer = true;
};

StorageOptions Options(env::FileSystem* fs, const std::string& dir, StateMachine* sm,
                       bool encrypted = true) {
  StorageOptions o;
  o.fs = fs;
  o.data_dir = dir;
  o.create_if_missing = true;
  o.encrypted = encrypted;
  o.metadata = kMetadata;
  if (encrypted) o.unlock_key = TestUnlockKey();
  o.segment_size = 16 * 1024;
  o.preallocation = wal::Preallocation::kFallocate;
  o.reservation_block = 64;
  if (sm != nullptr) {
    o.request_snapshot = [sm](uint64_t min_index) {
      sm->asked = min_index;
      sm->asks.push_back(min_index);
    };
    o.on_rotation_step = [sm](const keyrotator::Step& s) {
      if (s.kind == StepKind::kPromotePending) ++sm->promotions;
    };
  }
  return o;
}

// Saves [first, last] in batches of 5 (commit = last saved), answering the
// state machine's snapshot requests. Returns the last index acknowledged.
absl::Status Drive(RaftStorage* s, StateMachine* sm, uint64_t first, uint64_t last,
                   uint64_t* synced) {
  for (uint64_t i = first; i <= last; i += 5) {
    const uint64_t hi = std::min(last, i + 4);
    SEALWAL_RETURN_IF_ERROR(s->SaveEntries(HS(hi), Entries(i, hi)));
    if (synced != nullptr) *synced = hi;
    if (sm != nullptr && sm->answer && sm->asked.has_value() && hi >= *sm->asked) {
      sm->asked.reset();
      SEALWAL_RETURN_IF_ERROR(s->SaveSnapshot(Meta(hi), SnapData(hi)));
    }
  }
  return absl::OkStatus();
}

void ExpectLog(const BootstrapState& b, uint64_t first, uint64_t last) {
  ASSERT_NE(b.log, nullptr);
  EXPECT_EQ(b.log->FirstIndex(), first);
  EXPECT_EQ(b.log->LastIndex(), last);
  if (last < first) return;
  ASSERT_OK_AND_ASSIGN(std::vector<raftpb::Entry> es, b.log->Entries(first, last + 1));
  ASSERT_EQ(es.size(), last - first + 1);
  for (const raftpb::Entry& e : es) {
    ASSERT_EQ(e.data(), Payload(e.index())) << "entry " << e.index();
  }
}

std::string SnapshotBytes(BootstrapState& b) {
  if (!b.snapshot.has_value()) return "";
  absl::StatusOr<std::string> data = ReadSnapshotData(*b.snapshot);
  EXPECT_OK(data.status());
  return data.ok() ? *data : "";
}

class StorageTest : public ::testing::Test {
 protected:
  // An encrypted store with entries 1..40 and snapshots at 10 and 30.
  void TwoSnapshots() {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
    ASSERT_OK(s->Bootstrap().status());
    ASSERT_OK(Drive(s.get(), nullptr, 1, 40, nullptr));
    ASSERT_OK(s->SaveSnapshot(Meta(10), SnapData(10)));
    ASSERT_OK(s->SaveSnapshot(Meta(30), SnapData(30)));
    ASSERT_OK(s->Close());
  }
  // Bootstrap skipped the snapshot at 30 and recovered from the one at 10.
  void ExpectFellBackTo10(BootstrapState& b) {
    ASSERT_TRUE(b.snapshot.has_value());
    EXPECT_EQ(b.snapshot->metadata.index(), 10u);
    EXPECT_EQ(SnapshotBytes(b), SnapData(10));
    ExpectLog(b, 11, 40);
    ASSERT_EQ(b.skipped.size(), 1u);
  }

  std::unique_ptr<env::FileSystem> mem_ = env::NewMemFileSystem();
  const std::string dir_ = "/data/node";
};

TEST_F(StorageTest, PlaintextRoundTripInlineSnapshot) {
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr, false)));
    EXPECT_FALSE(s->encrypted());
    ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
    EXPECT_FALSE(b.snapshot.has_value());
    EXPECT_EQ(b.metadata, kMetadata);
    ExpectLog(b, 1, 0);
    ASSERT_OK(Drive(s.get(), nullptr, 1, 40, nullptr));
    ASSERT_OK(s->SaveSnapshot(Meta(20), SnapData(20)));
    ASSERT_OK(s->SaveEntries(HS(40), {}));
    ASSERT_OK(s->Close());
  }
  EXPECT_OK(mem_->FileExists(dir_ + "/wal-v3"));
  EXPECT_OK(mem_->FileExists(dir_ + "/snap-v3"));
  EXPECT_FALSE(mem_->FileExists(dir_ + "/node.key").ok());
  StorageOptions o = Options(mem_.get(), dir_, nullptr, false);
  o.create_if_missing = false;
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(std::move(o)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  ASSERT_TRUE(b.snapshot.has_value());
  EXPECT_EQ(b.snapshot->metadata.index(), 20u);
  EXPECT_EQ(SnapshotBytes(b), SnapData(20));
  EXPECT_EQ(b.hardstate.commit(), 40u);
  EXPECT_EQ(b.metadata, kMetadata);
  ExpectLog(b, 21, 40);
  ASSERT_OK_AND_ASSIGN(uint64_t t, b.log->Term(20));
  EXPECT_EQ(t, 1u);
  EXPECT_THAT(b.log->Term(41).status(), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(StorageTest, EncryptedRoundTripStreamedSnapshotContinuesAfterReopen) {
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
    ASSERT_TRUE(s->encrypted());
    ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
    const uint64_t last = b.log->LastIndex();
    EXPECT_EQ(last, round * 30u);
    if (round > 0) {
      ASSERT_TRUE(b.snapshot.has_value());
      EXPECT_TRUE(b.snapshot->streamed());
      EXPECT_EQ(b.snapshot->metadata.index(), round * 30u - 10);
      EXPECT_EQ(SnapshotBytes(b), SnapData(round * 30u - 10));
      ExpectLog(b, round * 30u - 9, last);
    }
    ASSERT_OK(Drive(s.get(), nullptr, last + 1, last + 20, nullptr));
    ASSERT_OK_AND_ASSIGN(auto w, s->SaveSnapshotStream(Meta(last + 20)));
    const std::string data = SnapData(last + 20);
    ASSERT_OK(w->Append(absl::string_view(data).substr(0, 1000)));
    ASSERT_OK(w->Append(absl::string_view(data).substr(1000)));
    ASSERT_OK(w->Commit());
    ASSERT_OK(Drive(s.get(), nullptr, last + 21, last + 30, nullptr));
    ASSERT_OK(s->Close());
  }
  EXPECT_OK(mem_->FileExists(dir_ + "/wal-v3-encrypted"));
  EXPECT_OK(mem_->FileExists(dir_ + "/snap-v3-encrypted"));
  EXPECT_OK(mem_->FileExists(dir_ + "/node.key"));
}

TEST_F(StorageTest, WrongUnlockKeyModifiesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
    ASSERT_OK(s->Bootstrap().status());
    ASSERT_OK(Drive(s.get(), nullptr, 1, 10, nullptr));
  }
  ASSERT_OK_AND_ASSIGN(std::string before, env::ReadFileToString(mem_.get(), dir_ + "/node.key"));
  StorageOptions o = Options(mem_.get(), dir_, nullptr);
  ASSERT_OK_AND_ASSIGN(o.unlock_key, pem::UnlockKey::FromBytes(std::string(32, '\x43')));
  EXPECT_THAT(RaftStorage::Open(std::move(o)).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(std::string after, env::ReadFileToString(mem_.get(), dir_ + "/node.key"));
  EXPECT_EQ(before, after);
}

TEST_F(StorageTest, SnapshotFallbackPastCorruptedNewest) {
  TwoSnapshots();
  const std::string newest = dir_ + "/snap-v3-encrypted/" + snap::SnapFileName(1, 30);
  ASSERT_OK_AND_ASSIGN(std::string bytes, env::ReadFileToString(mem_.get(), newest));
  bytes[bytes.size() / 2] ^= 0x01;
  ASSERT_OK(env::WriteFileAtomically(mem_.get(), newest, bytes));
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  ExpectFellBackTo10(b);
  EXPECT_TRUE(b.skipped[0].renamed_broken);
  EXPECT_OK(mem_->FileExists(newest + ".broken"));
}

TEST_F(StorageTest, SnapshotFallbackPastATamperedNewestLeavesItInPlace) {
  TwoSnapshots();
  // Flip a ciphertext byte and recompute the CRC: it decodes, but does not
  // authenticate.
  const std::string newest = dir_ + "/snap-v3-encrypted/" + snap::SnapFileName(1, 30);
  ASSERT_OK_AND_ASSIGN(std::string file, env::ReadFileToString(mem_.get(), newest));
  ASSERT_OK_AND_ASSIGN(snap::SnapFileView fv, snap::DecodeSnapFile(file));
  ASSERT_OK_AND_ASSIGN(snap::RaftSnapshotView rv, snap::DecodeRaftSnapshot(fv.raft_snapshot));
  std::string sealed(rv.data);
  sealed[sealed.size() / 2] ^= 0x01;
  snap::SnapFilePieces p = snap::EncodeSnapFilePieces(sealed, Meta(30));
  const std::string tampered = p.prefix + sealed + p.suffix;
  ASSERT_OK(env::WriteFileAtomically(mem_.get(), newest, tampered));
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  ExpectFellBackTo10(b);
  EXPECT_FALSE(b.skipped[0].renamed_broken);
  EXPECT_THAT(b.skipped[0].reason, StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(std::string after, env::ReadFileToString(mem_.get(), newest));
  EXPECT_EQ(after, tampered);
}

TEST_F(StorageTest, SnapshotUnderMissingKeyIsAnErrorAndRenamesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
    ASSERT_OK(s->Bootstrap().status());
    ASSERT_OK(Drive(s.get(), nullptr, 1, 20, nullptr));
    ASSERT_OK(s->SaveSnapshot(Meta(10), SnapData(10)));
  }
  // Another store's key file: its DEK is not the one the snapshot names.
  auto other_mem = env::NewMemFileSystem();
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(other_mem.get(), "/x", nullptr)));
  }
  ASSERT_OK_AND_ASSIGN(std::string key, env::ReadFileToString(other_mem.get(), "/x/node.key"));
  ASSERT_OK(env::WriteFileAtomically(mem_.get(), dir_ + "/node.key", key));
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, nullptr)));
  absl::StatusOr<BootstrapState> b = s->Bootstrap();
  EXPECT_TRUE(encryption::IsMissingKeyError(b.status())) << b.status();
  EXPECT_OK(mem_->FileExists(dir_ + "/snap-v3-encrypted/" + snap::SnapFileName(1, 10)));
}

// Every key a retained file needs is in the key file, and the old one is
// no longer referenced once the rotation ends.
void ExpectRotated(RaftStorage* s, KeyId old_key) {
  ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
  EXPECT_TRUE(inv.all_keys_present);
  ASSERT_TRUE(inv.current_key.has_value());
  EXPECT_NE(*inv.current_key, old_key);
  EXPECT_FALSE(inv.pending_key.has_value());
  for (const RetainedFile& f : inv.segments) EXPECT_NE(f.key, old_key) << f.name;
  for (const RetainedFile& f : inv.snapshots) EXPECT_NE(f.key, old_key) << f.name;
  EXPECT_EQ(s->write_key(), inv.current_key);
}

TEST_F(StorageTest, FullRotationDrivenByTheSnapshotCallback) {
  StateMachine sm;
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 1, 200, nullptr));
  ASSERT_OK(s->SaveSnapshot(Meta(150), SnapData(150)));
  ASSERT_OK_AND_ASSIGN(StoreInventory before, s->Inventory());
  const KeyId old_key = *before.current_key;
  s->RequestRotation();
  ASSERT_OK(Drive(s.get(), &sm, 201, 260, nullptr));
  ASSERT_EQ(sm.asks.size(), 1u);
  EXPECT_EQ(sm.asks[0], 206u);  // the first index of the switch segment
  EXPECT_EQ(sm.promotions, 1);
  ExpectRotated(s.get(), old_key);
  ASSERT_OK(s->Close());
  s.reset();
  // Reopens and reads everything after the rotation's snapshot under the
  // new key alone.
  ASSERT_OK_AND_ASSIGN(s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  ASSERT_TRUE(b.snapshot.has_value());
  EXPECT_GE(b.snapshot->metadata.index(), 206u);
  EXPECT_EQ(SnapshotBytes(b), SnapData(b.snapshot->metadata.index()));
  ExpectLog(b, b.snapshot->metadata.index() + 1, 260);
  ExpectRotated(s.get(), old_key);
}

// A leader's snapshot past the log is saved before the HardState that
// commits it (a follower's order in raft). Until that HardState is saved,
// recovery cannot use the snapshot, so neither GC nor a rotation waiting
// for a snapshot may delete what the older snapshot and the log still hold
// (found by c_api_fuzzer: the store did not open again).
TEST_F(StorageTest, SnapshotAboveTheCommitDeletesNothingRecoveryNeeds) {
  StateMachine sm;
  sm.answer = false;
  KeyId old_key;
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
    ASSERT_OK(s->Bootstrap().status());
    ASSERT_OK(Drive(s.get(), &sm, 1, 200, nullptr));
    ASSERT_OK(s->SaveSnapshot(Meta(100), SnapData(100)));
    old_key = *s->write_key();
    s->RequestRotation();
    ASSERT_OK(Drive(s.get(), &sm, 201, 260, nullptr));
    ASSERT_EQ(sm.asks.size(), 1u);
    // The leader's snapshot at 1000 (commit is 260); the node stops before
    // the HardState that commits it.
    ASSERT_OK(s->SaveSnapshot(Meta(1000), SnapData(1000)));
    ASSERT_OK(s->GC(1));
    ASSERT_OK(s->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  ASSERT_TRUE(b.snapshot.has_value());
  EXPECT_EQ(b.snapshot->metadata.index(), 100u);
  EXPECT_EQ(SnapshotBytes(b), SnapData(100));
  ExpectLog(b, 101, 260);
  // The leader sends it again; now the HardState and the entries after it
  // follow, and the rotation finishes on it. The log Raft reads restarts
  // after the snapshot, as raft's MemoryStorage does.
  ASSERT_OK(s->SaveSnapshot(Meta(1000), SnapData(1000)));
  EXPECT_EQ(b.log->FirstIndex(), 1001u);
  EXPECT_EQ(b.log->LastIndex(), 1000u);
  ASSERT_OK_AND_ASSIGN(uint64_t snap_term, b.log->Term(1000));
  EXPECT_EQ(snap_term, 1u);
  EXPECT_THAT(b.log->Entries(260, 261).status(), StatusIs(absl::StatusCode::kOutOfRange));
  ASSERT_OK(s->SaveEntries(HS(1003), Entries(1001, 1003)));
  ASSERT_OK_AND_ASSIGN(std::vector<raftpb::Entry> after, b.log->Entries(1001, 1004));
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[2].data(), Payload(1003));
  ASSERT_OK(s->GC(1));
  ExpectRotated(s.get(), old_key);
  ASSERT_OK(s->Close());
  s.reset();
  ASSERT_OK_AND_ASSIGN(s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b2, s->Bootstrap());
  ASSERT_TRUE(b2.snapshot.has_value());
  EXPECT_EQ(b2.snapshot->metadata.index(), 1000u);
  ExpectLog(b2, 1001, 1003);
}

// An idle node saves nothing: Poll alone notices the operator's request
// and starts the rotation (the new write key, the snapshot request).
TEST_F(StorageTest, PollNoticesAKeyFileRequestWithoutASave) {
  StateMachine sm;
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  EXPECT_THAT(s->Poll(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 1, 20, nullptr));
  const KeyId old_key = *s->write_key();
  ASSERT_OK(s->Poll());
  EXPECT_TRUE(sm.asks.empty());
  ASSERT_OK(RaftStorage::RequestRotationInKeyFile(dir_, TestUnlockKey(), mem_.get()));
  ASSERT_OK(s->Poll());
  ASSERT_EQ(sm.asks.size(), 1u);
  EXPECT_EQ(sm.asks[0], 21u);
  EXPECT_NE(*s->write_key(), old_key);
}

TEST_F(StorageTest, KeyFileRequestIsNoticedAndRotationQueuesASecondOne) {
  StateMachine sm;
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 1, 20, nullptr));
  ASSERT_OK(RaftStorage::RequestRotationInKeyFile(dir_, TestUnlockKey(), mem_.get()));
  ASSERT_OK(Drive(s.get(), &sm, 21, 60, nullptr));
  EXPECT_EQ(sm.promotions, 1);
  // Asked twice: once from the file, once through the API while the
  // rotation runs (queued).
  ASSERT_OK(RaftStorage::RequestRotationInKeyFile(dir_, TestUnlockKey(), mem_.get()));
  ASSERT_OK(s->SaveEntries(HS(60), {}));
  s->RequestRotation();
  ASSERT_OK(Drive(s.get(), &sm, 61, 140, nullptr));
  EXPECT_EQ(sm.promotions, 3);
  ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
  EXPECT_TRUE(inv.all_keys_present);
  EXPECT_FALSE(inv.needs_rotation);
  EXPECT_FALSE(inv.pending_key.has_value());
}

TEST_F(StorageTest, GcNeverDropsAKeyARetainedFileNeeds) {
  StateMachine sm;
  sm.answer = false;  // the state machine is slow: the rotation waits
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 1, 100, nullptr));
  ASSERT_OK(s->SaveSnapshot(Meta(50), SnapData(50)));
  ASSERT_OK(s->SaveSnapshot(Meta(90), SnapData(90)));
  ASSERT_OK_AND_ASSIGN(StoreInventory inv0, s->Inventory());
  const KeyId old_key = *inv0.current_key;
  s->RequestRotation();
  ASSERT_OK(Drive(s.get(), &sm, 101, 150, nullptr));
  ASSERT_EQ(sm.asks.size(), 1u);
  for (size_t keep : {3, 1}) {
    ASSERT_OK(s->GC(keep));
    ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
    EXPECT_TRUE(inv.all_keys_present);
    EXPECT_EQ(inv.current_key, old_key);  // still needed: not promoted
    ASSERT_FALSE(inv.segments.empty());
    EXPECT_EQ(inv.segments.front().key, old_key);
    // The segment holding the oldest snapshot kept is still there.
    EXPECT_LE(inv.segments.front().index, inv.snapshots.back().index);
  }
  // A snapshot below the switch does not finish the rotation.
  ASSERT_OK(s->SaveSnapshot(Meta(100), SnapData(100)));
  ASSERT_OK_AND_ASSIGN(StoreInventory mid, s->Inventory());
  EXPECT_EQ(mid.current_key, old_key);
  EXPECT_TRUE(mid.pending_key.has_value());
  sm.answer = true;
  ASSERT_OK(Drive(s.get(), &sm, 151, 160, nullptr));
  ASSERT_OK(s->SaveSnapshot(Meta(160), SnapData(160)));
  ExpectRotated(s.get(), old_key);
  ASSERT_OK(s->GC(1));
  ExpectRotated(s.get(), old_key);
}

// swarmkit PR #1766: entries written under the old key but not committed
// when the snapshot was taken sit above the snapshot index. A rotation that
// finished on that snapshot would strand them; the facade asks for a
// snapshot at the switch segment's first index instead.
TEST_F(StorageTest, UncommittedOldKeyEntriesAboveTheSnapshotStayReadable) {
  StateMachine sm;
  sm.answer = false;
  {
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
    ASSERT_OK(s->Bootstrap().status());
    // Entries 1..30 under the old key, only 1..20 committed.
    ASSERT_OK(s->SaveEntries(HS(20), Entries(1, 30)));
    s->RequestRotation();
    ASSERT_OK(s->SaveEntries(HS(20), {}));
    ASSERT_EQ(sm.asks.size(), 1u);
    EXPECT_EQ(sm.asks[0], 31u);
    // The state machine snapshots at its applied index, 20: not enough.
    ASSERT_OK(s->SaveSnapshot(Meta(20), SnapData(20)));
    ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
    EXPECT_TRUE(inv.pending_key.has_value());
    ASSERT_OK(s->GC(1));
    ASSERT_OK(s->Close());
  }
  {
    // Entries 21..30 (old key) are still readable after a restart.
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
    ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
    EXPECT_EQ(b.snapshot->metadata.index(), 20u);
    ExpectLog(b, 21, 30);
    ASSERT_OK(s->SaveEntries(HS(35), Entries(31, 35)));
    ASSERT_OK(s->SaveSnapshot(Meta(35), SnapData(35)));
    ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
    EXPECT_FALSE(inv.pending_key.has_value());
    EXPECT_TRUE(inv.all_keys_present);
    ASSERT_OK(s->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(mem_.get(), dir_, &sm)));
  ASSERT_OK_AND_ASSIGN(BootstrapState b, s->Bootstrap());
  EXPECT_EQ(b.snapshot->metadata.index(), 35u);
  ExpectLog(b, 36, 35);
}

// ---------------------------------------------------------------------------
// A crash (power loss) at every write step of a rotation.

struct CrashEnv {
  std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
  std::unique_ptr<env::FaultInjectionFileSystem> fault =
      std::make_unique<env::FaultInjectionFileSystem>(mem.get());
};

// The store both crash tests start from: entries 1..40 and a snapshot at
// 30 at "/data/node", closed. Returns its write key.
absl::StatusOr<KeyId> MakeStoreWithASnapshot(env::FileSystem* fs) {
  SEALWAL_RETURN_IF_ERROR(env::CreateDirAll(fs, "/data"));
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir("/"));
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(Options(fs, "/data/node", nullptr)));
  SEALWAL_RETURN_IF_ERROR(s->Bootstrap().status());
  SEALWAL_RETURN_IF_ERROR(Drive(s.get(), nullptr, 1, 40, nullptr));
  SEALWAL_RETURN_IF_ERROR(s->SaveSnapshot(Meta(30), SnapData(30)));
  SEALWAL_ASSIGN_OR_RETURN(StoreInventory inv, s->Inventory());
  SEALWAL_RETURN_IF_ERROR(s->Close());
  return *inv.current_key;
}

// The workload: a store with entries 1..40 and a snapshot at 30 exists;
// ask for a rotation and keep saving until it has been promoted.
absl::Status RotationWorkload(env::FileSystem* fs, StateMachine* sm, uint64_t* synced) {
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(Options(fs, "/data/node", sm)));
  SEALWAL_ASSIGN_OR_RETURN(BootstrapState b, s->Bootstrap());
  *synced = b.log->LastIndex();
  s->RequestRotation();
  SEALWAL_RETURN_IF_ERROR(Drive(s.get(), sm, *synced + 1, *synced + 40, synced));
  SEALWAL_RETURN_IF_ERROR(s->GC(1));
  return s->Close();
}

// Param: true = power loss at the crash (unsynced data dropped), false = the
// process dies (the page cache survives).
class StorageCrashTest : public ::testing::TestWithParam<bool> {};

TEST_P(StorageCrashTest, CrashAtEveryRotationStepKeepsSyncedEntriesAndFinishesTheRotation) {
  const bool power_loss = GetParam();
  int64_t n = 0;
  int crashes = 0;
  for (;; ++n) {
    ASSERT_LT(n, 3000) << "the workload never completes";
    CrashEnv e;
    ASSERT_OK_AND_ASSIGN(const KeyId old_key, MakeStoreWithASnapshot(e.fault.get()));
    StateMachine sm;
    uint64_t synced = 0;
    e.fault->CrashAfterOps(n);
    absl::Status st = RotationWorkload(e.fault.get(), &sm, &synced);
    const bool crashed = e.fault->crashed();
    if (!crashed) {
      ASSERT_OK(st);
    }
    if (power_loss) {
      ASSERT_OK(e.fault->DropUnsyncedData());
    }
    e.fault->Reactivate();
    const std::string where =
        absl::StrCat("crash after ", n, " ops", power_loss ? " (power loss)" : " (process crash)");
    // Restart: every acknowledged entry is there, and the rotation finishes.
    StateMachine sm2;
    absl::StatusOr<std::unique_ptr<RaftStorage>> opened =
        RaftStorage::Open(Options(e.fault.get(), "/data/node", &sm2));
    ASSERT_OK(opened.status()) << where;
    std::unique_ptr<RaftStorage> s = std::move(*opened);
    absl::StatusOr<BootstrapState> b = s->Bootstrap();
    ASSERT_OK(b.status()) << where;
    const uint64_t first = b->log->FirstIndex();
    const uint64_t last = b->log->LastIndex();
    ASSERT_GE(last, synced) << where;
    ExpectLog(*b, first, last);
    if (b->snapshot.has_value()) {
      EXPECT_EQ(SnapshotBytes(*b), SnapData(b->snapshot->metadata.index())) << where;
    }
    if (crashed) {
      ++crashes;
      s->RequestRotation();  // the operator's request may have been lost with the crash
      ASSERT_OK(Drive(s.get(), &sm2, last + 1, last + 40, nullptr)) << where;
      ASSERT_OK(s->GC(1)) << where;
    }
    ExpectRotated(s.get(), old_key);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << where;
      return;
    }
    ASSERT_OK(s->Close());
    if (!crashed) break;
  }
  std::cout << "crash points: " << n << "\n";
  EXPECT_GT(crashes, 30);
}

INSTANTIATE_TEST_SUITE_P(PowerLossOrProcessCrash, StorageCrashTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "PowerLoss" : "ProcessCrash";
                         });

// An EIO at any one fsync of a rotation (file or directory; the fsyncs
// after it succeed, the case where building on the failed one would go
// unnoticed) is reported, fails the storage for good (so no fsync is ever
// retried), and, after a power loss, loses no acknowledged entry
// and no key a retained file needs, even when the caller carried on after
// the error. Found by the crash campaign (docs/reliability.md): a failed
// fsync of the WAL directory while releasing old segments, then the
// promotion dropped the old DEK, and the segments came back without it.
TEST(StorageEioTest, FailedFsyncDuringARotationLosesNothing) {
  const absl::Status eio = absl::DataLossError("fsync: Input/output error (injected EIO)");
  int injected = 0;
  for (int64_t n = 0;; ++n) {
    ASSERT_LT(n, 2000) << "the workload never completes";
    CrashEnv e;
    ASSERT_OK(MakeStoreWithASnapshot(e.fault.get()).status());
    const std::string where = absl::StrCat("EIO at fsync ", n);
    e.fault->FailSyncAfter(n, eio);
    StateMachine sm;
    uint64_t synced = 40;
    {
      // The EIO may come as early as the open's tail repair.
      absl::StatusOr<std::unique_ptr<RaftStorage>> opened =
          RaftStorage::Open(Options(e.fault.get(), "/data/node", &sm));
      absl::Status st = opened.status();
      std::unique_ptr<RaftStorage> s;
      if (opened.ok()) {
        s = std::move(*opened);
        st = s->Bootstrap().status();
      }
      if (st.ok()) {
        s->RequestRotation();
        st = Drive(s.get(), &sm, 41, 80, &synced);
      }
      if (st.ok()) st = s->GC(1);
      if (e.fault->injected_errors() == 0) {
        ASSERT_OK(st) << where;
        ASSERT_GT(sm.promotions, 0);
        break;
      }
      ++injected;
      ASSERT_FALSE(st.ok()) << where << ": the EIO was not reported";
      const std::string hit = e.fault->last_injected_error();
      // Any failed fsync fails the storage for good: WAL files and
      // directory, key-file writes (rotation steps, DEK count
      // reservations), snapshots, GC's directory syncs.
      if (s != nullptr) {
        EXPECT_FALSE(s->SaveEntries(HS(synced + 1), Entries(synced + 1, synced + 1)).ok())
            << where << " (" << hit << "): a save after the error succeeded";
      }
      // A careless caller carries on; whatever it is told must hold.
      if (s != nullptr) {
        Drive(s.get(), &sm, synced + 1, synced + 30, &synced).IgnoreError();
        s->GC(1).IgnoreError();
      }
      EXPECT_EQ(e.fault->sync_retries(), 0) << where << " (" << hit << ")";
    }
    ASSERT_OK(e.fault->DropUnsyncedData());
    e.fault->Reactivate();
    ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(Options(e.fault.get(), "/data/node", nullptr)));
    absl::StatusOr<BootstrapState> b = s->Bootstrap();
    ASSERT_OK(b.status()) << where;
    ASSERT_GE(b->log->LastIndex(), synced) << where;
    ExpectLog(*b, b->log->FirstIndex(), b->log->LastIndex());
    ASSERT_OK_AND_ASSIGN(StoreInventory inv, s->Inventory());
    EXPECT_TRUE(inv.all_keys_present) << where;
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(injected, 10);
}

// ---------------------------------------------------------------- DEK age

// A clock the test moves (StorageOptions::clock).
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1796119200);  // 2026-12-01T10:00:00Z
};

StorageOptions AgeOptions(env::FileSystem* fs, const std::string& dir, StateMachine* sm,
                          FakeClock* clock, absl::Duration max_age) {
  StorageOptions o = Options(fs, dir, sm);
  o.clock = [clock] { return clock->now; };
  o.rotation.max_age = max_age;
  return o;
}

// rotation.max_age alone drives a whole rotation: the first save after the
// DEK passes max_age starts it (not the periodic key file check), the
// snapshot is asked for and saved, the old DEK leaves the key file and every
// retained file; the new DEK keeps the creation time it got when it was
// made pending (not the promotion's), and no other rotation starts until
// it, in turn, passes max_age.
TEST_F(StorageTest, DekOlderThanMaxAgeIsRotatedOnceUntilTheNewOneAges) {
  StateMachine sm;
  FakeClock clock;
  const absl::Time t0 = clock.now;
  const absl::Duration max_age = absl::Hours(24);
  ASSERT_OK_AND_ASSIGN(auto s,
                       RaftStorage::Open(AgeOptions(mem_.get(), dir_, &sm, &clock, max_age)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK_AND_ASSIGN(keyrotator::KeyStoreState st0, s->KeyState());
  EXPECT_EQ(st0.current_created, t0);  // the new store's DEK
  EXPECT_EQ(st0.now, t0);
  ASSERT_OK(Drive(s.get(), &sm, 1, 50, nullptr));
  clock.now = t0 + max_age - absl::Seconds(1);
  ASSERT_OK(Drive(s.get(), &sm, 51, 60, nullptr));
  EXPECT_EQ(sm.promotions, 0);
  EXPECT_TRUE(sm.asks.empty());
  ASSERT_OK_AND_ASSIGN(StoreInventory before, s->Inventory());
  const KeyId old_key = *before.current_key;

  // Past max_age: the next save makes the pending DEK and asks for the
  // snapshot. The state machine is slow at first, while time goes on.
  const absl::Time t1 = t0 + max_age + absl::Seconds(1);
  clock.now = t1;
  sm.answer = false;
  ASSERT_OK(s->SaveEntries(HS(61), Entries(61, 61)));
  ASSERT_OK_AND_ASSIGN(StoreInventory during, s->Inventory());
  ASSERT_TRUE(during.pending_key.has_value());
  ASSERT_EQ(sm.asks.size(), 1u);
  EXPECT_EQ(sm.asks[0], 62u);  // the first index of the switch segment
  clock.now = t1 + absl::Hours(1);
  ASSERT_OK(Drive(s.get(), &sm, 62, 100, nullptr));
  EXPECT_EQ(sm.promotions, 0);
  EXPECT_EQ(sm.asks.size(), 1u);  // asked once

  sm.answer = true;
  ASSERT_OK(Drive(s.get(), &sm, 101, 105, nullptr));
  EXPECT_GE(s->snapshot_index(), 62u);
  EXPECT_EQ(sm.promotions, 1);
  ExpectRotated(s.get(), old_key);
  ASSERT_OK_AND_ASSIGN(StoreInventory after, s->Inventory());
  EXPECT_EQ(after.current_key, during.pending_key);
  EXPECT_EQ(after.current_created, t1);
  {
    // The key file holds the new DEK alone, with its creation time.
    pem::KeyReadWriterOptions ko;
    ko.fs = mem_.get();
    ko.path = env::JoinPath(dir_, kKeyFileName);
    ko.unlock_key = TestUnlockKey();
    ASSERT_OK_AND_ASSIGN(auto krw, pem::KeyReadWriter::Create(std::move(ko)));
    ASSERT_OK_AND_ASSIGN(pem::KeyFile f, krw->Read());
    ASSERT_TRUE(f.headers.current.has_value());
    EXPECT_EQ(f.headers.current->dek.id, *during.pending_key);
    EXPECT_EQ(f.headers.current->CreatedTime(), t1);
    EXPECT_FALSE(f.headers.pending.has_value());
    EXPECT_FALSE(f.headers.needs_rotation);
  }

  // The new DEK is young: many saves (past the periodic key file check)
  // and a day less a second later, no other rotation.
  clock.now = t1 + max_age - absl::Seconds(1);
  ASSERT_OK(Drive(s.get(), &sm, 106, 500, nullptr));
  EXPECT_EQ(sm.promotions, 1);
  EXPECT_EQ(sm.asks.size(), 1u);

  // Once it passes max_age, the next rotation.
  clock.now = t1 + max_age;
  ASSERT_OK(Drive(s.get(), &sm, 501, 540, nullptr));
  EXPECT_EQ(sm.promotions, 2);
  ASSERT_EQ(sm.asks.size(), 2u);
  ASSERT_OK_AND_ASSIGN(StoreInventory second, s->Inventory());
  EXPECT_NE(second.current_key, after.current_key);
  EXPECT_EQ(second.current_created, t1 + max_age);
  ExpectRotated(s.get(), *after.current_key);
  ASSERT_OK(s->Close());
  s.reset();

  // After a restart the age comes from the key file: still young, so
  // nothing rotates; the clock past max_age rotates again.
  ASSERT_OK_AND_ASSIGN(s, RaftStorage::Open(AgeOptions(mem_.get(), dir_, &sm, &clock, max_age)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 541, 600, nullptr));
  EXPECT_EQ(sm.promotions, 2);
  clock.now = t1 + 2 * max_age;
  ASSERT_OK(Drive(s.get(), &sm, 601, 640, nullptr));
  EXPECT_EQ(sm.promotions, 3);
}

// Without max_age the DEK's age never rotates it.
TEST_F(StorageTest, DekAgeIsIgnoredWithoutMaxAge) {
  StateMachine sm;
  FakeClock clock;
  StorageOptions o = Options(mem_.get(), dir_, &sm);
  o.clock = [&clock] { return clock.now; };
  ASSERT_OK_AND_ASSIGN(auto s, RaftStorage::Open(std::move(o)));
  ASSERT_OK(s->Bootstrap().status());
  ASSERT_OK(Drive(s.get(), &sm, 1, 20, nullptr));
  clock.now += absl::Hours(24 * 3650);
  ASSERT_OK(Drive(s.get(), &sm, 21, 400, nullptr));
  EXPECT_EQ(sm.promotions, 0);
  EXPECT_TRUE(sm.asks.empty());
  ASSERT_OK_AND_ASSIGN(keyrotator::KeyStoreState st, s->KeyState());
  EXPECT_EQ(st.current_created, absl::FromUnixSeconds(1796119200));
}

}  // namespace
}  // namespace sealwal::storage
