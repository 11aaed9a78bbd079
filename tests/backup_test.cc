// sealwal/backup: one-file backups through the library. Round trips
// (encrypted and plaintext, inline and streamed snapshots) give a store that
// Bootstraps to exactly what the original holds; backups taken while a
// writer appends (with snapshots and GC) restore to a prefix of what it
// wrote; a rotation step during the copy makes it start again; a newest
// .snap without its WAL record is passed over; refusals (wrong or missing
// unlock key, damaged, truncated, non-empty target, redacted) leave the
// target as it was; the container format's own checks.
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/backup/backup.h"
#include "sealwal/backup/backup_file.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/snapshotter.h"
#include "sealwal/storage/raft_storage.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"
#include "testing/wal_entries.h"

namespace sealwal::backup {
namespace {

using storage::RaftStorage;
using storage::StorageOptions;
using ::sealwal::testing::HS;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 11;

std::string Payload(uint64_t index) { return DataGen(kSeed, index, 1, 40 + index % 90); }
std::string SnapData(uint64_t index) { return DataGen(kSeed ^ 0x77, index, 1, 5000); }

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

pem::UnlockKey Unlock(char fill = '\x42') {
  auto k = pem::UnlockKey::FromBytes(std::string(32, fill));
  EXPECT_OK(k.status());
  return std::move(*k);
}

StorageOptions Options(const std::string& dir, bool encrypted, bool locked = true) {
  StorageOptions o;
  o.data_dir = dir;
  o.create_if_missing = true;
  o.encrypted = encrypted;
  o.metadata = "node=1";
  if (encrypted && locked) o.unlock_key = Unlock();
  o.segment_size = 16 * 1024;
  o.preallocation = wal::Preallocation::kFallocate;
  o.reservation_block = 64;
  return o;
}

// Writes entries 1..last in batches of 10, a snapshot every `every` entries
// (streamed when `stream`), GC keeping 2.
void Fill(const std::string& dir, bool encrypted, uint64_t last, uint64_t every,
          bool stream = false, bool locked = true) {
  auto st = RaftStorage::Open(Options(dir, encrypted, locked));
  ASSERT_OK(st.status());
  ASSERT_OK((*st)->Bootstrap().status());
  for (uint64_t i = 1; i <= last; i += 10) {
    const uint64_t hi = std::min(last, i + 9);
    ASSERT_OK((*st)->SaveEntries(HS(hi), Entries(i, hi)));
    if (hi % every == 0) {
      if (stream) {
        auto w = (*st)->SaveSnapshotStream(Meta(hi));
        ASSERT_OK(w.status());
        const std::string d = SnapData(hi);
        ASSERT_OK((*w)->Append(d.substr(0, 1000)));
        ASSERT_OK((*w)->Append(d.substr(1000)));
        ASSERT_OK((*w)->Commit());
      } else {
        ASSERT_OK((*st)->SaveSnapshot(Meta(hi), SnapData(hi)));
      }
      ASSERT_OK((*st)->GC(2));
    }
  }
  ASSERT_OK((*st)->Close());
}

// What a node recovers from a store: snapshot, HardState, entries.
struct Recovered {
  uint64_t snapshot_index = 0;
  std::string snapshot_data;
  std::string hardstate;
  std::vector<std::string> entries;  // serialized, FirstIndex..LastIndex
  uint64_t first = 0, last = 0;
  bool operator==(const Recovered&) const = default;
};

absl::StatusOr<Recovered> Recover(const std::string& dir, bool encrypted) {
  StorageOptions o;
  o.data_dir = dir;
  o.read_only = true;
  if (encrypted) o.unlock_key = Unlock();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<RaftStorage> st, RaftStorage::Open(std::move(o)));
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState b, st->Bootstrap());
  Recovered r;
  if (b.snapshot) {
    r.snapshot_index = b.snapshot->metadata.index();
    SEALWAL_ASSIGN_OR_RETURN(r.snapshot_data, storage::ReadSnapshotData(*b.snapshot));
  }
  r.hardstate = b.hardstate.SerializeAsString();
  r.first = b.log->FirstIndex();
  r.last = b.log->LastIndex();
  if (r.last >= r.first) {
    SEALWAL_ASSIGN_OR_RETURN(std::vector<raftpb::Entry> es, b.log->Entries(r.first, r.last + 1));
    for (const raftpb::Entry& e : es) r.entries.push_back(e.SerializeAsString());
  }
  return r;
}

class BackupTest : public ::testing::Test {
 protected:
  BackupOptions BOpts(bool encrypted = true) {
    BackupOptions o;
    o.data_dir = src_;
    o.out = file_;
    if (encrypted) o.unlock_key = Unlock();
    return o;
  }
  RestoreOptions ROpts(const std::string& to, bool encrypted = true) {
    RestoreOptions o;
    o.backup = file_;
    o.data_dir = to;
    if (encrypted) o.unlock_key = Unlock();
    return o;
  }
  // Backup then restore; the restored store recovers what the original does.
  void RoundTrip(bool encrypted) {
    auto b = CreateBackup(BOpts(encrypted));
    ASSERT_OK(b.status());
    EXPECT_EQ(b->attempts, 1);
    EXPECT_FALSE(fs_->FileExists(file_ + ".tmp").ok());
    auto r = RestoreBackup(ROpts(dst_, encrypted));
    ASSERT_OK(r.status());
    EXPECT_FALSE(fs_->FileExists(dst_ + ".restore-tmp").ok());
    auto want = Recover(src_, encrypted);
    auto got = Recover(dst_, encrypted);
    ASSERT_OK(want.status());
    ASSERT_OK(got.status());
    EXPECT_EQ(got->snapshot_index, want->snapshot_index);
    EXPECT_GT(got->snapshot_index, 0u);
    EXPECT_TRUE(*got == *want);
    EXPECT_EQ(r->last_index, want->last);
  }

  env::FileSystem* fs_ = env::DefaultFileSystem();
  testing::TempDir tmp_;
  const std::string src_ = tmp_.Sub("src");
  const std::string dst_ = tmp_.Sub("dst");
  const std::string file_ = tmp_.Sub("backup.swb");
};

TEST_F(BackupTest, EncryptedRoundTripRecoversTheSameState) {
  Fill(src_, true, 1000, 300);
  RoundTrip(true);
  // The backup kept node.key wrapped; the restored one asks for a rotation.
  auto m = InspectBackup(fs_, file_, true);
  ASSERT_OK(m.status());
  EXPECT_EQ(m->key_material(), backuppb::KEY_MATERIAL_WRAPPED);
  StorageOptions o;
  o.data_dir = dst_;
  o.read_only = true;
  o.unlock_key = Unlock();
  auto st = RaftStorage::Open(std::move(o));
  ASSERT_OK(st.status());
  auto inv = (*st)->Inventory();
  ASSERT_OK(inv.status());
  EXPECT_TRUE(inv->needs_rotation);
  EXPECT_TRUE(inv->key_file_locked);
  EXPECT_TRUE(inv->all_keys_present);
}

TEST_F(BackupTest, RestoredStoreTakesWritesAndRotatesFirst) {
  Fill(src_, true, 400, 200);
  ASSERT_OK(CreateBackup(BOpts()).status());
  ASSERT_OK(RestoreBackup(ROpts(dst_)).status());
  StorageOptions o = Options(dst_, true);
  std::optional<uint64_t> asked;
  o.request_snapshot = [&](uint64_t min) { asked = min; };
  auto st = RaftStorage::Open(std::move(o));
  ASSERT_OK(st.status());
  auto b = (*st)->Bootstrap();
  ASSERT_OK(b.status());
  const std::optional<encryption::KeyId> before = (*st)->write_key();
  ASSERT_OK((*st)->SaveEntries(HS(410), Entries(401, 410)));
  // The first batch carried out the rotation request the restore left.
  EXPECT_NE((*st)->write_key(), before);
  EXPECT_TRUE(asked.has_value());
  ASSERT_OK((*st)->Close());
}

TEST_F(BackupTest, PlaintextRoundTrip) {
  Fill(src_, false, 700, 250);
  RoundTrip(false);
  auto m = InspectBackup(fs_, file_, true);
  ASSERT_OK(m.status());
  EXPECT_EQ(m->key_material(), backuppb::KEY_MATERIAL_NONE);
  EXPECT_FALSE(m->encrypted());
}

TEST_F(BackupTest, StreamedSnapshotTravelsAndIsAuthenticated) {
  Fill(src_, true, 600, 200, /*stream=*/true);
  RoundTrip(true);
  auto reader = BackupFileReader::Open(fs_, file_);
  ASSERT_OK(reader.status());
  bool has_stream = false;
  for (const auto& mem : (*reader)->manifest().members()) {
    has_stream = has_stream || absl::EndsWith(mem.name(), ".snap.stream");
  }
  EXPECT_TRUE(has_stream);
}

TEST_F(BackupTest, UnlockedKeyFileIsInTheClearAndSaysSo) {
  Fill(src_, true, 200, 100, false, /*locked=*/false);
  BackupOptions o = BOpts();
  o.unlock_key.reset();
  auto b = CreateBackup(o);
  ASSERT_OK(b.status());
  EXPECT_EQ(b->manifest.key_material(), backuppb::KEY_MATERIAL_CLEAR);
  EXPECT_THAT(KeyMaterialText(b->manifest), HasSubstr("in the clear"));
}

TEST_F(BackupTest, LockedStoreNeedsTheUnlockKeyUnlessRedacted) {
  Fill(src_, true, 200, 100);
  BackupOptions o = BOpts();
  o.unlock_key.reset();
  EXPECT_THAT(CreateBackup(o).status(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(fs_->FileExists(file_).ok());
  EXPECT_FALSE(fs_->FileExists(file_ + ".tmp").ok());
  o.redact = true;
  ASSERT_OK(CreateBackup(o).status());
}

TEST_F(BackupTest, RedactedBackupHoldsNoKeyMaterialAndIsRefused) {
  Fill(src_, true, 300, 100);
  BackupOptions o = BOpts();
  o.redact = true;
  o.unlock_key.reset();
  auto b = CreateBackup(o);
  ASSERT_OK(b.status());
  const std::string bytes = testing::ReadFileOrDie(file_);
  EXPECT_EQ(bytes.find("raft-dek"), std::string::npos);
  EXPECT_EQ(bytes.find("PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(b->manifest.redacted());
  EXPECT_EQ(b->manifest.key_material(), backuppb::KEY_MATERIAL_NONE);
  EXPECT_THAT(KeyMaterialText(b->manifest), HasSubstr("redacted"));
  // Structure stays: the snapshot, the segments, the consistency point.
  EXPECT_GT(b->manifest.snapshot_index(), 0u);
  EXPECT_GE(b->manifest.members_size(), 2);
  auto r = RestoreBackup(ROpts(dst_));
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(r.status().message(), HasSubstr("redacted"));
  EXPECT_FALSE(fs_->FileExists(dst_).ok());
  EXPECT_FALSE(fs_->FileExists(dst_ + ".restore-tmp").ok());
}

TEST_F(BackupTest, RefusalsLeaveTheTargetAsItWas) {
  Fill(src_, true, 300, 100);
  ASSERT_OK(CreateBackup(BOpts()).status());
  // Wrong unlock key, then none.
  RestoreOptions wrong = ROpts(dst_);
  wrong.unlock_key = Unlock('\x13');
  EXPECT_THAT(RestoreBackup(wrong).status(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(fs_->FileExists(dst_).ok());
  RestoreOptions none = ROpts(dst_);
  none.unlock_key.reset();
  EXPECT_THAT(RestoreBackup(none).status(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(fs_->FileExists(dst_).ok());
  // A non-empty target is refused and untouched.
  ASSERT_OK(env::CreateDirAll(fs_, dst_));
  testing::WriteFileOrDie(dst_ + "/keep", "mine");
  const auto before = testing::DirContents(dst_);
  EXPECT_THAT(RestoreBackup(ROpts(dst_)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(testing::DirContents(dst_), before);
  // An empty directory is replaced by the restored store.
  ASSERT_OK(fs_->RemoveFile(dst_ + "/keep"));
  ASSERT_OK(RestoreBackup(ROpts(dst_)).status());
  EXPECT_TRUE(fs_->FileExists(dst_ + "/node.key").ok());
}

TEST_F(BackupTest, DamagedOrTruncatedBackupIsRefusedWithNothingLeft) {
  Fill(src_, true, 500, 200);
  ASSERT_OK(CreateBackup(BOpts()).status());
  const std::string good = testing::ReadFileOrDie(file_);
  auto reader = BackupFileReader::Open(fs_, file_);
  ASSERT_OK(reader.status());
  const backuppb::Manifest m = (*reader)->manifest();
  reader->reset();
  // One flipped bit in each member, in the manifest, in the footer; then
  // cuts at several points.
  std::vector<std::string> bad;
  for (const auto& mem : m.members()) {
    std::string b = good;
    b[mem.offset() + mem.size() / 2] ^= 0x10;
    bad.push_back(b);
  }
  for (size_t back : {size_t{3}, size_t{20}, kFooterSize + 5}) {
    std::string b = good;
    b[b.size() - back] ^= 0x01;
    bad.push_back(b);
  }
  for (size_t cut : {size_t{0}, size_t{10}, good.size() / 3, good.size() / 2, good.size() - 1}) {
    bad.push_back(good.substr(0, cut));
  }
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    testing::WriteFileOrDie(file_, bad[i]);
    auto r = RestoreBackup(ROpts(dst_));
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.status().code() == absl::StatusCode::kDataLoss ||
                r.status().code() == absl::StatusCode::kFailedPrecondition)
        << r.status();
    EXPECT_FALSE(fs_->FileExists(dst_).ok());
    EXPECT_FALSE(fs_->FileExists(dst_ + ".restore-tmp").ok());
    EXPECT_FALSE(InspectBackup(fs_, file_, true).ok());
  }
}

TEST_F(BackupTest, NewestSnapshotWithoutItsWalRecordIsPassedOver) {
  Fill(src_, false, 500, 200);  // snapshots at 200 and 400, both recorded
  // A .snap at 480 whose WAL record never came (the writer died between
  // the two steps, or has not got there yet).
  auto snapper = snap::Snapshotter::Open(src_ + "/snap-v3", {});
  ASSERT_OK(snapper.status());
  ASSERT_OK((*snapper)->Save(Meta(480), SnapData(480)));
  auto b = CreateBackup(BOpts(false));
  ASSERT_OK(b.status());
  EXPECT_EQ(b->manifest.snapshot_index(), 400u);
  ASSERT_OK(RestoreBackup(ROpts(dst_, false)).status());
  auto got = Recover(dst_, false);
  ASSERT_OK(got.status());
  EXPECT_EQ(got->snapshot_index, 400u);
  EXPECT_EQ(got->last, 500u);
}

// Forwards to the POSIX file system; runs `on_open` before a file is opened
// for reading and `on_size` before a size is asked.
class HookFileSystem final : public env::FileSystem {
 public:
  std::function<void(const std::string&)> on_open;
  std::function<void(const std::string&)> on_size;
  env::FileSystem* base = env::DefaultFileSystem();
  absl::StatusOr<std::unique_ptr<env::SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    if (on_open) on_open(path);
    return base->NewSequentialFile(path);
  }
  absl::StatusOr<std::unique_ptr<env::RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    if (on_open) on_open(path);
    return base->NewRandomAccessFile(path);
  }
  absl::StatusOr<std::unique_ptr<env::WritableFile>> NewWritableFile(
      const std::string& path, const env::WritableFileOptions& options) override {
    return base->NewWritableFile(path, options);
  }
  absl::Status FileExists(const std::string& p) override { return base->FileExists(p); }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& p) override {
    if (on_size) on_size(p);
    return base->GetFileSize(p);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& d) override {
    return base->ListDir(d);
  }
  absl::Status CreateDir(const std::string& d, mode_t m) override { return base->CreateDir(d, m); }
  absl::Status RemoveDir(const std::string& d) override { return base->RemoveDir(d); }
  absl::Status RemoveFile(const std::string& p) override { return base->RemoveFile(p); }
  absl::Status Rename(const std::string& f, const std::string& t) override {
    return base->Rename(f, t);
  }
  absl::Status SyncDir(const std::string& d) override { return base->SyncDir(d); }
  absl::StatusOr<std::unique_ptr<env::FileLock>> LockFile(const std::string& p) override {
    return base->LockFile(p);
  }
};

TEST_F(BackupTest, DekChangeDuringTheCopyStartsItAgain) {
  Fill(src_, true, 300, 100);
  // Another store's key file (other DEK ids, same unlock key) stands in for
  // node.key from the first attempt's first WAL read until the second
  // attempt starts, as a rotation step would change it.
  const std::string other = tmp_.Sub("other");
  Fill(other, true, 10, 1000);
  const std::string key = src_ + "/node.key";
  const std::string mine = testing::ReadFileOrDie(key);
  const std::string theirs = testing::ReadFileOrDie(other + "/node.key");
  HookFileSystem hook;
  int wal_opens = 0, key_reads = 0;
  hook.on_open = [&](const std::string& p) {
    if (absl::EndsWith(p, ".wal") && ++wal_opens == 1) testing::WriteFileOrDie(key, theirs);
  };
  hook.on_size = [&](const std::string& p) {
    if (p == key && ++key_reads == 3) testing::WriteFileOrDie(key, mine);
  };
  BackupOptions o = BOpts();
  o.fs = &hook;
  auto b = CreateBackup(o);
  ASSERT_OK(b.status());
  EXPECT_EQ(b->attempts, 2);
  ASSERT_OK(RestoreBackup(ROpts(dst_)).status());
  auto want = Recover(src_, true);
  auto got = Recover(dst_, true);
  ASSERT_OK(want.status());
  ASSERT_OK(got.status());
  EXPECT_TRUE(*got == *want);
}

TEST_F(BackupTest, BackupsWhileAWriterAppendsRestoreToWhatItWrote) {
  Fill(src_, true, 100, 50);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{100};
  absl::Status writer_status;
  std::thread writer([&] {
    auto st = RaftStorage::Open(Options(src_, true));
    if (!st.ok()) {
      writer_status = st.status();
      return;
    }
    if (auto b = (*st)->Bootstrap(); !b.ok()) {
      writer_status = b.status();
      return;
    }
    for (uint64_t i = 101; !stop.load(); i += 10) {
      const uint64_t hi = i + 9;
      if (absl::Status s = (*st)->SaveEntries(HS(hi), Entries(i, hi)); !s.ok()) {
        writer_status = s;
        return;
      }
      written = hi;
      if (hi % 500 == 0) {
        if (absl::Status s = (*st)->SaveSnapshot(Meta(hi), SnapData(hi)); !s.ok()) {
          writer_status = s;
          return;
        }
        if (absl::Status s = (*st)->GC(2); !s.ok()) {
          writer_status = s;
          return;
        }
      }
    }
    writer_status = (*st)->Close();
  });
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(round);
    while (written.load() < 100 + (round + 1) * 700u) std::this_thread::yield();
    auto b = CreateBackup(BOpts());
    ASSERT_OK(b.status());
    const std::string to = tmp_.Sub(absl::StrCat("r", round));
    auto r = RestoreBackup(ROpts(to));
    ASSERT_OK(r.status());
    auto got = Recover(to, true);
    ASSERT_OK(got.status());
    // Every entry restored is the one the writer saved at that index.
    ASSERT_EQ(got->entries.size(), got->last - got->first + 1);
    for (uint64_t i = got->first; i <= got->last; ++i) {
      raftpb::Entry e;
      ASSERT_TRUE(e.ParseFromString(got->entries[i - got->first]));
      ASSERT_EQ(e.index(), i);
      ASSERT_EQ(e.data(), Payload(i)) << i;
    }
    if (got->snapshot_index > 0) {
      EXPECT_EQ(got->snapshot_data, SnapData(got->snapshot_index));
    }
    EXPECT_GE(got->last, 100u + round * 700u);
  }
  stop = true;
  writer.join();
  ASSERT_OK(writer_status);
}

TEST(BackupFileTest, MemberNamesAreOnlyStoreFiles) {
  EXPECT_TRUE(IsValidMemberName("node.key", true));
  EXPECT_FALSE(IsValidMemberName("node.key", false));
  EXPECT_TRUE(IsValidMemberName("wal-v3-encrypted/0000000000000000-0000000000000000.wal", true));
  EXPECT_FALSE(IsValidMemberName("wal-v3/0000000000000000-0000000000000000.wal", true));
  EXPECT_TRUE(IsValidMemberName("snap-v3/0000000000000001-0000000000000064.snap", false));
  EXPECT_TRUE(
      IsValidMemberName("snap-v3-encrypted/0000000000000001-0000000000000064.snap.stream", true));
  for (const char* bad : {"", "/etc/passwd", "../node.key", "wal-v3/../../x.wal",
                          "wal-v3/0000000000000000-0000000000000000.wal/x", "wal-v3/a.wal",
                          "snap-v3/x.snap", "wal-v3//0000000000000000-0000000000000000.wal",
                          "node.key.tmp", "wal-v3"}) {
    EXPECT_FALSE(IsValidMemberName(bad, false)) << bad;
    EXPECT_FALSE(IsValidMemberName(bad, true)) << bad;
  }
}

TEST(BackupFileTest, WriterNeverCommitsWhatTheReaderWouldRefuse) {
  testing::TempDir tmp;
  env::FileSystem* fs = env::DefaultFileSystem();
  const std::string path = tmp.Sub("b");
  {
    auto w = BackupFileWriter::Create(fs, path);
    ASSERT_OK(w.status());
    ASSERT_OK((*w)->BeginMember("../evil"));
    ASSERT_OK((*w)->Append("x"));
    ASSERT_OK((*w)->EndMember());
    backuppb::Manifest m;
    EXPECT_THAT((*w)->Commit(&m), StatusIs(absl::StatusCode::kDataLoss));
  }
  // The failed writer left nothing.
  EXPECT_TRUE(testing::ListDirNames(tmp.path()).empty());
}

}  // namespace
}  // namespace sealwal::backup
