// FaultInjectionFileSystem: every fault is shown to really happen, and the
// power-loss model is checked over both a mem FS and a POSIX temp dir.
#include "testing/fault_injection_file_system.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace sealwal::env {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using D = WritableFileOptions::Disposition;
using Code = absl::StatusCode;

const absl::Status kEio = absl::InternalError("fdatasync: Input/output error (injected EIO)");

enum class Base { kMem, kPosix };

class FaultInjectionTest : public ::testing::TestWithParam<Base> {
 protected:
  void SetUp() override {
    if (GetParam() == Base::kMem) {
      owned_base_ = NewMemFileSystem();
      base_ = owned_base_.get();
      dir_ = "/db";
      ASSERT_OK(base_->CreateDir(dir_));
    } else {
      base_ = DefaultFileSystem();
      std::string tmpl = (std::filesystem::temp_directory_path() / "sealwal_fault_XXXXXX").string();
      ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
      dir_ = tmpl;
    }
    fs_ = std::make_unique<FaultInjectionFileSystem>(base_);
  }
  void TearDown() override {
    fs_.reset();
    if (GetParam() == Base::kPosix) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string P(const std::string& name) const { return JoinPath(dir_, name); }

  // Creates path through the wrapper with data, synced; the name is made
  // durable too unless sync_dir is false.
  void WriteDurable(const std::string& path, const std::string& data, bool sync_dir = true) {
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(path));
    ASSERT_OK(f->Append(data));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Close());
    if (sync_dir) {
      ASSERT_OK(fs_->SyncDir(Dirname(path)));
    }
  }

  // What the base holds (the "disk"), or "<missing>".
  std::string OnDisk(const std::string& path) {
    auto s = ReadFileToString(base_, path);
    if (absl::IsNotFound(s.status())) return "<missing>";
    EXPECT_OK(s.status());
    return s.ok() ? *s : "<error>";
  }
  std::vector<std::string> Names(const std::string& dir) {
    auto names = base_->ListDir(dir);
    EXPECT_OK(names.status());
    return names.ok() ? *names : std::vector<std::string>{"<error>"};
  }

  std::unique_ptr<FileSystem> owned_base_;
  FileSystem* base_ = nullptr;
  std::string dir_;
  std::unique_ptr<FaultInjectionFileSystem> fs_;
};

INSTANTIATE_TEST_SUITE_P(OverMemAndPosix, FaultInjectionTest,
                         ::testing::Values(Base::kMem, Base::kPosix),
                         [](const ::testing::TestParamInfo<Base>& info) {
                           return info.param == Base::kMem ? "Mem" : "Posix";
                         });

// ---------------------------------------------------------------------------
// Pass-through behaviour.

TEST_P(FaultInjectionTest, PassesThroughWhenNoFaultIsArmed) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("a")));
  ASSERT_OK(f->Append("hello"));
  ASSERT_OK(f->Fallocate(0, 8));
  ASSERT_OK(f->Seek(5));
  ASSERT_OK(f->Append("!"));
  EXPECT_EQ(f->Position(), 6u);
  ASSERT_OK(f->Flush());
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Truncate(6));
  ASSERT_OK(f->Close());
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kFailedPrecondition));
  EXPECT_EQ(OnDisk(P("a")), "hello!");
  EXPECT_EQ(*ReadFileToString(fs_.get(), P("a")), "hello!");
  ASSERT_OK_AND_ASSIGN(auto r, fs_->NewRandomAccessFile(P("a")));
  char buf[3];
  ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(2, absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "llo");
  EXPECT_EQ(*r->Size(), 6u);
  EXPECT_EQ(*fs_->GetFileSize(P("a")), 6u);

  WritableFileOptions existing;
  existing.disposition = D::kOpenExisting;
  existing.offset = 1;
  ASSERT_OK_AND_ASSIGN(auto g, fs_->NewWritableFile(P("a"), existing));
  ASSERT_OK(g->Append("E"));
  ASSERT_OK(g->Close());
  EXPECT_EQ(OnDisk(P("a")), "hEllo!");
  EXPECT_THAT(fs_->NewWritableFile(P("zz"), existing), StatusIs(Code::kNotFound));
  WritableFileOptions excl;
  excl.disposition = D::kCreateExclusive;
  EXPECT_THAT(fs_->NewWritableFile(P("a"), excl), StatusIs(Code::kAlreadyExists));

  ASSERT_OK(fs_->CreateDir(P("d")));
  EXPECT_THAT(fs_->CreateDir(P("d")), StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(fs_->CreateDir(P("x/y")), StatusIs(Code::kNotFound));
  EXPECT_THAT(fs_->NewWritableFile(P("x/y")), StatusIs(Code::kNotFound));
  ASSERT_OK(fs_->Rename(P("a"), P("d/b")));
  EXPECT_THAT(*fs_->ListDir(dir_), ElementsAre("d"));
  EXPECT_THAT(*fs_->ListDir(P("d")), ElementsAre("b"));
  EXPECT_THAT(fs_->Rename(P("nope"), P("b")), StatusIs(Code::kNotFound));
  EXPECT_FALSE(fs_->RemoveDir(P("d")).ok());
  ASSERT_OK(fs_->RemoveFile(P("d/b")));
  EXPECT_THAT(fs_->RemoveFile(P("d/b")), StatusIs(Code::kNotFound));
  ASSERT_OK(fs_->RemoveDir(P("d")));
  EXPECT_THAT(fs_->FileExists(P("d")), StatusIs(Code::kNotFound));
  EXPECT_THAT(fs_->SyncDir(P("d")), StatusIs(Code::kNotFound));
  ASSERT_OK(fs_->SyncDir(dir_));

  ASSERT_OK(WriteFileAtomically(fs_.get(), P("LOCK"), ""));
  ASSERT_OK_AND_ASSIGN(auto lock, fs_->LockFile(P("LOCK")));
  EXPECT_EQ(lock->path(), P("LOCK"));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(Code::kUnavailable));
  lock.reset();
  EXPECT_OK(fs_->LockFile(P("LOCK")).status());
}

// ---------------------------------------------------------------------------
// Power loss: file contents.

TEST_P(FaultInjectionTest, SyncedDataSurvivesUnsyncedDataIsLost) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("durable"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append(" volatile"));
  EXPECT_EQ(OnDisk(P("f")), "durable volatile");  // it reached the "page cache"

  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "durable");
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kFailedPrecondition, HasSubstr("power lost")));
  EXPECT_THAT(f->Sync(), StatusIs(Code::kFailedPrecondition, HasSubstr("power lost")));
  EXPECT_THAT(f->Close(), StatusIs(Code::kFailedPrecondition, HasSubstr("power lost")));
  // The wrapper is usable right away (a power loss is not a crash).
  EXPECT_EQ(*ReadFileToString(fs_.get(), P("f")), "durable");
}

TEST_P(FaultInjectionTest, FileNeverSyncedComesBackEmpty) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append("never synced"));
  ASSERT_OK(f->Close());
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "");
}

TEST_P(FaultInjectionTest, OverwriteInPreallocatedFileRevertsToOldBytes) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("seg")));
  ASSERT_OK(f->Fallocate(0, 4096));
  ASSERT_OK(f->Append("old-record"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));
  // Unsynced: an overwrite of synced bytes, a write into the zero tail, a
  // shrink and a growth.
  ASSERT_OK(f->Seek(0));
  ASSERT_OK(f->Append("NEW"));
  ASSERT_OK(f->Seek(100));
  ASSERT_OK(f->Append("tail"));
  ASSERT_OK(f->Truncate(50));
  ASSERT_OK(f->Fallocate(0, 8192));
  EXPECT_EQ(*base_->GetFileSize(P("seg")), 8192u);

  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("seg")), "old-record" + std::string(4086, '\0'));
}

TEST_P(FaultInjectionTest, SyncMakesLaterStateDurableIncludingShrink) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append("0123456789"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Truncate(4));
  ASSERT_OK(f->Append("XY"));
  ASSERT_OK(f->Sync());  // "0123XY" is durable now
  ASSERT_OK(f->Seek(1));
  ASSERT_OK(f->Append("zz"));
  ASSERT_OK(f->Fallocate(0, 1 << 20));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "0123XY");
}

TEST_P(FaultInjectionTest, DurableContentIsPerFileNotPerName) {
  // Data synced through one handle, renamed (durably), then changed
  // through another handle without a sync.
  WriteDurable(P("a.tmp"), "v1");
  ASSERT_OK(fs_->Rename(P("a.tmp"), P("a")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WritableFileOptions o;
  o.disposition = D::kOpenExisting;
  o.offset = 2;
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("a"), o));
  ASSERT_OK(f->Append("-unsynced"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("a"));
  EXPECT_EQ(OnDisk(P("a")), "v1");
}

TEST_P(FaultInjectionTest, CreateTruncateOfSyncedFileIsUndone) {
  WriteDurable(P("f"), "precious");
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));  // truncates
  ASSERT_OK(f->Append("new"));
  EXPECT_EQ(OnDisk(P("f")), "new");
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "precious");
}

// ---------------------------------------------------------------------------
// Power loss: names.

TEST_P(FaultInjectionTest, CreateWithoutSyncDirDisappears) {
  WriteDurable(P("kept"), "k");
  WriteDurable(P("gone"), "synced data, but the name was never synced", /*sync_dir=*/false);
  EXPECT_THAT(Names(dir_), ElementsAre("gone", "kept"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("kept"));
  EXPECT_EQ(OnDisk(P("kept")), "k");
}

TEST_P(FaultInjectionTest, RenameWithoutSyncDirIsReverted) {
  WriteDurable(P("a"), "A-data");
  WriteDurable(P("b"), "B-old");
  ASSERT_OK(fs_->Rename(P("a"), P("b")));  // replaces b
  EXPECT_THAT(Names(dir_), ElementsAre("b"));
  EXPECT_EQ(OnDisk(P("b")), "A-data");
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("a", "b"));
  EXPECT_EQ(OnDisk(P("a")), "A-data");
  EXPECT_EQ(OnDisk(P("b")), "B-old");
}

TEST_P(FaultInjectionTest, RenameWithSyncDirPersists) {
  WriteDurable(P("a"), "A-data");
  WriteDurable(P("b"), "B-old");
  ASSERT_OK(fs_->Rename(P("a"), P("b")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("b"));
  EXPECT_EQ(OnDisk(P("b")), "A-data");
}

TEST_P(FaultInjectionTest, SwapOfTwoNamesIsReverted) {
  WriteDurable(P("a"), "A");
  WriteDurable(P("b"), "B");
  ASSERT_OK(fs_->Rename(P("a"), P("t")));
  ASSERT_OK(fs_->Rename(P("b"), P("a")));
  ASSERT_OK(fs_->Rename(P("t"), P("b")));
  EXPECT_EQ(OnDisk(P("a")), "B");
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("a", "b"));
  EXPECT_EQ(OnDisk(P("a")), "A");
  EXPECT_EQ(OnDisk(P("b")), "B");
}

TEST_P(FaultInjectionTest, RemoveWithoutSyncDirIsRestoredWithDurableContent) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("r")));
  ASSERT_OK(f->Append("synced"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append("-unsynced"));
  ASSERT_OK(f->Close());
  ASSERT_OK(fs_->RemoveFile(P("r")));
  WriteDurable(P("gone"), "g");
  ASSERT_OK(fs_->RemoveFile(P("gone")));
  ASSERT_OK(fs_->SyncDir(dir_));  // this remove is durable
  WriteDurable(P("also"), "x");
  ASSERT_OK(fs_->RemoveFile(P("also")));  // this one is not
  EXPECT_THAT(Names(dir_), IsEmpty());

  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("also"));
  EXPECT_EQ(OnDisk(P("also")), "x");
  EXPECT_EQ(OnDisk(P("r")), "<missing>");  // removed before the last SyncDir
}

TEST_P(FaultInjectionTest, RemoveOfDurableFileIsRestored) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("r")));
  ASSERT_OK(f->Append("synced"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append("-unsynced"));
  ASSERT_OK(fs_->RemoveFile(P("r")));
  ASSERT_OK(f->Append("-written-after-unlink"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("r")), "synced");
}

TEST_P(FaultInjectionTest, FilesThatExistedBeforeTheWrapperAreDurable) {
  // Written straight to the base: the wrapper has never seen them.
  {
    ASSERT_OK_AND_ASSIGN(auto f, base_->NewWritableFile(P("pre")));
    ASSERT_OK(f->Append("base-data"));
    ASSERT_OK(f->Close());
    ASSERT_OK_AND_ASSIGN(auto g, base_->NewWritableFile(P("pre2")));
    ASSERT_OK(g->Append("two"));
    ASSERT_OK(g->Close());
    ASSERT_OK(base_->CreateDir(P("sub")));
  }
  WritableFileOptions o;
  o.disposition = D::kOpenExisting;
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("pre"), o));
  ASSERT_OK(f->Append("XXXX"));
  ASSERT_OK(fs_->RemoveFile(P("pre2")));
  ASSERT_OK(fs_->Rename(P("sub"), P("sub2")));
  EXPECT_THAT(Names(dir_), ElementsAre("pre", "sub2"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("pre", "pre2", "sub"));
  EXPECT_EQ(OnDisk(P("pre")), "base-data");
  EXPECT_EQ(OnDisk(P("pre2")), "two");
}

// ---------------------------------------------------------------------------
// Power loss: directories.

TEST_P(FaultInjectionTest, NewDirectoryNeedsParentSync) {
  ASSERT_OK(fs_->CreateDir(P("d")));
  WriteDurable(P("d/f"), "data");  // syncs d itself, not its parent
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), IsEmpty());
}

TEST_P(FaultInjectionTest, DirectoryEntriesNeedTheirOwnSync) {
  ASSERT_OK(fs_->CreateDir(P("d")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("d/f"), "data", /*sync_dir=*/false);
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("d"));
  EXPECT_THAT(Names(P("d")), IsEmpty());
}

TEST_P(FaultInjectionTest, DirectoryRenameLikeWalCreate) {
  // etcd's wal.Create: fill wal.tmp, rename it to wal, sync the parent.
  ASSERT_OK(fs_->CreateDir(P("wal.tmp")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("wal.tmp/0.wal"), "segment");
  ASSERT_OK(fs_->Rename(P("wal.tmp"), P("wal")));
  EXPECT_EQ(OnDisk(P("wal/0.wal")), "segment");

  // Power loss before the parent sync: the rename is undone, with contents.
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("wal.tmp"));
  EXPECT_EQ(OnDisk(P("wal.tmp/0.wal")), "segment");

  // Again, with the parent sync: the new name holds.
  ASSERT_OK(fs_->Rename(P("wal.tmp"), P("wal")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("wal/1.wal")));  // not dir-synced
  ASSERT_OK(f->Append("x"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("wal"));
  EXPECT_THAT(Names(P("wal")), ElementsAre("0.wal"));
  EXPECT_EQ(OnDisk(P("wal/0.wal")), "segment");
}

TEST_P(FaultInjectionTest, DirectoryRenameOntoEmptyDirectoryIsReverted) {
  ASSERT_OK(fs_->CreateDir(P("a")));
  ASSERT_OK(fs_->CreateDir(P("b")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("a/f"), "F");
  ASSERT_OK(fs_->Rename(P("a"), P("b")));
  EXPECT_THAT(Names(dir_), ElementsAre("b"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("a", "b"));
  EXPECT_THAT(Names(P("a")), ElementsAre("f"));
  EXPECT_THAT(Names(P("b")), IsEmpty());
}

TEST_P(FaultInjectionTest, RemoveDirWithoutSyncIsRestoredWithItsEntries) {
  ASSERT_OK(fs_->CreateDir(P("d")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("d/f"), "F");
  ASSERT_OK(fs_->RemoveFile(P("d/f")));
  ASSERT_OK(fs_->RemoveDir(P("d")));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("d"));
  EXPECT_EQ(OnDisk(P("d/f")), "F");

  ASSERT_OK(fs_->RemoveFile(P("d/f")));
  ASSERT_OK(fs_->RemoveDir(P("d")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), IsEmpty());
}

TEST_P(FaultInjectionTest, CrossDirectoryRename) {
  ASSERT_OK(fs_->CreateDir(P("d1")));
  ASSERT_OK(fs_->CreateDir(P("d2")));
  ASSERT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("d1/f"), "F");

  ASSERT_OK(fs_->Rename(P("d1/f"), P("d2/f")));
  ASSERT_OK(fs_->DropUnsyncedData());  // neither side synced
  EXPECT_THAT(Names(P("d1")), ElementsAre("f"));
  EXPECT_THAT(Names(P("d2")), IsEmpty());

  ASSERT_OK(fs_->Rename(P("d1/f"), P("d2/f")));
  ASSERT_OK(fs_->SyncDir(P("d2")));  // the destination makes it durable
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(P("d1")), IsEmpty());
  EXPECT_THAT(Names(P("d2")), ElementsAre("f"));
  EXPECT_EQ(OnDisk(P("d2/f")), "F");
}

TEST_P(FaultInjectionTest, WriteFileAtomicallySurvivesPowerLoss) {
  ASSERT_OK(WriteFileAtomically(fs_.get(), P("cfg"), "v1"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("cfg")), "v1");
  ASSERT_OK(WriteFileAtomically(fs_.get(), P("cfg"), "v2"));
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("cfg"));
  EXPECT_EQ(OnDisk(P("cfg")), "v2");
}

TEST_P(FaultInjectionTest, PowerLossInvalidatesFilesAndReleasesLocks) {
  WriteDurable(P("LOCK"), "");
  WriteDurable(P("data"), "0123456789");
  ASSERT_OK_AND_ASSIGN(auto lock, fs_->LockFile(P("LOCK")));
  ASSERT_OK_AND_ASSIGN(auto seq, fs_->NewSequentialFile(P("data")));
  ASSERT_OK_AND_ASSIGN(auto ra, fs_->NewRandomAccessFile(P("data")));
  ASSERT_OK_AND_ASSIGN(auto w, fs_->NewWritableFile(P("w")));

  ASSERT_OK(fs_->DropUnsyncedData());
  char buf[4];
  EXPECT_THAT(seq->Read(absl::MakeSpan(buf)), StatusIs(Code::kFailedPrecondition, HasSubstr("power lost")));
  EXPECT_THAT(seq->Skip(1), StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(ra->ReadAt(0, absl::MakeSpan(buf)), StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(ra->Size(), StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(w->Append("x"), StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(w->Flush(), StatusIs(Code::kFailedPrecondition));
  // The "rebooted" process can take the lock even though the old FileLock
  // object still exists; destroying the old one later is harmless.
  ASSERT_OK_AND_ASSIGN(auto relock, fs_->LockFile(P("LOCK")));
  lock.reset();
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(Code::kUnavailable));
  ASSERT_OK_AND_ASSIGN(auto seq2, fs_->NewSequentialFile(P("data")));
  ASSERT_OK_AND_ASSIGN(size_t n, seq2->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "0123");
}

TEST_P(FaultInjectionTest, RepeatedPowerLossIsStable) {
  WriteDurable(P("a"), "A");
  ASSERT_OK(fs_->CreateDir(P("d")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(fs_->DropUnsyncedData());
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), ElementsAre("a", "d"));
  // Work after a power loss is modelled just as before it.
  const WritableFileOptions at1{.disposition = D::kOpenExisting, .offset = 1};
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("a"), at1));
  ASSERT_OK(f->Append("B"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Append("C"));
  WriteDurable(P("d/x"), "x", /*sync_dir=*/false);
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("a")), "AB");
  EXPECT_THAT(Names(P("d")), IsEmpty());
}

// ---------------------------------------------------------------------------
// fsync EIO.

TEST_P(FaultInjectionTest, SyncFailureIsStickyAndNothingBecomesDurable) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("a"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));

  fs_->FailSyncs(kEio);
  ASSERT_OK(f->Append("b"));
  EXPECT_THAT(f->Sync(), StatusIs(Code::kInternal, HasSubstr("injected EIO")));
  EXPECT_THAT(fs_->SyncDir(dir_), StatusIs(Code::kInternal, HasSubstr("injected EIO")));
  fs_->ClearSyncFailures();
  // The failed file stays failed: a retried fsync proves nothing.
  EXPECT_THAT(f->Sync(), StatusIs(Code::kInternal, HasSubstr("injected EIO")));
  EXPECT_THAT(f->Append("c"), StatusIs(Code::kInternal));
  EXPECT_THAT(f->Close(), StatusIs(Code::kInternal));
  // Other files and directories sync again.
  EXPECT_OK(fs_->SyncDir(dir_));
  WriteDurable(P("g"), "g");

  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "a");
  EXPECT_EQ(OnDisk(P("g")), "g");
}

TEST_P(FaultInjectionTest, FailedDirSyncLeavesNamesVolatile) {
  fs_->FailSyncs(kEio);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  EXPECT_THAT(fs_->SyncDir(dir_), StatusIs(Code::kInternal));
  fs_->ClearSyncFailures();
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_THAT(Names(dir_), IsEmpty());
}

// ---------------------------------------------------------------------------
// ENOSPC.

TEST_P(FaultInjectionTest, WriteLimitCutsTheCrossingWriteAndSticks) {
  fs_->SetWriteLimit(10);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("12345678"));
  EXPECT_EQ(fs_->bytes_written(), 8u);
  EXPECT_THAT(f->Append("ABCDEF"),
              StatusIs(Code::kResourceExhausted, HasSubstr("No space left on device")));
  EXPECT_EQ(OnDisk(P("f")), "12345678AB");  // the prefix that fits
  EXPECT_EQ(fs_->bytes_written(), 10u);
  EXPECT_EQ(f->Position(), 10u);
  fs_->ClearWriteLimit();
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kResourceExhausted));  // sticky
  EXPECT_THAT(f->Sync(), StatusIs(Code::kResourceExhausted));
  EXPECT_EQ(OnDisk(P("f")), "12345678AB");
  WriteDurable(P("g"), "fine again");
  EXPECT_EQ(OnDisk(P("g")), "fine again");
}

TEST_P(FaultInjectionTest, WriteLimitIsExact) {
  fs_->SetWriteLimit(fs_->bytes_written() + 4);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("abcd"));  // reaches the limit: fine
  ASSERT_OK(f->Append(""));
  EXPECT_THAT(f->Append("e"), StatusIs(Code::kResourceExhausted));
  EXPECT_EQ(OnDisk(P("f")), "abcd");
}

TEST_P(FaultInjectionTest, FallocateCountsTowardsTheWriteLimit) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("xx"));
  fs_->SetWriteLimit(fs_->bytes_written() + 100);
  EXPECT_THAT(f->Fallocate(0, 103), StatusIs(Code::kResourceExhausted));  // grows by 101
  EXPECT_EQ(*base_->GetFileSize(P("f")), 2u);  // nothing reserved
  ASSERT_OK_AND_ASSIGN(auto g, fs_->NewWritableFile(P("g")));
  ASSERT_OK(g->Fallocate(0, 60));
  ASSERT_OK(g->Fallocate(0, 60));  // no growth, no cost
  ASSERT_OK(g->Append(std::string(40, 'y')));  // 60 + 40 = the limit
  EXPECT_THAT(g->Append("z"), StatusIs(Code::kResourceExhausted));
}

// ---------------------------------------------------------------------------
// Torn writes and crashes.

TEST_P(FaultInjectionTest, TornWriteLeavesExactlyThePrefixAndCrashes) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("abc"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_->SyncDir(dir_));
  fs_->TearWriteAt(fs_->bytes_appended() + 4);
  ASSERT_OK(f->Append("de"));
  EXPECT_THAT(f->Append("fghij"), StatusIs(Code::kUnavailable, HasSubstr("injected crash")));
  EXPECT_EQ(OnDisk(P("f")), "abcdefg");  // exactly 4 bytes after the arm point
  EXPECT_EQ(fs_->bytes_appended(), 7u);
  EXPECT_TRUE(fs_->crashed());
  EXPECT_FALSE(fs_->active());
  // The crashed process can do nothing.
  EXPECT_THAT(fs_->FileExists(P("f")), StatusIs(Code::kUnavailable));
  EXPECT_THAT(fs_->ListDir(dir_), StatusIs(Code::kUnavailable));
  EXPECT_THAT(fs_->NewWritableFile(P("g")), StatusIs(Code::kUnavailable));
  EXPECT_THAT(fs_->NewSequentialFile(P("f")), StatusIs(Code::kUnavailable));
  EXPECT_THAT(f->Sync(), StatusIs(Code::kUnavailable));

  // Power loss at that point: the torn prefix was never synced.
  ASSERT_OK(fs_->DropUnsyncedData());
  EXPECT_EQ(OnDisk(P("f")), "abc");
  fs_->Reactivate();
  EXPECT_FALSE(fs_->crashed());
  EXPECT_EQ(*ReadFileToString(fs_.get(), P("f")), "abc");
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kUnavailable));  // its own sticky error
}

TEST_P(FaultInjectionTest, TornPrefixCanBeKeptOnDisk) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(f->Append("abc"));
  ASSERT_OK(f->Sync());
  ASSERT_OK_AND_ASSIGN(auto other, fs_->NewWritableFile(P("other")));
  ASSERT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(other->Append("unsynced"));
  fs_->TearWriteAt(fs_->bytes_appended() + 2);
  EXPECT_THAT(f->Append("defg"), StatusIs(Code::kUnavailable));
  ASSERT_OK(fs_->DropUnsyncedData(/*keep_torn_prefix=*/true));
  EXPECT_EQ(OnDisk(P("f")), "abcde");
  EXPECT_EQ(OnDisk(P("other")), "");  // only the torn file is kept
}

// A torn write whose file size reached the disk but whose last sectors did
// not: the prefix is kept and the last sector(s) the write touched read as
// zeros; bytes before the write are never touched.
TEST_P(FaultInjectionTest, TornWriteWithItsLastSectorsZeroed) {
  constexpr uint64_t kSector = FaultInjectionFileSystem::kSectorSize;
  const std::string old_bytes(kSector + 100, 'o');  // ends mid-sector
  const std::string write(3 * kSector, 'w');
  for (uint64_t sectors : {1, 2, 9}) {
    SCOPED_TRACE(sectors);
    fs_->RemoveFile(P("f")).IgnoreError();
    WriteDurable(P("f"), old_bytes);
    WritableFileOptions o;
    o.disposition = D::kOpenExisting;
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f"), o));
    ASSERT_OK(f->Seek(old_bytes.size()));
    fs_->CrashAfterOps(0, /*tear_fraction=*/1.0);  // all of it reaches the page cache
    EXPECT_THAT(f->Append(write), StatusIs(Code::kUnavailable, HasSubstr("injected crash")));
    ASSERT_TRUE(fs_->torn_write().has_value());
    EXPECT_EQ(fs_->torn_write()->begin, old_bytes.size());
    EXPECT_EQ(fs_->torn_write()->torn_end, old_bytes.size() + write.size());
    EXPECT_EQ(OnDisk(P("f")), old_bytes + write);
    ASSERT_OK(fs_->DropUnsyncedData(FaultInjectionFileSystem::TornWrite::kLastSectorsZeroed,
                                    sectors));
    fs_->Reactivate();
    // File end = old + 3 sectors = 4 sectors + 100 bytes: the last sector
    // holds 100 bytes of the write, the ones before it whole sectors.
    const uint64_t end = old_bytes.size() + write.size();
    const uint64_t last_sector = (end - 1) / kSector * kSector;
    const uint64_t back = (sectors - 1) * kSector;
    const uint64_t zero_from =
        std::max<uint64_t>(old_bytes.size(), last_sector >= back ? last_sector - back : 0);
    const std::string want = old_bytes + std::string(zero_from - old_bytes.size(), 'w') +
                             std::string(end - zero_from, '\0');
    EXPECT_EQ(OnDisk(P("f")), want);
    EXPECT_FALSE(fs_->torn_write().has_value());
  }
}

// CrashAfterOps(n, fraction) tears the n-th op when it is an Append, at a
// sector boundary; any other op crashes before reaching the base, as
// CrashAfterOps(n) does.
TEST_P(FaultInjectionTest, CrashAfterOpsCanTearTheAppendItLandsOn) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(fs_->SyncDir(dir_));
  const std::string a(600, 'a');
  ASSERT_OK(f->Append(a));
  ASSERT_OK(f->Sync());
  fs_->CrashAfterOps(1, 0.5);
  ASSERT_OK(f->Append("de"));
  // Half of 1000 bytes from offset 602 ends at 1102: cut back to 1024.
  EXPECT_THAT(f->Append(std::string(1000, 'b')), StatusIs(Code::kUnavailable));
  EXPECT_EQ(OnDisk(P("f")), a + "de" + std::string(1024 - 602, 'b'));
  ASSERT_TRUE(fs_->crash_point().has_value());
  EXPECT_EQ(fs_->crash_point()->op, "append");
  EXPECT_EQ(fs_->crash_point()->path, P("f"));
  EXPECT_TRUE(fs_->crash_point()->torn);
  ASSERT_OK(fs_->DropUnsyncedData(FaultInjectionFileSystem::TornWrite::kPrefixKept));
  EXPECT_EQ(OnDisk(P("f")), a + "de" + std::string(1024 - 602, 'b'));
  fs_->Reactivate();

  // Within one sector: nothing of it reaches the base.
  ASSERT_OK_AND_ASSIGN(auto h, fs_->NewWritableFile(P("h")));
  fs_->CrashAfterOps(0, 0.5);
  EXPECT_THAT(h->Append("xyz"), StatusIs(Code::kUnavailable));
  EXPECT_EQ(OnDisk(P("h")), "");
  fs_->Reactivate();

  ASSERT_OK_AND_ASSIGN(auto g, fs_->NewWritableFile(P("g")));
  fs_->CrashAfterOps(0, 0.5);
  EXPECT_THAT(g->Sync(), StatusIs(Code::kUnavailable));  // not an Append: nothing torn
  ASSERT_TRUE(fs_->crash_point().has_value());
  EXPECT_EQ(fs_->crash_point()->op, "sync");
  EXPECT_FALSE(fs_->crash_point()->torn);
  fs_->Reactivate();
  EXPECT_FALSE(fs_->crash_point().has_value());
}

// A transient EIO fails exactly one sync; the ones after it succeed. Any
// later sync of the file or directory that failed, in the same process,
// counts as a retry; a new process (after a crash) starts clean.
TEST_P(FaultInjectionTest, OneShotSyncFailureAndRetriesAreCounted) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK_AND_ASSIGN(auto g, fs_->NewWritableFile(P("g")));
  ASSERT_OK(f->Append("a"));
  fs_->FailSyncAfter(1, kEio);
  ASSERT_OK(g->Sync());
  EXPECT_THAT(f->Sync(), StatusIs(kEio.code()));
  EXPECT_EQ(fs_->sync_retries(), 0);
  ASSERT_OK(g->Sync());  // another file: not a retry, and the EIO was once
  EXPECT_EQ(fs_->sync_retries(), 0);
  EXPECT_THAT(f->Sync(), StatusIs(kEio.code()));  // sticky, and a retry
  EXPECT_EQ(fs_->sync_retries(), 1);
  {
    // Reopening the file to fsync it again (the fsyncgate pattern) is a
    // retry too, and it "succeeds".
    WritableFileOptions o;
    o.disposition = D::kOpenExisting;
    ASSERT_OK_AND_ASSIGN(auto again, fs_->NewWritableFile(P("f"), o));
    EXPECT_OK(again->Sync());
    EXPECT_EQ(fs_->sync_retries(), 2);
  }
  fs_->FailSyncAfter(0, kEio);
  EXPECT_THAT(fs_->SyncDir(dir_), StatusIs(kEio.code()));
  EXPECT_OK(fs_->SyncDir(dir_));
  EXPECT_EQ(fs_->sync_retries(), 3);
  // A restarted process may sync what the dead one could not.
  fs_->InvalidateOpenFiles();
  const int64_t before = fs_->syncs();
  EXPECT_OK(fs_->SyncDir(dir_));
  WritableFileOptions o;
  o.disposition = D::kOpenExisting;
  ASSERT_OK_AND_ASSIGN(auto fresh, fs_->NewWritableFile(P("f"), o));
  EXPECT_OK(fresh->Sync());
  EXPECT_EQ(fs_->sync_retries(), 3);
  EXPECT_EQ(fs_->syncs(), before + 2);
  fs_->ResetState();
  EXPECT_EQ(fs_->sync_retries(), 0);
}

TEST_P(FaultInjectionTest, TearAtAWriteBoundaryWritesNothingOfTheNextAppend) {
  fs_->TearWriteAt(4);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("abcd"));  // reaches 4 without crossing
  EXPECT_TRUE(fs_->active());
  EXPECT_THAT(f->Append("e"), StatusIs(Code::kUnavailable));
  EXPECT_EQ(OnDisk(P("f")), "abcd");
}

TEST_P(FaultInjectionTest, CrashWithoutPowerLossKeepsWrittenData) {
  WriteDurable(P("LOCK"), "");
  ASSERT_OK_AND_ASSIGN(auto lock, fs_->LockFile(P("LOCK")));
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("page cache"));
  ASSERT_OK_AND_ASSIGN(auto idle, fs_->NewWritableFile(P("idle")));
  fs_->CrashAfterOps(0);
  EXPECT_THAT(f->Append("!"), StatusIs(Code::kUnavailable, HasSubstr("injected crash")));
  fs_->Reactivate();  // the process restarts; the OS kept its page cache
  EXPECT_EQ(*ReadFileToString(fs_.get(), P("f")), "page cache");
  EXPECT_THAT(idle->Append("x"), StatusIs(Code::kFailedPrecondition, HasSubstr("process crashed")));
  ASSERT_OK_AND_ASSIGN(auto relock, fs_->LockFile(P("LOCK")));  // the dead process's lock is gone
}

TEST_P(FaultInjectionTest, CrashAfterOpsStopsAtOpN) {
  fs_->CrashAfterOps(3);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));  // 1
  ASSERT_OK(f->Append("one"));                                 // 2
  ASSERT_OK(f->Flush());                                       // not counted
  ASSERT_OK(f->Seek(3));                                       // not counted
  EXPECT_OK(fs_->FileExists(P("f")));                          // reads are not counted
  ASSERT_OK(f->Sync());                                        // 3
  EXPECT_EQ(fs_->mutating_ops(), 3);
  EXPECT_THAT(f->Append("two"), StatusIs(Code::kUnavailable, HasSubstr("injected crash")));
  EXPECT_EQ(fs_->mutating_ops(), 3);
  EXPECT_TRUE(fs_->crashed());
  EXPECT_EQ(OnDisk(P("f")), "one");  // op 4 never reached the base
  EXPECT_THAT(fs_->SyncDir(dir_), StatusIs(Code::kUnavailable));
}

TEST_P(FaultInjectionTest, MutatingOpsAreCountedOneEach) {
  int64_t n = fs_->mutating_ops();
  auto step = [&](absl::Status s) {
    EXPECT_OK(s);
    return fs_->mutating_ops() - n++;
  };
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  EXPECT_EQ(fs_->mutating_ops(), ++n);
  EXPECT_EQ(step(f->Append("x")), 1);
  EXPECT_EQ(step(f->Sync()), 1);
  EXPECT_EQ(step(f->Fallocate(0, 10)), 1);
  EXPECT_EQ(step(f->Truncate(1)), 1);
  EXPECT_EQ(step(f->Close()), 1);
  EXPECT_EQ(step(fs_->CreateDir(P("d"))), 1);
  EXPECT_EQ(step(fs_->Rename(P("f"), P("d/f"))), 1);
  EXPECT_EQ(step(fs_->SyncDir(P("d"))), 1);
  EXPECT_EQ(step(fs_->RemoveFile(P("d/f"))), 1);
  EXPECT_EQ(step(fs_->RemoveDir(P("d"))), 1);
  // Reads and locks are free.
  ASSERT_OK(fs_->ListDir(dir_).status());
  ASSERT_OK(WriteFileAtomically(base_, P("L"), ""));
  ASSERT_OK(fs_->LockFile(P("L")).status());
  ASSERT_OK(fs_->NewRandomAccessFile(P("L")).status());
  EXPECT_EQ(fs_->mutating_ops(), n);
}

// A crash at every write step of WriteFileAtomically, each followed by a
// power loss (the new contents must never be half there) or by a plain
// restart (the page cache survives).
TEST_P(FaultInjectionTest, CrashAtEveryStepOfAnAtomicWrite) {
  const std::string cfg = P("cfg");
  int64_t steps = -1;
  for (bool power_loss : {true, false}) {
    for (int64_t n = 0;; ++n) {
      ASSERT_LT(n, 100) << "never finished";
      fs_->ResetState();
      ASSERT_OK(WriteFileAtomically(fs_.get(), cfg, "old"));
      fs_->CrashAfterOps(n);
      absl::Status s = WriteFileAtomically(fs_.get(), cfg, "new contents");
      if (s.ok()) {
        EXPECT_FALSE(fs_->crashed());
        if (steps < 0) steps = n;
        EXPECT_EQ(n, steps);
        fs_->CrashAfterOps(-1);
        break;
      }
      EXPECT_THAT(s, StatusIs(Code::kUnavailable)) << "n=" << n;
      EXPECT_TRUE(fs_->crashed());
      if (power_loss) {
        ASSERT_OK(fs_->DropUnsyncedData());
      }
      fs_->Reactivate();
      const std::string got = *ReadFileToString(fs_.get(), cfg);
      // Before the SyncDir the rename may or may not have happened in the
      // page cache; after a power loss it has not.
      if (power_loss) {
        EXPECT_EQ(got, "old") << "n=" << n;
        EXPECT_THAT(fs_->FileExists(cfg + ".tmp"), StatusIs(Code::kNotFound)) << "n=" << n;
      } else {
        EXPECT_THAT(got, AnyOf("old", "new contents")) << "n=" << n;
      }
      if (fs_->FileExists(cfg + ".tmp").ok()) {
        ASSERT_OK(fs_->RemoveFile(cfg + ".tmp"));
      }
    }
  }
  // RemoveFile (a stale temp), NewWritableFile, Append, Sync, Close,
  // Rename, SyncDir.
  EXPECT_EQ(steps, 7);
}

// ---------------------------------------------------------------------------
// Inactive.

TEST_P(FaultInjectionTest, InactiveFailsEverythingWithTheGivenError) {
  WriteDurable(P("f"), "data");
  ASSERT_OK_AND_ASSIGN(auto seq, fs_->NewSequentialFile(P("f")));
  ASSERT_OK_AND_ASSIGN(auto ra, fs_->NewRandomAccessFile(P("f")));
  ASSERT_OK_AND_ASSIGN(auto w, fs_->NewWritableFile(P("w")));
  ASSERT_OK_AND_ASSIGN(auto idle, fs_->NewWritableFile(P("idle")));
  const int64_t ops = fs_->mutating_ops();

  fs_->SetActive(false, absl::AbortedError("disk unplugged"));
  EXPECT_FALSE(fs_->active());
  const auto down = StatusIs(Code::kAborted, HasSubstr("disk unplugged"));
  char buf[4];
  EXPECT_THAT(seq->Read(absl::MakeSpan(buf)), down);
  EXPECT_THAT(seq->Skip(1), down);
  EXPECT_THAT(ra->ReadAt(0, absl::MakeSpan(buf)), down);
  EXPECT_THAT(ra->Size(), down);
  EXPECT_THAT(w->Append("x"), down);
  EXPECT_THAT(fs_->NewSequentialFile(P("f")), down);
  EXPECT_THAT(fs_->NewRandomAccessFile(P("f")), down);
  EXPECT_THAT(fs_->NewWritableFile(P("g")), down);
  EXPECT_THAT(fs_->FileExists(P("f")), down);
  EXPECT_THAT(fs_->GetFileSize(P("f")), down);
  EXPECT_THAT(fs_->ListDir(dir_), down);
  EXPECT_THAT(fs_->CreateDir(P("d")), down);
  EXPECT_THAT(fs_->RemoveDir(P("d")), down);
  EXPECT_THAT(fs_->RemoveFile(P("f")), down);
  EXPECT_THAT(fs_->Rename(P("f"), P("g")), down);
  EXPECT_THAT(fs_->SyncDir(dir_), down);
  EXPECT_THAT(fs_->LockFile(P("f")), down);
  EXPECT_EQ(fs_->mutating_ops(), ops);
  EXPECT_THAT(Names(dir_), ElementsAre("f", "idle", "w"));  // nothing reached the base
  EXPECT_EQ(OnDisk(P("f")), "data");

  fs_->SetActive(true);
  EXPECT_OK(fs_->FileExists(P("f")));
  ASSERT_OK_AND_ASSIGN(size_t n, seq->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "data");
  EXPECT_OK(idle->Append("fine"));  // untouched while down: still usable
  EXPECT_THAT(w->Append("y"), down);  // failed while down: sticky
}

TEST_P(FaultInjectionTest, DefaultInactiveErrorIsUnavailable) {
  fs_->SetActive(false);
  EXPECT_THAT(fs_->FileExists(dir_), StatusIs(Code::kUnavailable));
}

TEST_P(FaultInjectionTest, ResetStateClearsKnobsAndCounters) {
  fs_->FailSyncs(kEio);
  fs_->SetWriteLimit(0);
  fs_->CrashAfterOps(1);
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kUnavailable));
  fs_->ResetState();
  EXPECT_EQ(fs_->mutating_ops(), 0);
  EXPECT_EQ(fs_->bytes_written(), 0u);
  EXPECT_TRUE(fs_->active());
  WriteDurable(P("g"), "ok");
  EXPECT_EQ(fs_->bytes_appended(), 2u);
}

TEST_P(FaultInjectionTest, InvalidateOpenFilesModelsAProcessCrash) {
  WriteDurable(P("LOCK"), "");
  ASSERT_OK_AND_ASSIGN(auto lock, fs_->LockFile(P("LOCK")));
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));
  ASSERT_OK(f->Append("kept"));
  fs_->InvalidateOpenFiles();
  EXPECT_THAT(f->Append("x"), StatusIs(Code::kFailedPrecondition, HasSubstr("process crashed")));
  EXPECT_OK(fs_->LockFile(P("LOCK")).status());
  EXPECT_EQ(OnDisk(P("f")), "kept");
}

// ---------------------------------------------------------------------------
// Cost.

TEST(FaultInjectionCostTest, SyncCostsWhatWasWrittenNotTheFileSize) {
  auto base = NewMemFileSystem();
  FaultInjectionFileSystem fs(base.get());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto f, fs.NewWritableFile("/seg"));
  ASSERT_OK(f->Fallocate(0, 64 << 20));  // an etcd-sized segment
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs.SyncDir("/"));
  const std::string record(512, 'r');
  for (int i = 0; i < 4000; ++i) {  // 2 MiB in 4000 synced records
    ASSERT_OK(f->Append(record));
    ASSERT_OK(f->Sync());
  }
  ASSERT_OK(f->Append("unsynced"));
  ASSERT_OK(fs.DropUnsyncedData());
  // (Cost is bounded by the test's ctest timeout, not a timed assertion.)
  RecordProperty("seconds", std::to_string(std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - start).count()));
  ASSERT_OK_AND_ASSIGN(auto r, base->NewRandomAccessFile("/seg"));
  EXPECT_EQ(*r->Size(), uint64_t{64} << 20);
  std::string buf(16, '\0');
  ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(4000 * 512, absl::MakeSpan(buf)));
  EXPECT_EQ(buf.substr(0, n), std::string(16, '\0'));
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(4000 * 512 - 4, absl::MakeSpan(buf)));
  EXPECT_EQ(buf.substr(0, 4), "rrrr");
}

}  // namespace
}  // namespace sealwal::env
