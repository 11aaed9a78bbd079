// sealwal/wal/tail_writer.h: the I/O stage of a writable WAL. The Wal's
// calls encode, seal and frame records on the caller's thread (the frame
// stage) and hand the framed bytes here as TailOps; the TailWriter writes
// them to the tail segment, fdatasyncs, cuts segments and then reports each
// op durable, strictly in the order the ops were handed over.
//
// Two ways in, one code path:
//   RunInline(ops)   the synchronous calls (Save, SaveSnapshot, Sync,
//                    SwitchWriteKey, Close): waits until nothing is queued,
//                    then does the I/O on the caller's thread and returns
//                    its status. No thread is started for this.
//   Enqueue(ops)     pipelined submissions (Wal::Submit): queued for the
//                    writer's own thread (started on first use), which takes
//                    everything queued at once, writes it, and issues one
//                    fdatasync for the whole group (group commit).
// Only one of the two does I/O at any time (io_busy_), so the file state
// below is never touched by two threads at once.
//
// Errors are sticky: the first failed write, fsync, truncate, rename or
// directory sync fails the op it belongs to, every op queued behind it and
// every later call, with that first error; fsync is never retried, and an
// op is never reported durable unless the fdatasync covering its bytes
// returned OK. A failed write is cut back to the last whole frame
// (DiscardPartialWrite).
//
// Internal to the wal target. Thread-safety: every method may be called
// from the WAL's owning thread while the writer's thread runs; completions
// run on whichever thread did the I/O and must not call back into the Wal.
#ifndef SEALWAL_WAL_TAIL_WRITER_H_
#define SEALWAL_WAL_TAIL_WRITER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <condition_variable>
#include <mutex>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/log_index.h"
#include "sealwal/wal/segment_pipeline.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {

// One unit of work for the I/O stage, built by the frame stage.
struct TailOp {
  enum class Kind {
    kAppend,  // write `bytes` to the tail; fdatasync before completing if `sync`
    kCut,     // close the tail at old_end (synced), open the prepared next
              // segment with `bytes` (its crc/metadata/state records),
              // fsync it, rename it to final_path, fsync the directory
  };
  Kind kind = Kind::kAppend;
  std::string bytes;
  bool sync = false;
  // kCut only.
  uint64_t old_end = 0;
  uint64_t seq = 0;
  uint64_t first_index = 0;
  std::string final_path;
  // Entries to publish to the LogReader's index once durable.
  std::vector<AppendedEntry> published;
  uint64_t published_seq = 0;
  std::string published_path;
  // Called once, with OK when the op is durable or with the error that
  // stopped it. May be empty.
  Wal::Completion done;
  // A submission: counts against the pipeline depth until completed.
  bool counted = false;
};

// A locked segment of a writable WAL.
struct LockedSegment {
  std::string path;
  uint64_t seq = 0;
  uint64_t index = 0;
  std::unique_ptr<env::FileLock> lock;
};

class TailWriter {
 public:
  // `fs` is borrowed and must outlive the writer. `depth` bounds the
  // submissions in flight (WaitForRoom).
  TailWriter(env::FileSystem* fs, std::string dir, size_t depth);
  // Joins the thread after draining the queue (Shutdown).
  ~TailWriter();
  TailWriter(const TailWriter&) = delete;
  TailWriter& operator=(const TailWriter&) = delete;

  // Hands over the tail file, positioned at `offset` (its logical end);
  // `path` is its final name, or empty while it is a temporary no reader
  // looks at (SetTailPath gives the name once it has one). Before any op.
  void Attach(std::unique_ptr<env::WritableFile> tail, std::string path, uint64_t offset);
  void SetTailPath(std::string path);
  bool attached() const { return attached_.load(std::memory_order_acquire); }
  // The background segment preparation; borrowed, set once before any op.
  void SetSegmentPipeline(SegmentPipeline* pipeline) { pipeline_ = pipeline; }
  // The index of ReadAllIndexed's reader, fed with every durable op's
  // entries; borrowed (the Wal keeps it alive), set before any op.
  void SetIndex(LogState* index) { index_ = index; }

  void AddSegment(std::unique_ptr<LockedSegment> seg);
  // Wal::ReleaseLockTo: unlocks the segments wholly before `index`.
  void ReleaseLocksBefore(uint64_t index);

  // Waits for the queue to empty, then runs `ops` on this thread. Returns
  // the first error (sticky, see above).
  absl::Status RunInline(std::vector<TailOp> ops);
  // Blocks while `depth` submissions are in flight; returns the sticky
  // error, if any, instead of waiting.
  absl::Status WaitForRoom();
  // Queues `ops` for the writer's thread. If the writer has failed the ops
  // complete with the error (on this thread) instead.
  void Enqueue(std::vector<TailOp> ops);
  // Waits until every op handed over so far has completed; returns the
  // sticky error.
  absl::Status Drain();
  // Drains, stops the thread and closes the tail (Close: OK or the first
  // close error; the tail must have been synced by an op before).
  absl::Status Shutdown();

  // The first error, or OK.
  absl::Status error() const;
  // Fails the writer with `s` unless it failed already; returns the first
  // error. For failures found by the frame stage after it changed the
  // tail's state (a half-planned cut).
  absl::Status Fail(absl::Status s);

  // A buffer for the frame stage: one the I/O stage has finished with
  // (cleared, capacity kept) so that large batches do not allocate.
  std::string TakeBuffer();

  WalStats stats() const;

 private:
  void Run();
  // Does the I/O of `ops` in order and completes them. Only while io_busy_.
  absl::Status Process(std::vector<TailOp>* ops);
  absl::Status Write(absl::string_view bytes);
  absl::Status SyncTail();
  // A cut's two halves: the old tail closed at its end (synced), then the
  // next segment opened, made durable and named.
  absl::Status CloseTail(uint64_t end);
  absl::Status OpenNext(TailOp* op);
  void DiscardPartialWrite(uint64_t start);
  void Complete(TailOp* op, const absl::Status& s);
  // After Process: returns the ops' buffers and their count.
  // Called with mu_ held.
  void Finished(std::vector<TailOp>* ops);

  env::FileSystem* const fs_;
  const std::string dir_;
  const size_t depth_;
  SegmentPipeline* pipeline_ = nullptr;
  LogState* index_ = nullptr;

  // The I/O state: only the holder of io_busy_ (or the constructor,
  // Attach and Shutdown, with no I/O running) touches these.
  std::unique_ptr<env::WritableFile> tail_;
  std::string tail_path_;
  uint64_t file_offset_ = 0;  // where the next write goes
  std::atomic<bool> attached_{false};

  // std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread
  // locks, not those of a Debian (uninstrumented) Abseil. One condition
  // variable: the waiters are the owning thread and the I/O thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  std::deque<TailOp> queue_;
  bool io_busy_ = false;
  bool stop_ = false;
  size_t in_flight_ = 0;  // counted ops queued or running
  size_t pending_ = 0;    // all ops queued or running
  absl::Status error_;
  std::vector<std::unique_ptr<LockedSegment>> segments_;
  std::vector<std::string> spare_;
  size_t spare_bytes_ = 0;  // the capacity spare_ holds

  struct Counters {
    std::atomic<uint64_t> fsyncs{0}, bytes_written{0}, cuts{0}, fsync_nanos{0}, write_nanos{0};
  };
  Counters counters_;

  bool shut_down_ = false;  // owner thread only
  std::thread thread_;      // started by the first Enqueue
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_TAIL_WRITER_H_
