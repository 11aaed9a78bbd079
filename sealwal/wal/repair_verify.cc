// Wal::Repair, Wal::Verify and Wal::ValidSnapshotEntries: static walks of a
// WAL directory through RecordReader, which checks the CRC chain.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/metadata_check.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

absl::Status UnparseableSnapshot() {
  return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                  "wal: snapshot record does not parse as walpb.Snapshot");
}

// True for the reader's broken segment chain (etcd's "wal: crc mismatch",
// as opposed to a record's "walpb: crc mismatch").
bool IsChainBreak(const absl::Status& s) {
  return GetWalErrorClass(s) == WalErrorClass::kCrcMismatch &&
         EtcdErrorText(s) == "wal: crc mismatch";
}

}  // namespace

absl::StatusOr<bool> Wal::Repair(const std::string& dir, const WalOptions& options) {
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec, /*payloads=*/false));
  env::FileSystem* fs = options.fs;
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, SegmentNames(dir, fs));
  const std::string last = env::JoinPath(dir, names.back());
  SEALWAL_ASSIGN_OR_RETURN(auto lock, fs->LockFile(last));
  RecordReader reader(fs, {last});
  Record rec;
  uint64_t last_index = 0, last_term = 0;  // the last entry read intact
  while (reader.ReadRecord(&rec)) {
    uint64_t index, term;
    if (rec.type == static_cast<int64_t>(RecordType::kEntry) &&
        ParseEntryPosition(rec.data, &index, &term)) {
      last_index = index;
      last_term = term;
    }
  }
  switch (reader.end()) {
    case RecordReader::End::kEof:
      return false;  // nothing torn
    case RecordReader::End::kTornTail:
      break;
    default:
      // Corruption (or an I/O error): never "repaired".
      if (IsChainBreak(reader.status())) {
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                        "wal: crc mismatch (segment chain broken); not repairable");
      }
      if (reader.end() == RecordReader::End::kCorruption && last_index > 0) {
        // Name where the damage starts, for the operator's decision.
        return WalError(reader.status().code(), GetWalErrorClass(reader.status()),
                        absl::StrCat(reader.status().message(),
                                     "; the last intact entry before it is index ", last_index,
                                     " term ", last_term));
      }
      return reader.status();
  }
  const uint64_t last_offset = reader.last_valid_offset();
  // Keep a copy of what we cut, then truncate at the last good record.
  SEALWAL_ASSIGN_OR_RETURN(std::string content, env::ReadFileToString(fs, last));
  {
    // A fresh file: an older .broken copy, or a planted symlink, is replaced
    // rather than written through.
    SEALWAL_ASSIGN_OR_RETURN(auto broken, env::NewTempFile(fs, last + ".broken", 0600));
    SEALWAL_RETURN_IF_ERROR(broken->Append(content));
    SEALWAL_RETURN_IF_ERROR(broken->Sync());
    SEALWAL_RETURN_IF_ERROR(broken->Close());
  }
  // The copy's name must be durable before the original is cut.
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dir));
  env::WritableFileOptions wopts;
  wopts.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
  SEALWAL_ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(last, wopts));
  SEALWAL_RETURN_IF_ERROR(f->Truncate(last_offset));
  SEALWAL_RETURN_IF_ERROR(f->Sync());
  SEALWAL_RETURN_IF_ERROR(f->Close());
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dir));
  return true;
}

absl::Status Wal::Verify(const std::string& dir, SnapshotPosition snap,
                         const WalOptions& options) {
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec));
  SEALWAL_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(dir, snap, options.fs));
  Record rec;
  MetadataCheck metadata(options.codec);
  bool match = false;
  while (reader->ReadRecord(&rec)) {
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kMetadata:
        SEALWAL_RETURN_IF_ERROR(metadata.Add(rec.data));
        break;
      case RecordType::kSnapshot: {
        SnapshotPosition loaded;
        if (!ParseSnapshotRecord(rec.data, &loaded)) return UnparseableSnapshot();
        if (loaded.index == snap.index) {
          if (loaded.term != snap.term) {
            return WalError(absl::StatusCode::kFailedPrecondition,
                            WalErrorClass::kSnapshotMismatch, "wal: snapshot mismatch");
          }
          match = true;
        }
        break;
      }
      case RecordType::kCrc:  // checked by the reader
      case RecordType::kEntry:
      case RecordType::kState:
        break;
      default:
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                        absl::StrCat("wal: unexpected block type ", rec.type));
    }
  }
  // etcd's Verify accepts a torn tail (io.ErrUnexpectedEOF).
  if (reader->end() != RecordReader::End::kTornTail) SEALWAL_RETURN_IF_ERROR(reader->status());
  // With a codec, metadata that differs in its stored bytes (a key switch)
  // must agree as plaintext.
  SEALWAL_RETURN_IF_ERROR(metadata.CheckAgreement());
  if (!match) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kSnapshotNotFound,
                    "wal: snapshot not found");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SnapshotPosition>> Wal::ValidSnapshotEntries(
    const std::string& dir, const WalOptions& options) {
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec, /*payloads=*/false));
  // Every segment, as etcd reads them here (no sequence check).
  SEALWAL_ASSIGN_OR_RETURN(auto reader, RecordReader::OpenAll(dir, options.fs));
  Record rec;
  std::vector<SnapshotPosition> snaps;
  raftpb::HardState state;
  while (reader->ReadRecord(&rec)) {
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kSnapshot: {
        SnapshotPosition p;
        if (!ParseSnapshotRecord(rec.data, &p)) return UnparseableSnapshot();
        snaps.push_back(p);
        break;
      }
      case RecordType::kState:
        state.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()));
        break;
      default:
        break;
    }
  }
  if (reader->end() != RecordReader::End::kTornTail) SEALWAL_RETURN_IF_ERROR(reader->status());
  std::vector<SnapshotPosition> valid;
  for (const auto& s : snaps) {
    if (s.index <= state.commit()) valid.push_back(s);
  }
  return valid;
}

absl::StatusOr<SnapshotPosition> Wal::OldestReadablePosition(const std::string& dir,
                                                             const WalOptions& options) {
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec, /*payloads=*/false));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, SegmentNames(dir, options.fs));
  uint64_t seq, first_index;
  if (!ParseSegmentFileName(names.front(), &seq, &first_index)) {
    return absl::InternalError(absl::StrCat("wal: bad segment name ", names.front()));
  }
  if (first_index == 0) return SnapshotPosition{};
  SEALWAL_ASSIGN_OR_RETURN(std::vector<SnapshotPosition> snaps, ValidSnapshotEntries(dir, options));
  for (const SnapshotPosition& s : snaps) {
    if (s.index >= first_index) return s;
  }
  return absl::NotFoundError(absl::StrCat("wal: no snapshot record in ", dir,
                                          " at or after the first segment's index ",
                                          first_index));
}

}  // namespace sealwal::wal
