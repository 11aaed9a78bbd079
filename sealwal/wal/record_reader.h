// sealwal/wal/record_reader.h: reads the walpb.Record frames of a WAL's
// segments in order, checking the whole CRC chain (every record's crc and
// the crc record that opens each segment), and says where each record
// lives. Modelled on leveldb's log::Reader: records come out one at a time,
// and damage is reported through a Reporter as well as through status().
//
// This is the one place the chain is checked: Wal::ReadAll, Verify,
// Repair, ValidSnapshotEntries and the `sealwal wal` tools all read through
// it, so every damaged file gets the same verdict everywhere, and the same
// verdict as etcd 3.4's decoder (see docs/format.md).
//
// How a read ends (end()):
//   kEof         the last segment ended (end of file or a zero length word)
//   kTornTail    a record cut short or torn (etcd's io.ErrUnexpectedEOF):
//                what a crash during an append leaves; read-only readers
//                treat it as the end of the log, Repair truncates it
//   kCorruption  a CRC mismatch (record or segment chain), an oversized or
//                unparseable frame: never the result of a crash, never
//                repaired silently
//   kIoError     the file system failed (open/read)
// status() carries the error (a WalErrorClass, sealwal/wal/wal.h, names
// the etcd error for torn tails and corruption; I/O errors are the file
// system's status as is). Records are payload-agnostic: the reader never
// decodes entry data or metadata (Wal::ReadAll does, through the codec).
//
// Ownership: the file system is borrowed and must outlive the reader; so
// must the Reporter. A Record's data is a view valid until the next
// ReadRecord call.
// Thread-safety: not thread-safe; one reader per thread. Independent
// readers of the same directory may run concurrently (they only read).
#ifndef SEALWAL_WAL_RECORD_READER_H_
#define SEALWAL_WAL_RECORD_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::wal {

class Decoder;  // internal

// Where a record lives: the segment's sequence number (the first field of
// its name, "%016x-%016x.wal") and the byte offset of the record's length
// word in that file. For a reader over files that are not named as
// segments, `segment` is the file's position in the list instead.
struct RecordPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
  bool operator==(const RecordPosition&) const = default;
};

struct Record {
  // The walpb.Record type (RecordType; other values are passed through
  // for the caller to reject).
  int64_t type = 0;
  uint32_t crc = 0;
  // The record's data. As etcd's decoder (which reuses one walpb.Record),
  // a record without a data field carries the previous record's data.
  // Valid until the next ReadRecord.
  absl::string_view data;
  RecordPosition position;
};

class RecordReader {
 public:
  // Told about every read that ends other than at kEof. `bytes` is how many
  // bytes of the segment from the failing record on are not returned (0
  // when unknown, e.g. for an I/O error).
  class Reporter {
   public:
    virtual ~Reporter() = default;
    virtual void Corruption(size_t bytes, const absl::Status& status) = 0;
  };

  enum class End { kNotYet, kEof, kTornTail, kCorruption, kIoError };

  // Reads the segments of `dir` a reader starting at `from` needs: the last
  // segment whose first index is <= from.index and every one after it
  // (etcd's selectWALFiles). kNotFound (WalErrorClass kFileNotFound) when
  // no segment covers the position or the sequence numbers have a gap.
  static absl::StatusOr<std::unique_ptr<RecordReader>> Open(const std::string& dir,
                                                            SnapshotPosition from,
                                                            env::FileSystem* fs,
                                                            Reporter* reporter = nullptr);
  // Reads every segment of `dir` in order, without the sequence check
  // (etcd's ValidSnapshotEntries reads them so). kNotFound when there are
  // none.
  static absl::StatusOr<std::unique_ptr<RecordReader>> OpenAll(const std::string& dir,
                                                               env::FileSystem* fs,
                                                               Reporter* reporter = nullptr);
  // Reads exactly `paths`, in order, as one chain (the first crc record
  // starts it). Only the last file may end in a torn write.
  RecordReader(env::FileSystem* fs, std::vector<std::string> paths, Reporter* reporter = nullptr);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // The next record: true with *rec filled; false once the read has ended
  // (see end() and status()). Crc records are returned too, after their
  // value has been checked against the chain.
  bool ReadRecord(Record* rec);

  End end() const { return end_; }
  // OK while reading and at kEof; the error otherwise.
  const absl::Status& status() const { return status_; }
  // The running CRC after the last record returned (etcd's decoder crc).
  uint32_t crc() const;
  // The offset just past the last good frame of the segment being read
  // (where a torn tail would be cut, or where appending resumes).
  uint64_t last_valid_offset() const;
  // The files being read, in order.
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  const std::vector<std::string> paths_;
  std::vector<uint64_t> seqs_;
  env::FileSystem* const fs_;
  Reporter* const reporter_;
  std::unique_ptr<Decoder> decoder_;
  int64_t last_type_ = 0;  // etcd's reused walpb.Record: absent fields stay
  uint32_t last_crc_ = 0;
  End end_ = End::kNotYet;
  absl::Status status_;
};

// Parses a walpb.Snapshot record's data (1 index, 2 term; conf_state and
// unknown fields skipped). False when the bytes do not parse.
bool ParseSnapshotRecord(absl::string_view data, SnapshotPosition* out);
// Reads the index and term of a marshalled raftpb.Entry (an entry record's
// data) without decoding the rest; false when it does not parse.
bool ParseEntryPosition(absl::string_view data, uint64_t* index, uint64_t* term);

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_RECORD_READER_H_
