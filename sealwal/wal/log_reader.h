// sealwal/wal/log_reader.h: a recovered WAL served from disk in bounded
// memory, as Raft's Storage needs it (Entries, Term, FirstIndex,
// LastIndex), instead of the whole log in memory as Wal::ReadAll returns it.
//
// A LogReader is built by one scan of the WAL from a snapshot position,
// with exactly Wal::ReadAll's semantics (CRC chain, metadata compared as
// plaintext, a later entry whose index was seen before replaces the earlier
// tail as in etcd, the last HardState wins, a torn tail ends the log in read
// mode and is zeroed in write mode). The scan keeps, per live entry, 16
// bytes: where its frame is (segment, offset), the frame's size and the CRC
// chain value before it; terms are kept as runs, one per term change (the
// exact layout is in sealwal/wal/log_index.h and docs/architecture.md,
// "Memory"). Entries are re-read from disk, checked against their CRC again
// and decoded through the codec (WalOptions::codec) when asked for; a
// bounded LRU cache (LogReaderOptions::cache_bytes) keeps recently read
// decoded entries.
//
// Getting one:
//   LogReader::Open(dir, snap, options)    read-only, no locks: OpenForRead
//                                          + Wal::ReadAllIndexed
//   Wal::ReadAllIndexed(options, &reader)  on a Wal from Open (write mode):
//                                          recovers in one pass, prepares the
//                                          tail, and from then on every
//                                          successful Save is visible to the
//                                          reader (the Wal publishes each
//                                          Save's entries and their positions
//                                          to it; the caller does nothing)
//
// Payload authentication: with LogReaderOptions::verify_payloads (the
// default) and a codec, the scan decodes (decrypts and authenticates) every
// entry payload on WalOptions::decode_threads threads while it reads, and
// drops the plaintext: an entry that does not decode is found at recovery,
// as ReadAll finds it, not later by the consensus layer. Off, the scan
// checks only the CRC chain and metadata, and a payload that fails is
// reported when it is read (Entries returns the error).
//
// Indexes: FirstIndex() is the snapshot index + 1 (or the CompactTo index
// + 1); LastIndex() is the last live entry (FirstIndex() - 1 when there is
// none). Term(FirstIndex() - 1) is the snapshot's (or compaction point's)
// term, as Raft's dummy entry.
//
// Errors: kOutOfRange for an index outside the log. Raft's errors map onto
// it by the message's first word and by the index: below FirstIndex() - 1
// for Term (below FirstIndex() for Entries' lo) is "compacted:"
// (raft.ErrCompacted); above LastIndex() (hi above LastIndex() + 1) is
// "unavailable:" (raft.ErrUnavailable). kInvalidArgument for lo > hi.
// kDataLoss (WalErrorClass kCrcMismatch) when a frame re-read from disk no
// longer matches what the scan saw (length, CRC, index); the codec's
// verdict (class kDecryptFailed: kDataLoss, or kNotFound for a missing key)
// when a payload fails to decode; the file system's status for I/O errors
// (kNotFound when a segment file was removed).
//
// Ownership and lifetime: the reader borrows WalOptions::fs and
// WalOptions::codec (both must outlive it) and the segment files, which it
// opens by path on first use and keeps open; it does not borrow the Wal: it
// may outlive it (appends stop when the Wal is destroyed or closed) and
// keeps working on the files. Wal::ReleaseLockTo changes nothing for the
// reader; removing segment files does: call CompactTo(i) first, where i is
// at or above the last entry of every removed segment (a Raft snapshot's
// index), so that no removed file is read again.
//
// Thread-safety: all methods are safe to call from several threads and
// concurrently with the Wal's Save (one internal mutex; a Save's entries
// become visible atomically once it returned OK, after they were written
// and synced). Entries reads and checks frames under the mutex and decodes
// them without it (on up to WalOptions::decode_threads helper threads that
// never outlive the call), so concurrent callers overlap; should entries
// leave the index meanwhile (a Save overriding them, CompactTo) the call
// starts over, and a result is always one consistent view of the log.
#ifndef SEALWAL_WAL_LOG_READER_H_
#define SEALWAL_WAL_LOG_READER_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::wal {

struct WalOptions;  // wal.h
class LogState;     // internal (log_index.h)

// One entry as a recovery scan hands it to an EntryVisitor: plaintext data
// (decoded through the codec), valid only during the Visit call.
struct EntryView {
  uint64_t index = 0;
  uint64_t term = 0;
  int32_t type = 0;  // raftpb::EntryType
  absl::string_view data;
};

// Sees the content of a recovery scan as it is read, so that one pass can
// check or hash a whole log (`wal verify`, `store verify`) without reading
// it back from disk. Calls come in log order from one helper thread at a
// time (never concurrently), and all of them before the scan returns.
//
// Every entry the scan accepts is visited once, decoded; with a codec this
// decodes every payload, as verify_payloads does. An entry whose payload
// fails to decode is not visited. When a later entry reuses an index seen
// before (etcd's rule: it replaces the tail from there), Truncate(index)
// comes first: visits from `index` on are void. So when the scan returns OK,
// the visits with the truncations applied are exactly the log
// (FirstIndex()..LastIndex()); after an error they are a partial view.
class EntryVisitor {
 public:
  virtual ~EntryVisitor() = default;
  virtual void Visit(const EntryView& entry) = 0;
  virtual void Truncate(uint64_t index) = 0;
};

struct LogReaderOptions {
  // Bytes of decoded entries kept in the LRU cache (entry data plus
  // index/term/type); 0 disables the cache (a reader that streams once,
  // such as `wal verify`). Entries larger than a quarter of it are not
  // cached.
  size_t cache_bytes = size_t{8} << 20;
  // Decode every entry payload during the scan (see above). Without a
  // codec there is nothing to decode and this changes nothing.
  bool verify_payloads = true;
  // Borrowed, may be null; must outlive the scan (Open / ReadAllIndexed).
  EntryVisitor* visitor = nullptr;
};

class LogReader {
 public:
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Opens `dir` read-only at `snap` (Wal::OpenForRead) and scans it. On
  // error, as Wal::ReadAll: for kSnapshotNotFound and kDecryptFailed *out
  // still holds a reader over what ReadAll would return with the error (the
  // entries before the first that failed to decode); otherwise *out is null.
  static absl::Status Open(const std::string& dir, SnapshotPosition snap,
                           const WalOptions& wal_options, const LogReaderOptions& options,
                           std::unique_ptr<LogReader>* out);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  // The term of entry i, from memory (no I/O).
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Entries [lo, hi) (Raft's Storage.Entries: hi is exclusive), decoded,
  // at most max_bytes of them by raftpb.Entry::ByteSizeLong of the
  // plaintext entries, but always the first one when lo < hi.
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes = std::numeric_limits<uint64_t>::max()) const;
  // Forgets entries up to and including `index` (FirstIndex() becomes
  // index + 1, Term(index) stays answerable): call it after a snapshot at
  // `index`, before segments holding them are removed. kOutOfRange when
  // index > LastIndex(); a no-op when index < FirstIndex().
  absl::Status CompactTo(uint64_t index);
  // Forgets every entry and restarts the log after a snapshot past its end
  // (a leader's snapshot installed on a follower): FirstIndex() becomes
  // index + 1, LastIndex() index, and Term(index) answers `term`; the
  // entries saved next start at index + 1. kInvalidArgument when
  // index <= LastIndex() (that is CompactTo's case).
  absl::Status RestartAfter(uint64_t index, uint64_t term);

  // What the recovery pass found (fixed at recovery).
  bool has_metadata() const;
  const std::string& metadata() const;  // plaintext
  const raftpb::HardState& hardstate() const;
  bool torn_tail() const;  // read mode only, as WalContents::torn_tail
  const std::string& torn_detail() const;

  struct Stats {
    size_t index_bytes = 0;   // memory of the slots and term runs
    size_t cached_bytes = 0;  // decoded entries in the cache
    uint64_t cache_hits = 0;
    uint64_t cache_misses = 0;
    uint64_t disk_reads = 0;  // RandomAccessFile::ReadAt calls
  };
  Stats stats() const;

 private:
  friend class Wal;
  explicit LogReader(std::shared_ptr<LogState> state);
  std::shared_ptr<LogState> state_;
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_LOG_READER_H_
