#include "sealwal/wal/decoder.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/wal/record_reader.h"

namespace sealwal::wal {
namespace {

constexpr size_t kReadChunk = 4 << 20;  // large sequential reads
constexpr char kClassPayloadUrl[] = "type.sealwal.dev/wal-error-class";

// What gogo's generated walpb.Record.Unmarshal (etcd 3.4) says about a
// record's bytes. etcd treats kTruncated (io.ErrUnexpectedEOF) exactly like
// a torn write, so we must tell it apart from kInvalid (any other error).
enum class ParseResult { kOk, kTruncated, kInvalid };

// A varint as gogo reads it: at most 10 bytes (a longer one overflows),
// bits past 64 dropped. kTruncated when the bytes end inside it.
ParseResult GogoVarint(absl::string_view b, size_t* i, uint64_t* v) {
  *v = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (shift >= 64) return ParseResult::kInvalid;  // ErrIntOverflowRecord
    if (*i >= b.size()) return ParseResult::kTruncated;
    const uint8_t c = static_cast<uint8_t>(b[(*i)++]);
    *v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (c < 0x80) return ParseResult::kOk;
  }
}

// gogo's skipRecord: the length of the unknown field at b[0..], which the
// caller bounds-checks (so fixed-width fields and lengths may run past the
// end and come back as kTruncated there).
ParseResult GogoSkip(absl::string_view b, uint64_t* n, int depth = 0) {
  if (depth > 64) return ParseResult::kInvalid;  // gogo recurses; we bound it
  size_t i = 0;
  uint64_t wire;
  if (ParseResult r = GogoVarint(b, &i, &wire); r != ParseResult::kOk) return r;
  switch (wire & 7) {
    case 0: {
      uint64_t unused;
      if (ParseResult r = GogoVarint(b, &i, &unused); r != ParseResult::kOk) return r;
      *n = i;
      return ParseResult::kOk;
    }
    case 1:
      *n = i + 8;
      return ParseResult::kOk;
    case 2: {
      uint64_t len;
      if (ParseResult r = GogoVarint(b, &i, &len); r != ParseResult::kOk) return r;
      if (static_cast<int64_t>(len) < 0) return ParseResult::kInvalid;  // ErrInvalidLength
      *n = i + len;  // may exceed the bytes: the caller says truncated
      return ParseResult::kOk;
    }
    case 3:
      for (;;) {
        const size_t start = i;
        uint64_t inner;
        if (ParseResult r = GogoVarint(b, &i, &inner); r != ParseResult::kOk) return r;
        if ((inner & 7) == 4) break;
        uint64_t next;
        if (ParseResult r = GogoSkip(b.substr(start), &next, depth + 1); r != ParseResult::kOk) {
          return r;
        }
        if (next > b.size() - start) return ParseResult::kTruncated;
        i = start + static_cast<size_t>(next);
      }
      *n = i;
      return ParseResult::kOk;
    case 4:
      *n = i;
      return ParseResult::kOk;
    case 5:
      *n = i + 4;
      return ParseResult::kOk;
    default:
      return ParseResult::kInvalid;  // illegal wireType
  }
}

// Parses a walpb.Record exactly as gogo's generated Unmarshal does: fields
// in any order, last one wins, unknown fields skipped, absent fields left as
// they were (has_data says whether data was present), and the same verdict
// -- truncated or invalid -- for every malformed input.
ParseResult ParseRecord(absl::string_view b, DecodedRecord* rec, bool* has_data) {
  *has_data = false;
  size_t i = 0;
  while (i < b.size()) {
    const size_t pre = i;
    uint64_t wire;
    if (ParseResult r = GogoVarint(b, &i, &wire); r != ParseResult::kOk) return r;
    const int32_t field = static_cast<int32_t>(wire >> 3);
    const int wire_type = static_cast<int>(wire & 7);
    if (wire_type == 4 || field <= 0) return ParseResult::kInvalid;
    uint64_t v;
    switch (field) {
      case 1:
        if (wire_type != 0) return ParseResult::kInvalid;
        if (ParseResult r = GogoVarint(b, &i, &v); r != ParseResult::kOk) return r;
        rec->type = static_cast<int64_t>(v);
        break;
      case 2:
        if (wire_type != 0) return ParseResult::kInvalid;
        if (ParseResult r = GogoVarint(b, &i, &v); r != ParseResult::kOk) return r;
        rec->crc = static_cast<uint32_t>(v);
        break;
      case 3:
        if (wire_type != 2) return ParseResult::kInvalid;
        if (ParseResult r = GogoVarint(b, &i, &v); r != ParseResult::kOk) return r;
        if (static_cast<int64_t>(v) < 0) return ParseResult::kInvalid;
        if (v > b.size() - i) return ParseResult::kTruncated;
        rec->data = b.substr(i, static_cast<size_t>(v));
        *has_data = true;
        i += static_cast<size_t>(v);
        break;
      default: {
        uint64_t skip;
        if (ParseResult r = GogoSkip(b.substr(pre), &skip); r != ParseResult::kOk) return r;
        if (skip > b.size() - pre) return ParseResult::kTruncated;
        i = pre + static_cast<size_t>(skip);
        break;
      }
    }
  }
  return ParseResult::kOk;
}

// One frame read at `off` by CheckNothingFollows: the parsed record and where
// the next frame starts. False when no well-formed frame starts there.
bool ReadFrameAt(const env::RandomAccessFile& file, uint64_t off, uint64_t size,
                 std::string* buf, DecodedRecord* rec, uint64_t* next) {
  char word_bytes[kFrameSizeBytes];
  if (off > size || size - off < kFrameSizeBytes) return false;
  auto got = file.ReadAt(off, absl::MakeSpan(word_bytes, kFrameSizeBytes));
  if (!got.ok() || *got != kFrameSizeBytes) return false;
  uint64_t rec_bytes, pad;
  DecodeFrameLength(LoadLE64(word_bytes), &rec_bytes, &pad);
  if (rec_bytes == 0 || rec_bytes >= kMaxRecordBytes - pad) return false;
  if (rec_bytes + pad > size - off - kFrameSizeBytes) return false;
  buf->resize(static_cast<size_t>(rec_bytes));
  got = file.ReadAt(off + kFrameSizeBytes, absl::MakeSpan(buf->data(), buf->size()));
  if (!got.ok() || *got != buf->size()) return false;
  *rec = DecodedRecord{};
  bool has_data = false;
  if (ParseRecord(*buf, rec, &has_data) != ParseResult::kOk) return false;
  // Every record type but crc carries data; a crc record carries none.
  const bool is_crc = rec->type == static_cast<int64_t>(RecordType::kCrc);
  if (rec->type < static_cast<int64_t>(RecordType::kMetadata) ||
      rec->type > static_cast<int64_t>(RecordType::kSnapshot) || has_data == is_crc) {
    return false;
  }
  *next = off + kFrameSizeBytes + rec_bytes + pad;
  return true;
}

}  // namespace

absl::Status WalError(absl::StatusCode code, WalErrorClass cls, absl::string_view msg) {
  absl::Status s(code, msg);
  s.SetPayload(kClassPayloadUrl, absl::Cord(WalErrorClassName(cls)));
  return s;
}

bool HasWalErrorClass(const absl::Status& status) {
  return status.GetPayload(kClassPayloadUrl).has_value();
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
  SEALWAL_ASSIGN_OR_RETURN(in_, fs_->NewSequentialFile(paths_[file_]));
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
    // Grow towards kReadChunk: a small WAL (or a fuzz input) should not pay
    // for zeroing a 4 MiB buffer on every open.
    size_t want = std::max(n, std::min(kReadChunk, std::max<size_t>(64 << 10, 2 * buf_.size())));
    if (buf_.size() < want) buf_.resize(want);
    while (end_ < n && !in_eof_) {
      SEALWAL_ASSIGN_OR_RETURN(size_t got,
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
    if (in_ == nullptr) SEALWAL_RETURN_IF_ERROR(OpenFile());
    SEALWAL_ASSIGN_OR_RETURN(size_t have, Fill(kFrameSizeBytes));
    uint64_t word = 0;
    if (have == kFrameSizeBytes) word = LoadLE64(buf_.data() + pos_);
    if (have == 0 || (have == kFrameSizeBytes && word == 0)) {
      // End of file or of the preallocated space: on to the next file. In
      // the last file a zeroed length word may also hide records after it.
      if (have != 0 && on_last_file()) {
        SEALWAL_RETURN_IF_ERROR(CheckNothingFollows(last_valid_offset_ + kFrameSizeBytes, {}));
      }
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
    SEALWAL_ASSIGN_OR_RETURN(have, Fill(frame_len));
    if (have < frame_len) {
      // A damaged length word can also point past the end.
      if (on_last_file()) {
        SEALWAL_RETURN_IF_ERROR(CheckNothingFollows(last_valid_offset_ + kFrameSizeBytes, {}));
      }
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kUnexpectedEof,
                      absl::StrCat("unexpected EOF: record at offset ", last_valid_offset_,
                                   " of ", env::Basename(paths_[file_]), " is cut short"));
    }
    absl::string_view frame(buf_.data() + pos_, frame_len);
    bool has_data = false;
    DecodedRecord parsed = *rec;
    parsed.data = data_;
    const ParseResult pr =
        ParseRecord(frame.substr(0, static_cast<size_t>(rec_bytes)), &parsed, &has_data);
    if (pr != ParseResult::kOk) {
      // etcd returns a record cut short inside its frame as
      // io.ErrUnexpectedEOF, i.e. a torn write, even without a zero sector.
      if (pr == ParseResult::kTruncated || IsTornFrame(frame)) {
        if (on_last_file()) {
          SEALWAL_RETURN_IF_ERROR(CheckNothingFollows(last_valid_offset_ + kFrameSizeBytes, {}));
        }
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
          SEALWAL_RETURN_IF_ERROR(CheckNothingFollows(
              last_valid_offset_ + kFrameSizeBytes,
              DamagedRecord{parsed.crc, last_valid_offset_ + kFrameSizeBytes + frame_len}));
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
    record_offset_ = last_valid_offset_;
    last_valid_offset_ += kFrameSizeBytes + frame_len;
    *rec = parsed;
    return true;
  }
}

absl::StatusOr<std::vector<std::string>> SelectSegments(env::FileSystem* fs,
                                                        const std::string& dir,
                                                        uint64_t snap_index) {
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, Wal::SegmentNames(dir, fs));
  const std::optional<SegmentPosition> holding = SegmentHolding(names, snap_index);
  if (!holding.has_value()) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                    absl::StrCat("wal: file not found (no segment in ", dir,
                                 " covers index ", snap_index, ")"));
  }
  const size_t start = holding->position;
  std::vector<std::string> paths;
  uint64_t prev_seq = 0;
  for (size_t i = start; i < names.size(); ++i) {
    uint64_t seq, index;
    ParseSegmentFileName(names[i], &seq, &index);
    if (i > start && seq != prev_seq + 1) {
      return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                      absl::StrCat("wal: file not found (segment sequence gap before ",
                                   names[i], " in ", dir, ")"));
    }
    prev_seq = seq;
    paths.push_back(env::JoinPath(dir, names[i]));
  }
  return paths;
}

// Two frames that parse and chain (the second's CRC extends the first's) are
// written records: damage chance would have to forge a 32-bit CRC. A torn
// write leaves zeros, or bytes that do not chain, after the last good
// record; a damaged record in the middle of the log leaves the chain going
// on after it. The first frame after a damaged record whose own crc field
// survived may also chain onto that stored CRC.
absl::Status Decoder::CheckNothingFollows(uint64_t from, std::optional<DamagedRecord> damaged) {
  const std::string& path = paths_[file_];
  SEALWAL_ASSIGN_OR_RETURN(auto file, fs_->NewRandomAccessFile(path));
  SEALWAL_ASSIGN_OR_RETURN(const uint64_t size, file->Size());
  constexpr size_t kScanChunk = 1 << 20;
  std::vector<char> chunk(kScanChunk);
  std::string a_buf, b_buf;
  from = (from + kFrameAlignment - 1) / kFrameAlignment * kFrameAlignment;
  for (uint64_t base = from; base < size && size - base >= kFrameSizeBytes;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kScanChunk, size - base));
    SEALWAL_ASSIGN_OR_RETURN(size_t got, file->ReadAt(base, absl::MakeSpan(chunk.data(), want)));
    if (got < kFrameSizeBytes) break;
    for (size_t i = 0; i + kFrameSizeBytes <= got; i += kFrameAlignment) {
      if (LoadLE64(chunk.data() + i) == 0) continue;
      // Both etcd and we write the type field first.
      if (i + kFrameSizeBytes < got && chunk[i + kFrameSizeBytes] != 0x08) continue;
      const uint64_t off = base + i;
      DecodedRecord a, b;
      uint64_t next, after;
      if (!ReadFrameAt(*file, off, size, &a_buf, &a, &next)) continue;
      auto chains = [](uint32_t prev, const DecodedRecord& r) {
        if (r.type == static_cast<int64_t>(RecordType::kCrc)) return r.crc == prev;
        return r.crc == crc32c::Extend(prev, r.data);
      };
      bool resumed = damaged.has_value() && off == damaged->next && chains(damaged->crc, a);
      if (!resumed && ReadFrameAt(*file, next, size, &b_buf, &b, &after)) {
        resumed = chains(a.crc, b);
      }
      if (!resumed) continue;
      // Name the first entry that follows, so that the damaged range is
      // known (the damaged record itself may not say what it was).
      std::string first_entry;
      uint64_t at = off;
      for (int n = 0; n < 64 && ReadFrameAt(*file, at, size, &a_buf, &a, &next); ++n, at = next) {
        uint64_t index, term;
        if (a.type == static_cast<int64_t>(RecordType::kEntry) &&
            ParseEntryPosition(a.data, &index, &term)) {
          first_entry = absl::StrCat(", the first entry there is index ", index, " term ", term);
          break;
        }
      }
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                      absl::StrCat("walpb: crc mismatch (record at offset ", last_valid_offset_,
                                   " of ", env::Basename(path),
                                   " is damaged, but valid records follow from offset ", off,
                                   first_entry, "): corruption inside the log, not a torn tail"));
    }
    base += got / kFrameAlignment * kFrameAlignment;
  }
  return absl::OkStatus();
}

}  // namespace sealwal::wal
