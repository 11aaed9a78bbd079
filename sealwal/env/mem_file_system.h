// sealwal/env/mem_file_system.h: an in-memory FileSystem for tests and fuzzing.
//
// Semantics follow POSIX closely enough that code tested here behaves the
// same on DefaultFileSystem():
// - Directories are real. "/" always exists; a path is split on '/', and
//   empty and "." components are ignored, so "a/b" and "/a/b" name the same
//   file (relative paths resolve against "/"). ".." removes the previous
//   component. Creating a file or directory in a missing directory is
//   kNotFound; ListDir is sorted.
// - Files are inodes: an open file keeps its bytes after RemoveFile or after
//   a Rename replaced it. Readers share the bytes with writers, as on POSIX
//   (a reader sees data appended after it was opened); every Read/ReadAt
//   is atomic with respect to writes, so it never sees half of an Append.
// - Rename replaces a file, or an empty directory when the source is a
//   directory; renaming a directory moves everything under it.
// - LockFile is exclusive per file (inode): a second LockFile on the same
//   file fails with kUnavailable until the first FileLock is destroyed.
// - Error codes and messages mirror the POSIX implementation's errno
//   mapping (e.g. kNotFound for ENOENT/ENOTDIR, kInternal for EISDIR and
//   ENOTEMPTY).
// - Nothing is ever lost: Sync and SyncDir are no-ops that succeed. Use
//   FaultInjectionFileSystem on top of this to model power loss.
// - WritableFile errors are sticky as the interface requires. A file grows
//   to at most MemFileSystemOptions::max_file_size bytes; an Append,
//   Fallocate or Truncate beyond it fails with kResourceExhausted (ENOSPC),
//   so a fuzzer's huge Fallocate cannot exhaust the process's memory.
//
// Ownership: the FileSystem must outlive every file and lock it returned.
// Thread-safety: one absl::Mutex guards the whole tree; the file system and
// RandomAccessFile::ReadAt are safe to call from several threads.
// Performance: file data is a contiguous std::string, so appends are
// amortised O(1) and files of a few MiB are cheap; a read copies only the
// bytes asked for.
#ifndef SEALWAL_ENV_MEM_FILE_SYSTEM_H_
#define SEALWAL_ENV_MEM_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>

#include "sealwal/env/file_system.h"

namespace sealwal::env {

struct MemFileSystemOptions {
  // Largest size a file may reach (ENOSPC past it). 1 GiB by default.
  uint64_t max_file_size = uint64_t{1} << 30;
};

// Returns a new, empty in-memory file system containing only "/".
std::unique_ptr<FileSystem> NewMemFileSystem();
std::unique_ptr<FileSystem> NewMemFileSystem(const MemFileSystemOptions& options);

}  // namespace sealwal::env

#endif  // SEALWAL_ENV_MEM_FILE_SYSTEM_H_
