// sealwal/wal/decoder.h: reads frames from a run of segment files, checking the CRC
// chain exactly as etcd 3.4's decoder does (wal/decoder.go), so that every
// damaged file gets the same verdict from us as from etcd. Internal to the
// wal target; RecordReader is the public face.
//
// Callers outside this file use RecordReader (record_reader.h), which adds
// the segment chain check (crc records) on top of this.
//
// Reading is streamed: each segment is read front to back in large
// sequential reads into one reused buffer, and a frame's data is handed out
// as a view into that buffer.
//
// etcd quirk kept on purpose: etcd reuses one walpb.Record for every frame
// and its generated Unmarshal does not clear absent fields, so a record
// without a data field (a crc record, or a metadata record for nil
// metadata) "has" the data of the record before it, for the CRC and for
// the metadata comparison. We do the same, or files etcd rejects would pass
// here and files etcd accepts could fail.
//
// Not thread-safe.
#ifndef SEALWAL_WAL_DECODER_H_
#define SEALWAL_WAL_DECODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {

// Builds a status of `code` carrying `cls` (see GetWalErrorClass).
absl::Status WalError(absl::StatusCode code, WalErrorClass cls, absl::string_view msg);
// True when `status` was built by WalError (it carries a class), false for
// a status from elsewhere (the file system's I/O errors).
bool HasWalErrorClass(const absl::Status& status);

struct DecodedRecord {
  int64_t type = 0;
  uint32_t crc = 0;
  // The record's data (or, when its data field was absent, the previous
  // record's: see the quirk above). Valid until the next call to Next.
  absl::string_view data;
};

class Decoder {
 public:
  // Reads `paths` in order. `fs` is borrowed and must outlive the decoder.
  Decoder(env::FileSystem* fs, std::vector<std::string> paths);

  // Decodes the next record. Returns true with *rec filled, false at the end
  // of the last file, or an error whose class is kUnexpectedEof (a short or
  // torn frame), kCrcMismatch, kMaxEntrySizeExceeded or kOther (an
  // unparseable record or an I/O error).
  absl::StatusOr<bool> Next(DecodedRecord* rec);

  // The running CRC (etcd's decoder.crc.Sum32()).
  uint32_t crc() const { return crc_; }
  // Restarts the chain from a crc record's value (etcd's updateCRC).
  void UpdateCrc(uint32_t crc) { crc_ = crc; }
  // Offset in the current file just past the last good frame.
  uint64_t last_valid_offset() const { return last_valid_offset_; }
  // True when the decoder is on the last file of the run.
  bool on_last_file() const { return file_ + 1 >= paths_.size(); }
  // The file being read (paths_.size() once all are read).
  size_t file_index() const { return file_; }
  // Offset in its file of the last record returned.
  uint64_t record_offset() const { return record_offset_; }

 private:
  absl::Status OpenFile();
  // Makes at least n bytes available at pos_ unless the file ends first;
  // returns how many are available (<= n only at end of file).
  absl::StatusOr<size_t> Fill(size_t n);
  bool IsTornFrame(absl::string_view frame) const;
  // A damaged record whose crc field parsed, and where its frame ends.
  struct DamagedRecord {
    uint32_t crc;
    uint64_t next;
  };
  // Called where the last file seems to end in a torn write (a zero sector,
  // a zero or overlong length word, a record cut short): kDataLoss (class
  // kCrcMismatch) when valid, chained records follow at or after `from`,
  // since then the damage is inside the log and truncating there would drop
  // records that were written (and maybe acknowledged) after it. OK when
  // nothing does. Reads the rest of the file in 1 MiB pieces.
  absl::Status CheckNothingFollows(uint64_t from, std::optional<DamagedRecord> damaged);

  env::FileSystem* const fs_;
  const std::vector<std::string> paths_;
  size_t file_ = 0;
  std::unique_ptr<env::SequentialFile> in_;
  bool in_eof_ = false;
  std::vector<char> buf_;
  size_t pos_ = 0;  // next unread byte in buf_
  size_t end_ = 0;  // end of valid bytes in buf_
  uint32_t crc_ = 0;
  uint64_t last_valid_offset_ = 0;
  uint64_t record_offset_ = 0;
  absl::string_view data_;  // sticky data (the quirk)
  std::string sticky_;      // owns data_ when buf_ has been refilled
};

// The segment names in dir to read for a reader starting at `snap`: the last
// segment whose first index is <= snap.index and all after it (etcd's
// selectWALFiles). kNotFound (class kFileNotFound) when there is none or
// the sequence numbers have a gap.
absl::StatusOr<std::vector<std::string>> SelectSegments(env::FileSystem* fs,
                                                        const std::string& dir,
                                                        uint64_t snap_index);

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_DECODER_H_
