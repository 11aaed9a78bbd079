#include "sealwal/wal/segment_pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::wal {
namespace {

constexpr char kTmpSuffix[] = ".tmp";
constexpr size_t kZeroChunk = 1 << 20;

}  // namespace

absl::Status PrepareSpace(env::WritableFile* f, uint64_t from, uint64_t size,
                          Preallocation mode, const std::atomic<bool>* cancel) {
  if (size <= from) return absl::OkStatus();
  SEALWAL_RETURN_IF_ERROR(f->Fallocate(from, size - from));
  if (mode == Preallocation::kZeroFill) {
    static const std::string* const zeros = new std::string(kZeroChunk, '\0');
    SEALWAL_RETURN_IF_ERROR(f->Seek(from));
    for (uint64_t off = from; off < size; off += kZeroChunk) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return absl::CancelledError("wal: segment preparation cancelled");
      }
      SEALWAL_RETURN_IF_ERROR(f->Append(absl::string_view(*zeros).substr(
          0, static_cast<size_t>(std::min<uint64_t>(kZeroChunk, size - off)))));
    }
    SEALWAL_RETURN_IF_ERROR(f->Sync());
  }
  return f->Seek(from);
}

SegmentPipeline::SegmentPipeline(env::FileSystem* fs, std::string dir, uint64_t size,
                                 Preallocation mode)
    : fs_(fs), dir_(std::move(dir)), size_(size), mode_(mode), thread_([this] { Run(); }) {}

SegmentPipeline::~SegmentPipeline() { Shutdown(); }

void SegmentPipeline::Shutdown() {
  absl::MutexLock j(&join_mu_);
  cancel_.store(true, std::memory_order_relaxed);
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (!thread_.joinable()) return;
  thread_.join();
  absl::MutexLock l(&mu_);
  if (ready_.has_value() && ready_->ok()) {
    // Nobody took it: remove it, as etcd's pipeline does on close.
    std::string path = (*ready_)->path;
    ready_.reset();
    fs_->RemoveFile(path).IgnoreError();
  }
}

void SegmentPipeline::Request() {
  absl::MutexLock l(&mu_);
  want_ = true;
}

absl::StatusOr<SegmentPipeline::Prepared> SegmentPipeline::Take() {
  absl::MutexLock l(&mu_);
  want_ = true;
  mu_.Await(absl::Condition(
      +[](SegmentPipeline* p) { return p->stop_ || p->ready_.has_value(); }, this));
  if (stop_ && !ready_.has_value()) {
    return absl::FailedPreconditionError("wal: segment preparation stopped (the WAL failed)");
  }
  absl::StatusOr<Prepared> r = std::move(*ready_);
  ready_.reset();
  want_ = false;
  return r;
}

void SegmentPipeline::Run() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](SegmentPipeline* p) { return p->stop_ || (p->want_ && !p->ready_.has_value()); },
          this));
      if (stop_) return;
    }
    absl::StatusOr<Prepared> r = Alloc();
    absl::MutexLock l(&mu_);
    ready_ = std::move(r);
  }
}

absl::StatusOr<SegmentPipeline::Prepared> SegmentPipeline::Alloc() {
  Prepared p;
  p.path = env::JoinPath(dir_, absl::StrCat(count_++ % 2, kTmpSuffix));
  // Fresh, never through what a crash left or someone planted at the name.
  SEALWAL_ASSIGN_OR_RETURN(p.file, env::NewTempFile(fs_, p.path, 0600));
  SEALWAL_ASSIGN_OR_RETURN(p.lock, fs_->LockFile(p.path));
  absl::Status s =
      PrepareSpace(p.file.get(), 0, size_, mode_.load(std::memory_order_relaxed), &cancel_);
  if (!s.ok()) {
    // Not left half-prepared under a name a later pipeline reuses.
    p.file.reset();
    p.lock.reset();
    fs_->RemoveFile(p.path).IgnoreError();
    return s;
  }
  return p;
}

}  // namespace sealwal::wal
