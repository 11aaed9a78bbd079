// POSIX implementation of sealwal/env/file_system.h.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sealwal/env/file_system.h"

namespace sealwal::env {
namespace {

absl::Status ErrnoStatus(absl::string_view op, const std::string& path, int err) {
  std::string msg = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case EWOULDBLOCK:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Retries a syscall interrupted by a signal (EINTR is not an I/O error).
template <typename F>
auto NoIntr(F f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  absl::StatusOr<size_t> Read(absl::Span<char> dst) override {
    size_t done = 0;
    while (done < dst.size()) {
      ssize_t n = NoIntr([&] { return ::read(fd_, dst.data() + done, dst.size() - done); });
      if (n < 0) return ErrnoStatus("read", path_, errno);
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  absl::Status Skip(uint64_t n) override {
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) {
      return ErrnoStatus("lseek", path_, errno);
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> dst) const override {
    size_t done = 0;
    while (done < dst.size()) {
      ssize_t n = NoIntr([&] {
        return ::pread(fd_, dst.data() + done, dst.size() - done,
                       static_cast<off_t>(offset + done));
      });
      if (n < 0) return ErrnoStatus("pread", path_, errno);
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  absl::StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const std::string path_;
  const int fd_;
};

constexpr size_t kMaxWriteBytes = size_t{1} << 20;

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t pos)
      : path_(std::move(path)), fd_(fd), pos_(pos) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    if (!error_.ok()) return error_;
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      // At most 1 MiB per call: one 64 MiB pwrite ran 8x slower than 64
      // calls of 1 MiB here (dd shows the same), as the kernel then
      // fills large fresh page-cache folios.
      const size_t piece = std::min<size_t>(left, kMaxWriteBytes);
      ssize_t n = NoIntr([&] { return ::pwrite(fd_, p, piece, static_cast<off_t>(pos_)); });
      if (n < 0) return Fail(ErrnoStatus("write", path_, errno));
      // No progress with bytes left (seen on some FUSE file systems): fail
      // rather than spin.
      if (n == 0) return Fail(ErrnoStatus("write", path_, EIO));
      p += n;
      left -= static_cast<size_t>(n);
      pos_ += static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Flush() override { return error_; }

  absl::Status Sync() override {
    if (!error_.ok()) return error_;
    if (::fdatasync(fd_) != 0) return Fail(ErrnoStatus("fdatasync", path_, errno));
    return absl::OkStatus();
  }

  absl::Status StartWriteback(uint64_t offset, uint64_t len) override {
    if (!error_.ok()) return error_;
    if (len == 0) return absl::OkStatus();
    if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                          SYNC_FILE_RANGE_WRITE) != 0) {
      // Not supported here (some FUSE, non-Linux): the final Sync does it all.
      if (errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) return absl::OkStatus();
      // EIO and friends: writeback failed, and pages may already be marked
      // clean; only a sticky error keeps a later Sync from reporting success.
      return Fail(ErrnoStatus("sync_file_range", path_, errno));
    }
    return absl::OkStatus();
  }

  absl::Status Fallocate(uint64_t offset, uint64_t len) override {
    if (!error_.ok()) return error_;
    int rc = NoIntr([&] {
      return ::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
    });
    if (rc != 0) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) {
        return Fail(ErrnoStatus("fallocate", path_, errno));
      }
      // File systems without fallocate (tmpfs on old kernels, some FUSE):
      // extend with ftruncate, as etcd's fileutil.Preallocate does.
      struct stat st;
      if (::fstat(fd_, &st) != 0) return Fail(ErrnoStatus("fstat", path_, errno));
      if (static_cast<uint64_t>(st.st_size) < offset + len &&
          ::ftruncate(fd_, static_cast<off_t>(offset + len)) != 0) {
        return Fail(ErrnoStatus("ftruncate", path_, errno));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (!error_.ok()) return error_;
    if (NoIntr([&] { return ::ftruncate(fd_, static_cast<off_t>(size)); }) != 0) {
      return Fail(ErrnoStatus("ftruncate", path_, errno));
    }
    pos_ = std::min(pos_, size);
    return absl::OkStatus();
  }

  absl::Status Seek(uint64_t offset) override {
    if (!error_.ok()) return error_;
    pos_ = offset;
    return absl::OkStatus();
  }

  uint64_t Position() const override { return pos_; }

  absl::Status Close() override {
    if (fd_ < 0) return error_.ok() ? absl::FailedPreconditionError("closed: " + path_) : error_;
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0 && error_.ok()) return Fail(ErrnoStatus("close", path_, errno));
    if (error_.ok()) error_ = absl::FailedPreconditionError("file closed: " + path_);
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(absl::Status s) {
    if (error_.ok()) error_ = s;
    return error_;
  }

  const std::string path_;
  int fd_;
  uint64_t pos_;
  absl::Status error_;  // sticky: the first failure
};

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing releases OFD and flock locks
  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    int fd = NoIntr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus("open", path, errno);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    int fd = NoIntr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options) override {
    using D = WritableFileOptions::Disposition;
    int flags = O_WRONLY | O_CLOEXEC;
    uint64_t pos = 0;
    switch (options.disposition) {
      case D::kCreateTruncate:
        flags |= O_CREAT | O_TRUNC;
        break;
      case D::kCreateExclusive:
        // O_EXCL already refuses a symlink at `path`; O_NOFOLLOW says so
        // in the flags too.
        flags |= O_CREAT | O_EXCL | O_NOFOLLOW;
        break;
      case D::kOpenExisting:
        pos = options.offset;
        break;
    }
    int fd = NoIntr([&] { return ::open(path.c_str(), flags, options.mode); });
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, pos));
  }

  absl::Status FileExists(const std::string& path) override {
    if (::access(path.c_str(), F_OK) != 0) return ErrnoStatus("access", path, errno);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      absl::string_view n(e->d_name);
      if (n != "." && n != "..") names.emplace_back(n);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir", dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status CreateDir(const std::string& dir, mode_t mode) override {
    if (::mkdir(dir.c_str(), mode) != 0) return ErrnoStatus("mkdir", dir, errno);
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) return ErrnoStatus("rmdir", dir, errno);
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", from + " -> " + to, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = NoIntr([&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus("open", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("fsync", dir, err);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = NoIntr([&] { return ::open(path.c_str(), O_RDWR | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus("open", path, errno);
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
    int rc = ::fcntl(fd, F_OFD_SETLK, &fl);
    // Also take flock: etcd locks its segments with flock(2), which does
    // not see OFD locks, so holding both keeps an etcd process out too. On
    // kernels without OFD locks (< 3.15, EINVAL) flock alone is the lock.
    if (rc == 0 || errno == EINVAL) rc = ::flock(fd, LOCK_EX | LOCK_NB);
    if (rc != 0) {
      int err = errno;
      ::close(fd);
      if (err == EAGAIN || err == EACCES || err == EWOULDBLOCK) {
        return absl::UnavailableError(
            absl::StrCat("lock ", path, ": held by another process or handle"));
      }
      return ErrnoStatus("lock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(path, fd));
  }
};

}  // namespace

FileSystem* DefaultFileSystem() {
  static FileSystem* const fs = new PosixFileSystem();
  return fs;
}

}  // namespace sealwal::env
