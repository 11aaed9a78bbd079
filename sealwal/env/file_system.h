// sealwal/env/file_system.h: the one layer through which sealwal touches files.
//
// Every component (WAL, snapshots, key files) takes a `FileSystem*` so that
// tests can run it on the in-memory implementation (sealwal/env/mem_file_system.h)
// or through fault injection (tests/testing/fault_injection_file_system.h, a
// test-only target), and the real thing runs on POSIX (DefaultFileSystem()).
//
// Conventions, for every implementation:
// - Errors are absl::Status. A missing file or directory is kNotFound, an
//   existing one where a new one was required is kAlreadyExists, a lock held
//   by someone else is kUnavailable, ENOSPC is kResourceExhausted, any other
//   I/O error is kInternal carrying strerror and the path.
// - Write errors are sticky: after a WritableFile's Append, Sync, Fallocate,
//   Truncate or Close fails once, every later call on that file returns the
//   first error. A failed Sync is never retried, because after a failed
//   fsync the kernel may already have dropped the dirty pages (the
//   "fsyncgate" lesson), so a retry that "succeeds" proves nothing.
// - Files are created with mode 0600 unless the options say otherwise: WAL,
//   snapshot and key files hold secrets or data that only the owner reads.
// - Durability is explicit: data is durable after WritableFile::Sync; a
//   create, rename or remove is durable after SyncDir on the parent.
//
// Ownership: factories return std::unique_ptr; the caller owns the file.
// A FileSystem must outlive every file it returned.
// Thread-safety: a FileSystem is safe to call from several threads; a single
// file object is not (each is used by one thread at a time).
#ifndef SEALWAL_ENV_FILE_SYSTEM_H_
#define SEALWAL_ENV_FILE_SYSTEM_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace sealwal::env {

// Reads a file front to back.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to dst.size() bytes into dst and returns how many were read;
  // fewer only at end of file, 0 at end of file.
  virtual absl::StatusOr<size_t> Read(absl::Span<char> dst) = 0;
  // Skips n bytes (past the end is not an error; the next Read returns 0).
  virtual absl::Status Skip(uint64_t n) = 0;
};

// Reads at arbitrary offsets. Safe for concurrent ReadAt calls.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to dst.size() bytes at offset; fewer only at end of file.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> dst) const = 0;
  virtual absl::StatusOr<uint64_t> Size() const = 0;
};

// Writes at a moving position, starting where the file was opened.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes data at the current position and advances it. Either all of it
  // is written or an error is returned (and the file is failed forever).
  virtual absl::Status Append(absl::string_view data) = 0;
  // Pushes any user-space buffer to the OS (implementations may not buffer).
  virtual absl::Status Flush() = 0;
  // fdatasync: makes every byte appended so far durable, plus the file size.
  virtual absl::Status Sync() = 0;
  // Reserves [offset, offset+len) on disk, extending the file size to at
  // least offset+len (fallocate mode 0). The new range reads as zeros.
  virtual absl::Status Fallocate(uint64_t offset, uint64_t len) = 0;
  // Starts writing [offset, offset+len) back to disk without waiting
  // (sync_file_range WRITE), so that the final Sync of a long sequential
  // write has little left to do. A hint: it makes nothing durable, and
  // implementations may ignore it. An error fails the file, as Sync's does.
  virtual absl::Status StartWriteback(uint64_t offset, uint64_t len) {
    (void)offset;
    (void)len;
    return absl::OkStatus();
  }
  // Sets the file size; the position is clamped to it.
  virtual absl::Status Truncate(uint64_t size) = 0;
  // Moves the write position (for overwriting a preallocated file).
  virtual absl::Status Seek(uint64_t offset) = 0;
  // The current write position.
  virtual uint64_t Position() const = 0;
  // Closes the file. Does not sync. Further calls fail.
  virtual absl::Status Close() = 0;
};

// An advisory exclusive lock on a file, released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
  virtual const std::string& path() const = 0;
};

struct WritableFileOptions {
  // Open mode for a new file. Data and key files are owner-only.
  mode_t mode = 0600;
  // kCreateTruncate: create or empty the file. kCreateExclusive: fail with
  // kAlreadyExists when it exists. kOpenExisting: keep the contents, fail
  // with kNotFound when missing; the position starts at `offset`.
  enum class Disposition { kCreateTruncate, kCreateExclusive, kOpenExisting };
  Disposition disposition = Disposition::kCreateTruncate;
  uint64_t offset = 0;  // kOpenExisting only
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options = {}) = 0;

  virtual absl::Status FileExists(const std::string& path) = 0;  // ok or kNotFound
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, sorted, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates dir (not its parents); kAlreadyExists when present.
  virtual absl::Status CreateDir(const std::string& dir, mode_t mode = 0700) = 0;
  // Removes an empty directory.
  virtual absl::Status RemoveDir(const std::string& dir) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // rename(2): atomically replaces `to` (a file, or an empty directory when
  // `from` is a directory).
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync on the directory, making creates/renames/removes in it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive advisory lock on an existing file without blocking:
  // kUnavailable when another holder has it. POSIX uses OFD locks
  // (F_OFD_SETLK), falling back to flock(2) where OFD locks are missing.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// The process-wide POSIX file system. Never null; never destroyed.
FileSystem* DefaultFileSystem();

// Helpers built on the interface (sealwal/env/file_util.cc).
absl::StatusOr<std::string> ReadFileToString(FileSystem* fs, const std::string& path);
// For small files holding key material: reads into one buffer sized from
// the file's size, so no copy of the bytes is left in freed memory (no
// chunk buffer, no reallocation; should the file grow meanwhile, each
// outgrown buffer is wiped before it is freed). The caller wipes the result.
absl::StatusOr<std::string> ReadSecretFile(FileSystem* fs, const std::string& path);
// Creates a temporary file that nothing else can have prepared: whatever
// is at `path` (a stale temp file, or a symlink planted to make the writer
// overwrite another file) is removed, then a new file is created
// exclusively with `mode` (on POSIX O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink
// planted between the two calls fails the create instead of being
// followed). kAlreadyExists when something reappeared at `path` meanwhile.
absl::StatusOr<std::unique_ptr<WritableFile>> NewTempFile(FileSystem* fs, const std::string& path,
                                                          mode_t mode = 0600);
// Writes data to path atomically: path.tmp (NewTempFile, `mode`), Sync,
// Close, Rename, SyncDir(parent). Leaves either the old file or the new one.
absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path,
                                 absl::string_view data, mode_t mode = 0600);
// Creates dir and every missing parent (like mkdir -p); ok if present.
// Each directory it creates is synced into its parent.
absl::Status CreateDirAll(FileSystem* fs, const std::string& dir, mode_t mode = 0700);
// "a/b" + "c" -> "a/b/c"; Dirname("a/b/c") == "a/b"; Basename == "c".
std::string JoinPath(absl::string_view dir, absl::string_view name);
std::string Dirname(absl::string_view path);
std::string Basename(absl::string_view path);

}  // namespace sealwal::env

#endif  // SEALWAL_ENV_FILE_SYSTEM_H_
