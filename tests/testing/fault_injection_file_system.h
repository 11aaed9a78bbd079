// tests/testing/fault_injection_file_system.h: a FileSystem wrapper that injects the
// failures a WAL must survive: power loss, fsync EIO, ENOSPC, torn writes
// and crashes at any write step.
//
// Every call is forwarded to a base FileSystem (typically a mem FS; a POSIX
// temp directory works too), and the wrapper keeps a model of what is
// durable so that DropUnsyncedData() can rewrite the base into the state a
// real power loss would leave.
//
// Durability model (strict POSIX, no ext4 "data=ordered" luck):
// - File contents belong to the file (inode), not the name. A successful
//   WritableFile::Sync makes everything written to the file so far durable
//   (data and size). Bytes appended or overwritten after the last Sync are
//   lost: an overwrite reverts to the old bytes, a file never synced comes
//   back empty.
// - Names belong to directories. SyncDir(d) makes d's current entries
//   durable (creates, renames into and out of d, removes). Until then a new
//   name disappears, a renamed entry goes back to its old name and a removed
//   file comes back with its durable contents (a removed directory comes
//   back with its durable entries).
// - A directory made by CreateDir is durable once its parent is synced; its
//   own entries need SyncDir on it. Losing a directory loses everything
//   under it.
// - A rename across directories is durable when the destination directory
//   is synced; that also drops the entry from the source's durable listing
//   (an inode never gets two durable names).
// - Entries the wrapper never touched are durable as they are. Only changes
//   made through this wrapper are modelled: do not change the tracked
//   directories behind its back, and spell paths consistently (the model
//   treats "a" and "/a" as different; "." and "//" are normalised, ".." is
//   not supported).
//
// Faults:
// - DropUnsyncedData(): simulated power loss (above). Every file object and
//   lock obtained before it fails every later call with kFailedPrecondition
//   "power lost" (locks are released in the base).
// - FailSyncs(s): every WritableFile::Sync and SyncDir returns s without
//   syncing. A file's failure is sticky as always, so it survives
//   ClearSyncFailures().
// - SetWriteLimit(n): ENOSPC. Once bytes_written() (bytes appended plus
//   bytes by which Fallocate grew a file) would exceed n, the Append that
//   crosses writes the prefix that fits and fails with kResourceExhausted
//   (a Fallocate that crosses writes nothing). The file stays failed.
// - TearWriteAt(n): the Append that takes bytes_appended() past n writes
//   only the bytes up to n, then the wrapper "crashes": it becomes inactive
//   and every call fails with kUnavailable "injected crash".
// - CrashAfterOps(n): n more mutating operations succeed, the next one
//   fails without reaching the base and the wrapper crashes as above.
//   Mutating operations are Append, Sync, Fallocate, Truncate, Close of a
//   writable file, NewWritableFile, CreateDir, RemoveFile, RemoveDir, Rename
//   and SyncDir. Loop n = 0, 1, 2, ... to crash at every write step.
// - CrashAfterOps(n, tear_fraction): as CrashAfterOps(n), but when the
//   crashing operation is an Append, a prefix of it reaches the base before
//   the crash and the file counts as torn, as with TearWriteAt: its first
//   size * tear_fraction bytes, cut back to a kSectorSize boundary of the
//   file (a device writes a sector whole or not at all; so a write within
//   one sector is either all there or not at all); 1.0: all of it.
// - FailSyncAfter(n, s): the (n+1)-th WritableFile::Sync or SyncDir from
//   now returns s without syncing (a transient EIO: the ones after it
//   succeed, which is exactly when a retried fsync would wrongly report
//   data durable).
// - SetActive(false, s): every call (reads too) fails with s.
//
// Checks: sync_retries() counts Sync calls on a file (through any of its
// file objects) and SyncDir calls on a directory after a Sync/SyncDir of
// that same file or directory failed in the same process generation (up to
// the next crash, power loss or InvalidateOpenFiles). After a failed fsync
// the kernel may have dropped the dirty pages, so a retry that succeeds
// proves nothing; a correct caller never retries and the count stays 0.
//
// After a crash, Reactivate() models the restart of the process: it
// invalidates every file object and lock from before the crash ("process
// crashed"; the OS page cache survives, so the data stays as written) and
// makes the wrapper usable again. To model a power loss at the crash point
// call DropUnsyncedData() first: a torn prefix is unsynced data and is
// dropped, unless DropUnsyncedData(/*keep_torn_prefix=*/true) (or
// TornWrite::kPrefixKept) says that everything written to the torn file
// (prefix included) reached the disk, or TornWrite::kLastSectorsZeroed says
// that it did except the last sectors the torn write touched, which read as
// zeros (the file's size reached the disk before those sectors' data did).
//
// Ownership: `base` is borrowed and must outlive the wrapper; the wrapper
// must outlive every file and lock it returned.
// Thread-safety: all methods may be called from several threads; one mutex
// serialises the wrapper (including the base calls it makes).
// Cost: each file opened for writing is shadowed in memory twice (current
// and durable bytes, zero tails of Fallocate are not stored), and Sync
// copies only the bytes written since the previous Sync.
#ifndef SEALWAL_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_
#define SEALWAL_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "sealwal/env/file_system.h"

namespace sealwal::env {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem* base);
  ~FaultInjectionFileSystem() override;

  FaultInjectionFileSystem(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem& operator=(const FaultInjectionFileSystem&) = delete;

  // FileSystem.
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options = {}) override;
  absl::Status FileExists(const std::string& path) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir, mode_t mode = 0700) override;
  absl::Status RemoveDir(const std::string& dir) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Power loss: rewrites the base to the durable state (see the model
  // above) and invalidates every open file and lock. Works while inactive
  // and leaves the active/crashed state alone. With keep_torn_prefix, the
  // file torn by TearWriteAt first counts as synced up to its torn end.
  // An error means the base could not be rewritten; the model is then
  // unreliable and the test should stop.
  absl::Status DropUnsyncedData(bool keep_torn_prefix = false);
  // What a power loss leaves of the Append a crash tore.
  enum class TornWrite {
    kDropped,            // unsynced data, lost (DropUnsyncedData(false))
    kPrefixKept,         // the file is durable up to the torn end (true)
    kLastSectorsZeroed,  // kPrefixKept, then the last `zeroed_sectors`
                         // kSectorSize sectors the torn write touched (never
                         // bytes before its start) read as zeros
  };
  static constexpr uint64_t kSectorSize = 512;
  absl::Status DropUnsyncedData(TornWrite torn, uint64_t zeroed_sectors = 1);
  // Process death without power loss: invalidates every open file object
  // and lock ("process crashed"); all data stays as written.
  void InvalidateOpenFiles();

  // Every Sync and SyncDir returns `error` until ClearSyncFailures().
  void FailSyncs(absl::Status error);
  void ClearSyncFailures();

  // ENOSPC once bytes_written() would exceed total_bytes.
  void SetWriteLimit(uint64_t total_bytes);
  void ClearWriteLimit();

  // Tears the Append that takes bytes_appended() past total_bytes_offset
  // and crashes. Disarmed when it fires.
  void TearWriteAt(uint64_t total_bytes_offset);
  // The (n+1)-th mutating operation from now crashes. n < 0 disarms.
  void CrashAfterOps(int64_t n);
  // The same, tearing the operation when it is an Append (see the top).
  void CrashAfterOps(int64_t n, double tear_fraction);
  // The (n+1)-th Sync/SyncDir from now fails with `error`, once.
  void FailSyncAfter(int64_t n, absl::Status error);

  // Inactive: every call fails with `error`. SetActive(true) does not
  // invalidate open files (use Reactivate() after a crash).
  void SetActive(bool active,
                 absl::Status error = absl::UnavailableError("file system inactive (injected)"));
  // After a crash: invalidates the pre-crash files and locks (unless
  // DropUnsyncedData already did), disarms TearWriteAt/CrashAfterOps and
  // activates the wrapper.
  void Reactivate();
  // Reactivate() plus: clears sync failures, the write limit and counters.
  // The durability model is kept.
  void ResetState();

  bool active() const;
  bool crashed() const;  // a TearWriteAt/CrashAfterOps crash since Reactivate
  int64_t mutating_ops() const;
  uint64_t bytes_appended() const;  // by Append, prefixes of torn writes included
  uint64_t bytes_written() const;   // appended + Fallocate growth (the ENOSPC budget)
  int64_t syncs() const;            // Sync and SyncDir calls that got past the crash checks
  int64_t sync_retries() const;     // see "Checks" above
  // Failures the wrapper made up: ENOSPC, FailSyncs and FailSyncAfter.
  int64_t injected_errors() const;
  // The last of them: "write|fallocate|sync PATH" ("" if none).
  std::string last_injected_error() const;
  // The last torn Append: its file's path at the time and the byte range it
  // was meant to cover (nullopt: nothing torn since the last power loss).
  struct TornInfo {
    std::string path;
    uint64_t begin = 0;
    uint64_t intended_end = 0;
    uint64_t torn_end = 0;  // what reached the base
  };
  std::optional<TornInfo> torn_write() const;
  // The operation the last TearWriteAt/CrashAfterOps crash stopped (op:
  // append, sync, fallocate, truncate, close, create, mkdir, rmdir, remove,
  // rename, syncdir; the path as the caller spelt it, the source for a
  // rename, the file's current name for an operation on an open file);
  // nullopt before a crash and after Reactivate().
  struct CrashPoint {
    std::string op;
    std::string path;
    bool torn = false;  // an Append that reached the base in part
  };
  std::optional<CrashPoint> crash_point() const;
  FileSystem* base() const { return base_; }

 private:
  class SequentialFileImpl;
  class RandomAccessFileImpl;
  class WritableFileImpl;
  class FileLockImpl;
  struct LockSlot;
  struct Entity;
  static constexpr uint64_t kAnyGeneration = UINT64_MAX;

  absl::Status CheckLiveLocked(uint64_t generation) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // `op` and `path` name the operation for crash_point(); a file object
  // also gives its entity, whose current name (after renames) is used.
  absl::Status BeginMutationLocked(uint64_t generation, absl::string_view op,
                                   absl::string_view path, int64_t entity = -1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string CurrentPathLocked(int64_t entity, absl::string_view opened_as) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CrashLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InvalidateLocked(std::string reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReactivateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts a retry of a failed sync of `e`, then the injected failure for
  // this sync if one is due (OK: go ahead). Marks `e` failed when not OK.
  absl::Status BeginSyncLocked(Entity* e, absl::string_view path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkSyncFailedLocked(Entity* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The model (see the .cc).
  Entity* GetLocked(int64_t id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Entity* NewEntityLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PathOfLocked(const Entity& e) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Entity*> ResolveDirLocked(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entity* ChildLocked(Entity* dir, const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadContentLocked(Entity* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AttachLocked(Entity* e, Entity* dir, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DetachLocked(Entity* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecreateLocked(Entity* e, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RevertContentLocked(Entity* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteTreeLocked(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FileSystem* const base_;

  mutable absl::Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status inactive_error_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  bool invalidate_on_reactivate_ ABSL_GUARDED_BY(mu_) = false;
  // Files and locks remember the generation they were opened in; a power
  // loss or process crash starts a new one. reasons_[g] ended generation g.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> reasons_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<LockSlot>> locks_ ABSL_GUARDED_BY(mu_);

  absl::Status sync_failure_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> write_limit_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> tear_at_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> crash_at_op_ ABSL_GUARDED_BY(mu_);
  std::optional<double> crash_tear_fraction_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> fail_sync_at_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_sync_error_ ABSL_GUARDED_BY(mu_);
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sync_retries_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t injected_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_injected_ ABSL_GUARDED_BY(mu_);
  std::optional<TornInfo> torn_info_ ABSL_GUARDED_BY(mu_);
  std::optional<CrashPoint> crash_point_ ABSL_GUARDED_BY(mu_);
  int64_t mutating_ops_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_appended_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_written_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t torn_entity_ ABSL_GUARDED_BY(mu_) = -1;

  // Files and directories the wrapper has touched, by identity.
  absl::flat_hash_map<int64_t, std::unique_ptr<Entity>> entities_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> roots_ ABSL_GUARDED_BY(mu_);  // "/" and "."
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sealwal::env

#endif  // SEALWAL_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_
