// sealwal/wal/wal.h: an etcd v3 byte-compatible segmented write-ahead log.
//
// Files (sealwal/wal/format.h, docs/format.md): a WAL is a directory of segments
// "%016x-%016x.wal" (sequence, index of the first entry that may follow).
// etcd 3.4's own code reads the directories this class writes, and this
// class reads etcd's. The newest segment (the tail) is preallocated to the
// segment size; a zero length word marks its end.
//
// Life cycle, as in etcd:
//   Create(dir, metadata)    builds the first segment in "<dir>.tmp" (crc 0,
//                            metadata, snapshot {0,0}), fsyncs it, renames
//                            the directory into place and fsyncs the parent:
//                            a crash leaves either no WAL or a whole one.
//   Open(dir, snap)          opens for appending: locks every segment from
//                            the one holding `snap` onwards. ReadAll must be
//                            called before Save.
//   OpenForRead(dir, snap)   reads without locking; tolerates a torn tail.
//   ReadAll()                metadata, last HardState, entries after snap.
//   ReadAllIndexed(opts, &r) the same recovery without the entries in
//                            memory: a LogReader (log_reader.h) indexes them
//                            (16 bytes each) and follows later Saves.
//   Save(hs, entries)        appends; fsyncs when entries are present or
//                            term/vote changed (raft.MustSync); cuts a new
//                            segment once the tail has grown past the size.
//   Submit(hs, entries, done) / Flush()
//                            Save without waiting: the batch is sealed and
//                            framed on the caller's thread, written and
//                            fsynced on the WAL's I/O thread; `done` fires
//                            in order once it is durable (group commit).
//   SaveSnapshot(snap)       appends a snapshot record; always fsyncs.
//   ReleaseLockTo(index)     unlocks segments wholly before `index` so that
//                            they may be garbage-collected.
//   SwitchWriteKey(codec)    seals later payloads with a new key: cuts a
//                            segment whose metadata is re-sealed.
//
// Reading goes through RecordReader (sealwal/wal/record_reader.h), which
// checks the CRC chain and gives each record's position; ReadAll is: read
// records, decode payloads (and metadata, compared as plaintext), prepare
// the tail for appending.
//
// Crash windows: a cut prepares the next segment as "N.tmp" (in the
// background), writes crc/metadata/state into it, fsyncs it, renames it to
// its final name and fsyncs the directory. A crash before the rename leaves
// a stray .tmp that readers ignore; after it, a complete segment. Records
// appended but not yet fsynced may be lost or torn; recovery treats a torn
// record at the end of the last segment as the end of the log (Repair or a
// write-mode open zeroes it), and any other CRC failure as corruption,
// which is never repaired silently. A record is only "torn" when nothing
// valid follows it: a damaged record (a zero sector, a zero or overlong
// length word) followed by records whose CRCs chain is damage inside the
// log (kCrcMismatch), because truncating there would drop records written
// after it (docs/format.md §7). A write that fails part-way (ENOSPC,
// EIO) is cut back to the last whole frame before the WAL gives up, so
// that a partial frame is never left to read as corruption.
//
// Directory names: a WAL whose directory's last component ends in
// "-encrypted" ("wal-v3-encrypted"; format.h, IsEncryptedDirName) is
// sealed, and is only opened with a codec that encrypts
// (PayloadCodec::encrypts()): Create, Open, OpenForRead (and so
// LogReader::Open), Verify and TranscodeWal (transcode.h) refuse it without
// one, before touching any file, with kFailedPrecondition naming the
// directory (it would read ciphertext as entry data and append plaintext).
// An encrypting codec on any other name is the caller's choice (the CLI's
// contract: a key makes a WAL encrypted); the codec then refuses plaintext
// records. Repair, ValidSnapshotEntries and OldestReadablePosition never
// look inside a payload, so they accept a null codec on any name (recovery
// without the key, docs/security.md). Plaintext WALs keep any other name
// (etcd's "member/wal").
//
// Errors: absl::Status. Every error carries a WalErrorClass (see below)
// that names the etcd error it corresponds to. After any failed write or
// fsync the WAL is failed for good: every later Save/SaveSnapshot/Sync/
// SwitchWriteKey returns the first error (fsync is never retried).
//
// Ownership: WalOptions::fs and WalOptions::codec (and a codec passed to
// SwitchWriteKey) are borrowed and must outlive the Wal.
//
// Thread-safety: a Wal is not thread-safe; the consensus layer calls it
// from one thread (or serialises calls itself). Internally the writing calls
// run in two stages (tail_writer.h): encoding, sealing and framing on the
// calling thread, file I/O either on the calling thread (Save and the other
// synchronous calls) or on the WAL's own I/O thread (Submit). Static functions are safe
// to call concurrently on different directories.
#ifndef SEALWAL_WAL_WAL_H_
#define SEALWAL_WAL_WAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sealwal/env/file_system.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/log_reader.h"
#include "sealwal/wal/payload_codec.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::wal {

class RecordWriter;     // internal (record_writer.h)
class SegmentPipeline;  // internal (segment_pipeline.h)
class TailWriter;       // internal (tail_writer.h)
struct TailOp;          // internal (tail_writer.h)
class EntrySink;        // internal (log_index.h)
struct AppendedEntry;   // internal (log_index.h)
struct RecoveredState;  // internal (log_index.h)

// Which etcd error a failed call corresponds to. `sealwal wal dump` prints
// these names; tests compare them with the classes in etcd's manifests.
enum class WalErrorClass {
  kNone,
  kUnexpectedEof,     // torn or truncated record (io.ErrUnexpectedEOF)
  kCrcMismatch,       // CRC chain broken: corruption
  kSnapshotMismatch,  // snapshot record at the index has another term
  kSnapshotNotFound,  // no snapshot record at the requested index
  kFileNotFound,      // no segment covers the requested position
  kMetadataConflict,  // segments disagree on metadata
  kSliceOutOfRange,   // an entry index leaves a gap
  kMaxEntrySizeExceeded,
  kDecryptFailed,     // the payload codec refused a payload
  kOther,
};
// The class stored in a status returned by this module (kOther for any
// status that carries none, kNone for OK).
WalErrorClass GetWalErrorClass(const absl::Status& status);
// "unexpected_eof", "crc_mismatch", ... as in etcd's manifests.
const char* WalErrorClassName(WalErrorClass c);
// The text etcd gives for the same error ("walpb: crc mismatch",
// "unexpected EOF", ...), without the detail our messages add (file,
// offset); the full message for classes where etcd has no fixed text.
std::string EtcdErrorText(const absl::Status& status);

// How the tail segment's space is reserved ahead of the writer.
enum class Preallocation {
  // Write zeros over the whole segment and fsync it before it is used, so
  // that appends overwrite already-written blocks and each fdatasync has no
  // file-system metadata to journal. Costs one extra write of the segment.
  kZeroFill,
  // fallocate(2) only, as etcd does: cheap to prepare, but the first write
  // into each unwritten extent makes fdatasync commit a journal entry.
  kFallocate,
};

struct WalOptions {
  env::FileSystem* fs = env::DefaultFileSystem();  // borrowed; must outlive the Wal
  uint64_t segment_size = kDefaultSegmentSize;
  Preallocation preallocation = Preallocation::kZeroFill;
  // Borrowed; must outlive the Wal. Null stores payloads as they are.
  PayloadCodec* codec = nullptr;
  // Decode entries on this many threads in ReadAll (1 = calling thread).
  int decode_threads = 2;
  // Submit: at most this many submissions in flight (not yet completed);
  // a further Submit waits for the oldest to complete.
  size_t pipeline_depth = 16;
  // How segments prepared after the first Submit reserve their space. A
  // pipelined WAL is bound by the disk's bandwidth, and zero-filling writes
  // every segment twice: measured on our 2-core VMs, `wal gen --pipeline
  // 16` ran 1.4-1.5x faster at batch 100 and 1000 with kFallocate, whose
  // extra journal commit per fdatasync a group of batches shares.
  Preallocation pipelined_preallocation = Preallocation::kFallocate;
};

// What ReadAll returns, as etcd's ReadAll: the metadata (has_metadata is
// false when no metadata record carried data), the last HardState seen and
// the entries after the snapshot position, later writes of an index
// replacing earlier ones.
struct WalContents {
  bool has_metadata = false;
  std::string metadata;
  raftpb::HardState hardstate;
  std::vector<raftpb::Entry> entries;
  // Read mode only: the log ended in a torn record (etcd's unexpected EOF),
  // which read mode treats as the end; torn_detail says where.
  bool torn_tail = false;
  std::string torn_detail;
};

// Counters for benchmarks and tests.
struct WalStats {
  uint64_t fsyncs = 0;         // fdatasync calls on segments
  uint64_t bytes_written = 0;  // frame bytes handed to the file system
  uint64_t cuts = 0;
  uint64_t fsync_nanos = 0;  // time spent in fdatasync (etcd's fsync histogram)
  uint64_t write_nanos = 0;  // time spent handing frames to the file system
};

class Wal {
 public:
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Creates a new WAL in `dir`, which must not exist or be empty
  // (kAlreadyExists otherwise); kFailedPrecondition when the codec does
  // not fit the directory's name (nothing is created). The metadata is written into every segment:
  // with a codec, sealed once per write key (every segment cut under one
  // key repeats the same stored bytes; SwitchWriteKey re-seals it).
  // On failure nothing is left behind: `dir` is not created and "<dir>.tmp"
  // is removed (unless the file system refuses even that).
  static absl::StatusOr<std::unique_ptr<Wal>> Create(const std::string& dir,
                                                     absl::string_view metadata,
                                                     const WalOptions& options = {});

  // Opens for appending at `snap` (a snapshot position written earlier by
  // SaveSnapshot, or {0,0}). kUnavailable when another writer holds a
  // segment lock; kNotFound (class kFileNotFound) when no segment covers
  // the position; kFailedPrecondition when the codec does not fit the
  // directory's name (nothing is locked or read).
  static absl::StatusOr<std::unique_ptr<Wal>> Open(const std::string& dir,
                                                   SnapshotPosition snap,
                                                   const WalOptions& options = {});
  // Opens for reading only: no locks, no writes, a torn tail ends the log.
  static absl::StatusOr<std::unique_ptr<Wal>> OpenForRead(const std::string& dir,
                                                          SnapshotPosition snap,
                                                          const WalOptions& options = {});

  // Reads the whole log once (a second call is kFailedPrecondition). On
  // success *out holds metadata (plaintext: decoded through the codec,
  // which must hold every key the read segments' metadata and entries were
  // sealed with), HardState and entries. Segments' metadata records must
  // agree: as stored bytes without a codec, as plaintext with one
  // (kMetadataConflict otherwise). On failure *out
  // holds what etcd's ReadAll would return with that error: everything
  // for kSnapshotNotFound, the entries before the first one that failed to
  // decode for kDecryptFailed, nothing otherwise. In write mode a torn tail
  // is an error (call Repair first), and the space after the last good
  // record is zeroed so that new records never mix with torn old ones.
  absl::Status ReadAll(WalContents* out);
  // Convenience: ReadAll into a new value; any error is returned as is.
  absl::StatusOr<WalContents> ReadAll();

  // ReadAll without the entries in memory: the same single pass over the
  // files, with the same checks, errors and tail preparation (write mode:
  // a torn tail is an error, the space after the last good record is
  // zeroed, the tail and directory are synced), but the live entries are
  // indexed (16 bytes each, sealwal/wal/log_reader.h) instead of returned;
  // metadata, HardState and the torn tail are on the reader. Use it instead
  // of ReadAll, not after it (either one may be called once; a second is
  // kFailedPrecondition). On a Wal fresh from Create it returns an empty
  // reader (FirstIndex 1) without reading anything.
  //
  // On success *out is a LogReader over the log; in write mode every later
  // successful Save publishes its entries (index, term, position) to that
  // reader before it returns, so the reader always serves what was saved
  // (an entry whose index was saved before replaces it and everything after
  // it, as on disk). A failed Save publishes nothing. After Close or the
  // Wal's destruction the reader keeps serving what it has. On error: as
  // ReadAll, for kSnapshotNotFound and kDecryptFailed *out still holds a
  // reader over what ReadAll would have returned; otherwise it is null.
  absl::Status ReadAllIndexed(const LogReaderOptions& options, std::unique_ptr<LogReader>* out);

  // Appends entries and then the HardState (when not empty). Entries must
  // be contiguous; an entry whose index was written before replaces it and
  // everything after it, as a new Raft leader's entries do. Fsyncs when
  // raft requires it. kFailedPrecondition before ReadAll or in read mode.
  // Memory: a batch is framed in one buffer (its entries' bytes plus a
  // little); the WAL keeps finished buffers for reuse, up to 64 MiB in all.
  absl::Status Save(const raftpb::HardState& hardstate,
                    absl::Span<const raftpb::Entry> entries);

  // Pipelined appends: what Save does, without waiting for the disk.
  // Submit checks, encodes (seals) and frames the batch on the calling
  // thread, hands the frames to the WAL's I/O thread and returns, so that
  // the next batch is sealed while this one is written and fdatasynced.
  // `done` is called exactly once for every Submit that returned OK: with
  // OK once the batch is durable (fdatasynced when raft needs a sync, as
  // for Save; written to the file otherwise), or with the error that lost
  // it. Completions fire strictly in submission order (interleaved in
  // order with the synchronous calls below, which first wait for every
  // submission before them). Submissions queued while the I/O thread syncs
  // are written together and share one fdatasync (group commit; a group is
  // at most half the depth, so that the caller seals the next group while
  // one syncs). At most
  // WalOptions::pipeline_depth submissions are in flight: Submit blocks
  // for the oldest to complete beyond that. Entries replace earlier ones
  // at the same index exactly as with Save; a ReadAllIndexed reader sees a
  // batch before its completion fires.
  //
  // Errors: a batch Save would refuse (a gap, a payload the codec refuses)
  // makes Submit return that error with nothing queued and `done` never
  // called; the WAL stays usable. A write or fsync error is sticky: it
  // completes the batch it hit and every batch queued after it with that
  // first error, and every later call returns it (fsync is never retried).
  // No completion reports a batch durable whose fdatasync did not return
  // OK.
  //
  // Thread-safety: call Submit, like every writing call, from one thread.
  // `done` runs on the WAL's I/O thread (or on the caller's thread inside a
  // synchronous call); it must be quick and must not call into this Wal.
  using Completion = absl::AnyInvocable<void(absl::Status)>;
  absl::Status Submit(const raftpb::HardState& hardstate, absl::Span<const raftpb::Entry> entries,
                      Completion done);
  // Waits until every submission has completed; returns the sticky error
  // (OK when every one was durable).
  absl::Status Flush();
  // The sticky error of a failed WAL; OK while it is usable (a refused
  // batch does not fail it).
  absl::Status error() const;
  // The last HardState saved (durable once synced: Sync).
  const raftpb::HardState& hardstate() const { return state_; }

  // Appends a snapshot record and fsyncs.
  absl::Status SaveSnapshot(SnapshotPosition snap);
  // Writes buffered records and fsyncs the tail.
  absl::Status Sync();
  // Switches the key new payloads are sealed with, while the WAL is open.
  // From this call on, entry payloads are encoded by `codec` (nullptr: keep
  // the current codec object, whose write key the caller has just changed;
  // a plaintext WAL passes nullptr and simply cuts). The call writes and
  // fsyncs what is buffered, then cuts a new segment whose metadata record
  // is re-encoded (re-sealed) from the plaintext metadata through the
  // codec, and returns once that segment is durable (fsynced, renamed,
  // directory fsynced). Entries already written are never re-encrypted: a
  // reader needs every key still used by the segments it reads (after
  // ReleaseLockTo past the new segment and removing the older ones, only
  // the new key). Readers compare metadata as plaintext, so the differing
  // ciphertexts of the segments before and after the switch agree.
  //
  // Ownership: `codec` is borrowed and must outlive the Wal (as
  // WalOptions::codec, which it replaces). Thread-safety: as every writing
  // call (not thread-safe); the caller must not change the codec's write
  // key while a Save is running, and should switch right after changing
  // it so that no Save seals under the new key in an old segment (which
  // would still read back, with every key present). Errors:
  // kFailedPrecondition before ReadAll, in read mode or after Close; any
  // failure to encode the metadata, write, fsync, cut or rename fails the
  // WAL for good (sticky, as Save): nothing is retried, and later calls
  // return that first error.
  absl::Status SwitchWriteKey(PayloadCodec* codec = nullptr);
  // Releases the locks of segments that hold only entries below `index`
  // (keeping the one that may hold `index`), as etcd's ReleaseLockTo.
  absl::Status ReleaseLockTo(uint64_t index);
  // Syncs (in write mode) and releases every lock. Idempotent: the first
  // call returns the sticky error of a failed WAL (nothing more could be
  // synced), later calls return OK.
  absl::Status Close();

  // Truncates a torn tail: when the last segment ends in a partial record,
  // copies the segment to "<name>.broken" (fsynced), truncates it after the
  // last good record and fsyncs it. OK when there was nothing to repair;
  // kDataLoss (kCrcMismatch etc.) when the damage is not a torn tail (for
  // a damaged record with valid records after it, the message names the
  // offsets and the last intact entry before and the first entry after
  // it), in which case nothing is modified. Returns true when it truncated. Needs
  // no key (options.codec may be null for an "-encrypted" directory).
  static absl::StatusOr<bool> Repair(const std::string& dir, const WalOptions& options = {});

  // Walks the log from `snap` checking the CRC chain, metadata and the
  // snapshot record, without returning entries (etcd's wal.Verify). With
  // options.codec, metadata records that differ as stored (a key switch)
  // are decoded and compared as plaintext (kDecryptFailed when the codec
  // lacks a key); entries are not decoded. kFailedPrecondition when the
  // codec does not fit the directory's name: an "-encrypted" directory
  // needs its key here, as for OpenForRead.
  static absl::Status Verify(const std::string& dir, SnapshotPosition snap,
                             const WalOptions& options = {});

  // The snapshot records whose index is covered by the last HardState's
  // commit, oldest first (etcd's ValidSnapshotEntries).
  static absl::StatusOr<std::vector<SnapshotPosition>> ValidSnapshotEntries(
      const std::string& dir, const WalOptions& options = {});

  // The oldest position the retained segments can be read from: {0, 0}
  // while the first segment is still there, else the oldest valid snapshot
  // record at or after the first segment's index (kNotFound when there is
  // none). Reading from it covers every entry the WAL still holds
  // (`verify` uses it).
  static absl::StatusOr<SnapshotPosition> OldestReadablePosition(const std::string& dir,
                                                                 const WalOptions& options = {});

  // OK when `codec` fits the directory's name (see "Directory names" at the
  // top of this file); otherwise kFailedPrecondition naming `dir`. With
  // `payloads` false (walks that never decode or encode a payload) a null
  // codec fits every name.
  static absl::Status CheckDirMatchesCodec(const std::string& dir, const PayloadCodec* codec,
                                           bool payloads = true);

  // Segment file names of `dir`, sorted (kNotFound when there are none).
  static absl::StatusOr<std::vector<std::string>> SegmentNames(const std::string& dir,
                                                               env::FileSystem* fs);

  const std::string& dir() const { return dir_; }
  // A snapshot of the counters (they are updated by the I/O stage).
  WalStats stats() const;
  // The index of the last entry written or read.
  uint64_t last_index() const { return last_index_; }

 private:
  Wal(std::string dir, const WalOptions& options);

  // Create's work once <dir>.tmp exists: the first segment, then the rename.
  static absl::StatusOr<std::unique_ptr<Wal>> CreateInTmpDir(const std::string& dir,
                                                             const std::string& tmp_dir,
                                                             absl::string_view metadata,
                                                             const WalOptions& options,
                                                             bool replace_empty_dir);
  static absl::StatusOr<std::unique_ptr<Wal>> OpenAt(const std::string& dir,
                                                     SnapshotPosition snap,
                                                     const WalOptions& options, bool write);
  // Seals metadata_ through the current codec into stored_metadata_.
  absl::Status EncodeMetadata();
  absl::Status EncodeHardState(const raftpb::HardState& hs);
  // The one recovery pass behind ReadAll and ReadAllIndexed: reads every
  // record, hands entry records to `sink`, decodes (sink->Decode) and
  // checks metadata, prepares the tail in write mode. Fills *found as
  // ReadAll fills its WalContents (entries aside) and returns ReadAll's
  // status; found->filled says whether *found is meaningful on error.
  absl::Status Recover(EntrySink* sink, RecoveredState* found);
  // Opens the tail found by ReadAll for appending at `offset`.
  absl::Status PrepareTail(uint64_t offset, uint32_t crc);
  // The frame stage of Save and Submit: checks, encodes and frames the
  // batch and turns it into ops for the I/O stage (none when nothing needs
  // writing yet). `hand_off` hands the frames over even when raft needs no
  // sync (Submit completes only what reached the file). Undoes everything
  // and returns the error when the batch is refused or fails to encode.
  absl::Status FrameSave(const raftpb::HardState& hs, absl::Span<const raftpb::Entry> entries,
                         bool hand_off, std::vector<TailOp>* ops);
  // Hands over the framed bytes (RecordWriter::SwapBuffer).
  std::string TakeBytes();
  // Moves the framed bytes into a new kAppend op; `sync` also flushes the
  // model of etcd's page writer, as etcd's sync does.
  TailOp TakeFrames(bool sync);
  // Frames a cut (the old tail's end, the next segment's opening records)
  // into ops: what is buffered, then the kCut op. Errors fail the WAL.
  absl::Status PlanCut(std::vector<TailOp>* ops);
  // Frames what is buffered into one synced op and runs it.
  absl::Status SyncTail();
  absl::Status StartTail(uint32_t prev_crc);
  absl::Status Fail(absl::Status s);
  absl::Status CheckWritable() const;
  void MaybeRequestNextSegment();
  void StartSegmentPipeline();

  const std::string dir_;
  WalOptions options_;
  bool write_mode_ = false;
  bool read_done_ = false;
  bool closed_ = false;
  SnapshotPosition start_;
  std::vector<std::string> read_paths_;  // segments ReadAll reads

  // Frame stage (the calling thread).
  // Frames records, keeps the CRC chain and models etcd's page writer.
  std::unique_ptr<RecordWriter> writer_;
  // Codec input and output for a Save's batch, reused across Saves.
  std::vector<PayloadContext> batch_ctx_;
  std::vector<absl::string_view> batch_plain_;
  std::vector<std::string> batch_encoded_;
  std::string metadata_;         // plaintext metadata
  std::string stored_metadata_;  // metadata_ as sealed under the current write key
  bool has_metadata_ = false;
  raftpb::HardState state_;     // last HardState saved
  uint64_t last_index_ = 0;     // etcd's enti
  uint64_t tail_seq_ = 0;       // the sequence number of the segment being framed
  std::string tail_final_path_;  // and its final name
  // The index of ReadAllIndexed's reader, fed by the I/O stage (null without one).
  std::shared_ptr<LogState> index_;

  // I/O stage (tail_writer.h): the files, locks, syncs and the pipeline's
  // thread. Destroyed before the segment pipeline it borrows.
  std::unique_ptr<SegmentPipeline> pipeline_;
  std::unique_ptr<TailWriter> io_;
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_WAL_H_
