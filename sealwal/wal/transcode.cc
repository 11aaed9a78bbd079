#include "sealwal/wal/transcode.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/record_writer.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

// Frames are handed to the file in writes of about this size.
constexpr size_t kWriteChunk = 1 << 20;

// The codec's status with `what` in front, keeping its code and payloads
// (a missing key stays encryption::IsMissingKeyError) and adding the WAL's
// kDecryptFailed class.
absl::Status PayloadError(const absl::Status& s, absl::string_view what) {
  absl::Status out = WalError(s.code(), WalErrorClass::kDecryptFailed,
                              absl::StrCat(what, ": ", s.message()));
  s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    if (!out.GetPayload(url).has_value()) out.SetPayload(url, payload);
  });
  return out;
}

// One segment being written into the copy.
class SegmentOut {
 public:
  SegmentOut(env::FileSystem* fs, std::string path) : fs_(fs), path_(std::move(path)) {}

  absl::Status Open() {
    env::WritableFileOptions o;
    o.mode = 0600;
    o.disposition = env::WritableFileOptions::Disposition::kCreateExclusive;
    SEALWAL_ASSIGN_OR_RETURN(file_, fs_->NewWritableFile(path_, o));
    return absl::OkStatus();
  }
  // Writes what the record writer has buffered once it is large enough
  // (always with `force`).
  absl::Status Drain(RecordWriter* w, bool force) {
    if (w->buffer().empty() || (!force && w->buffer().size() < kWriteChunk)) {
      return absl::OkStatus();
    }
    SEALWAL_RETURN_IF_ERROR(file_->Append(w->buffer()));
    w->ClearBuffer();
    return absl::OkStatus();
  }
  // Everything written, then zeros up to `pad_to` (a preallocated tail),
  // fsync, close.
  absl::Status Finish(RecordWriter* w, uint64_t pad_to) {
    SEALWAL_RETURN_IF_ERROR(Drain(w, true));
    uint64_t at = w->offset();
    if (pad_to > at) {
      const std::string zeros(static_cast<size_t>(std::min<uint64_t>(kWriteChunk, pad_to - at)),
                              '\0');
      while (at < pad_to) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), pad_to - at));
        SEALWAL_RETURN_IF_ERROR(file_->Append(absl::string_view(zeros.data(), n)));
        at += n;
      }
    }
    SEALWAL_RETURN_IF_ERROR(file_->Sync());
    absl::Status s = file_->Close();
    file_.reset();
    return s;
  }

 private:
  env::FileSystem* const fs_;
  const std::string path_;
  std::unique_ptr<env::WritableFile> file_;
};

}  // namespace

absl::StatusOr<TranscodeResult> TranscodeWal(const std::string& src_dir,
                                             const std::string& dst_dir,
                                             const TranscodeOptions& options) {
  // Each side's name must say what its codec does (wal.h, "Directory names").
  SEALWAL_RETURN_IF_ERROR(Wal::CheckDirMatchesCodec(src_dir, options.decode));
  SEALWAL_RETURN_IF_ERROR(Wal::CheckDirMatchesCodec(dst_dir, options.encode));
  env::FileSystem* fs = options.fs;
  TranscodeResult result;
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> listed, fs->ListDir(src_dir));
  std::vector<std::string> names;
  std::vector<uint64_t> seqs;
  for (std::string& n : listed) {
    uint64_t seq = 0, index = 0;
    if (ParseSegmentFileName(n, &seq, &index)) {
      seqs.push_back(seq);
      names.push_back(std::move(n));
    } else {
      result.skipped.push_back(std::move(n));
    }
  }
  if (names.empty()) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                    absl::StrCat(src_dir, ": no WAL segments"));
  }
  for (size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] != seqs[i - 1] + 1) {
      return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                      absl::StrCat(src_dir, ": the segment sequence has a gap before ", names[i]));
    }
  }
  // Each source file's size: a segment that runs on past its frames
  // (preallocated zeros) is padded in the copy as well.
  std::vector<uint64_t> src_sizes(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    SEALWAL_ASSIGN_OR_RETURN(src_sizes[i], fs->GetFileSize(env::JoinPath(src_dir, names[i])));
  }

  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader,
                           RecordReader::OpenAll(src_dir, fs));
  std::unique_ptr<PayloadCodec::DecodeSession> session;
  if (options.decode != nullptr) session = options.decode->NewDecodeSession();

  RecordWriter writer;
  std::unique_ptr<SegmentOut> out;
  size_t cur = 0;          // names[cur] is being copied (once `out` is set)
  uint64_t src_end = 0;    // end of the last frame read from names[cur]
  bool first_crc = true;   // the copy's chain starts where the source's does
  // Metadata: the plaintext of each distinct stored form, and the stored
  // form of each distinct plaintext (sealed once; every segment repeats
  // it, as the cuts of a WAL written under one key do).
  std::map<std::string, std::string, std::less<>> meta_plain;
  std::map<std::string, std::string, std::less<>> meta_stored;
  raftpb::Entry entry;
  std::string plain, stored;

  auto open_segment = [&](size_t i) -> absl::Status {
    out = std::make_unique<SegmentOut>(fs, env::JoinPath(dst_dir, names[i]));
    SEALWAL_RETURN_IF_ERROR(out->Open());
    result.segments.push_back(names[i]);
    writer.StartSegment(writer.crc());
    cur = i;
    src_end = 0;
    return absl::OkStatus();
  };
  auto close_segment = [&]() -> absl::Status {
    const uint64_t pad_to =
        src_sizes[cur] > src_end ? std::max<uint64_t>(src_sizes[cur], writer.offset()) : 0;
    SEALWAL_RETURN_IF_ERROR(out->Finish(&writer, pad_to));
    out.reset();
    return absl::OkStatus();
  };

  Record rec;
  while (reader->ReadRecord(&rec)) {
    // The segment this record belongs to (segments without records, which
    // a valid WAL never has, are copied empty).
    if (out == nullptr || seqs[cur] != rec.position.segment) {
      size_t next = out == nullptr ? 0 : cur + 1;
      if (out != nullptr) SEALWAL_RETURN_IF_ERROR(close_segment());
      for (; next < seqs.size() && seqs[next] != rec.position.segment; ++next) {
        SEALWAL_RETURN_IF_ERROR(open_segment(next));
        SEALWAL_RETURN_IF_ERROR(close_segment());
      }
      if (next == seqs.size()) {
        return absl::InternalError(absl::StrCat(src_dir, ": record of an unknown segment"));
      }
      SEALWAL_RETURN_IF_ERROR(open_segment(next));
    }
    const std::string where = absl::StrCat(names[cur], " offset ", rec.position.offset);
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kCrc:
        // A crc record restates the chain; the copy's first one carries the
        // source's starting value (0 unless older segments were removed).
        if (first_crc) writer.StartSegment(rec.crc);
        first_crc = false;
        SEALWAL_RETURN_IF_ERROR(writer.Append(RecordType::kCrc, false, {}, {}));
        break;
      case RecordType::kMetadata: {
        absl::string_view p = rec.data;
        if (options.decode != nullptr) {
          auto it = meta_plain.find(rec.data);
          if (it == meta_plain.end()) {
            PayloadContext ctx;
            ctx.kind = PayloadContext::Kind::kMetadata;
            if (absl::Status s = session->Decode(ctx, rec.data, &plain); !s.ok()) {
              return PayloadError(s, absl::StrCat("metadata at ", where));
            }
            it = meta_plain.emplace(std::string(rec.data), plain).first;
          }
          p = it->second;
        }
        absl::string_view s = p;
        if (options.encode != nullptr) {
          auto it = meta_stored.find(p);
          if (it == meta_stored.end()) {
            PayloadContext ctx;
            ctx.kind = PayloadContext::Kind::kMetadata;
            SEALWAL_RETURN_IF_ERROR(options.encode->Encode(ctx, p, &stored));
            it = meta_stored.emplace(std::string(p), stored).first;
          }
          s = it->second;
        }
        // As Wal::Create writes it: the data field always present.
        SEALWAL_RETURN_IF_ERROR(writer.Append(RecordType::kMetadata, true, s, {}));
        break;
      }
      case RecordType::kEntry: {
        if (!entry.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          absl::StrCat(src_dir, "/", where, ": entry record does not parse"));
        }
        const PayloadContext ctx{PayloadContext::Kind::kEntry, entry.index(), entry.term(),
                                 static_cast<int32_t>(entry.type())};
        if (session != nullptr) {
          // Every entry of an encrypted WAL carries a payload: a missing
          // one (decoded as "") fails, as in ReadAll.
          if (absl::Status s = session->Decode(ctx, entry.data(), &plain); !s.ok()) {
            return PayloadError(s, absl::StrCat("entry ", entry.index(), " at ", where));
          }
          if (plain.empty()) {
            entry.clear_data();  // etcd's nil Data
          } else {
            entry.mutable_data()->swap(plain);
          }
        }
        if (options.encode != nullptr) {
          SEALWAL_RETURN_IF_ERROR(options.encode->Encode(ctx, entry.data(), &stored));
          SEALWAL_RETURN_IF_ERROR(writer.AppendEntry(entry, &stored));
        } else {
          SEALWAL_RETURN_IF_ERROR(writer.AppendEntry(entry, nullptr));
        }
        ++result.entries;
        result.last_index = entry.index();
        break;
      }
      case RecordType::kState:
      case RecordType::kSnapshot:
        // Nothing secret: copied as stored.
        SEALWAL_RETURN_IF_ERROR(
            writer.Append(static_cast<RecordType>(rec.type), true, rec.data, {}));
        break;
      default:
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                        absl::StrCat(src_dir, "/", where, ": unknown record type ", rec.type));
    }
    ++result.records;
    src_end = reader->last_valid_offset();
    SEALWAL_RETURN_IF_ERROR(out->Drain(&writer, false));
  }
  switch (reader->end()) {
    case RecordReader::End::kEof:
      break;
    case RecordReader::End::kTornTail:
      return WalError(absl::StatusCode::kFailedPrecondition, WalErrorClass::kUnexpectedEof,
                      absl::StrCat(src_dir, " ends in a torn record (",
                                   reader->status().message(),
                                   "); repair it first (Wal::Repair)"));
    default:
      return reader->status();
  }
  size_t next = out == nullptr ? 0 : cur + 1;
  if (out != nullptr) SEALWAL_RETURN_IF_ERROR(close_segment());
  for (; next < names.size(); ++next) {
    SEALWAL_RETURN_IF_ERROR(open_segment(next));
    SEALWAL_RETURN_IF_ERROR(close_segment());
  }
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dst_dir));
  return result;
}

}  // namespace sealwal::wal
