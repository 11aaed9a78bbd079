// The in-memory FileSystem. The behaviour checks run on both the mem FS and
// the POSIX FS (in a temp dir) so that the two cannot drift apart; the
// mem-only tests cover its path handling, limits, threads and speed.
#include "sealwal/env/mem_file_system.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/env/file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace sealwal::env {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using D = WritableFileOptions::Disposition;

// ---------------------------------------------------------------------------
// Behaviour shared with POSIX.

enum class Impl { kMem, kPosix };

class FileSystemBehaviourTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kMem) {
      owned_ = NewMemFileSystem();
      fs_ = owned_.get();
      dir_ = "/test";
      ASSERT_OK(fs_->CreateDir(dir_));
    } else {
      fs_ = DefaultFileSystem();
      std::string tmpl = (std::filesystem::temp_directory_path() / "sealwal_memfs_XXXXXX").string();
      ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
      dir_ = tmpl;
    }
  }
  void TearDown() override {
    if (GetParam() == Impl::kPosix) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string P(const std::string& name) const { return JoinPath(dir_, name); }

  void Write(const std::string& path, const std::string& data) {
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(path));
    ASSERT_OK(f->Append(data));
    ASSERT_OK(f->Close());
  }
  std::string Read(const std::string& path) {
    auto s = ReadFileToString(fs_, path);
    EXPECT_OK(s.status());
    return s.ok() ? *s : "<error>";
  }

  std::unique_ptr<FileSystem> owned_;
  FileSystem* fs_ = nullptr;
  std::string dir_;
};

INSTANTIATE_TEST_SUITE_P(MemAndPosix, FileSystemBehaviourTest,
                         ::testing::Values(Impl::kMem, Impl::kPosix),
                         [](const ::testing::TestParamInfo<Impl>& info) {
                           return info.param == Impl::kMem ? "Mem" : "Posix";
                         });

TEST_P(FileSystemBehaviourTest, WriteThenRead) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("a")));
  ASSERT_OK(f->Append("hello"));
  ASSERT_OK(f->Append(""));
  ASSERT_OK(f->Append(", world"));
  EXPECT_EQ(f->Position(), 12u);
  ASSERT_OK(f->Flush());
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("a")), "hello, world");
  ASSERT_OK_AND_ASSIGN(uint64_t size, fs_->GetFileSize(P("a")));
  EXPECT_EQ(size, 12u);

  ASSERT_OK_AND_ASSIGN(auto s, fs_->NewSequentialFile(P("a")));
  char buf[5];
  ASSERT_OK_AND_ASSIGN(size_t n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "hello");
  ASSERT_OK(s->Skip(2));
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "world");
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
  ASSERT_OK(s->Skip(1000));
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
}

TEST_P(FileSystemBehaviourTest, ReadAt) {
  Write(P("r"), "0123456789");
  ASSERT_OK_AND_ASSIGN(auto r, fs_->NewRandomAccessFile(P("r")));
  EXPECT_EQ(*r->Size(), 10u);
  char buf[4];
  ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(3, absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "3456");
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(8, absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "89");
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(99, absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
}

TEST_P(FileSystemBehaviourTest, ReadersSeeLaterWritesAndSurviveUnlink) {
  ASSERT_OK_AND_ASSIGN(auto w, fs_->NewWritableFile(P("live")));
  ASSERT_OK(w->Append("abc"));
  ASSERT_OK_AND_ASSIGN(auto r, fs_->NewRandomAccessFile(P("live")));
  ASSERT_OK(w->Append("def"));
  EXPECT_EQ(*r->Size(), 6u);
  ASSERT_OK(fs_->RemoveFile(P("live")));
  ASSERT_OK(w->Append("g"));  // the inode lives on
  char buf[16];
  ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(0, absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "abcdefg");
  EXPECT_THAT(fs_->FileExists(P("live")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(FileSystemBehaviourTest, Dispositions) {
  Write(P("f"), "abcdef");
  WritableFileOptions o;
  o.disposition = D::kOpenExisting;
  o.offset = 2;
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f"), o));
    EXPECT_EQ(f->Position(), 2u);
    ASSERT_OK(f->Append("XY"));
    ASSERT_OK(f->Close());
  }
  EXPECT_EQ(Read(P("f")), "abXYef");
  EXPECT_THAT(fs_->NewWritableFile(P("missing"), o), StatusIs(absl::StatusCode::kNotFound));

  WritableFileOptions excl;
  excl.disposition = D::kCreateExclusive;
  EXPECT_THAT(fs_->NewWritableFile(P("f"), excl), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Read(P("f")), "abXYef");
  ASSERT_OK(fs_->NewWritableFile(P("g"), excl).status());
  EXPECT_EQ(Read(P("g")), "");
  ASSERT_OK(fs_->NewWritableFile(P("f")).status());  // kCreateTruncate
  EXPECT_EQ(Read(P("f")), "");
}

TEST_P(FileSystemBehaviourTest, FallocateTruncateSeek) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("p")));
  ASSERT_OK(f->Append("ab"));
  ASSERT_OK(f->Fallocate(0, 4096));
  EXPECT_EQ(*fs_->GetFileSize(P("p")), 4096u);
  EXPECT_EQ(f->Position(), 2u);
  ASSERT_OK(f->Fallocate(0, 10));  // never shrinks
  EXPECT_EQ(*fs_->GetFileSize(P("p")), 4096u);
  ASSERT_OK(f->Append("cd"));
  EXPECT_EQ(Read(P("p")), "abcd" + std::string(4092, '\0'));

  ASSERT_OK(f->Truncate(3));
  EXPECT_EQ(f->Position(), 3u);  // clamped
  ASSERT_OK(f->Append("Z"));
  ASSERT_OK(f->Seek(0));
  ASSERT_OK(f->Append("A"));
  ASSERT_OK(f->Seek(6));  // a hole of zeros
  ASSERT_OK(f->Append("!"));
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("p")), std::string("AbcZ\0\0!", 7));
}

TEST_P(FileSystemBehaviourTest, ClosedFileIsStickyFailed) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("c")));
  ASSERT_OK(f->Close());
  EXPECT_THAT(f->Append("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->Sync(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->Fallocate(0, 1), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->Truncate(0), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(f->Close().ok());
}

TEST_P(FileSystemBehaviourTest, ListDirSorted) {
  for (const char* n : {"b", "a", "c.wal", "0", "B"}) Write(P(n), n);
  ASSERT_OK(fs_->CreateDir(P("sub")));
  ASSERT_OK_AND_ASSIGN(auto names, fs_->ListDir(dir_));
  EXPECT_THAT(names, ElementsAre("0", "B", "a", "b", "c.wal", "sub"));
  EXPECT_THAT(*fs_->ListDir(P("sub")), IsEmpty());
  EXPECT_THAT(fs_->ListDir(P("nope")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->ListDir(P("a")), StatusIs(absl::StatusCode::kNotFound));  // ENOTDIR
}

TEST_P(FileSystemBehaviourTest, Directories) {
  ASSERT_OK(fs_->CreateDir(P("d")));
  EXPECT_THAT(fs_->CreateDir(P("d")), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs_->CreateDir(P("x/y")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->NewWritableFile(P("x/f")), StatusIs(absl::StatusCode::kNotFound));
  Write(P("d/f"), "1");
  EXPECT_THAT(fs_->CreateDir(P("d/f")), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs_->NewWritableFile(P("d/f/g")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs_->RemoveDir(P("d")).ok());  // not empty
  EXPECT_FALSE(fs_->RemoveFile(P("d")).ok());  // a directory
  EXPECT_FALSE(fs_->NewWritableFile(P("d")).ok());
  ASSERT_OK(fs_->RemoveFile(P("d/f")));
  EXPECT_THAT(fs_->RemoveFile(P("d/f")), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(fs_->RemoveDir(P("d")));
  EXPECT_THAT(fs_->RemoveDir(P("d")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(fs_->SyncDir(dir_));
  EXPECT_THAT(fs_->SyncDir(P("d")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(FileSystemBehaviourTest, Rename) {
  Write(P("a"), "A");
  Write(P("b"), "B");
  ASSERT_OK(fs_->Rename(P("a"), P("b")));
  EXPECT_THAT(fs_->FileExists(P("a")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Read(P("b")), "A");
  ASSERT_OK(fs_->Rename(P("b"), P("b")));  // onto itself: nothing happens
  EXPECT_EQ(Read(P("b")), "A");
  EXPECT_THAT(fs_->Rename(P("nope"), P("c")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->Rename(P("b"), P("nodir/c")), StatusIs(absl::StatusCode::kNotFound));

  // A directory moves with everything under it.
  ASSERT_OK(fs_->CreateDir(P("d")));
  ASSERT_OK(fs_->CreateDir(P("d/sub")));
  Write(P("d/sub/f"), "F");
  ASSERT_OK(fs_->Rename(P("d"), P("e")));
  EXPECT_EQ(Read(P("e/sub/f")), "F");
  EXPECT_THAT(fs_->FileExists(P("d/sub/f")), StatusIs(absl::StatusCode::kNotFound));
  // Over an empty directory: fine; over a non-empty one, a file, or into
  // itself: refused.
  ASSERT_OK(fs_->CreateDir(P("empty")));
  ASSERT_OK(fs_->Rename(P("e"), P("empty")));
  EXPECT_EQ(Read(P("empty/sub/f")), "F");
  ASSERT_OK(fs_->CreateDir(P("full")));
  Write(P("full/x"), "x");
  EXPECT_FALSE(fs_->Rename(P("empty"), P("full")).ok());
  EXPECT_FALSE(fs_->Rename(P("empty"), P("b")).ok());
  EXPECT_FALSE(fs_->Rename(P("b"), P("full")).ok());
  EXPECT_FALSE(fs_->Rename(P("empty"), P("empty/sub/inside")).ok());
  EXPECT_EQ(Read(P("empty/sub/f")), "F");
}

TEST_P(FileSystemBehaviourTest, WriterKeepsWritingAfterRename) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("x.tmp")));
  ASSERT_OK(f->Append("one "));
  ASSERT_OK(fs_->Rename(P("x.tmp"), P("x")));
  ASSERT_OK(f->Append("two"));
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("x")), "one two");
}

TEST_P(FileSystemBehaviourTest, LockFile) {
  Write(P("LOCK"), "");
  ASSERT_OK_AND_ASSIGN(auto first, fs_->LockFile(P("LOCK")));
  EXPECT_EQ(first->path(), P("LOCK"));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(absl::StatusCode::kUnavailable));
  first.reset();
  ASSERT_OK_AND_ASSIGN(auto second, fs_->LockFile(P("LOCK")));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(absl::StatusCode::kUnavailable));
  // The lock follows the file, not the name.
  ASSERT_OK(fs_->Rename(P("LOCK"), P("LOCK2")));
  EXPECT_THAT(fs_->LockFile(P("LOCK2")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(fs_->LockFile(P("nope")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(FileSystemBehaviourTest, NotFoundEverywhere) {
  const absl::StatusCode nf = absl::StatusCode::kNotFound;
  EXPECT_THAT(fs_->NewSequentialFile(P("m")), StatusIs(nf, HasSubstr(P("m"))));
  EXPECT_THAT(fs_->NewRandomAccessFile(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->FileExists(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->GetFileSize(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->RemoveFile(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->LockFile(P("m")), StatusIs(nf));
}

TEST_P(FileSystemBehaviourTest, Helpers) {
  ASSERT_OK(CreateDirAll(fs_, P("a/b/c")));
  ASSERT_OK(CreateDirAll(fs_, P("a/b/c")));
  ASSERT_OK(WriteFileAtomically(fs_, P("a/b/c/cfg"), "v1"));
  ASSERT_OK(WriteFileAtomically(fs_, P("a/b/c/cfg"), "v2"));
  EXPECT_EQ(Read(P("a/b/c/cfg")), "v2");
  EXPECT_THAT(*fs_->ListDir(P("a/b/c")), ElementsAre("cfg"));
  EXPECT_THAT(WriteFileAtomically(fs_, P("zz/cfg"), "x"), StatusIs(absl::StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------
// Mem-only.

TEST(MemFileSystemTest, StartsWithAnEmptyRoot) {
  auto fs = NewMemFileSystem();
  EXPECT_OK(fs->FileExists("/"));
  EXPECT_THAT(*fs->ListDir("/"), IsEmpty());
  EXPECT_THAT(fs->CreateDir("/"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(fs->RemoveDir("/").ok());
  EXPECT_FALSE(fs->NewWritableFile("/").ok());
  EXPECT_FALSE(fs->Rename("/", "/x").ok());
  EXPECT_THAT(fs->FileExists(""), StatusIs(absl::StatusCode::kNotFound));
}

TEST(MemFileSystemTest, PathsAreNormalised) {
  auto fs = NewMemFileSystem();
  ASSERT_OK(fs->CreateDir("/a"));
  ASSERT_OK(fs->CreateDir("a//b/"));
  ASSERT_OK(WriteFileAtomically(fs.get(), "/a/./b/f", "x"));
  EXPECT_EQ(*ReadFileToString(fs.get(), "a/b/f"), "x");
  EXPECT_EQ(*ReadFileToString(fs.get(), "/a/b/../b/f"), "x");
  EXPECT_THAT(*fs->ListDir("a/b"), ElementsAre("f"));
}

TEST(MemFileSystemTest, MaxFileSizeIsEnospcAndSticky) {
  MemFileSystemOptions options;
  options.max_file_size = 100;
  auto fs = NewMemFileSystem(options);
  ASSERT_OK_AND_ASSIGN(auto f, fs->NewWritableFile("/f"));
  ASSERT_OK(f->Append(std::string(60, 'a')));
  EXPECT_THAT(f->Fallocate(0, uint64_t{1} << 62), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(f->Append("x"), StatusIs(absl::StatusCode::kResourceExhausted));  // sticky
  EXPECT_THAT(f->Close(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(*fs->GetFileSize("/f"), 60u);

  ASSERT_OK_AND_ASSIGN(auto g, fs->NewWritableFile("/g"));
  ASSERT_OK(g->Append(std::string(100, 'b')));
  EXPECT_THAT(g->Append("c"), StatusIs(absl::StatusCode::kResourceExhausted,
                                       HasSubstr("No space left on device")));
  ASSERT_OK_AND_ASSIGN(auto h, fs->NewWritableFile("/h"));
  ASSERT_OK(h->Seek(UINT64_MAX - 1));
  EXPECT_THAT(h->Append("xyz"), StatusIs(absl::StatusCode::kResourceExhausted));  // no wrap
  ASSERT_OK_AND_ASSIGN(auto i, fs->NewWritableFile("/i"));
  EXPECT_THAT(i->Truncate(101), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(MemFileSystemTest, CreatingInARemovedDirectoryFails) {
  auto fs = NewMemFileSystem();
  ASSERT_OK(fs->CreateDir("/d"));
  ASSERT_OK(fs->RemoveDir("/d"));
  EXPECT_THAT(fs->NewWritableFile("/d/f"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(MemFileSystemTest, ErrorCodesMatchPosixErrnoMapping) {
  auto fs = NewMemFileSystem();
  ASSERT_OK(fs->CreateDir("/d"));
  ASSERT_OK(WriteFileAtomically(fs.get(), "/d/f", "x"));
  EXPECT_THAT(fs->RemoveDir("/d"), StatusIs(absl::StatusCode::kInternal, HasSubstr("not empty")));
  EXPECT_THAT(fs->RemoveFile("/d"), StatusIs(absl::StatusCode::kInternal, HasSubstr("directory")));
  EXPECT_THAT(fs->RemoveDir("/d/f"), StatusIs(absl::StatusCode::kNotFound));  // ENOTDIR
  EXPECT_THAT(fs->SyncDir("/d/f"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(MemFileSystemTest, ConcurrentWritersAndReaders) {
  auto fs = NewMemFileSystem();
  constexpr int kThreads = 4;
  constexpr int kAppends = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fs, t] {
      const std::string path = absl::StrCat("/f", t);
      auto f = fs->NewWritableFile(path);
      ASSERT_OK(f.status());
      auto r = fs->NewRandomAccessFile(path);
      ASSERT_OK(r.status());
      for (int i = 0; i < kAppends; ++i) {
        ASSERT_OK((*f)->Append("0123456789abcdef"));
        // A concurrent reader never sees a partial append.
        auto size = (*r)->Size();
        ASSERT_OK(size.status());
        ASSERT_EQ(*size % 16, 0u);
        if (i % 100 == 0) {
          ASSERT_OK(fs->ListDir("/").status());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(*fs->GetFileSize(absl::StrCat("/f", t)), uint64_t{16} * kAppends);
  }
}

// A WAL-sized file (64 MiB preallocated, 8 MiB written in 4 KiB appends)
// reads back exactly through every reader: the written blocks, then zeros
// up to the preallocated size. (A quadratic copy here once made the WAL
// tests crawl; the ctest timeout bounds that, never a timed assertion.)
TEST(MemFileSystemTest, MultiMegabyteFilesReadBackExactly) {
  auto fs = NewMemFileSystem();
  ASSERT_OK_AND_ASSIGN(auto f, fs->NewWritableFile("/big"));
  ASSERT_OK(f->Fallocate(0, 64 << 20));  // a WAL segment
  for (int i = 0; i < 2048; ++i) {       // 8 MiB, each block tagged with its number
    std::string block(4096, static_cast<char>('a' + i % 26));
    ASSERT_OK(f->Append(block));
  }
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
  ASSERT_OK_AND_ASSIGN(uint64_t size, fs->GetFileSize("/big"));
  EXPECT_EQ(size, uint64_t{64} << 20);
  ASSERT_OK_AND_ASSIGN(auto r, fs->NewRandomAccessFile("/big"));
  std::string buf(4096, '\0');
  for (uint64_t off = 0, i = 0; off < (8u << 20); off += 4096, ++i) {
    ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(off, absl::MakeSpan(buf)));
    ASSERT_EQ(n, 4096u);
    ASSERT_EQ(buf, std::string(4096, static_cast<char>('a' + i % 26))) << "block " << i;
  }
  ASSERT_OK_AND_ASSIGN(auto s, fs->NewSequentialFile("/big"));
  ASSERT_OK(s->Skip(8u << 20));
  ASSERT_OK_AND_ASSIGN(size_t n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(n, 4096u);
  EXPECT_EQ(buf, std::string(4096, '\0'));
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt((uint64_t{64} << 20) - 4096, absl::MakeSpan(buf)));
  EXPECT_EQ(n, 4096u);
  EXPECT_EQ(buf, std::string(4096, '\0'));
}

TEST(MemFileSystemTest, IndependentInstances) {
  auto a = NewMemFileSystem();
  auto b = NewMemFileSystem();
  ASSERT_OK(WriteFileAtomically(a.get(), "/f", "a"));
  EXPECT_THAT(b->FileExists("/f"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace sealwal::env
