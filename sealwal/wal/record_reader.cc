#include "sealwal/wal/record_reader.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::Open(const std::string& dir,
                                                                 SnapshotPosition from,
                                                                 env::FileSystem* fs,
                                                                 Reporter* reporter) {
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> paths, SelectSegments(fs, dir, from.index));
  return std::make_unique<RecordReader>(fs, std::move(paths), reporter);
}

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::OpenAll(const std::string& dir,
                                                                    env::FileSystem* fs,
                                                                    Reporter* reporter) {
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, Wal::SegmentNames(dir, fs));
  std::vector<std::string> paths;
  paths.reserve(names.size());
  for (const auto& n : names) paths.push_back(env::JoinPath(dir, n));
  return std::make_unique<RecordReader>(fs, std::move(paths), reporter);
}

RecordReader::RecordReader(env::FileSystem* fs, std::vector<std::string> paths,
                           Reporter* reporter)
    : paths_(std::move(paths)), fs_(fs), reporter_(reporter),
      decoder_(std::make_unique<Decoder>(fs, paths_)) {
  seqs_.reserve(paths_.size());
  for (size_t i = 0; i < paths_.size(); ++i) {
    uint64_t seq, index;
    seqs_.push_back(ParseSegmentFileName(env::Basename(paths_[i]), &seq, &index) ? seq : i);
  }
}

RecordReader::~RecordReader() = default;

uint32_t RecordReader::crc() const { return decoder_->crc(); }

uint64_t RecordReader::last_valid_offset() const { return decoder_->last_valid_offset(); }

bool RecordReader::ReadRecord(Record* rec) {
  if (end_ != End::kNotYet) return false;
  DecodedRecord d;
  // Absent fields keep the previous record's values (decoder.h's quirk).
  d.type = last_type_;
  d.crc = last_crc_;
  absl::Status err;
  absl::StatusOr<bool> more = decoder_->Next(&d);
  if (!more.ok()) {
    err = more.status();
  } else if (!*more) {
    end_ = End::kEof;
    return false;
  } else if (d.type == static_cast<int64_t>(RecordType::kCrc)) {
    // A crc record carries the running CRC of everything before it; a fresh
    // reader (crc 0) starts from whatever the first one says, as etcd's.
    const uint32_t crc = decoder_->crc();
    if (crc != 0 && d.crc != crc) {
      err = WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                     "wal: crc mismatch (segment chain broken)");
    } else {
      decoder_->UpdateCrc(d.crc);
    }
  }
  if (err.ok()) {
    last_type_ = d.type;
    last_crc_ = d.crc;
    rec->type = d.type;
    rec->crc = d.crc;
    rec->data = d.data;
    rec->position = RecordPosition{seqs_[decoder_->file_index()], decoder_->record_offset()};
    return true;
  }
  status_ = err;
  if (!HasWalErrorClass(err)) {
    end_ = End::kIoError;
  } else if (GetWalErrorClass(err) == WalErrorClass::kUnexpectedEof) {
    end_ = End::kTornTail;
  } else {
    end_ = End::kCorruption;
  }
  if (reporter_ != nullptr) {
    size_t bytes = 0;
    const size_t f = decoder_->file_index();
    if (end_ != End::kIoError && f < paths_.size()) {
      auto size = fs_->GetFileSize(paths_[f]);
      // A chain break is found after its record was read: it starts there.
      const uint64_t from = end_ == End::kCorruption && more.ok() ? decoder_->record_offset()
                                                                 : decoder_->last_valid_offset();
      if (size.ok() && *size > from) bytes = static_cast<size_t>(*size - from);
    }
    reporter_->Corruption(bytes, status_);
  }
  return false;
}

namespace {

// Reads two varint fields of a message (by their tags), skipping the rest.
bool ParseTwoVarints(absl::string_view data, uint32_t tag_a, uint64_t* a, uint32_t tag_b,
                     uint64_t* b) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                                            static_cast<int>(data.size()));
  *a = *b = 0;
  while (in.CurrentPosition() < static_cast<int>(data.size())) {
    const uint32_t tag = in.ReadTag();
    bool ok;
    if (tag == tag_a) ok = in.ReadVarint64(a);
    else if (tag == tag_b) ok = in.ReadVarint64(b);
    else ok = tag != 0 && google::protobuf::internal::WireFormatLite::SkipField(&in, tag);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool ParseSnapshotRecord(absl::string_view data, SnapshotPosition* out) {
  *out = {};
  return ParseTwoVarints(data, 0x08, &out->index, 0x10, &out->term);
}

bool ParseEntryPosition(absl::string_view data, uint64_t* index, uint64_t* term) {
  return ParseTwoVarints(data, 0x18, index, 0x10, term);
}

}  // namespace sealwal::wal
