// sealwal/wal/record_writer.h: the record encoder of the WAL's tail
// segment. Frames walpb.Records (length word, record, padding) into a
// memory buffer, keeps the running CRC chain and the logical end of the
// tail, and models etcd's page writer (EtcdPageModel) so that segments are
// cut at exactly the bytes etcd would cut them. It never touches a file:
// the Wal hands buffer() to the tail file and calls Flushed()/Synced().
// Internal to the wal target. Not thread-safe.
#ifndef SEALWAL_WAL_RECORD_WRITER_H_
#define SEALWAL_WAL_RECORD_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::wal {

// etcd's pkg/ioutil.PageWriter as far as cut points depend on it: etcd
// decides to cut on the offset its page writer has *flushed*, so this
// tracks that offset for every write etcd's encoder would make.
struct EtcdPageModel {
  uint64_t flushed = 0;
  uint64_t buffered = 0;
  uint64_t page_offset = 0;

  // A page writer starting at `offset` of a file (nothing buffered).
  void Reset(uint64_t offset) {
    flushed = offset;
    buffered = 0;
    page_offset = offset % kPageBytes;
  }
  // PageWriter.Write of n bytes.
  void Write(uint64_t n);
  // PageWriter.Flush (etcd's sync flushes it).
  void Flush() {
    flushed += buffered;
    page_offset = (page_offset + buffered) % kPageBytes;
    buffered = 0;
  }
};

bool IsEmptyHardState(const raftpb::HardState& hs);

class RecordWriter {
 public:
  // Everything Append changes, to undo a batch that failed part-way.
  struct Mark {
    size_t buffered_bytes;
    uint32_t crc;
    uint64_t offset;
    EtcdPageModel page;
  };

  // Starts a fresh segment: chain from `prev_crc`, offset 0.
  void StartSegment(uint32_t prev_crc);
  // Continues a segment whose good records end at `offset` (after ReadAll):
  // chain from `crc`; etcd reopens the file with a new page writer there.
  void Resume(uint32_t crc, uint64_t offset);
  // etcd reopens the file after a cut and starts a new page writer at
  // its current offset (the flushed count stays).
  void ReopenPageWriter() { page_.page_offset = offset_ % kPageBytes; }

  // Frames one record: data = head + body (has_data false: no data field).
  // kInvalidArgument when the record would exceed etcd's size limit
  // (nothing is appended then).
  absl::Status Append(RecordType type, bool has_data, absl::string_view head,
                      absl::string_view body);
  // An entry record; `encoded` is the codec's payload (null without one).
  absl::Status AppendEntry(const raftpb::Entry& entry, const std::string* encoded);
  // A state record (the caller skips empty HardStates).
  absl::Status AppendHardState(const raftpb::HardState& hs);
  absl::Status AppendSnapshot(SnapshotPosition snap);

  Mark mark() const { return Mark{buf_.size(), crc_, offset_, page_}; }
  void Rollback(const Mark& m);

  // Frames not yet handed to the file; the caller writes them at
  // offset() - buffer().size() and then calls ClearBuffer().
  const std::string& buffer() const { return buf_; }
  void ClearBuffer() { buf_.clear(); }
  // Makes room for `bytes` more frames at once: a large batch grows the
  // buffer once instead of doubling it (and copying it) again and again.
  void Reserve(size_t bytes) { buf_.reserve(buf_.size() + bytes); }
  // Hands the frames over: *out gets them, and the writer continues in
  // *out's old storage (cleared), so that buffers are reused.
  void SwapBuffer(std::string* out) {
    buf_.swap(*out);
    buf_.clear();
  }
  // The tail has been fsynced: etcd's sync flushes its page writer.
  void Synced() { page_.Flush(); }

  uint32_t crc() const { return crc_; }
  // The logical end of the tail (written + buffered).
  uint64_t offset() const { return offset_; }
  // The offset etcd's page writer would have flushed (cut decisions).
  uint64_t etcd_flushed() const { return page_.flushed; }

 private:
  std::string buf_;
  uint32_t crc_ = 0;
  uint64_t offset_ = 0;
  EtcdPageModel page_;
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_RECORD_WRITER_H_
