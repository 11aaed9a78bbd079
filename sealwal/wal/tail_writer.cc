#include "sealwal/wal/tail_writer.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::wal {
namespace {

// Buffers kept for reuse: enough for a full pipeline, and up to 64 MiB of
// capacity in all, so that a run of large batches (16 MB each) frames into
// memory already mapped instead of faulting in a fresh buffer every time.
constexpr size_t kMaxSpareBuffers = 64;
constexpr size_t kMaxSpareTotalBytes = 64 << 20;

uint64_t NowNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

TailWriter::TailWriter(env::FileSystem* fs, std::string dir, size_t depth)
    : fs_(fs), dir_(std::move(dir)), depth_(depth < 1 ? 1 : depth) {}

TailWriter::~TailWriter() { Shutdown().IgnoreError(); }

void TailWriter::Attach(std::unique_ptr<env::WritableFile> tail, std::string path,
                        uint64_t offset) {
  tail_ = std::move(tail);
  tail_path_ = std::move(path);
  file_offset_ = offset;
  attached_.store(true, std::memory_order_release);
}

void TailWriter::SetTailPath(std::string path) { tail_path_ = std::move(path); }

void TailWriter::AddSegment(std::unique_ptr<LockedSegment> seg) {
  std::unique_lock<std::mutex> l(mu_);
  segments_.push_back(std::move(seg));
}

void TailWriter::ReleaseLocksBefore(uint64_t index) {
  std::unique_lock<std::mutex> l(mu_);
  if (segments_.empty()) return;
  // Keep the segment that may hold `index` (the one before the first whose
  // first index is >= index) and everything after it.
  size_t first_kept = segments_.size() - 1;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i]->index >= index) {
      first_kept = i == 0 ? 0 : i - 1;
      break;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(first_kept));
}

absl::Status TailWriter::error() const {
  std::unique_lock<std::mutex> l(mu_);
  return error_;
}

absl::Status TailWriter::Fail(absl::Status s) {
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!error_.ok()) return error_;
    error_ = s;
  }
  cv_.notify_all();  // WaitForRoom returns the error
  // A failed WAL touches no file again: stop preparing the next segment
  // (this waits for a preparation under way and removes what it made),
  // rather than let a background thread go on writing to a failing disk.
  if (pipeline_ != nullptr) pipeline_->Shutdown();
  return s;
}

std::string TailWriter::TakeBuffer() {
  std::unique_lock<std::mutex> l(mu_);
  if (spare_.empty()) return std::string();
  std::string b = std::move(spare_.back());
  spare_.pop_back();
  spare_bytes_ -= b.capacity();
  return b;
}

WalStats TailWriter::stats() const {
  WalStats s;
  s.fsyncs = counters_.fsyncs.load(std::memory_order_relaxed);
  s.bytes_written = counters_.bytes_written.load(std::memory_order_relaxed);
  s.cuts = counters_.cuts.load(std::memory_order_relaxed);
  s.fsync_nanos = counters_.fsync_nanos.load(std::memory_order_relaxed);
  s.write_nanos = counters_.write_nanos.load(std::memory_order_relaxed);
  return s;
}

absl::Status TailWriter::RunInline(std::vector<TailOp> ops) {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return pending_ == 0 && !io_busy_; });
    io_busy_ = true;
    pending_ += ops.size();
  }
  absl::Status s = Process(&ops);
  {
    std::unique_lock<std::mutex> l(mu_);
    io_busy_ = false;
    Finished(&ops);
  }
  cv_.notify_all();
  return s;
}

absl::Status TailWriter::WaitForRoom() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return in_flight_ < depth_ || !error_.ok(); });
  return error_;
}

void TailWriter::Enqueue(std::vector<TailOp> ops) {
  {
    std::unique_lock<std::mutex> l(mu_);
    // Even after a failure the ops are queued: the writer's thread completes
    // them with the error in their turn, after the ops before them.
    for (TailOp& op : ops) {
      if (op.counted) ++in_flight_;
      ++pending_;
      queue_.push_back(std::move(op));
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_all();
}

absl::Status TailWriter::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return pending_ == 0 && !io_busy_; });
  return error_;
}

absl::Status TailWriter::Shutdown() {
  if (shut_down_) return absl::OkStatus();
  shut_down_ = true;
  Drain().IgnoreError();
  {
    std::unique_lock<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  absl::Status s;
  if (tail_ != nullptr) s = tail_->Close();
  tail_.reset();
  std::unique_lock<std::mutex> l(mu_);
  segments_.clear();
  return s;
}

void TailWriter::Run() {
  for (;;) {
    std::vector<TailOp> group;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || (!queue_.empty() && !io_busy_); });
      if (queue_.empty()) return;  // stopping, nothing left
      // What is queued is one group: one write each, one fdatasync. At most
      // half the depth, so that while a group syncs the caller can queue
      // the next one (a group of the whole depth would leave it nothing to
      // do but wait, and then leave this thread idle while it seals).
      const size_t max_group = std::max<size_t>(1, depth_ / 2);
      size_t counted = 0;
      while (!queue_.empty() && counted < max_group) {
        counted += queue_.front().counted ? 1 : 0;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      io_busy_ = true;
    }
    Process(&group).IgnoreError();  // every op got its status
    {
      std::unique_lock<std::mutex> l(mu_);
      io_busy_ = false;
      Finished(&group);
    }
    cv_.notify_all();
  }
}

void TailWriter::Finished(std::vector<TailOp>* ops) {
  for (TailOp& op : *ops) {
    if (op.counted) --in_flight_;
    --pending_;
    const size_t cap = op.bytes.capacity();
    if (spare_.size() < kMaxSpareBuffers && cap > 0 &&
        spare_bytes_ + cap <= kMaxSpareTotalBytes) {
      op.bytes.clear();
      spare_.push_back(std::move(op.bytes));
      spare_bytes_ += cap;
    }
  }
}

void TailWriter::Complete(TailOp* op, const absl::Status& s) {
  if (s.ok() && index_ != nullptr && !op->published.empty()) {
    index_->Publish(op->published_seq, op->published_path, op->published);
  }
  if (op->done) {
    Wal::Completion done = std::move(op->done);
    op->done = nullptr;
    done(s);
  }
}

absl::Status TailWriter::Process(std::vector<TailOp>* ops) {
  absl::Status s = error();
  std::vector<TailOp*> written;  // written, waiting for the next fdatasync
  bool need_sync = false;
  size_t i = 0;
  for (; s.ok() && i < ops->size(); ++i) {
    TailOp& op = (*ops)[i];
    if (op.kind == TailOp::Kind::kAppend) {
      s = Write(op.bytes);
      if (!s.ok()) break;
      need_sync |= op.sync;
      written.push_back(&op);
      continue;
    }
    // A cut syncs the old tail: what was written before it is durable.
    s = CloseTail(op.old_end);
    if (!s.ok()) break;
    for (TailOp* w : written) Complete(w, s);
    written.clear();
    need_sync = false;
    s = OpenNext(&op);
    if (!s.ok()) break;
    Complete(&op, s);
  }
  if (s.ok() && need_sync) s = SyncTail();
  // Completions in order: what was written, then the op that failed and
  // every op after it (all with the first error, when there was one).
  for (TailOp* w : written) Complete(w, s);
  for (; i < ops->size(); ++i) Complete(&(*ops)[i], s);
  return s;
}

absl::Status TailWriter::Write(absl::string_view bytes) {
  if (bytes.empty()) return absl::OkStatus();
  const uint64_t start = file_offset_;
  const uint64_t t0 = NowNanos();
  absl::Status s = tail_->Append(bytes);
  counters_.write_nanos.fetch_add(NowNanos() - t0, std::memory_order_relaxed);
  if (!s.ok()) {
    DiscardPartialWrite(start);
    return Fail(s);
  }
  file_offset_ += bytes.size();
  counters_.bytes_written.fetch_add(bytes.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status TailWriter::SyncTail() {
  const uint64_t t0 = NowNanos();
  absl::Status s = tail_->Sync();
  counters_.fsync_nanos.fetch_add(NowNanos() - t0, std::memory_order_relaxed);
  if (!s.ok()) return Fail(s);
  counters_.fsyncs.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

// A failed write (ENOSPC, EIO) may have put a prefix of the bytes into the
// file. A partial frame that ends inside a 512-byte sector has no all-zero
// sector, so readers (etcd's rule, kept for byte compatibility) take it for
// a CRC mismatch -- corruption that Repair rightly refuses -- and the WAL
// could not be reopened although every acknowledged record is intact. So
// cut the file back to `start`, the end of the last whole frame, through a
// fresh handle (the failed one refuses every call). Nothing at or after
// `start` was acknowledged. Truncating needs no free space, and its fsync
// is not a retry of a failed one: this runs only when a write failed. Best
// effort: the WAL is failed either way, and a leftover is still caught by
// readers.
void TailWriter::DiscardPartialWrite(uint64_t start) {
  if (tail_path_.empty()) return;  // a temporary no reader looks at
  env::WritableFileOptions wopts;
  wopts.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
  wopts.offset = start;
  auto f = fs_->NewWritableFile(tail_path_, wopts);
  if (!f.ok()) return;
  if ((*f)->Truncate(start).ok()) (*f)->Sync().IgnoreError();
  (*f)->Close().IgnoreError();
}

absl::Status TailWriter::CloseTail(uint64_t end) {
  if (end != file_offset_) {
    return Fail(absl::InternalError(absl::StrCat("wal: cut at offset ", end,
                                                 " but the tail is written to ", file_offset_)));
  }
  // Close the old tail at its used length (it was preallocated) and sync.
  if (absl::Status s = tail_->Truncate(end); !s.ok()) return Fail(s);
  SEALWAL_RETURN_IF_ERROR(SyncTail());
  if (absl::Status s = tail_->Close(); !s.ok()) return Fail(s);
  return absl::OkStatus();
}

absl::Status TailWriter::OpenNext(TailOp* op) {
  // From here on the old tail is closed: any error fails the WAL, or later
  // writes would go into a .tmp file that never becomes a segment.
  auto prepared = pipeline_->Take();
  if (!prepared.ok()) return Fail(prepared.status());
  tail_ = std::move(prepared->file);
  tail_path_.clear();  // until the rename, the new tail is a .tmp readers ignore
  file_offset_ = 0;
  SEALWAL_RETURN_IF_ERROR(Write(op->bytes));
  SEALWAL_RETURN_IF_ERROR(SyncTail());
  // The segment is complete before its name appears.
  if (absl::Status s = fs_->Rename(prepared->path, op->final_path); !s.ok()) return Fail(s);
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return Fail(s);
  tail_path_ = op->final_path;
  auto seg = std::make_unique<LockedSegment>();
  seg->path = op->final_path;
  seg->seq = op->seq;
  seg->index = op->first_index;
  seg->lock = std::move(prepared->lock);  // the lock follows the inode across rename
  AddSegment(std::move(seg));
  counters_.cuts.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace sealwal::wal
