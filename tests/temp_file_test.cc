// Temp files are never opened through what someone left or planted at their
// name: env::NewTempFile, and the .snap / .snap.stream savers built on it.
// The attack: with write access to the snapshot directory, plant
// `<name>.snap.tmp -> ../node.key`; a writer that opens the temp name with
// O_CREAT|O_TRUNC follows the link and overwrites the key file.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "sealwal/env/file_system.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/snapshotter.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

constexpr char kKeyBytes[] = "-----BEGIN PRIVATE KEY-----\nnot really a key\n";

class TempFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = env::DefaultFileSystem();
    key_ = tmp_.Sub("node.key");
    ASSERT_OK(env::WriteFileAtomically(fs_, key_, kKeyBytes, 0600));
    snap_dir_ = tmp_.Sub("snap-v3");
    ASSERT_EQ(::mkdir(snap_dir_.c_str(), 0700), 0);
  }
  void Plant(const std::string& tmp_name) {
    ASSERT_EQ(::symlink("../node.key", (snap_dir_ + "/" + tmp_name).c_str()), 0);
  }
  void ExpectKeyUntouched() {
    ASSERT_OK_AND_ASSIGN(std::string bytes, env::ReadFileToString(fs_, key_));
    EXPECT_EQ(bytes, kKeyBytes);
    struct stat st;
    ASSERT_EQ(::lstat(key_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
  }
  raftpb::SnapshotMetadata Meta(uint64_t index) {
    raftpb::SnapshotMetadata m;
    m.set_index(index);
    m.set_term(2);
    return m;
  }

  testing::TempDir tmp_;
  env::FileSystem* fs_ = nullptr;
  std::string key_;
  std::string snap_dir_;
};

TEST_F(TempFileTest, NewTempFileReplacesAPlantedSymlinkWithAFreshOwnerOnlyFile) {
  Plant("x.tmp");
  ASSERT_OK_AND_ASSIGN(auto f, env::NewTempFile(fs_, snap_dir_ + "/x.tmp", 0600));
  ASSERT_OK(f->Append("fresh"));
  ASSERT_OK(f->Close());
  ExpectKeyUntouched();
  struct stat st;
  ASSERT_EQ(::lstat((snap_dir_ + "/x.tmp").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TempFileTest, InlineSnapSaveDoesNotFollowAPlantedTempSymlink) {
  Plant(snap::SnapFileName(2, 10) + ".tmp");
  ASSERT_OK_AND_ASSIGN(auto s, snap::Snapshotter::Open(snap_dir_));
  ASSERT_OK(s->Save(Meta(10), "state machine bytes"));
  ExpectKeyUntouched();
  ASSERT_OK_AND_ASSIGN(snap::LoadedSnapshot loaded, s->Load());
  EXPECT_EQ(loaded.data, "state machine bytes");
}

TEST_F(TempFileTest, StreamedSnapSaveDoesNotFollowAPlantedTempSymlink) {
  Plant(snap::StreamFileName(2, 11) + ".tmp");
  ASSERT_OK_AND_ASSIGN(auto s, snap::Snapshotter::Open(snap_dir_));
  ASSERT_OK_AND_ASSIGN(auto saver, s->SaveStream(Meta(11)));
  ASSERT_OK(saver->Append(std::string(100000, 'z')));
  ASSERT_OK(saver->Commit());
  ExpectKeyUntouched();
  ASSERT_OK_AND_ASSIGN(snap::LoadedSnapshot loaded, s->Load());
  EXPECT_EQ(loaded.size(), 100000u);
}

TEST_F(TempFileTest, WriteFileAtomicallyDoesNotFollowAPlantedTempSymlink) {
  ASSERT_EQ(::symlink("node.key", tmp_.Sub("other.key.tmp").c_str()), 0);
  ASSERT_OK(env::WriteFileAtomically(fs_, tmp_.Sub("other.key"), "other", 0600));
  ExpectKeyUntouched();
}

}  // namespace
}  // namespace sealwal
