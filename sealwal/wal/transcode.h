// sealwal/wal/transcode.h: copies a WAL record by record into a new
// directory, segment by segment, passing each entry's data and each
// metadata record through payload codecs on the way (`sealwal store
// migrate`: a plaintext WAL re-sealed, or an encrypted one opened).
//
// What is kept: every segment, under its own name (sequence number and
// first index); every record of it, in order, with its type: crc,
// metadata, entries (also those a later record overwrites: nothing is
// resolved, the log is copied as written), HardStates and snapshot
// records. State and snapshot records are copied byte for byte; entries
// keep their type, term and index; the CRC chain is recomputed over the
// new stored bytes (docs/format.md §5), starting from the value the first
// segment's crc record carries. A segment that ended in preallocated zeros
// (the tail) ends in zeros again, up to the larger of its new used length
// and the source file's size, so that a plaintext WAL copied to an
// encrypted one and back is byte-identical (as long as the encrypted tail
// still fits in the source's preallocated size).
//
// Payloads: with `decode`, stored payloads are opened first (metadata once
// per distinct stored form, entries each with their index/term/type bound,
// as Wal::ReadAll does); with `encode`, the plaintext is sealed as
// Wal::Save / Wal::Create seal it: entries one by one with their
// index/term/type (an entry without data seals the empty string, so every
// entry of an encrypted WAL carries a payload), metadata once per distinct
// plaintext (every segment repeats the same stored bytes, as the cuts of a
// WAL written under one key do). Without `encode` an entry whose plaintext
// is empty is written without a data field (etcd's nil Data, what raft's
// empty entries have).
//
// Directory names (wal.h, "Directory names"): a `src_dir` ending in
// "-encrypted" needs a `decode` that encrypts, and so does a `dst_dir` (or
// the name it is built under, "<name>.tmp") for `encode`; otherwise
// kFailedPrecondition before anything is read or written.
//
// The source must read cleanly to its end: a torn tail is
// kFailedPrecondition (WalErrorClass kUnexpectedEof: repair it first, see
// Wal::Repair), a broken CRC chain kDataLoss (kCrcMismatch), a gap in the
// segment sequence kDataLoss, a payload that does not open the codec's
// error (kDecryptFailed). Files in the source that are not segments
// (*.tmp, *.wal.broken) are not copied; they are listed in the result.
//
// Durability: every new segment is written with mode 0600, fsynced and
// closed; `dst_dir` (which must exist and be empty, created by the caller)
// is fsynced at the end. Nothing in `src_dir` is modified. On error the
// files written so far are left in `dst_dir` for the caller to remove.
//
// Ownership: the file system and codecs are borrowed for the call.
// Thread-safety: a plain function; `encode` is used from the calling
// thread only (as the WAL's writer thread), `decode` through one
// DecodeSession.
#ifndef SEALWAL_WAL_TRANSCODE_H_
#define SEALWAL_WAL_TRANSCODE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/payload_codec.h"

namespace sealwal::wal {

struct TranscodeOptions {
  env::FileSystem* fs = env::DefaultFileSystem();
  // Opens the source's payloads (null: the source is plaintext).
  const PayloadCodec* decode = nullptr;
  // Seals the copy's payloads (null: the copy is plaintext).
  PayloadCodec* encode = nullptr;
};

struct TranscodeResult {
  std::vector<std::string> segments;  // names written, in order
  std::vector<std::string> skipped;   // source files that are not segments
  uint64_t records = 0;               // records copied
  uint64_t entries = 0;               // entry records (overwritten ones included)
  uint64_t last_index = 0;            // index of the last entry record
};

absl::StatusOr<TranscodeResult> TranscodeWal(const std::string& src_dir,
                                             const std::string& dst_dir,
                                             const TranscodeOptions& options);

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_TRANSCODE_H_
