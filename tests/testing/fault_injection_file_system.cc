// FaultInjectionFileSystem (see the header for the durability model).
//
// The model: every file or directory the wrapper touched is an Entity (an
// inode identity) with a current location (parent directory + name) and a
// durable location. A directory Entity keeps two partial listings, `current`
// and `durable`, holding only the names the wrapper touched; a name in
// neither is untouched and whatever the base has there is durable and in
// place. A file Entity shadows its bytes twice: `cur` (what the application
// sees) and `dur` (what survives a power loss). DropUnsyncedData walks the
// durable listings from the roots ("/" and ".") and rewrites the base to
// match, using only FileSystem calls so that it works over any base.
#include "testing/fault_injection_file_system.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::env {
namespace fault_internal {

constexpr int64_t kNoId = -1;

struct Range {
  uint64_t begin;
  uint64_t end;  // exclusive
};

// A file's bytes as the application sees them (cur) and as a power loss
// would leave them (dur). Bytes past a stored string up to its logical size
// are zeros, so a 64 MiB Fallocate costs no memory.
//
// Invariant: cur and dur agree on every byte outside dirty_ and outside
// [min_size_, infinity), where min_size_ is the smallest size the file has
// had since the last Sync. So Sync and Revert only touch those regions.
class Content {
 public:
  void Init(std::string data) {
    cur_ = data;
    dur_ = std::move(data);
    cur_size_ = dur_size_ = min_size_ = cur_.size();
    dirty_.clear();
  }

  uint64_t size() const { return cur_size_; }
  uint64_t durable_size() const { return dur_size_; }
  bool Dirty() const {
    return !dirty_.empty() || min_size_ != cur_size_ || cur_size_ != dur_size_;
  }

  void Write(uint64_t pos, absl::string_view data) {
    if (data.empty()) return;
    const uint64_t end = pos + data.size();
    if (cur_.size() < end) cur_.resize(end);  // a hole before pos reads as zeros
    std::memcpy(cur_.data() + pos, data.data(), data.size());
    cur_size_ = std::max(cur_size_, end);
    AddDirty(pos, end);
  }

  void Resize(uint64_t n) {
    if (cur_.size() > n) cur_.resize(n);
    cur_size_ = n;
    min_size_ = std::min(min_size_, n);
  }

  // fdatasync: dur := cur.
  void Sync() {
    for (const Range& r : Regions()) CopyRange(cur_, cur_size_, r, &dur_);
    dur_size_ = cur_size_;
    if (dur_.size() > dur_size_) dur_.resize(dur_size_);
    dirty_.clear();
    min_size_ = cur_size_;
  }

  // Power loss: cur := dur.
  void Revert() {
    cur_ = dur_;
    cur_size_ = min_size_ = dur_size_;
    dirty_.clear();
  }

  // The byte ranges where cur and dur may differ.
  std::vector<Range> Regions() const {
    std::vector<Range> out = dirty_;
    const uint64_t top = std::max(cur_size_, dur_size_);
    if (min_size_ < top) out.push_back({min_size_, top});
    return out;
  }

  // The durable bytes in [begin, end), clipped to the durable size.
  std::string DurableBytes(uint64_t begin, uint64_t end) const {
    end = std::min(end, dur_size_);
    if (begin >= end) return "";
    std::string out(end - begin, '\0');
    if (begin < dur_.size()) {
      std::memcpy(out.data(), dur_.data() + begin, std::min<uint64_t>(end, dur_.size()) - begin);
    }
    return out;
  }

  // The stored durable prefix (the rest up to durable_size() is zeros).
  const std::string& stored_durable() const { return dur_; }

 private:
  // Copies src's logical bytes in r (clipped to src_size) into *dst.
  static void CopyRange(const std::string& src, uint64_t src_size, Range r, std::string* dst) {
    const uint64_t a = r.begin;
    const uint64_t b = std::min(r.end, src_size);
    if (a >= b) return;
    const uint64_t stored_end = std::min<uint64_t>(b, src.size());
    if (a < stored_end) {
      if (dst->size() < stored_end) dst->resize(stored_end);
      std::memcpy(dst->data() + a, src.data() + a, stored_end - a);
    }
    const uint64_t zero_begin = std::max<uint64_t>(a, src.size());
    const uint64_t zero_end = std::min<uint64_t>(b, dst->size());
    if (zero_begin < zero_end) std::memset(dst->data() + zero_begin, 0, zero_end - zero_begin);
  }

  void AddDirty(uint64_t begin, uint64_t end) {
    // Sequential writes (the WAL's pattern) extend the last range.
    if (!dirty_.empty() && begin <= dirty_.back().end && end >= dirty_.back().begin) {
      dirty_.back().begin = std::min(dirty_.back().begin, begin);
      dirty_.back().end = std::max(dirty_.back().end, end);
      return;
    }
    dirty_.push_back({begin, end});
    if (dirty_.size() > 256) {  // scattered writes: one covering range is still correct
      Range all = dirty_.front();
      for (const Range& r : dirty_) {
        all.begin = std::min(all.begin, r.begin);
        all.end = std::max(all.end, r.end);
      }
      dirty_.assign(1, all);
    }
  }

  std::string cur_, dur_;
  uint64_t cur_size_ = 0, dur_size_ = 0, min_size_ = 0;
  std::vector<Range> dirty_;
};

enum class Kind { kUnknown, kFile, kDir };

// "a//b/./c/" -> "a/b/c", "/" and "." stay; "" stays "" (the base reports it).
std::string Normalize(absl::string_view path) {
  if (path.empty()) return "";
  const bool absolute = path[0] == '/';
  std::vector<absl::string_view> parts;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (c != ".") parts.push_back(c);
  }
  if (parts.empty()) return absolute ? "/" : ".";
  return absl::StrCat(absolute ? "/" : "", absl::StrJoin(parts, "/"));
}

bool IsRoot(absl::string_view p) { return p == "/" || p == "."; }

std::string ChildPath(const std::string& dir, absl::string_view name) {
  return dir == "." ? std::string(name) : JoinPath(dir, name);
}

}  // namespace fault_internal

using fault_internal::ChildPath;
using fault_internal::Content;
using fault_internal::IsRoot;
using fault_internal::Kind;
using fault_internal::kNoId;
using fault_internal::Normalize;
using fault_internal::Range;

struct FaultInjectionFileSystem::Entity {
  int64_t id = kNoId;
  Kind kind = Kind::kUnknown;
  mode_t mode = 0;        // 0: unknown (recreated as 0600 files, 0700 dirs)
  std::string root_path;  // "/" or "." for a root, else empty
  int64_t cur_parent = kNoId;
  std::string cur_name;
  int64_t dur_parent = kNoId;
  std::string dur_name;
  // Files.
  bool loaded = false;        // content holds the bytes
  bool full_rewrite = false;  // a base write failed midway: base bytes unknown
  Content content;
  // Directories: touched names only (see the top of the file).
  std::map<std::string, int64_t> current;
  std::map<std::string, int64_t> durable;
  bool complete = false;  // `current` lists every entry (made by the wrapper)
  // The process generation in which a Sync/SyncDir of it failed (retries).
  uint64_t sync_failed_generation = UINT64_MAX;
};

struct FaultInjectionFileSystem::LockSlot {
  std::unique_ptr<FileLock> base;  // reset by a power loss or process crash
};

// ---------------------------------------------------------------------------
// File objects.

class FaultInjectionFileSystem::SequentialFileImpl final : public SequentialFile {
 public:
  SequentialFileImpl(FaultInjectionFileSystem* fs, std::unique_ptr<SequentialFile> base,
                     uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}

  absl::StatusOr<size_t> Read(absl::Span<char> dst) override {
    SEALWAL_RETURN_IF_ERROR(Check());
    return base_->Read(dst);
  }
  absl::Status Skip(uint64_t n) override {
    SEALWAL_RETURN_IF_ERROR(Check());
    return base_->Skip(n);
  }

 private:
  absl::Status Check() {
    absl::MutexLock lock(&fs_->mu_);
    return fs_->CheckLiveLocked(generation_);
  }

  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<SequentialFile> base_;
  const uint64_t generation_;
};

class FaultInjectionFileSystem::RandomAccessFileImpl final : public RandomAccessFile {
 public:
  RandomAccessFileImpl(FaultInjectionFileSystem* fs, std::unique_ptr<RandomAccessFile> base,
                       uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> dst) const override {
    SEALWAL_RETURN_IF_ERROR(Check());
    return base_->ReadAt(offset, dst);  // outside the mutex: ReadAt may run concurrently
  }
  absl::StatusOr<uint64_t> Size() const override {
    SEALWAL_RETURN_IF_ERROR(Check());
    return base_->Size();
  }

 private:
  absl::Status Check() const {
    absl::MutexLock lock(&fs_->mu_);
    return fs_->CheckLiveLocked(generation_);
  }

  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<RandomAccessFile> base_;
  const uint64_t generation_;
};

class FaultInjectionFileSystem::WritableFileImpl final : public WritableFile {
 public:
  WritableFileImpl(FaultInjectionFileSystem* fs, std::unique_ptr<WritableFile> base,
                   int64_t entity, uint64_t generation, std::string path)
      : fs_(fs), base_(std::move(base)), entity_(entity), generation_(generation),
        path_(std::move(path)) {}

  absl::Status Append(absl::string_view data) override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->CheckLiveLocked(generation_); !s.ok()) return Fail(s);
    // CrashAfterOps(n, fraction) lands on this Append: tear it instead of
    // failing it before it reaches the base.
    std::optional<uint64_t> tear_len;
    if (fs_->crash_at_op_ && fs_->mutating_ops_ >= *fs_->crash_at_op_ &&
        fs_->crash_tear_fraction_ && !data.empty()) {
      const double f = std::clamp(*fs_->crash_tear_fraction_, 0.0, 1.0);
      uint64_t n = static_cast<uint64_t>(static_cast<double>(data.size()) * f);
      if (n < data.size()) {  // whole sectors only
        const uint64_t pos = base_->Position();
        const uint64_t end = (pos + n) / kSectorSize * kSectorSize;
        n = end > pos ? end - pos : 0;
      }
      tear_len = n;
      fs_->crash_at_op_.reset();
    }
    if (absl::Status s = fs_->BeginMutationLocked(generation_, "append", path_, entity_);
        !s.ok()) {
      return Fail(s);
    }
    // How much may reach the base: ENOSPC and a torn write both cut a prefix.
    size_t allowed = data.size();
    absl::Status after;
    if (fs_->write_limit_ && fs_->bytes_written_ + data.size() > *fs_->write_limit_) {
      const uint64_t limit = *fs_->write_limit_;
      allowed = limit > fs_->bytes_written_ ? limit - fs_->bytes_written_ : 0;
      after = Enospc("write");
    }
    bool crash = false;
    if (fs_->tear_at_ && fs_->bytes_appended_ + data.size() > *fs_->tear_at_) {
      const uint64_t tear = *fs_->tear_at_;
      const uint64_t fits = tear > fs_->bytes_appended_ ? tear - fs_->bytes_appended_ : 0;
      if (fits <= allowed) {
        allowed = fits;
        crash = true;
      }
    }
    if (tear_len && *tear_len <= allowed) {
      allowed = *tear_len;
      crash = true;
    }
    Entity* e = fs_->GetLocked(entity_);
    const uint64_t pos = base_->Position();
    if (crash) {
      fs_->torn_info_ = TornInfo{path_, pos, pos + data.size(), pos + allowed};
      fs_->crash_point_ = CrashPoint{"append", fs_->CurrentPathLocked(entity_, path_), true};
    }
    if (allowed > 0) {
      const absl::string_view prefix = data.substr(0, allowed);
      if (absl::Status s = base_->Append(prefix); !s.ok()) {
        if (e != nullptr) e->full_rewrite = true;
        return Fail(s);
      }
      fs_->bytes_appended_ += allowed;
      fs_->bytes_written_ += allowed;
      if (e != nullptr && e->loaded) e->content.Write(pos, prefix);
    }
    if (crash) {
      fs_->torn_entity_ = entity_;
      fs_->CrashLocked();
      return Fail(fs_->inactive_error_);
    }
    if (!after.ok()) return Fail(after);
    return absl::OkStatus();
  }

  absl::Status Flush() override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->CheckLiveLocked(generation_); !s.ok()) return Fail(s);
    return Fail(base_->Flush());
  }

  absl::Status Sync() override {
    absl::MutexLock lock(&fs_->mu_);
    Entity* e = fs_->GetLocked(entity_);
    // A retry on this very object is a retry too, even though the sticky
    // error below answers it.
    if (e != nullptr && e->sync_failed_generation == fs_->generation_ &&
        generation_ == fs_->generation_) {
      ++fs_->sync_retries_;
    }
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->BeginMutationLocked(generation_, "sync", path_, entity_);
        !s.ok()) {
      return Fail(s);
    }
    // An injected EIO never reaches the base: nothing becomes durable.
    if (absl::Status s = fs_->BeginSyncLocked(nullptr, path_); !s.ok()) {
      fs_->MarkSyncFailedLocked(e);
      return Fail(s);
    }
    if (absl::Status s = base_->Sync(); !s.ok()) {
      fs_->MarkSyncFailedLocked(e);
      return Fail(s);
    }
    if (e != nullptr && e->loaded) e->content.Sync();
    return absl::OkStatus();
  }

  absl::Status Fallocate(uint64_t offset, uint64_t len) override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->BeginMutationLocked(generation_, "fallocate", path_, entity_);
        !s.ok()) {
      return Fail(s);
    }
    Entity* e = fs_->GetLocked(entity_);
    const uint64_t size = e != nullptr ? e->content.size() : 0;
    const uint64_t end = offset + len;
    const uint64_t growth = (end >= offset && end > size) ? end - size : 0;
    // Real fallocate either reserves the range or fails with ENOSPC.
    if (fs_->write_limit_ && fs_->bytes_written_ + growth > *fs_->write_limit_) {
      return Fail(Enospc("fallocate"));
    }
    if (absl::Status s = base_->Fallocate(offset, len); !s.ok()) {
      if (e != nullptr) e->full_rewrite = true;
      return Fail(s);
    }
    fs_->bytes_written_ += growth;
    if (e != nullptr && growth > 0) e->content.Resize(end);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->BeginMutationLocked(generation_, "truncate", path_, entity_);
        !s.ok()) {
      return Fail(s);
    }
    Entity* e = fs_->GetLocked(entity_);
    if (absl::Status s = base_->Truncate(size); !s.ok()) {
      if (e != nullptr) e->full_rewrite = true;
      return Fail(s);
    }
    if (e != nullptr) e->content.Resize(size);
    return absl::OkStatus();
  }

  absl::Status Seek(uint64_t offset) override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->CheckLiveLocked(generation_); !s.ok()) return Fail(s);
    return Fail(base_->Seek(offset));
  }

  uint64_t Position() const override { return base_->Position(); }

  absl::Status Close() override {
    absl::MutexLock lock(&fs_->mu_);
    if (!error_.ok()) return error_;
    if (absl::Status s = fs_->BeginMutationLocked(generation_, "close", path_, entity_);
        !s.ok()) {
      return Fail(s);
    }
    if (absl::Status s = base_->Close(); !s.ok()) return Fail(s);
    error_ = absl::FailedPreconditionError("file closed: " + path_);
    return absl::OkStatus();
  }

 private:
  // Records the first failure (sticky) and returns it; ok passes through.
  absl::Status Fail(absl::Status s) {
    if (s.ok()) return s;
    if (error_.ok()) error_ = std::move(s);
    return error_;
  }

  absl::Status Enospc(absl::string_view op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu_) {
    ++fs_->injected_errors_;
    fs_->last_injected_ = absl::StrCat(op, " ", path_);
    return absl::ResourceExhaustedError(
        absl::StrCat(op, " ", path_, ": No space left on device (injected ENOSPC)"));
  }

  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<WritableFile> base_;
  const int64_t entity_;
  const uint64_t generation_;
  const std::string path_;
  absl::Status error_;  // sticky: the first failure, or "closed"
};

class FaultInjectionFileSystem::FileLockImpl final : public FileLock {
 public:
  FileLockImpl(FaultInjectionFileSystem* fs, std::shared_ptr<LockSlot> slot, std::string path)
      : fs_(fs), slot_(std::move(slot)), path_(std::move(path)) {}
  ~FileLockImpl() override {
    std::unique_ptr<FileLock> release;
    {
      absl::MutexLock lock(&fs_->mu_);
      release = std::move(slot_->base);
    }
  }
  const std::string& path() const override { return path_; }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::shared_ptr<LockSlot> slot_;
  const std::string path_;
};

// ---------------------------------------------------------------------------
// State and fault knobs.

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

absl::Status FaultInjectionFileSystem::CheckLiveLocked(uint64_t generation) const {
  if (generation != kAnyGeneration && generation != generation_) {
    return absl::FailedPreconditionError(reasons_[generation]);
  }
  if (!active_) return inactive_error_;
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::BeginMutationLocked(uint64_t generation,
                                                           absl::string_view op,
                                                           absl::string_view path,
                                                           int64_t entity) {
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(generation));
  if (crash_at_op_ && mutating_ops_ >= *crash_at_op_) {
    crash_point_ = CrashPoint{std::string(op), CurrentPathLocked(entity, path), false};
    CrashLocked();
    return inactive_error_;
  }
  ++mutating_ops_;
  return absl::OkStatus();
}

std::string FaultInjectionFileSystem::CurrentPathLocked(int64_t entity,
                                                        absl::string_view opened_as) const {
  if (const Entity* e = GetLocked(entity)) {
    if (std::string p = PathOfLocked(*e); !p.empty()) return p;
  }
  return std::string(opened_as);
}

void FaultInjectionFileSystem::CrashLocked() {
  active_ = false;
  inactive_error_ = absl::UnavailableError("injected crash");
  crashed_ = true;
  invalidate_on_reactivate_ = true;
  crash_at_op_.reset();
  crash_tear_fraction_.reset();
  tear_at_.reset();
}

absl::Status FaultInjectionFileSystem::BeginSyncLocked(Entity* e, absl::string_view path) {
  if (e != nullptr && e->sync_failed_generation == generation_) ++sync_retries_;
  const int64_t n = syncs_++;
  absl::Status s = sync_failure_;
  if (s.ok() && fail_sync_at_ && n >= *fail_sync_at_) {
    s = fail_sync_error_;
    fail_sync_at_.reset();
  }
  if (!s.ok()) {
    ++injected_errors_;
    last_injected_ = absl::StrCat("sync ", path);
    MarkSyncFailedLocked(e);
  }
  return s;
}

void FaultInjectionFileSystem::MarkSyncFailedLocked(Entity* e) {
  if (e != nullptr) e->sync_failed_generation = generation_;
}

void FaultInjectionFileSystem::InvalidateLocked(std::string reason) {
  reasons_.push_back(std::move(reason));  // reasons_[g] ended generation g
  ++generation_;
  // A dead process holds no locks.
  for (const std::weak_ptr<LockSlot>& w : locks_) {
    if (std::shared_ptr<LockSlot> slot = w.lock()) slot->base.reset();
  }
  locks_.clear();
  invalidate_on_reactivate_ = false;
}

void FaultInjectionFileSystem::ReactivateLocked() {
  if (invalidate_on_reactivate_) InvalidateLocked("process crashed");
  active_ = true;
  inactive_error_ = absl::OkStatus();
  crashed_ = false;
  crash_point_.reset();
  crash_at_op_.reset();
  crash_tear_fraction_.reset();
  tear_at_.reset();
}

void FaultInjectionFileSystem::InvalidateOpenFiles() {
  absl::MutexLock lock(&mu_);
  InvalidateLocked("process crashed");
}

void FaultInjectionFileSystem::FailSyncs(absl::Status error) {
  absl::MutexLock lock(&mu_);
  sync_failure_ = std::move(error);
}

void FaultInjectionFileSystem::ClearSyncFailures() {
  absl::MutexLock lock(&mu_);
  sync_failure_ = absl::OkStatus();
}

void FaultInjectionFileSystem::SetWriteLimit(uint64_t total_bytes) {
  absl::MutexLock lock(&mu_);
  write_limit_ = total_bytes;
}

void FaultInjectionFileSystem::ClearWriteLimit() {
  absl::MutexLock lock(&mu_);
  write_limit_.reset();
}

void FaultInjectionFileSystem::TearWriteAt(uint64_t total_bytes_offset) {
  absl::MutexLock lock(&mu_);
  tear_at_ = total_bytes_offset;
}

void FaultInjectionFileSystem::CrashAfterOps(int64_t n) {
  absl::MutexLock lock(&mu_);
  crash_tear_fraction_.reset();
  if (n < 0) {
    crash_at_op_.reset();
  } else {
    crash_at_op_ = mutating_ops_ + n;
  }
}

void FaultInjectionFileSystem::CrashAfterOps(int64_t n, double tear_fraction) {
  absl::MutexLock lock(&mu_);
  if (n < 0) {
    crash_at_op_.reset();
    crash_tear_fraction_.reset();
  } else {
    crash_at_op_ = mutating_ops_ + n;
    crash_tear_fraction_ = tear_fraction;
  }
}

void FaultInjectionFileSystem::FailSyncAfter(int64_t n, absl::Status error) {
  absl::MutexLock lock(&mu_);
  if (n < 0 || error.ok()) {
    fail_sync_at_.reset();
  } else {
    fail_sync_at_ = syncs_ + n;
    fail_sync_error_ = std::move(error);
  }
}

void FaultInjectionFileSystem::SetActive(bool active, absl::Status error) {
  absl::MutexLock lock(&mu_);
  active_ = active;
  if (active) {
    inactive_error_ = absl::OkStatus();
  } else {
    inactive_error_ = error.ok() ? absl::UnavailableError("file system inactive (injected)")
                                 : std::move(error);
  }
}

void FaultInjectionFileSystem::Reactivate() {
  absl::MutexLock lock(&mu_);
  ReactivateLocked();
}

void FaultInjectionFileSystem::ResetState() {
  absl::MutexLock lock(&mu_);
  ReactivateLocked();
  sync_failure_ = absl::OkStatus();
  write_limit_.reset();
  mutating_ops_ = 0;
  bytes_appended_ = 0;
  bytes_written_ = 0;
  torn_entity_ = kNoId;
  torn_info_.reset();
  fail_sync_at_.reset();
  syncs_ = 0;
  sync_retries_ = 0;
  injected_errors_ = 0;
  last_injected_.clear();
}

bool FaultInjectionFileSystem::active() const {
  absl::MutexLock lock(&mu_);
  return active_;
}

bool FaultInjectionFileSystem::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

int64_t FaultInjectionFileSystem::mutating_ops() const {
  absl::MutexLock lock(&mu_);
  return mutating_ops_;
}

uint64_t FaultInjectionFileSystem::bytes_appended() const {
  absl::MutexLock lock(&mu_);
  return bytes_appended_;
}

uint64_t FaultInjectionFileSystem::bytes_written() const {
  absl::MutexLock lock(&mu_);
  return bytes_written_;
}

int64_t FaultInjectionFileSystem::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

int64_t FaultInjectionFileSystem::sync_retries() const {
  absl::MutexLock lock(&mu_);
  return sync_retries_;
}

int64_t FaultInjectionFileSystem::injected_errors() const {
  absl::MutexLock lock(&mu_);
  return injected_errors_;
}

std::string FaultInjectionFileSystem::last_injected_error() const {
  absl::MutexLock lock(&mu_);
  return last_injected_;
}

std::optional<FaultInjectionFileSystem::CrashPoint> FaultInjectionFileSystem::crash_point() const {
  absl::MutexLock lock(&mu_);
  return crash_point_;
}

std::optional<FaultInjectionFileSystem::TornInfo> FaultInjectionFileSystem::torn_write() const {
  absl::MutexLock lock(&mu_);
  return torn_info_;
}

// ---------------------------------------------------------------------------
// The model.

FaultInjectionFileSystem::Entity* FaultInjectionFileSystem::GetLocked(int64_t id) const {
  auto it = entities_.find(id);
  return it == entities_.end() ? nullptr : it->second.get();
}

FaultInjectionFileSystem::Entity* FaultInjectionFileSystem::NewEntityLocked() {
  auto e = std::make_unique<Entity>();
  e->id = next_id_++;
  Entity* raw = e.get();
  entities_.emplace(raw->id, std::move(e));
  return raw;
}

std::string FaultInjectionFileSystem::PathOfLocked(const Entity& e) const {
  if (!e.root_path.empty()) return e.root_path;
  const Entity* parent = GetLocked(e.cur_parent);
  if (parent == nullptr) return "";  // not present; callers check first
  return ChildPath(PathOfLocked(*parent), e.cur_name);
}

absl::StatusOr<FaultInjectionFileSystem::Entity*> FaultInjectionFileSystem::ResolveDirLocked(
    const std::string& path) {
  if (IsRoot(path)) {
    if (auto it = roots_.find(path); it != roots_.end()) return GetLocked(it->second);
    Entity* root = NewEntityLocked();
    root->kind = Kind::kDir;
    root->root_path = path;
    roots_[path] = root->id;
    return root;
  }
  SEALWAL_ASSIGN_OR_RETURN(Entity * parent, ResolveDirLocked(Dirname(path)));
  Entity* e = ChildLocked(parent, Basename(path));
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("no such directory: ", path));
  if (e->kind == Kind::kFile) return absl::NotFoundError(absl::StrCat("not a directory: ", path));
  return e;
}

FaultInjectionFileSystem::Entity* FaultInjectionFileSystem::ChildLocked(Entity* dir,
                                                                        const std::string& name) {
  if (auto it = dir->current.find(name); it != dir->current.end()) return GetLocked(it->second);
  // Moved away or removed since the last SyncDir, or the listing is complete.
  if (dir->durable.contains(name) || dir->complete) return nullptr;
  // Untouched so far: if the base has it, it is durable where it is.
  if (!base_->FileExists(ChildPath(PathOfLocked(*dir), name)).ok()) return nullptr;
  Entity* e = NewEntityLocked();
  e->cur_parent = e->dur_parent = dir->id;
  e->cur_name = e->dur_name = name;
  dir->current[name] = dir->durable[name] = e->id;
  dir->kind = Kind::kDir;
  return e;
}

absl::Status FaultInjectionFileSystem::LoadContentLocked(Entity* e) {
  if (e->loaded || e->kind == Kind::kDir) return absl::OkStatus();
  const std::string path = PathOfLocked(*e);
  absl::StatusOr<std::string> data = ReadFileToString(base_, path);
  if (!data.ok()) {
    if (base_->ListDir(path).ok()) {
      e->kind = Kind::kDir;
      return absl::OkStatus();
    }
    return data.status();
  }
  e->kind = Kind::kFile;
  e->loaded = true;
  e->content.Init(*std::move(data));  // untouched until now, so all of it is durable
  return absl::OkStatus();
}

void FaultInjectionFileSystem::AttachLocked(Entity* e, Entity* dir, const std::string& name) {
  dir->current[name] = e->id;
  dir->kind = Kind::kDir;
  e->cur_parent = dir->id;
  e->cur_name = name;
}

void FaultInjectionFileSystem::DetachLocked(Entity* e) {
  if (Entity* parent = GetLocked(e->cur_parent)) {
    auto it = parent->current.find(e->cur_name);
    if (it != parent->current.end() && it->second == e->id) parent->current.erase(it);
  }
  e->cur_parent = kNoId;
  e->cur_name.clear();
}

// ---------------------------------------------------------------------------
// FileSystem.

absl::StatusOr<std::unique_ptr<SequentialFile>> FaultInjectionFileSystem::NewSequentialFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  SEALWAL_ASSIGN_OR_RETURN(auto file, base_->NewSequentialFile(path));
  return std::unique_ptr<SequentialFile>(
      new SequentialFileImpl(this, std::move(file), generation_));
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> FaultInjectionFileSystem::NewRandomAccessFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  SEALWAL_ASSIGN_OR_RETURN(auto file, base_->NewRandomAccessFile(path));
  return std::unique_ptr<RandomAccessFile>(
      new RandomAccessFileImpl(this, std::move(file), generation_));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path, const WritableFileOptions& options) {
  using D = WritableFileOptions::Disposition;
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "create", path));
  const std::string p = Normalize(path);
  if (p.empty() || IsRoot(p)) return base_->NewWritableFile(path, options);  // the base refuses
  SEALWAL_ASSIGN_OR_RETURN(Entity * dir, ResolveDirLocked(Dirname(p)));
  const std::string name = Basename(p);
  Entity* e = ChildLocked(dir, name);
  // The old bytes must be known before they change: they are the durable ones.
  absl::Status loaded;
  if (e != nullptr && options.disposition != D::kCreateExclusive) loaded = LoadContentLocked(e);
  SEALWAL_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(p, options));
  SEALWAL_RETURN_IF_ERROR(loaded);
  if (e != nullptr && (options.disposition == D::kCreateExclusive || e->kind == Kind::kDir)) {
    DetachLocked(e);  // the base says the name was free: the model was stale
    e = nullptr;
  }
  if (e == nullptr) {
    e = NewEntityLocked();
    e->mode = options.mode;
    e->loaded = true;
    AttachLocked(e, dir, name);
  }
  e->kind = Kind::kFile;
  if (options.disposition == D::kCreateTruncate) e->content.Resize(0);
  return std::unique_ptr<WritableFile>(
      new WritableFileImpl(this, std::move(file), e->id, generation_, p));
}

absl::Status FaultInjectionFileSystem::FileExists(const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  return base_->FileExists(path);
}

absl::StatusOr<uint64_t> FaultInjectionFileSystem::GetFileSize(const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  return base_->GetFileSize(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionFileSystem::ListDir(
    const std::string& dir) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  return base_->ListDir(dir);
}

absl::Status FaultInjectionFileSystem::CreateDir(const std::string& dir, mode_t mode) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "mkdir", dir));
  const std::string p = Normalize(dir);
  if (p.empty() || IsRoot(p)) return base_->CreateDir(dir, mode);
  SEALWAL_ASSIGN_OR_RETURN(Entity * parent, ResolveDirLocked(Dirname(p)));
  SEALWAL_RETURN_IF_ERROR(base_->CreateDir(p, mode));
  const std::string name = Basename(p);
  if (auto it = parent->current.find(name); it != parent->current.end()) {
    DetachLocked(GetLocked(it->second));  // stale model: the base had nothing there
  }
  Entity* e = NewEntityLocked();
  e->kind = Kind::kDir;
  e->mode = mode;
  e->complete = true;
  AttachLocked(e, parent, name);
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::RemoveDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "rmdir", dir));
  const std::string p = Normalize(dir);
  if (p.empty() || IsRoot(p)) return base_->RemoveDir(dir);
  SEALWAL_ASSIGN_OR_RETURN(Entity * parent, ResolveDirLocked(Dirname(p)));
  Entity* e = ChildLocked(parent, Basename(p));
  SEALWAL_RETURN_IF_ERROR(base_->RemoveDir(p));
  if (e != nullptr) {
    e->kind = Kind::kDir;
    // It was empty, so it comes back (if it does) with its durable entries only.
    for (const auto& [name, id] : std::map<std::string, int64_t>(e->current)) {
      DetachLocked(GetLocked(id));
    }
    e->complete = true;
    DetachLocked(e);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::RemoveFile(const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "remove", path));
  const std::string p = Normalize(path);
  if (p.empty() || IsRoot(p)) return base_->RemoveFile(path);
  SEALWAL_ASSIGN_OR_RETURN(Entity * parent, ResolveDirLocked(Dirname(p)));
  Entity* e = ChildLocked(parent, Basename(p));
  if (e != nullptr) SEALWAL_RETURN_IF_ERROR(LoadContentLocked(e));  // to restore it after a power loss
  SEALWAL_RETURN_IF_ERROR(base_->RemoveFile(p));
  if (e != nullptr) {
    e->kind = Kind::kFile;
    DetachLocked(e);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "rename", from));
  const std::string f = Normalize(from);
  const std::string t = Normalize(to);
  if (f.empty() || t.empty() || IsRoot(f) || IsRoot(t)) return base_->Rename(from, to);
  SEALWAL_ASSIGN_OR_RETURN(Entity * from_dir, ResolveDirLocked(Dirname(f)));
  SEALWAL_ASSIGN_OR_RETURN(Entity * to_dir, ResolveDirLocked(Dirname(t)));
  Entity* e = ChildLocked(from_dir, Basename(f));
  Entity* replaced = ChildLocked(to_dir, Basename(t));
  if (replaced != nullptr && replaced != e) SEALWAL_RETURN_IF_ERROR(LoadContentLocked(replaced));
  SEALWAL_RETURN_IF_ERROR(base_->Rename(f, t));
  if (e == nullptr || e == replaced) return absl::OkStatus();
  if (replaced != nullptr) {
    if (replaced->kind == Kind::kDir) replaced->complete = true;  // it was empty
    DetachLocked(replaced);
  }
  DetachLocked(e);
  AttachLocked(e, to_dir, Basename(t));
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(BeginMutationLocked(kAnyGeneration, "syncdir", dir));
  const std::string p = Normalize(dir);
  absl::StatusOr<Entity*> resolved =
      p.empty() ? absl::StatusOr<Entity*>(nullptr) : ResolveDirLocked(p);
  SEALWAL_RETURN_IF_ERROR(BeginSyncLocked(resolved.ok() ? *resolved : nullptr, dir));
  if (p.empty()) return base_->SyncDir(dir);
  SEALWAL_RETURN_IF_ERROR(resolved.status());
  Entity* d = *resolved;
  if (absl::Status s = base_->SyncDir(p); !s.ok()) {
    MarkSyncFailedLocked(d);
    return s;
  }
  d->kind = Kind::kDir;
  // The old durable entries of d lose their durable name...
  for (const auto& [name, id] : d->durable) {
    Entity* x = GetLocked(id);
    if (x != nullptr && x->dur_parent == d->id && x->dur_name == name) {
      x->dur_parent = kNoId;
      x->dur_name.clear();
    }
  }
  // ...and the current ones get it here, leaving any other durable listing
  // (a cross-directory rename is durable once its destination is synced).
  for (const auto& [name, id] : d->current) {
    Entity* x = GetLocked(id);
    if (x == nullptr) continue;
    if (Entity* old = GetLocked(x->dur_parent)) {
      auto it = old->durable.find(x->dur_name);
      if (it != old->durable.end() && it->second == x->id) old->durable.erase(it);
    }
    x->dur_parent = d->id;
    x->dur_name = name;
  }
  d->durable = d->current;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileLock>> FaultInjectionFileSystem::LockFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  SEALWAL_RETURN_IF_ERROR(CheckLiveLocked(kAnyGeneration));
  SEALWAL_ASSIGN_OR_RETURN(auto base_lock, base_->LockFile(path));
  auto slot = std::make_shared<LockSlot>();
  slot->base = std::move(base_lock);
  std::erase_if(locks_, [](const std::weak_ptr<LockSlot>& w) { return w.expired(); });
  locks_.push_back(slot);
  return std::unique_ptr<FileLock>(new FileLockImpl(this, std::move(slot), path));
}

// ---------------------------------------------------------------------------
// Power loss.

absl::Status FaultInjectionFileSystem::RecreateLocked(Entity* e, const std::string& path) {
  if (e->kind == Kind::kDir) {
    SEALWAL_RETURN_IF_ERROR(base_->CreateDir(path, e->mode != 0 ? e->mode : 0700));
    for (const auto& [name, id] : std::map<std::string, int64_t>(e->current)) {
      DetachLocked(GetLocked(id));  // gone with the old directory
    }
    e->complete = true;
    return absl::OkStatus();
  }
  WritableFileOptions options;
  options.mode = e->mode != 0 ? e->mode : 0600;
  SEALWAL_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path, options));
  if (e->loaded) {
    SEALWAL_RETURN_IF_ERROR(file->Append(e->content.stored_durable()));
    SEALWAL_RETURN_IF_ERROR(file->Truncate(e->content.durable_size()));
    e->content.Revert();
  }
  e->kind = Kind::kFile;
  e->full_rewrite = false;
  return file->Close();
}

absl::Status FaultInjectionFileSystem::RevertContentLocked(Entity* e) {
  WritableFileOptions options;
  options.disposition = WritableFileOptions::Disposition::kOpenExisting;
  SEALWAL_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(PathOfLocked(*e), options));
  const Content& c = e->content;
  if (e->full_rewrite) {
    SEALWAL_RETURN_IF_ERROR(file->Truncate(0));
    SEALWAL_RETURN_IF_ERROR(file->Append(c.stored_durable()));
    SEALWAL_RETURN_IF_ERROR(file->Truncate(c.durable_size()));
  } else {
    SEALWAL_RETURN_IF_ERROR(file->Truncate(c.durable_size()));
    constexpr uint64_t kChunk = 1 << 20;  // bounded memory for big zero regions
    for (const Range& r : c.Regions()) {
      const uint64_t end = std::min(r.end, c.durable_size());
      for (uint64_t pos = r.begin; pos < end; pos += kChunk) {
        SEALWAL_RETURN_IF_ERROR(file->Seek(pos));
        SEALWAL_RETURN_IF_ERROR(file->Append(c.DurableBytes(pos, std::min(end, pos + kChunk))));
      }
    }
  }
  SEALWAL_RETURN_IF_ERROR(file->Close());
  e->content.Revert();
  e->full_rewrite = false;
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::DeleteTreeLocked(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> names = base_->ListDir(path);
  if (names.ok()) {
    for (const std::string& name : *names) SEALWAL_RETURN_IF_ERROR(DeleteTreeLocked(JoinPath(path, name)));
    return base_->RemoveDir(path);
  }
  absl::Status s = base_->RemoveFile(path);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status FaultInjectionFileSystem::DropUnsyncedData(bool keep_torn_prefix) {
  return DropUnsyncedData(keep_torn_prefix ? TornWrite::kPrefixKept : TornWrite::kDropped);
}

absl::Status FaultInjectionFileSystem::DropUnsyncedData(TornWrite torn_mode,
                                                        uint64_t zeroed_sectors) {
  absl::MutexLock lock(&mu_);
  Entity* torn = GetLocked(torn_entity_);
  if (torn_mode != TornWrite::kDropped && torn != nullptr && torn->loaded) {
    if (torn_mode == TornWrite::kLastSectorsZeroed && torn_info_ &&
        torn_info_->torn_end > torn_info_->begin && zeroed_sectors > 0) {
      // The sectors holding the write's last bytes, counted back from its
      // torn end, clipped to the write: older bytes were on disk already.
      const uint64_t end = std::min(torn_info_->torn_end, torn->content.size());
      const uint64_t last_sector = (end - 1) / kSectorSize * kSectorSize;
      const uint64_t back = (zeroed_sectors - 1) * kSectorSize;
      const uint64_t begin =
          std::max(torn_info_->begin, last_sector >= back ? last_sector - back : 0);
      if (begin < end) {
        torn->content.Write(begin, std::string(end - begin, '\0'));
        torn->full_rewrite = true;  // the base holds the real bytes: rewrite it
      }
    }
    torn->content.Sync();
  }
  torn_entity_ = kNoId;
  torn_info_.reset();
  InvalidateLocked("power lost");

  // 1. The durable tree: what the roots reach through durable listings.
  // `dirs` is in breadth-first (top-down) order.
  std::unordered_set<int64_t> durable;
  std::vector<Entity*> dirs;
  for (const auto& [path, id] : roots_) {
    durable.insert(id);
    dirs.push_back(GetLocked(id));
  }
  for (size_t i = 0; i < dirs.size(); ++i) {
    for (const auto& [name, id] : dirs[i]->durable) {
      Entity* x = GetLocked(id);
      if (x == nullptr || !durable.insert(id).second) continue;
      if (x->kind != Kind::kFile) dirs.push_back(x);
    }
  }

  // 2. Move (or recreate) every durable entity to its durable name. Top-down,
  // so a directory is in place before its entries are placed in it.
  auto present = [this](const Entity* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (e != nullptr && e->root_path.empty()) e = GetLocked(e->cur_parent);
    return e != nullptr;
  };
  for (Entity* d : dirs) {
    const std::string dir_path = PathOfLocked(*d);
    for (const auto& [name, id] : d->durable) {
      Entity* x = GetLocked(id);
      if (x == nullptr || (x->cur_parent == d->id && x->cur_name == name)) continue;
      const std::string target = ChildPath(dir_path, name);
      if (auto occ = d->current.find(name); occ != d->current.end()) {
        // Something newer holds the name: park it; step 3 deletes it or a
        // later iteration moves it to its own durable name.
        Entity* o = GetLocked(occ->second);
        const std::string stash = absl::StrCat(".fault-injection-stash-", o->id);
        SEALWAL_RETURN_IF_ERROR(base_->Rename(target, ChildPath(dir_path, stash)));
        DetachLocked(o);
        AttachLocked(o, d, stash);
      }
      if (present(x)) {
        SEALWAL_RETURN_IF_ERROR(base_->Rename(PathOfLocked(*x), target));
        DetachLocked(x);
      } else {
        SEALWAL_RETURN_IF_ERROR(RecreateLocked(x, target));
      }
      AttachLocked(x, d, name);
    }
  }

  // 3. Delete everything that is not durable (it all hangs off durable dirs).
  for (Entity* d : dirs) {
    std::vector<std::pair<std::string, int64_t>> doomed;
    for (const auto& [name, id] : d->current) {
      if (!durable.contains(id)) doomed.emplace_back(name, id);
    }
    const std::string dir_path = PathOfLocked(*d);
    for (const auto& [name, id] : doomed) {
      SEALWAL_RETURN_IF_ERROR(DeleteTreeLocked(ChildPath(dir_path, name)));
      DetachLocked(GetLocked(id));
    }
  }

  // 4. Durable files get their durable bytes back.
  for (int64_t id : durable) {
    Entity* x = GetLocked(id);
    if (x->kind == Kind::kFile && x->loaded && (x->full_rewrite || x->content.Dirty())) {
      SEALWAL_RETURN_IF_ERROR(RevertContentLocked(x));
    }
  }

  // 5. Forget what did not survive.
  std::vector<int64_t> lost;
  for (const auto& [id, e] : entities_) {
    if (!durable.contains(id)) lost.push_back(id);
  }
  for (int64_t id : lost) entities_.erase(id);
  return absl::OkStatus();
}

}  // namespace sealwal::env
