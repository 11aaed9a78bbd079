#include "sealwal/wal/record_writer.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/endian.h"

namespace sealwal::wal {
namespace {

using google::protobuf::io::CodedOutputStream;

// A small fixed buffer for the few varint fields of Entry / HardState /
// walpb.Snapshot headers: encoding them must not allocate per record.
class FieldBuf {
 public:
  void PutVarintField(uint8_t key, uint64_t v) {
    buf_[len_++] = key;
    len_ = static_cast<size_t>(CodedOutputStream::WriteVarint64ToArray(v, buf_ + len_) - buf_);
  }
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(buf_), len_);
  }

 private:
  uint8_t buf_[4 * 11];  // up to four fields of key + 10-byte varint
  size_t len_ = 0;
};

}  // namespace

bool IsEmptyHardState(const raftpb::HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

void EtcdPageModel::Write(uint64_t n) {
  for (;;) {
    if (n + buffered <= kEtcdPageWriterBufferBytes) {
      buffered += n;
      return;
    }
    uint64_t slack = kPageBytes - ((page_offset + buffered) % kPageBytes);
    if (slack != kPageBytes) {
      const bool partial = slack > n;
      if (partial) slack = n;
      buffered += slack;
      n -= slack;
      if (partial) return;
    }
    // Flush the (now page-aligned) buffer.
    Flush();
    if (n > kPageBytes) {
      const uint64_t pages = n / kPageBytes;
      flushed += pages * kPageBytes;  // written directly; page offset unchanged
      n -= pages * kPageBytes;
    }
  }
}

void RecordWriter::StartSegment(uint32_t prev_crc) {
  crc_ = prev_crc;
  offset_ = 0;
  page_ = EtcdPageModel();
}

void RecordWriter::Resume(uint32_t crc, uint64_t offset) {
  crc_ = crc;
  offset_ = offset;
  page_.Reset(offset);
}

void RecordWriter::Rollback(const Mark& m) {
  buf_.resize(m.buffered_bytes);
  crc_ = m.crc;
  offset_ = m.offset;
  page_ = m.page;
}

absl::Status RecordWriter::Append(RecordType type, bool has_data, absl::string_view head,
                                  absl::string_view body) {
  uint8_t hdr[1 + 10 + 1 + 10 + 1 + 10];
  uint8_t* p = hdr;
  const uint32_t crc = crc32c::Extend(crc32c::Extend(crc_, head), body);
  *p++ = 0x08;
  p = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(type), p);
  *p++ = 0x10;
  p = CodedOutputStream::WriteVarint64ToArray(crc, p);
  const uint64_t data_len = head.size() + body.size();
  if (has_data) {
    *p++ = 0x1a;
    p = CodedOutputStream::WriteVarint64ToArray(data_len, p);
  }
  const size_t hdr_len = static_cast<size_t>(p - hdr);
  const uint64_t rec_len = hdr_len + data_len;
  size_t pad;
  const uint64_t word = EncodeFrameLength(rec_len, &pad);
  if (rec_len >= kMaxRecordBytes - pad) {
    return absl::InvalidArgumentError(
        absl::StrCat("wal: record of ", rec_len, " bytes exceeds etcd's limit of ",
                     kMaxRecordBytes, " bytes"));
  }
  crc_ = crc;
  AppendLE64(word, &buf_);
  buf_.append(reinterpret_cast<const char*>(hdr), hdr_len);
  buf_.append(head.data(), head.size());
  buf_.append(body.data(), body.size());
  buf_.append(pad, '\0');
  offset_ += kFrameSizeBytes + rec_len + pad;
  // etcd's encoder writes the length word and the padded record separately.
  page_.Write(kFrameSizeBytes);
  page_.Write(rec_len + pad);
  return absl::OkStatus();
}

absl::Status RecordWriter::AppendEntry(const raftpb::Entry& e, const std::string* encoded) {
  // With a codec, empty entries are encoded too: an authenticated payload
  // in every entry means one cannot be stripped without the reader noticing.
  const bool has_payload = e.has_data() || encoded != nullptr;
  const absl::string_view payload = encoded != nullptr ? *encoded : e.data();
  // raftpb.Entry as etcd marshals it: type, term, index always; data when set.
  FieldBuf head;
  head.PutVarintField(0x08, static_cast<uint64_t>(static_cast<int64_t>(e.type())));
  head.PutVarintField(0x10, e.term());
  head.PutVarintField(0x18, e.index());
  if (has_payload) head.PutVarintField(0x22, payload.size());
  return Append(RecordType::kEntry, true, head.view(), has_payload ? payload : "");
}

absl::Status RecordWriter::AppendHardState(const raftpb::HardState& hs) {
  // etcd marshals HardState with every field present (gogo, non-nullable).
  FieldBuf b;
  b.PutVarintField(0x08, hs.term());
  b.PutVarintField(0x10, hs.vote());
  b.PutVarintField(0x18, hs.commit());
  return Append(RecordType::kState, true, b.view(), {});
}

absl::Status RecordWriter::AppendSnapshot(SnapshotPosition snap) {
  FieldBuf b;
  b.PutVarintField(0x08, snap.index);
  b.PutVarintField(0x10, snap.term);
  return Append(RecordType::kSnapshot, true, b.view(), {});
}

}  // namespace sealwal::wal
