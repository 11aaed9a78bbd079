#include "wal/decoder.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace sealwal::wal {
namespace {

using google::protobuf::internal::WireFormatLite;

constexpr size_t kReadChunk = 4 << 20;  // large sequential reads
constexpr char kClassPayloadUrl[] = "type.sealwal.dev/wal-error-class";

// Parses a walpb.Record the way gogo's generated Unmarshal does: fields in
// any order, last one wins, unknown fields skipped, and absent fields left
// as they were (has_data reports whether data was present).
bool ParseRecord(absl::string_view bytes, DecodedRecord* rec, bool* has_data) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  *has_data = false;
  while (true) {
    if (in.CurrentPosition() == static_cast<int>(bytes.size())) return true;
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return false;  // field number 0 is illegal
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto wire = WireFormatLite::GetTagWireType(tag);
    if (field == 1 && wire == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v;
      if (!in.ReadVarint64(&v)) return false;
      rec->type = static_cast<int64_t>(v);
    } else if (field == 2 && wire == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v;
      if (!in.ReadVarint64(&v)) return false;
      rec->crc = static_cast<uint32_t>(v);
    } else if (field == 3 && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t len;
      if (!in.ReadVarint32(&len)) return false;
      const int at = in.CurrentPosition();
      if (len > bytes.size() - static_cast<size_t>(at)) return false;
      rec->data = bytes.substr(static_cast<size_t>(at), len);
      *has_data = true;
      if (!in.Skip(static_cast<int>(len))) return false;
    } else if (field >= 1 && field <= 3) {
      return false;  // known field with the wrong wire type: gogo rejects it
    } else {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
    }
  }
}

}  // namespace

absl::Status WalError(absl::StatusCode code, WalErrorClass cls, absl::string_view msg) {
  absl::Status s(code, msg);
  s.SetPayload(kClassPayloadUrl, absl::Cord(WalErrorClassName(cls)));
  return s;
}

WalErrorClass GetWalErrorClass(const absl::Status& status) {
  if (status.ok()) return WalErrorClass::kNone;
  auto p = status.GetPayload(kClassPayloadUrl);
  if (!p.has_value()) return WalErrorClass::kOther;
  std::string name(*p);
  for (int c = static_cast<int>(WalErrorClass::kUnexpectedEof);
       c <= static_cast<int>(WalErrorClass::kOther); ++c) {
    if (name == WalErrorClassName(static_cast<WalErrorClass>(c))) {
      return static_cast<WalErrorClass>(c);
    }
  }
  return WalErrorClass::kOther;
}

const char* WalErrorClassName(WalErrorClass c) {
  switch (c) {
    case WalErrorClass::kNone: return "";
    case WalErrorClass::kUnexpectedEof: return "unexpected_eof";
    case WalErrorClass::kCrcMismatch: return "crc_mismatch";
    case WalErrorClass::kSnapshotMismatch: return "snapshot_mismatch";
    case WalErrorClass::kSnapshotNotFound: return "snapshot_not_found";
    case WalErrorClass::kFileNotFound: return "file_not_found";
    case WalErrorClass::kMetadataConflict: return "metadata_conflict";
    case WalErrorClass::kSliceOutOfRange: return "slice_out_of_range";
    case WalErrorClass::kMaxEntrySizeExceeded: return "max_entry_size_exceeded";
    case WalErrorClass::kDecryptFailed: return "decrypt_failed";
    case WalErrorClass::kOther: return "other";
  }
  return "other";
}

std::string EtcdErrorText(const absl::Status& status) {
  const absl::string_view msg = status.message();
  switch (GetWalErrorClass(status)) {
    case WalErrorClass::kUnexpectedEof: return "unexpected EOF";
    case WalErrorClass::kCrcMismatch:
      return absl::StartsWith(msg, "walpb:") ? "walpb: crc mismatch" : "wal: crc mismatch";
    case WalErrorClass::kSnapshotMismatch: return "wal: snapshot mismatch";
    case WalErrorClass::kSnapshotNotFound: return "wal: snapshot not found";
    case WalErrorClass::kFileNotFound: return "wal: file not found";
    case WalErrorClass::kMetadataConflict: return "wal: conflicting metadata found";
    case WalErrorClass::kSliceOutOfRange: return "wal: slice bounds out of range";
    case WalErrorClass::kMaxEntrySizeExceeded: return "wal: max entry size limit exceeded";
    default: return std::string(msg);
  }
}

Decoder::Decoder(env::FileSystem* fs, std::vector<std::string> paths)
    : fs_(fs), paths_(std::move(paths)) {}

absl::Status Decoder::OpenFile() {
  ASSIGN_OR_RETURN(in_, fs_->NewSequentialFile(paths_[file_]));
  in_eof_ = false;
  pos_ = end_ = 0;
  last_valid_offset_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<size_t> Decoder::Fill(size_t n) {
  if (end_ - pos_ >= n) return n;
  if (!in_eof_) {
    // The sticky data may point into the region about to be moved.
    if (!data_.empty() && data_.data() >= buf_.data() &&
        data_.data() < buf_.data() + buf_.size()) {
      sticky_.assign(data_.data(), data_.size());
      data_ = sticky_;
    }
    // (Skipped when empty: before the first read buf_.data() is null, and
    // memmove(null, null, 0) is undefined behaviour -- UBSan flags it.)
    if (end_ > pos_) std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    size_t want = std::max(n, kReadChunk);
    if (buf_.size() < want) buf_.resize(want);
    while (end_ < n && !in_eof_) {
      ASSIGN_OR_RETURN(size_t got,
                       in_->Read(absl::MakeSpan(buf_.data() + end_, buf_.size() - end_)));
      if (got == 0) in_eof_ = true;
      end_ += got;
    }
  }
  return std::min(n, end_ - pos_);
}

// etcd's isTornEntry: in the last file only, a frame (after its length
// word) any of whose 512-byte-sector pieces is all zeros is a write that
// never fully reached the disk, so it reads as an unexpected EOF rather
// than corruption.
bool Decoder::IsTornFrame(absl::string_view frame) const {
  if (!on_last_file()) return false;
  uint64_t file_off = last_valid_offset_ + kFrameSizeBytes;
  size_t cur = 0;
  while (cur < frame.size()) {
    size_t chunk = kSectorSize - static_cast<size_t>(file_off % kSectorSize);
    chunk = std::min(chunk, frame.size() - cur);
    absl::string_view sect = frame.substr(cur, chunk);
    if (std::all_of(sect.begin(), sect.end(), [](char c) { return c == 0; })) return true;
    file_off += chunk;
    cur += chunk;
  }
  return false;
}

absl::StatusOr<bool> Decoder::Next(DecodedRecord* rec) {
  for (;;) {
    if (file_ >= paths_.size()) return false;
    if (in_ == nullptr) RETURN_IF_ERROR(OpenFile());
    ASSIGN_OR_RETURN(size_t have, Fill(kFrameSizeBytes));
    uint64_t word = 0;
    if (have == kFrameSizeBytes) std::memcpy(&word, buf_.data() + pos_, 8);  // LE host
    if (have == 0 || (have == kFrameSizeBytes && word == 0)) {
      // End of file or of the preallocated space: on to the next file.
      in_.reset();
      ++file_;
      if (file_ >= paths_.size()) return false;
      continue;
    }
    if (have < kFrameSizeBytes) {
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kUnexpectedEof,
                      absl::StrCat("unexpected EOF: partial frame length in ",
                                   env::Basename(paths_[file_])));
    }
    uint64_t rec_bytes, pad;
    DecodeFrameLength(word, &rec_bytes, &pad);
    // etcd 3.4 compares as signed 64-bit: a huge length is "too big".
    if (static_cast<int64_t>(rec_bytes) >= static_cast<int64_t>(kMaxRecordBytes - pad)) {
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kMaxEntrySizeExceeded,
                      absl::StrCat("wal: max entry size limit exceeded (", rec_bytes,
                                   " bytes at offset ", last_valid_offset_, " of ",
                                   env::Basename(paths_[file_]), ")"));
    }
    pos_ += kFrameSizeBytes;
    const size_t frame_len = static_cast<size_t>(rec_bytes + pad);
    ASSIGN_OR_RETURN(have, Fill(frame_len));
    if (have < frame_len) {
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kUnexpectedEof,
                      absl::StrCat("unexpected EOF: record at offset ", last_valid_offset_,
                                   " of ", env::Basename(paths_[file_]), " is cut short"));
    }
    absl::string_view frame(buf_.data() + pos_, frame_len);
    bool has_data = false;
    DecodedRecord parsed = *rec;
    parsed.data = data_;
    if (!ParseRecord(frame.substr(0, static_cast<size_t>(rec_bytes)), &parsed, &has_data)) {
      if (IsTornFrame(frame)) {
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kUnexpectedEof,
                        absl::StrCat("unexpected EOF: torn record at offset ",
                                     last_valid_offset_, " of ", env::Basename(paths_[file_])));
      }
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                      absl::StrCat("wal: unparseable record at offset ", last_valid_offset_,
                                   " of ", env::Basename(paths_[file_])));
    }
    data_ = parsed.data;
    if (parsed.type != static_cast<int64_t>(RecordType::kCrc)) {
      crc_ = crc32c::Extend(crc_, data_);
      if (parsed.crc != crc_) {
        if (IsTornFrame(frame)) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kUnexpectedEof,
                          absl::StrCat("unexpected EOF: torn record at offset ",
                                       last_valid_offset_, " of ",
                                       env::Basename(paths_[file_])));
        }
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                        absl::StrCat("walpb: crc mismatch (record at offset ",
                                     last_valid_offset_, " of ", env::Basename(paths_[file_]),
                                     ")"));
      }
    }
    pos_ += frame_len;
    last_valid_offset_ += kFrameSizeBytes + frame_len;
    *rec = parsed;
    return true;
  }
}

absl::StatusOr<std::vector<std::string>> SelectSegments(env::FileSystem* fs,
                                                        const std::string& dir,
                                                        uint64_t snap_index) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, Wal::SegmentNames(dir, fs));
  // The last segment whose first index is <= snap_index.
  int start = -1;
  for (int i = static_cast<int>(names.size()) - 1; i >= 0; --i) {
    uint64_t seq, index;
    ParseSegmentFileName(names[static_cast<size_t>(i)], &seq, &index);
    if (snap_index >= index) {
      start = i;
      break;
    }
  }
  if (start < 0) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                    absl::StrCat("wal: file not found (no segment in ", dir,
                                 " covers index ", snap_index, ")"));
  }
  std::vector<std::string> paths;
  uint64_t prev_seq = 0;
  for (size_t i = static_cast<size_t>(start); i < names.size(); ++i) {
    uint64_t seq, index;
    ParseSegmentFileName(names[i], &seq, &index);
    if (i > static_cast<size_t>(start) && seq != prev_seq + 1) {
      return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                      absl::StrCat("wal: file not found (segment sequence gap before ",
                                   names[i], " in ", dir, ")"));
    }
    prev_seq = seq;
    paths.push_back(env::JoinPath(dir, names[i]));
  }
  return paths;
}

}  // namespace sealwal::wal
