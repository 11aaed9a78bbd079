// sealwal/wal/segment_pipeline.h: the file side of the WAL's segments.
// SegmentPipeline prepares the next segment file ("0.tmp"/"1.tmp", as
// etcd's filePipeline) on a background thread so that a cut does not wait
// for preallocation; PrepareSpace reserves a segment's space. Internal to
// the wal target.
//
// Thread-safety: Request is called by the WAL's frame stage, Take by its
// I/O stage (tail_writer.h), Shutdown by either; the preparation runs on
// the pipeline's own thread. Shutdown (and the destructor) joins that
// thread and removes a prepared file nobody took.
#ifndef SEALWAL_WAL_SEGMENT_PIPELINE_H_
#define SEALWAL_WAL_SEGMENT_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {

// Reserves a segment's space: fallocate over [from, size), and with
// kZeroFill also zeros written there and fsynced so that later appends only
// overwrite data blocks. Leaves the file positioned at `from`. With
// `cancel`, stops between 1 MiB writes once it is true (kCancelled).
absl::Status PrepareSpace(env::WritableFile* f, uint64_t from, uint64_t size,
                          Preallocation mode, const std::atomic<bool>* cancel = nullptr);

// Preparation starts when the writer asks (once its tail is half full), so
// that zero-filling does not compete with the writer's fsyncs right after
// it opens.
class SegmentPipeline {
 public:
  struct Prepared {
    std::string path;
    std::unique_ptr<env::WritableFile> file;
    std::unique_ptr<env::FileLock> lock;
  };

  // `fs` is borrowed and must outlive the pipeline.
  SegmentPipeline(env::FileSystem* fs, std::string dir, uint64_t size, Preallocation mode);
  ~SegmentPipeline();
  SegmentPipeline(const SegmentPipeline&) = delete;
  SegmentPipeline& operator=(const SegmentPipeline&) = delete;

  // Starts preparing the next file if none is prepared or being prepared.
  void Request();
  // Waits for the prepared file and hands it over (or the error preparing
  // it returned); kFailedPrecondition after Shutdown.
  absl::StatusOr<Prepared> Take();
  // Stops preparing: waits for a preparation under way, removes what it
  // made. Idempotent; later Requests do nothing.
  void Shutdown();
  // How files prepared from now on reserve their space.
  void SetMode(Preallocation mode) { mode_.store(mode, std::memory_order_relaxed); }

 private:
  void Run();
  absl::StatusOr<Prepared> Alloc();

  env::FileSystem* const fs_;
  const std::string dir_;
  const uint64_t size_;
  std::atomic<Preallocation> mode_;
  uint64_t count_ = 0;  // only the pipeline thread touches it
  absl::Mutex mu_;
  bool stop_ = false;
  bool want_ = false;
  std::optional<absl::StatusOr<Prepared>> ready_;
  absl::Mutex join_mu_;  // one Shutdown joins
  // Set by Shutdown: a zero-fill under way stops at its next chunk (a WAL
  // closing does not wait for 64 MB of zeros it will remove).
  std::atomic<bool> cancel_{false};
  std::thread thread_;  // last: starts after the fields above exist
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_SEGMENT_PIPELINE_H_
