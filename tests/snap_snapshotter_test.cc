// sealwal/snap/snapshotter.h: Save/Load/LoadNewestAvailable/Purge semantics in
// plaintext and encrypted directories, inline and streamed; CRC-broken
// files renamed .broken; key problems reported with nothing renamed;
// associated data binding; and a crash (with power loss) at every write
// step of a save never leaves a snapshot that Load accepts but is
// incomplete.
#include "sealwal/snap/snapshotter.h"

#include <sys/stat.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "testing/fault_injection_file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::snap {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;
using encryption::Algorithm;

std::shared_ptr<encryption::Keyring> MakeKeys(uint32_t id = 0x51, char fill = 'k') {
  auto key = encryption::SecretKey::FromBytes(std::string(32, fill));
  auto dek = encryption::Dek::FromParts(encryption::KeyId(id), Algorithm::kAes256Gcm,
                                        std::move(*key));
  return *encryption::Keyring::ForDek(*dek);
}

raftpb::SnapshotMetadata Md(uint64_t index, uint64_t term, std::vector<uint64_t> voters = {1, 2, 3}) {
  raftpb::SnapshotMetadata md;
  md.set_index(index);
  md.set_term(term);
  for (uint64_t v : voters) md.mutable_conf_state()->add_voters(v);
  return md;
}

std::string Data(uint64_t index, uint64_t term, size_t n) { return DataGen(9, index, term, n); }

// Reads a loaded snapshot's data, inline or streamed.
absl::StatusOr<std::string> AllData(LoadedSnapshot& l) {
  if (!l.streamed()) return l.data;
  std::string out;
  for (;;) {
    auto c = l.stream->NextChunk();
    if (!c.ok()) return c.status();
    if (c->empty()) return out;
    out.append(c->data(), c->size());
  }
}

class SnapshotterBase : public ::testing::Test {
 protected:
  // The directory's name must agree with the keyring (Snapshotter::Open):
  // subclasses set dir_ before this runs.
  void SetUp() override { ASSERT_OK(fs_->CreateDir(dir_)); }
  std::unique_ptr<Snapshotter> Open(std::shared_ptr<const encryption::Keyring> keys,
                                    StreamCheck check = StreamCheck::kEnds) {
    SnapshotterOptions o;
    o.fs = fs_.get();
    o.keys = std::move(keys);
    o.stream.chunk_size = 4096;
    o.stream_check = check;
    auto s = Snapshotter::Open(dir_, o);
    EXPECT_THAT(s, IsOk());
    return std::move(*s);
  }
  std::unique_ptr<Snapshotter> Open() { return Open(keys_); }
  void SaveStream(Snapshotter* s, uint64_t index, uint64_t term, size_t n) {
    ASSERT_OK_AND_ASSIGN(auto saver, s->SaveStream(Md(index, term)));
    const std::string d = Data(index, term, n);
    for (size_t off = 0; off < d.size(); off += 3000) ASSERT_OK(saver->Append(d.substr(off, 3000)));
    ASSERT_OK(saver->Commit());
  }
  std::vector<std::string> Files() { return *fs_->ListDir(dir_); }
  std::string Read(const std::string& name) {
    return *env::ReadFileToString(fs_.get(), dir_ + "/" + name);
  }
  void Write(const std::string& name, absl::string_view b) {
    ASSERT_OK(env::WriteFileAtomically(fs_.get(), dir_ + "/" + name, b));
  }

  std::unique_ptr<env::FileSystem> fs_ = env::NewMemFileSystem();
  std::shared_ptr<encryption::Keyring> keys_;
  std::string dir_ = "/snap";
};

class SnapshotterTest : public SnapshotterBase, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    keys_ = GetParam() ? MakeKeys() : nullptr;
    dir_ = GetParam() ? "/snap-encrypted" : "/snap";
    SnapshotterBase::SetUp();
  }
};

TEST_P(SnapshotterTest, SaveAndLoadNewestInlineAndStreamed) {
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 5000)));
  SaveStream(s.get(), 20, 1, 50000);
  ASSERT_OK(s->Save(Md(0, 0), "ignored"));  // empty snapshot: a no-op, as etcd
  EXPECT_THAT(s->List(), IsOk());
  EXPECT_EQ(s->List()->size(), 2u);
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load());
  EXPECT_TRUE(l.streamed());
  EXPECT_EQ(l.metadata.index(), 20u);
  EXPECT_EQ(l.metadata.conf_state().voters_size(), 3);
  EXPECT_EQ(l.algorithm, GetParam() ? Algorithm::kAes256Gcm : Algorithm::kNotEncrypted);
  EXPECT_EQ(*AllData(l), Data(20, 1, 50000));
  const std::vector<wal::SnapshotPosition> positions = {{10, 1}};
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot m, s->LoadNewestAvailable(positions));
  EXPECT_FALSE(m.streamed());
  EXPECT_EQ(m.metadata.index(), 10u);
  EXPECT_EQ(m.data, Data(10, 1, 5000));
  ASSERT_OK_AND_ASSIGN(raftpb::Snapshot rs, m.TakeRaftSnapshot());
  EXPECT_EQ(rs.metadata().index(), 10u);
  EXPECT_EQ(rs.data(), Data(10, 1, 5000));
  const std::vector<wal::SnapshotPosition> none = {{11, 1}};
  EXPECT_THAT(s->LoadNewestAvailable(none), StatusIs(absl::StatusCode::kNotFound));
  // Data that would read back as a stream reference is refused.
  EXPECT_THAT(s->Save(Md(30, 1), std::string(kStreamRefMagic) + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(SnapshotterTest, CrcBrokenNewestIsRenamedBrokenAndLoadFallsBack) {
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
  ASSERT_OK(s->Save(Md(20, 2), Data(20, 2, 1000)));
  const std::string name = SnapFileName(2, 20);
  std::string b = Read(name);
  b[b.size() / 2] ^= 1;
  Write(name, b);
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load(&report));
  EXPECT_EQ(l.metadata.index(), 10u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_TRUE(report.skipped[0].renamed_broken);
  EXPECT_EQ(GetSnapError(report.skipped[0].reason), SnapError::kCrcMismatch);
  EXPECT_THAT(Files(), ::testing::Contains(name + ".broken"));
  EXPECT_THAT(Files(), ::testing::Not(::testing::Contains(name)));
  // Empty and garbage files are broken too.
  Write(SnapFileName(3, 30), "");
  Write(SnapFileName(3, 31), "garbage!");
  // Found by snap_file_fuzzer: a file short enough to live inside a
  // std::string's small buffer was decoded through a view that dangled once
  // the string moved (ASan: stack-buffer-overflow). 15 bytes whose varint
  // runs to the end.
  Write(SnapFileName(3, 32), std::string("\x0c\xb4\x76\x08\xd9\x69\x69\xf0\x6c\x69\x8b\xec"
                                         "\x55\x94\x0d", 15));
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot l2, s->Load());
  EXPECT_EQ(l2.metadata.index(), 10u);
  EXPECT_THAT(Files(), ::testing::Contains(SnapFileName(3, 30) + ".broken"));
  EXPECT_THAT(Files(), ::testing::Contains(SnapFileName(3, 32) + ".broken"));
  // Nothing valid left: etcd's ErrNoSnapshot.
  ASSERT_OK(fs_->RemoveFile(dir_ + "/" + SnapFileName(1, 10)));
  EXPECT_THAT(s->Load(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no available")));
}

TEST_P(SnapshotterTest, StreamMissingOrBrokenFallsBackWithoutRenaming) {
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
  SaveStream(s.get(), 20, 1, 20000);
  const std::string stream = StreamFileName(1, 20);
  const std::string good = Read(stream);
  // The last chunk damaged: found by the ends check.
  std::string b = good;
  b[b.size() - 3] ^= 0x40;
  Write(stream, b);
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load(&report));
  EXPECT_EQ(l.metadata.index(), 10u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_FALSE(report.skipped[0].renamed_broken);
  EXPECT_THAT(Files(), ::testing::Contains(SnapFileName(1, 20)));
  // Truncated by a chunk: the size disagrees with the .snap.
  Write(stream, good.substr(0, good.size() - 4096));
  EXPECT_EQ(s->Load()->metadata.index(), 10u);
  // Missing.
  ASSERT_OK(fs_->RemoveFile(dir_ + "/" + stream));
  EXPECT_EQ(s->Load()->metadata.index(), 10u);
  // A middle chunk damaged: kEnds returns the snapshot and reading it fails;
  // kFull falls back before returning.
  b = good;
  b[kStreamHeaderSize + 4096 + 100] ^= 1;
  Write(stream, b);
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot e, s->Load());
  EXPECT_EQ(e.metadata.index(), 20u);
  EXPECT_THAT(AllData(e), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot f, Open(keys_, StreamCheck::kFull)->Load());
  EXPECT_EQ(f.metadata.index(), 10u);
  // Repaired: the streamed snapshot is back.
  Write(stream, good);
  EXPECT_EQ(s->Load()->metadata.index(), 20u);
}

TEST_P(SnapshotterTest, PurgeKeepsTheNewestAndTheirStreams) {
  auto s = Open();
  for (uint64_t i = 1; i <= 5; ++i) {
    if (i % 2) ASSERT_OK(s->Save(Md(i * 10, 1), Data(i, 1, 100)));
    else SaveStream(s.get(), i * 10, 1, 5000);
  }
  Write(StreamFileName(1, 5), "orphan");           // older than all kept: removed
  Write(SnapFileName(1, 15) + ".tmp", "partial");  // likewise
  Write(StreamFileName(1, 99) + ".tmp", "maybe a save in progress");  // newer: kept
  Write(SnapFileName(1, 1) + ".broken", "evidence");                  // kept
  ASSERT_OK(s->Purge(2));
  EXPECT_THAT(Files(), ::testing::UnorderedElementsAre(
                           SnapFileName(1, 50), SnapFileName(1, 40), StreamFileName(1, 40),
                           StreamFileName(1, 99) + ".tmp", SnapFileName(1, 1) + ".broken"));
  EXPECT_EQ(s->Load()->metadata.index(), 50u);
  EXPECT_THAT(s->Purge(0), StatusIs(absl::StatusCode::kInvalidArgument));
}

// The stream must hold exactly what its .snap says: one cut short by a
// chunk or extended by one is refused (Load falls back), never read as a
// shorter or longer snapshot.
TEST_P(SnapshotterTest, TruncatedOrExtendedStreamIsRefused) {
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
  SaveStream(s.get(), 20, 1, 3 * 4096);  // 3 full chunks
  const std::string stream = StreamFileName(1, 20);
  const std::string good = Read(stream);
  const size_t stored = (good.size() - kStreamHeaderSize) / 3;
  for (const std::string& bad : {good.substr(0, good.size() - stored),
                                 good + good.substr(kStreamHeaderSize, stored)}) {
    Write(stream, bad);
    LoadReport report;
    ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load(&report));
    EXPECT_EQ(l.metadata.index(), 10u);
    ASSERT_EQ(report.skipped.size(), 1u);
    EXPECT_THAT(report.skipped[0].reason,
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated or extended")));
    EXPECT_TRUE(Read(stream) == bad);  // nothing renamed or repaired
  }
  Write(stream, good);
  EXPECT_EQ(s->Load()->metadata.index(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SnapshotterTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

class EncryptedSnapshotterTest : public SnapshotterBase {
 protected:
  void SetUp() override {
    dir_ = "/snap-encrypted";
    SnapshotterBase::SetUp();
  }
};

TEST_F(EncryptedSnapshotterTest, KeyProblemsAreReportedAndNothingIsRenamed) {
  keys_ = MakeKeys(0x51, 'k');
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
  SaveStream(s.get(), 20, 1, 9000);
  const auto before = Files();
  // No DEK with the snapshot's key id: kNotFound naming it, as in the WAL.
  auto other = Open(MakeKeys(0x52, 'k'));
  absl::Status missing = other->Load().status();
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound,
                                HasSubstr("no DEK with key id 0x00000051")));
  EXPECT_TRUE(encryption::IsMissingKeyError(missing)) << missing;
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound, HasSubstr("nothing was renamed")));
  // The wrong key under the right id: authentication fails, kDataLoss.
  absl::Status wrong = Open(MakeKeys(0x51, 'x'))->Load().status();
  EXPECT_THAT(wrong, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not decrypt")));
  EXPECT_FALSE(encryption::IsMissingKeyError(wrong));
  EXPECT_EQ(Files(), before);
  // Inspect keeps the same classification.
  ASSERT_OK_AND_ASSIGN(SnapFileInfo missing_info, other->Inspect(SnapFileName(1, 10)));
  EXPECT_TRUE(encryption::IsMissingKeyError(missing_info.decrypt_status));
  ASSERT_OK_AND_ASSIGN(SnapFileInfo wrong_info,
                       Open(MakeKeys(0x51, 'x'))->Inspect(SnapFileName(1, 10)));
  EXPECT_THAT(wrong_info.decrypt_status, StatusIs(absl::StatusCode::kDataLoss));
  // A plaintext snapshot in an encrypted directory (written in a plaintext
  // one and copied over): a downgrade, refused.
  ASSERT_OK(fs_->CreateDir("/plain"));
  {
    SnapshotterOptions po;
    po.fs = fs_.get();
    ASSERT_OK_AND_ASSIGN(auto plain, Snapshotter::Open("/plain", po));
    ASSERT_OK(plain->Save(Md(30, 1), "plaintext"));
    Write(SnapFileName(1, 30), *env::ReadFileToString(fs_.get(), "/plain/" + SnapFileName(1, 30)));
  }
  EXPECT_THAT(s->Load(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Files(), ::testing::Contains(SnapFileName(1, 30)));
  ASSERT_OK(fs_->RemoveFile(dir_ + "/" + SnapFileName(1, 30)));
  // No plaintext reader of an encrypted directory: Open refuses it.
  SnapshotterOptions no_key;
  no_key.fs = fs_.get();
  EXPECT_THAT(Snapshotter::Open(dir_, no_key),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("open it with a key")));
  EXPECT_EQ(Files(), before);
  // Inspect without a key shows the algorithm and key id, decrypts nothing.
  ASSERT_OK_AND_ASSIGN(auto inspector, Snapshotter::OpenForInspect(dir_, no_key));
  EXPECT_THAT(inspector->Load(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(inspector->Purge(1), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(inspector->Save(Md(40, 1), "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(Files(), before);
  ASSERT_OK_AND_ASSIGN(SnapFileInfo info, inspector->Inspect(SnapFileName(1, 10)));
  EXPECT_TRUE(info.encrypted_record);
  EXPECT_EQ(info.key_id, encryption::KeyId(0x51));
  EXPECT_EQ(info.data_size, 1000u);
}

TEST_F(EncryptedSnapshotterTest, AssociatedDataBindsIndexTermAndConfState) {
  keys_ = MakeKeys();
  auto s = Open();
  ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
  ASSERT_OK_AND_ASSIGN(SnapFileView v, DecodeSnapFile(Read(SnapFileName(1, 10))));
  const std::string file = Read(SnapFileName(1, 10));
  ASSERT_OK_AND_ASSIGN(SnapFileView fv, DecodeSnapFile(file));
  ASSERT_OK_AND_ASSIGN(RaftSnapshotView rv, DecodeRaftSnapshot(fv.raft_snapshot));
  const std::string sealed(rv.data);
  (void)v;
  // The same sealed bytes under another index, another term, other voters,
  // each with a correct CRC: none decrypts.
  for (const auto& md : {Md(11, 1), Md(10, 2), Md(10, 1, {1, 2})}) {
    ASSERT_OK(fs_->RemoveFile(dir_ + "/" + *s->List()->begin()));
    SnapFilePieces p = EncodeSnapFilePieces(sealed, md);
    Write(SnapFileName(md.term(), md.index()), p.prefix + sealed + p.suffix);
    EXPECT_THAT(s->Load(), StatusIs(absl::StatusCode::kDataLoss));
  }
}

std::map<std::string, std::string> MemDirContents(env::FileSystem* fs, const std::string& dir) {
  std::map<std::string, std::string> m;
  const std::vector<std::string> names = *fs->ListDir(dir);
  for (const std::string& n : names) m[n] = *env::ReadFileToString(fs, dir + "/" + n);
  return m;
}

// The directory's name says which kind it is: a keyring needs a name ending
// in "-encrypted", and such a name needs a keyring. A mismatch is refused
// before anything is created, read or renamed.
TEST(SnapshotterDirNameTest, EncryptedDirectoryNeedsAKeyring) {
  auto fs = env::NewMemFileSystem();
  auto keys = MakeKeys();
  SnapshotterOptions plain;
  plain.fs = fs.get();
  plain.create_dir = true;
  SnapshotterOptions sealed = plain;
  sealed.keys = keys;
  // Existing directories of both kinds, each holding an inline and a
  // streamed snapshot (one of them CRC-broken, which a Load would rename).
  for (const auto& [dir, o] : {std::pair{std::string("/snap-v3"), plain},
                               std::pair{std::string("/snap-v3-encrypted"), sealed}}) {
    ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(dir, o));
    ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 1000)));
    ASSERT_OK_AND_ASSIGN(auto saver, s->SaveStream(Md(20, 1)));
    ASSERT_OK(saver->Append(Data(20, 1, 9000)));
    ASSERT_OK(saver->Commit());
    ASSERT_OK(env::WriteFileAtomically(fs.get(), dir + "/" + SnapFileName(1, 30), "broken"));
  }
  const auto plain_before = MemDirContents(fs.get(), "/snap-v3");
  const auto sealed_before = MemDirContents(fs.get(), "/snap-v3-encrypted");

  EXPECT_THAT(Snapshotter::Open("/snap-v3-encrypted/", plain),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/snap-v3-encrypted is an encrypted snapshot directory")));
  EXPECT_TRUE(MemDirContents(fs.get(), "/snap-v3") == plain_before);
  EXPECT_TRUE(MemDirContents(fs.get(), "/snap-v3-encrypted") == sealed_before);
  // Nothing is created for a refused open either.
  EXPECT_THAT(Snapshotter::Open("/new/snap-encrypted", plain),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs->FileExists("/new"), StatusIs(absl::StatusCode::kNotFound));
  // The matching opens work, etcd's plaintext name included.
  EXPECT_OK(Snapshotter::Open("/snap-v3", plain).status());
  EXPECT_OK(Snapshotter::Open("/snap-v3-encrypted", sealed).status());
  EXPECT_OK(Snapshotter::Open("/member/snap", plain).status());
  // A keyring on another name makes it encrypted: its plaintext snapshots
  // are refused (kDataLoss), never read as if sealed.
  ASSERT_OK_AND_ASSIGN(auto keyed, Snapshotter::Open("/snap-v3", sealed));
  EXPECT_THAT(keyed->Load(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SnapshotterPosixTest, FilesAre0600AndNoTempFilesRemain) {
  testing::TempDir tmp;
  SnapshotterOptions o;
  o.keys = MakeKeys();
  o.create_dir = true;
  ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(tmp.Sub("snap-v3-encrypted"), o));
  ASSERT_OK(s->Save(Md(1, 1), "abc"));
  ASSERT_OK_AND_ASSIGN(auto saver, s->SaveStream(Md(2, 1)));
  ASSERT_OK(saver->Append(std::string(100000, 'z')));
  ASSERT_OK(saver->Commit());
  auto names = *env::DefaultFileSystem()->ListDir(tmp.Sub("snap-v3-encrypted"));
  EXPECT_EQ(names.size(), 3u);
  for (const auto& n : names) {
    struct stat st;
    ASSERT_EQ(::stat((tmp.Sub("snap-v3-encrypted") + "/" + n).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << n;
  }
}

// Crash (and lose power) at every mutating file-system step of a save,
// inline and streamed; after the restart Load returns the old snapshot or
// the complete new one, never anything else.
class SnapshotterCrashTest : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(SnapshotterCrashTest, CrashAtEveryWriteStep) {
  const bool encrypted = std::get<0>(GetParam());
  const bool streamed = std::get<1>(GetParam());
  auto keys = encrypted ? MakeKeys() : nullptr;
  const std::string dir = encrypted ? "/d/snap-encrypted" : "/d/snap";
  const std::string new_data = Data(20, 2, 3 * 4096 + 500);
  int crashes = 0;
  for (int64_t n = 0;; ++n) {
    auto base = env::NewMemFileSystem();
    env::FaultInjectionFileSystem fi(base.get());
    SnapshotterOptions o;
    o.fs = &fi;
    o.keys = keys;
    o.create_dir = true;
    o.stream.chunk_size = 4096;
    o.stream.threads = 1;
    {
      ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(dir, o));
      ASSERT_OK(s->Save(Md(10, 1), Data(10, 1, 700)));
    }
    fi.CrashAfterOps(n);
    absl::Status st;
    {
      auto s = Snapshotter::Open(dir, o);
      ASSERT_OK(s.status());
      if (streamed) {
        auto saver = (*s)->SaveStream(Md(20, 2));
        st = saver.status();
        for (size_t off = 0; st.ok() && off < new_data.size(); off += 5000) {
          st = (*saver)->Append(absl::string_view(new_data).substr(off, 5000));
        }
        if (st.ok()) st = (*saver)->Commit();
      } else {
        st = (*s)->Save(Md(20, 2), new_data);
      }
    }
    const bool crashed = fi.crashed();
    ASSERT_OK(fi.DropUnsyncedData());
    fi.Reactivate();
    ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(dir, o));
    ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load());
    ASSERT_OK_AND_ASSIGN(std::string got, AllData(l));
    if (l.metadata.index() == 20) {
      EXPECT_TRUE(got == new_data) << "crash after " << n << " ops: incomplete snapshot accepted";
    } else {
      EXPECT_EQ(l.metadata.index(), 10u);
      EXPECT_EQ(got, Data(10, 1, 700));
      EXPECT_TRUE(crashed) << "a save that returned OK was lost: " << st;
    }
    if (!crashed) {
      EXPECT_OK(st);
      EXPECT_EQ(l.metadata.index(), 20u);  // a save that returned OK survives power loss
      break;
    }
    ++crashes;
  }
  EXPECT_GT(crashes, 5);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SnapshotterCrashTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return absl::StrCat(std::get<0>(info.param) ? "Encrypted" : "Plain",
                                               std::get<1>(info.param) ? "Stream" : "Inline");
                         });

}  // namespace
}  // namespace sealwal::snap
