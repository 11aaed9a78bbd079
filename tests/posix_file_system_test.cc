// The POSIX FileSystem (DefaultFileSystem()) in a fresh temp directory, plus
// the helpers of sealwal/env/file_util.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

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

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sealwal_posix_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
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

  FileSystem* const fs_ = DefaultFileSystem();
  std::string dir_;
};

TEST_F(PosixFileSystemTest, DefaultIsASingleton) { EXPECT_EQ(DefaultFileSystem(), fs_); }

TEST_F(PosixFileSystemTest, WriteThenReadBack) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("a")));
  EXPECT_EQ(f->Position(), 0u);
  ASSERT_OK(f->Append("hello"));
  ASSERT_OK(f->Append(""));
  ASSERT_OK(f->Append(", world"));
  EXPECT_EQ(f->Position(), 12u);
  ASSERT_OK(f->Flush());
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("a")), "hello, world");
  EXPECT_THAT(fs_->GetFileSize(P("a")), IsOk());
  EXPECT_EQ(*fs_->GetFileSize(P("a")), 12u);
  EXPECT_OK(fs_->FileExists(P("a")));

  // Sequential reads in small pieces, with a Skip.
  ASSERT_OK_AND_ASSIGN(auto s, fs_->NewSequentialFile(P("a")));
  char buf[5];
  ASSERT_OK_AND_ASSIGN(size_t n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "hello");
  ASSERT_OK(s->Skip(2));
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "world");
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
  ASSERT_OK(s->Skip(100));  // past the end is fine
  ASSERT_OK_AND_ASSIGN(n, s->Read(absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
}

TEST_F(PosixFileSystemTest, ReadAt) {
  Write(P("r"), "0123456789");
  ASSERT_OK_AND_ASSIGN(auto r, fs_->NewRandomAccessFile(P("r")));
  ASSERT_OK_AND_ASSIGN(uint64_t size, r->Size());
  EXPECT_EQ(size, 10u);
  char buf[4];
  ASSERT_OK_AND_ASSIGN(size_t n, r->ReadAt(3, absl::MakeSpan(buf)));
  EXPECT_EQ(std::string(buf, n), "3456");
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(8, absl::MakeSpan(buf)));  // short at EOF
  EXPECT_EQ(std::string(buf, n), "89");
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(10, absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
  ASSERT_OK_AND_ASSIGN(n, r->ReadAt(1000, absl::MakeSpan(buf)));
  EXPECT_EQ(n, 0u);
}

TEST_F(PosixFileSystemTest, OpenExistingWritesAtOffset) {
  Write(P("f"), "abcdef");
  WritableFileOptions o;
  o.disposition = WritableFileOptions::Disposition::kOpenExisting;
  o.offset = 2;
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f"), o));
  EXPECT_EQ(f->Position(), 2u);
  ASSERT_OK(f->Append("XY"));
  EXPECT_EQ(f->Position(), 4u);
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("f")), "abXYef");

  EXPECT_THAT(fs_->NewWritableFile(P("missing"), o), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PosixFileSystemTest, Dispositions) {
  Write(P("f"), "old contents");
  WritableFileOptions excl;
  excl.disposition = WritableFileOptions::Disposition::kCreateExclusive;
  EXPECT_THAT(fs_->NewWritableFile(P("f"), excl), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Read(P("f")), "old contents");
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("new"), excl));
    ASSERT_OK(f->Close());
  }
  EXPECT_EQ(Read(P("new")), "");
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("f")));  // kCreateTruncate
    ASSERT_OK(f->Close());
  }
  EXPECT_EQ(Read(P("f")), "");
}

TEST_F(PosixFileSystemTest, FallocateExtendsWithZeros) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("p")));
  ASSERT_OK(f->Append("ab"));
  ASSERT_OK(f->Fallocate(0, 4096));
  EXPECT_EQ(*fs_->GetFileSize(P("p")), 4096u);
  EXPECT_EQ(f->Position(), 2u);  // the position does not move
  ASSERT_OK(f->Fallocate(0, 10));  // never shrinks
  EXPECT_EQ(*fs_->GetFileSize(P("p")), 4096u);
  ASSERT_OK(f->Append("cd"));
  ASSERT_OK(f->Close());
  std::string want = "abcd" + std::string(4092, '\0');
  EXPECT_EQ(Read(P("p")), want);
}

TEST_F(PosixFileSystemTest, TruncateAndSeek) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("t")));
  ASSERT_OK(f->Append("0123456789"));
  ASSERT_OK(f->Truncate(4));
  EXPECT_EQ(f->Position(), 4u);  // clamped
  ASSERT_OK(f->Append("Z"));
  ASSERT_OK(f->Seek(0));
  ASSERT_OK(f->Append("A"));
  EXPECT_EQ(f->Position(), 1u);
  ASSERT_OK(f->Seek(8));  // past the end: a hole of zeros
  ASSERT_OK(f->Append("!"));
  ASSERT_OK(f->Truncate(12));  // growing is allowed too
  EXPECT_EQ(f->Position(), 9u);
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("t")), std::string("A123Z\0\0\0!\0\0\0", 12));
}

// The writeback hint changes nothing a reader sees, for ranges inside the
// data, past it, or empty, and the file stays writable.
TEST_F(PosixFileSystemTest, StartWritebackIsOnlyAHint) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("w")));
  const std::string data(3 << 20, 'w');
  ASSERT_OK(f->Append(data));
  ASSERT_OK(f->StartWriteback(0, 1 << 20));
  ASSERT_OK(f->StartWriteback(1 << 20, 4 << 20));  // beyond the end
  ASSERT_OK(f->StartWriteback(5, 0));
  ASSERT_OK(f->Append("tail"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read(P("w")), data + "tail");
}

TEST_F(PosixFileSystemTest, ClosedFileRejectsEverything) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("c")));
  ASSERT_OK(f->Close());
  EXPECT_THAT(f->Append("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->Sync(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->StartWriteback(0, 1), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(f->Truncate(0), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(f->Close().ok());
}

TEST_F(PosixFileSystemTest, ListDirIsSorted) {
  for (const char* n : {"b", "a", "c.wal", "0"}) Write(P(n), n);
  ASSERT_OK(fs_->CreateDir(P("sub")));
  EXPECT_THAT(fs_->ListDir(dir_), IsOk());
  EXPECT_THAT(*fs_->ListDir(dir_), ElementsAre("0", "a", "b", "c.wal", "sub"));
  EXPECT_THAT(*fs_->ListDir(P("sub")), IsEmpty());
  EXPECT_THAT(fs_->ListDir(P("nope")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PosixFileSystemTest, Directories) {
  ASSERT_OK(fs_->CreateDir(P("d")));
  EXPECT_THAT(fs_->CreateDir(P("d")), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs_->CreateDir(P("x/y")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->NewWritableFile(P("x/f")), StatusIs(absl::StatusCode::kNotFound));
  Write(P("d/f"), "1");
  EXPECT_FALSE(fs_->RemoveDir(P("d")).ok());  // not empty
  ASSERT_OK(fs_->RemoveFile(P("d/f")));
  ASSERT_OK(fs_->RemoveDir(P("d")));
  EXPECT_THAT(fs_->FileExists(P("d")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->RemoveDir(P("d")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PosixFileSystemTest, NotFoundCodes) {
  const absl::StatusCode nf = absl::StatusCode::kNotFound;
  EXPECT_THAT(fs_->NewSequentialFile(P("m")), StatusIs(nf, HasSubstr(P("m"))));
  EXPECT_THAT(fs_->NewRandomAccessFile(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->FileExists(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->GetFileSize(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->RemoveFile(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->Rename(P("m"), P("n")), StatusIs(nf));
  EXPECT_THAT(fs_->SyncDir(P("m")), StatusIs(nf));
  EXPECT_THAT(fs_->LockFile(P("m")), StatusIs(nf));
  EXPECT_THAT(ReadFileToString(fs_, P("m")), StatusIs(nf));
}

TEST_F(PosixFileSystemTest, RenameReplacesAndMovesDirectories) {
  Write(P("a"), "A");
  Write(P("b"), "B");
  ASSERT_OK(fs_->Rename(P("a"), P("b")));
  EXPECT_THAT(fs_->FileExists(P("a")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Read(P("b")), "A");

  ASSERT_OK(fs_->CreateDir(P("d")));
  Write(P("d/f"), "F");
  ASSERT_OK(fs_->Rename(P("d"), P("e")));
  EXPECT_EQ(Read(P("e/f")), "F");
  EXPECT_THAT(fs_->FileExists(P("d")), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK(fs_->CreateDir(P("empty")));
  ASSERT_OK(fs_->Rename(P("e"), P("empty")));  // over an empty directory
  EXPECT_EQ(Read(P("empty/f")), "F");
}

TEST_F(PosixFileSystemTest, SyncDir) {
  EXPECT_OK(fs_->SyncDir(dir_));
  ASSERT_OK(fs_->CreateDir(P("d")));
  EXPECT_OK(fs_->SyncDir(P("d")));
}

TEST_F(PosixFileSystemTest, CreatedFilesAreOwnerOnly) {
  Write(P("secret"), "k");
  struct stat st;
  ASSERT_EQ(::stat(P("secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  WritableFileOptions o;
  o.mode = 0640;
  ASSERT_OK_AND_ASSIGN(auto f, fs_->NewWritableFile(P("shared"), o));
  ASSERT_OK(f->Close());
  ASSERT_EQ(::stat(P("shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~static_cast<unsigned>(::umask(::umask(0))));

  ASSERT_OK(fs_->CreateDir(P("dir")));
  ASSERT_EQ(::stat(P("dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(PosixFileSystemTest, LockFileIsExclusiveUntilReleased) {
  Write(P("LOCK"), "");
  ASSERT_OK_AND_ASSIGN(auto first, fs_->LockFile(P("LOCK")));
  EXPECT_EQ(first->path(), P("LOCK"));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(absl::StatusCode::kUnavailable));
  first.reset();
  ASSERT_OK_AND_ASSIGN(auto second, fs_->LockFile(P("LOCK")));
  EXPECT_THAT(fs_->LockFile(P("LOCK")), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(PosixFileSystemTest, WriteFileAtomically) {
  ASSERT_OK(WriteFileAtomically(fs_, P("cfg"), "v1"));
  EXPECT_EQ(Read(P("cfg")), "v1");
  ASSERT_OK(WriteFileAtomically(fs_, P("cfg"), "version two"));
  EXPECT_EQ(Read(P("cfg")), "version two");
  EXPECT_THAT(fs_->FileExists(P("cfg.tmp")), StatusIs(absl::StatusCode::kNotFound));
  struct stat st;
  ASSERT_EQ(::stat(P("cfg").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(WriteFileAtomically(fs_, P("no/such/dir/cfg"), "x"),
              StatusIs(absl::StatusCode::kNotFound));
}

// A stale world-readable temp file, or a symlink planted at the temp name,
// must not decide the new file's mode or receive its bytes.
TEST_F(PosixFileSystemTest, WriteFileAtomicallyIgnoresStaleTempAndSymlink) {
  const std::string stale = P("key.tmp");
  ASSERT_EQ(::close(::open(stale.c_str(), O_CREAT | O_WRONLY, 0644)), 0);
  ASSERT_EQ(::chmod(stale.c_str(), 0644), 0);
  ASSERT_OK(WriteFileAtomically(fs_, P("key"), "secret"));
  struct stat st;
  ASSERT_EQ(::stat(P("key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const std::string target = P("elsewhere");
  ASSERT_EQ(::symlink(target.c_str(), stale.c_str()), 0);
  ASSERT_OK(WriteFileAtomically(fs_, P("key"), "secret 2"));
  EXPECT_EQ(Read(P("key")), "secret 2");
  EXPECT_THAT(fs_->FileExists(target), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_EQ(::lstat(P("key").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PosixFileSystemTest, ReadFileToStringLargeFile) {
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  Write(P("big"), big);
  EXPECT_EQ(Read(P("big")), big);
  Write(P("empty"), "");
  EXPECT_EQ(Read(P("empty")), "");
}

// ReadSecretFile reads what ReadFileToString reads, in one buffer of the
// file's size (its capacity shows no chunked growth), and fails cleanly.
TEST_F(PosixFileSystemTest, ReadSecretFileReadsWholeFilesInOneBuffer) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{70000}}) {
    std::string data(n, 'k');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + i % 26);
    ASSERT_OK(WriteFileAtomically(fs_, P("secret"), data));
    ASSERT_OK_AND_ASSIGN(std::string got, ReadSecretFile(fs_, P("secret")));
    EXPECT_EQ(got, data);
    EXPECT_LE(got.capacity(), std::max<size_t>(n + 1, 15));
  }
  EXPECT_THAT(ReadSecretFile(fs_, P("missing")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PosixFileSystemTest, CreateDirAll) {
  ASSERT_OK(CreateDirAll(fs_, P("a/b/c")));
  EXPECT_OK(fs_->FileExists(P("a/b/c")));
  ASSERT_OK(CreateDirAll(fs_, P("a/b/c")));  // present: ok
  ASSERT_OK(CreateDirAll(fs_, P("a/b/c/")));
  ASSERT_OK(CreateDirAll(fs_, P("a/x")));
  EXPECT_THAT(*fs_->ListDir(P("a")), ElementsAre("b", "x"));
}

TEST(PathTest, JoinPath) {
  EXPECT_EQ(JoinPath("a/b", "c"), "a/b/c");
  EXPECT_EQ(JoinPath("a/b/", "c"), "a/b/c");
  EXPECT_EQ(JoinPath("/", "c"), "/c");
  EXPECT_EQ(JoinPath("", "c"), "c");
  EXPECT_EQ(JoinPath("/var/lib", "member/wal"), "/var/lib/member/wal");
}

TEST(PathTest, Dirname) {
  EXPECT_EQ(Dirname("a/b/c"), "a/b");
  EXPECT_EQ(Dirname("/a"), "/");
  EXPECT_EQ(Dirname("/"), "/");
  EXPECT_EQ(Dirname("a"), ".");
  EXPECT_EQ(Dirname("a/b/"), "a");
  EXPECT_EQ(Dirname("/x/y.wal"), "/x");
}

TEST(PathTest, Basename) {
  EXPECT_EQ(Basename("a/b/c"), "c");
  EXPECT_EQ(Basename("c"), "c");
  EXPECT_EQ(Basename("/a/b/"), "b");
  EXPECT_EQ(Basename("/"), "");  // like Python's os.path.basename
  EXPECT_EQ(Basename("/x/0000000000000000-0000000000000000.wal"),
            "0000000000000000-0000000000000000.wal");
}

}  // namespace
}  // namespace sealwal::env
