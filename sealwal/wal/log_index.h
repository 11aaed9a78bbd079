// sealwal/wal/log_index.h: what a LogReader (log_reader.h) keeps, shared
// between the LogReader handle and the Wal that feeds it appends, and the
// sinks through which the one recovery pass (Wal::Recover) hands entry
// records either to ReadAll (materialized) or to the index. Internal to the
// wal target.
//
// Index layout (docs/architecture.md, "Memory"): per live entry one
// 16-byte EntrySlot, held in blocks of 4096 (no doubling reallocation, so
// the index never needs more than its size plus one block):
//   where        8 bytes  segment slot (high 24 bits, an index into the
//                         segment table) | offset of the frame's length
//                         word in that file (low 40 bits: segments < 1 TiB)
//   frame_bytes  4 bytes  the whole frame: length word + record + padding
//   prev_crc     4 bytes  the CRC chain value before this record, so that a
//                         re-read record is checked on its own
// Terms are kept as runs (first index, term): one 16-byte run per term
// change, not per entry; Term(i) is a binary search over the runs.
#ifndef SEALWAL_WAL_LOG_INDEX_H_
#define SEALWAL_WAL_LOG_INDEX_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sealwal/env/file_system.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/log_reader.h"
#include "sealwal/wal/payload_codec.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::wal {

struct EntrySlot {
  uint64_t where = 0;
  uint32_t frame_bytes = 0;
  uint32_t prev_crc = 0;
};
static_assert(sizeof(EntrySlot) == 16, "the index promises 16 bytes per entry");

inline constexpr int kSlotOffsetBits = 40;
inline constexpr uint64_t kSlotOffsetMask = (uint64_t{1} << kSlotOffsetBits) - 1;

// A vector of EntrySlots in fixed blocks: appends never copy the index,
// and dropping a prefix (CompactTo) frees whole blocks.
class SlotArray {
 public:
  static constexpr size_t kBlock = 4096;
  size_t size() const { return end_ - begin_; }
  EntrySlot& operator[](size_t i) {
    const size_t k = begin_ + i;
    return blocks_[k / kBlock][k % kBlock];
  }
  const EntrySlot& operator[](size_t i) const {
    const size_t k = begin_ + i;
    return blocks_[k / kBlock][k % kBlock];
  }
  void push_back(const EntrySlot& s);
  void Truncate(size_t n);  // keeps the first n
  void DropFront(size_t n);
  // Memory of the live blocks (plus 8 bytes per block for the table).
  size_t bytes() const;

 private:
  std::vector<std::unique_ptr<EntrySlot[]>> blocks_;  // null once dropped
  size_t begin_ = 0;
  size_t end_ = 0;
};

// What the recovery pass found besides the entries (Wal::Recover);
// `filled` says whether the rest is meaningful after an error.
struct RecoveredState {
  bool filled = false;
  bool has_metadata = false;
  std::string metadata;  // plaintext
  raftpb::HardState hardstate;
  bool torn_tail = false;
  std::string torn_detail;
};

// One entry written by Save, for LogState::Publish.
struct AppendedEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t offset = 0;
  uint32_t frame_bytes = 0;
  uint32_t prev_crc = 0;
};

// Everything a LogReader knows; one mutex guards it. The Wal holds a
// shared_ptr to publish appends; the LogReader holds one to read.
class LogState {
 public:
  LogState(env::FileSystem* fs, const PayloadCodec* codec, int decode_threads,
           const LogReaderOptions& options, SnapshotPosition snap);

  // --- building (the scan and Save) ---
  // The slot of segment `seq` at `path`, added when new.
  uint32_t SegmentSlot(uint64_t seq, const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Entry `index` (<= LastIndex()+1) at (slot, offset): drops every entry
  // from `index` on first (a later write of an index replaces the tail).
  void Put(uint64_t index, uint64_t term, uint32_t seg, uint64_t offset, uint32_t frame_bytes,
           uint32_t prev_crc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void TruncateFrom(uint64_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Save's entries, all in the segment `seq` at `path`.
  void Publish(uint64_t seq, const std::string& path, const std::vector<AppendedEntry>& ents);
  // True when entry `index` is live and lives at `where`.
  bool IsLiveAt(uint64_t index, uint64_t where) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // --- reading (LogReader) ---
  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes);
  absl::Status CompactTo(uint64_t index);
  absl::Status RestartAfter(uint64_t index, uint64_t term);
  LogReader::Stats stats() const;

  mutable absl::Mutex mu;

  // Set once by the recovery pass, read-only afterwards.
  RecoveredState recovered;

 private:
  struct Segment {
    uint64_t seq = 0;
    std::string path;
    std::unique_ptr<env::RandomAccessFile> file;  // opened on first read
  };
  struct TermRun {
    uint64_t first_index;
    uint64_t term;
  };
  struct Cached {
    raftpb::Entry entry;
    size_t bytes;
    std::list<uint64_t>::iterator lru;
  };

  uint64_t LastLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return first_ + slots_.size() - 1; }
  uint64_t TermLocked(uint64_t i) const ABSL_SHARED_LOCKS_REQUIRED(mu);
  // Reads entries [lo, hi) from disk into *out (appended), checked against
  // the index (length, CRC, index) but not decoded.
  absl::Status ReadRange(uint64_t lo, uint64_t hi, std::vector<raftpb::Entry>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // One attempt of Entries; *restart when the index was truncated while
  // the mutex was released for decoding.
  absl::StatusOr<std::vector<raftpb::Entry>> EntriesOnce(uint64_t lo, uint64_t hi,
                                                         uint64_t max_bytes, bool* restart);
  const raftpb::Entry* CacheFind(uint64_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void CacheInsert(const raftpb::Entry& e, size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void CacheEraseIf(bool (*pred)(uint64_t index, uint64_t bound), uint64_t bound)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  env::FileSystem* const fs_;
  const PayloadCodec* const codec_;
  const int decode_threads_;
  const LogReaderOptions options_;
  uint64_t first_ ABSL_GUARDED_BY(mu);      // FirstIndex()
  uint64_t prev_term_ ABSL_GUARDED_BY(mu);  // the term of first_ - 1 (snapshot or compaction)
  SlotArray slots_ ABSL_GUARDED_BY(mu);     // slots_[k] is entry first_ + k
  std::vector<TermRun> runs_ ABSL_GUARDED_BY(mu);
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu);
  size_t last_segment_ ABSL_GUARDED_BY(mu) = 0;  // lookup hint for SegmentSlot
  std::unordered_map<uint64_t, Cached> cache_ ABSL_GUARDED_BY(mu);
  std::list<uint64_t> lru_ ABSL_GUARDED_BY(mu);  // front: most recent
  size_t cached_bytes_ ABSL_GUARDED_BY(mu) = 0;
  std::string read_buf_ ABSL_GUARDED_BY(mu);
  LogReader::Stats stats_ ABSL_GUARDED_BY(mu);
  // Bumped whenever entries leave the index (TruncateFrom, CompactTo, a
  // restart): an Entries call that decoded without the mutex starts over.
  uint64_t truncations_ ABSL_GUARDED_BY(mu) = 0;
};

// Where the recovery pass (Wal::Recover) puts entry records: Parse reads an
// entry record's index and term; Add keeps the entry Parse just read as
// entry `index` (every entry from `index` on is replaced); Decode runs once
// the records are read, with a codec only, and returns the first entry in
// index order that failed to decode (PayloadDecodeError), keeping the ones
// before it.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  virtual absl::Status Parse(const Record& rec, uint64_t* index, uint64_t* term) = 0;
  // `frame_bytes` and `prev_crc` describe the record's frame (see EntrySlot).
  virtual absl::Status Add(const Record& rec, uint64_t index, uint32_t frame_bytes,
                           uint32_t prev_crc) = 0;
  virtual absl::Status Decode() = 0;
};

// ReadAll's sink: every live entry, parsed and decoded in memory.
std::unique_ptr<EntrySink> NewMaterializingSink(SnapshotPosition start, const PayloadCodec* codec,
                                                int decode_threads,
                                                std::vector<raftpb::Entry>* ents);
// The LogReader's sink: positions into `state`; with verify_payloads and a
// codec every entry is decoded on decode threads while the scan goes on,
// and its plaintext dropped unless `visitor` (may be null) is to see it.
std::unique_ptr<EntrySink> NewIndexSink(LogState* state, const PayloadCodec* codec,
                                        int decode_threads, bool verify_payloads,
                                        EntryVisitor* visitor);

// The status of an entry record that is not a raftpb.Entry.
absl::Status EntryParseError();

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_LOG_INDEX_H_
