// The Wal's life cycle: Create, Open, ReadAll, Save, cuts, SwitchWriteKey,
// Close. Records are framed by RecordWriter (record_writer.h), read by
// RecordReader (record_reader.h), segment files prepared by SegmentPipeline
// (segment_pipeline.h); Repair, Verify and ValidSnapshotEntries live in
// repair_verify.cc.
#include "sealwal/wal/wal.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/log_index.h"
#include "sealwal/wal/metadata_check.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/record_writer.h"
#include "sealwal/wal/segment_pipeline.h"
#include "sealwal/wal/tail_writer.h"

namespace sealwal::wal {
namespace {

constexpr char kTmpSuffix[] = ".tmp";
// Records are written to the file once this much is buffered, even without
// a sync, to bound memory (the bytes on disk do not depend on it).
constexpr size_t kMaxBufferedBytes = 4 << 20;
// Frame bytes beyond the payload, at most: an entry's length word, record
// header and raftpb.Entry fields, and padding; a HardState's whole frame.
constexpr size_t kMaxEntryFrameOverhead = 128;
constexpr size_t kMaxHardStateFrameBytes = 128;

absl::Status RemoveAll(env::FileSystem* fs, const std::string& dir) {
  SEALWAL_ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  for (const auto& n : names) {
    absl::Status s = fs->RemoveFile(env::JoinPath(dir, n));
    if (!s.ok()) SEALWAL_RETURN_IF_ERROR(RemoveAll(fs, env::JoinPath(dir, n)));
  }
  return fs->RemoveDir(dir);
}

}  // namespace

Wal::Wal(std::string dir, const WalOptions& options)
    : dir_(std::move(dir)),
      options_(options),
      writer_(std::make_unique<RecordWriter>()),
      io_(std::make_unique<TailWriter>(options.fs, dir_, options.pipeline_depth)) {}

Wal::~Wal() { Close().IgnoreError(); }

WalStats Wal::stats() const { return io_->stats(); }

absl::StatusOr<std::vector<std::string>> Wal::SegmentNames(const std::string& dir,
                                                           env::FileSystem* fs) {
  auto listed = fs->ListDir(dir);
  if (!listed.ok()) {
    if (absl::IsNotFound(listed.status())) {
      return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                      absl::StrCat("wal: file not found (", dir, " does not exist)"));
    }
    return listed.status();
  }
  std::vector<std::string> names;
  for (auto& n : *listed) {
    uint64_t seq, index;
    if (ParseSegmentFileName(n, &seq, &index)) names.push_back(std::move(n));
  }
  if (names.empty()) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kFileNotFound,
                    absl::StrCat("wal: file not found (no .wal segments in ", dir, ")"));
  }
  return names;  // ListDir sorts, and fixed-width hex sorts numerically
}

absl::Status Wal::CheckDirMatchesCodec(const std::string& dir, const PayloadCodec* codec,
                                      bool payloads) {
  const bool encrypts = codec != nullptr && codec->encrypts();
  if (IsEncryptedDirName(dir)) {
    if (!encrypts && payloads) {
      return absl::FailedPreconditionError(
          absl::StrCat("wal: ", dir, " is an encrypted WAL (its name ends in ",
                       kEncryptedDirSuffix, "): open it with a key"));
    }
  }
  // A key on any other name is the caller's choice (the CLI contract: a
  // key makes a WAL encrypted); the codec then refuses plaintext records.
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Create(const std::string& dir_in,
                                                 absl::string_view metadata,
                                                 const WalOptions& options) {
  env::FileSystem* fs = options.fs;
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec));
  if (options.segment_size < 4096) {
    return absl::InvalidArgumentError("wal: segment size must be at least 4096 bytes");
  }
  auto existing = fs->ListDir(dir);
  if (existing.ok() && !existing->empty()) {
    return absl::AlreadyExistsError(absl::StrCat("wal: ", dir, " exists and is not empty"));
  }
  // Build the first segment in <dir>.tmp so that a crash leaves no half WAL.
  const std::string tmp_dir = dir + kTmpSuffix;
  if (fs->FileExists(tmp_dir).ok()) SEALWAL_RETURN_IF_ERROR(RemoveAll(fs, tmp_dir));
  absl::Status made = env::CreateDirAll(fs, tmp_dir);
  absl::StatusOr<std::unique_ptr<Wal>> w =
      made.ok() ? CreateInTmpDir(dir, tmp_dir, metadata, options, existing.ok()) : made;
  // A Create that failed before its rename leaves no <dir>.tmp for an
  // operator to wonder about (the Wal, its file and lock are gone by now).
  // Best effort: the first error is the one worth reporting.
  if (!w.ok() && fs->FileExists(tmp_dir).ok()) RemoveAll(fs, tmp_dir).IgnoreError();
  return w;
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::CreateInTmpDir(const std::string& dir,
                                                         const std::string& tmp_dir,
                                                         absl::string_view metadata,
                                                         const WalOptions& options,
                                                         bool replace_empty_dir) {
  env::FileSystem* fs = options.fs;
  std::unique_ptr<Wal> w(new Wal(dir, options));
  w->write_mode_ = true;
  w->read_done_ = true;
  const std::string name = SegmentFileName(0, 0);
  const std::string tmp_path = env::JoinPath(tmp_dir, name);
  env::WritableFileOptions wopts;
  wopts.disposition = env::WritableFileOptions::Disposition::kCreateExclusive;
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::WritableFile> tail,
                           fs->NewWritableFile(tmp_path, wopts));
  auto seg = std::make_unique<LockedSegment>();
  SEALWAL_ASSIGN_OR_RETURN(seg->lock, fs->LockFile(tmp_path));
  seg->path = env::JoinPath(dir, name);
  w->tail_final_path_ = seg->path;
  w->io_->AddSegment(std::move(seg));
  SEALWAL_RETURN_IF_ERROR(PrepareSpace(tail.get(), 0, options.segment_size, options.preallocation));
  w->io_->Attach(std::move(tail), /*path=*/"", 0);  // a temporary until the rename

  // Metadata goes through the codec once per write key; every cut under
  // that key repeats these bytes.
  w->metadata_.assign(metadata.data(), metadata.size());
  SEALWAL_RETURN_IF_ERROR(w->EncodeMetadata());
  // Always written with a data field (even empty): etcd's reader would
  // otherwise see the previous record's data in its place (decoder.h).
  w->has_metadata_ = true;
  SEALWAL_RETURN_IF_ERROR(w->StartTail(0));
  SEALWAL_RETURN_IF_ERROR(w->writer_->AppendSnapshot({}));
  SEALWAL_RETURN_IF_ERROR(w->SyncTail());
  // The segment's name in <dir>.tmp must be durable before the directory is
  // renamed into place: fsyncing the parent after the rename makes the
  // directory's own name durable, not the entries inside it. Without this a
  // power loss after Create returned could leave <dir> with no segment at
  // all (found by wal_test's CrashDuringCreate and FailedFsync tests).
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(tmp_dir));

  // An empty directory in the way is replaced, as etcd does.
  if (replace_empty_dir) SEALWAL_RETURN_IF_ERROR(fs->RemoveDir(dir));
  SEALWAL_RETURN_IF_ERROR(fs->Rename(tmp_dir, dir));
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(env::Dirname(dir)));
  w->io_->SetTailPath(w->tail_final_path_);
  w->StartSegmentPipeline();
  return w;
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const std::string& dir, SnapshotPosition snap,
                                               const WalOptions& options) {
  return OpenAt(dir, snap, options, /*write=*/true);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::OpenForRead(const std::string& dir,
                                                      SnapshotPosition snap,
                                                      const WalOptions& options) {
  return OpenAt(dir, snap, options, /*write=*/false);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::OpenAt(const std::string& dir, SnapshotPosition snap,
                                                 const WalOptions& options, bool write) {
  SEALWAL_RETURN_IF_ERROR(CheckDirMatchesCodec(dir, options.codec));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> paths, SelectSegments(options.fs, dir, snap.index));
  std::unique_ptr<Wal> w(new Wal(dir, options));
  w->write_mode_ = write;
  w->start_ = snap;
  if (write) {
    for (const auto& p : paths) {
      auto seg = std::make_unique<LockedSegment>();
      seg->path = p;
      ParseSegmentFileName(env::Basename(p), &seg->seq, &seg->index);
      SEALWAL_ASSIGN_OR_RETURN(seg->lock, options.fs->LockFile(p));
      w->tail_seq_ = seg->seq;
      w->tail_final_path_ = p;
      w->io_->AddSegment(std::move(seg));
    }
  }
  w->read_paths_ = std::move(paths);
  return w;
}

absl::StatusOr<WalContents> Wal::ReadAll() {
  WalContents c;
  SEALWAL_RETURN_IF_ERROR(ReadAll(&c));
  return c;
}

absl::Status Wal::ReadAll(WalContents* out) {
  *out = WalContents();
  if (read_done_) return absl::FailedPreconditionError("wal: ReadAll already called");
  read_done_ = true;
  std::vector<raftpb::Entry> ents;
  std::unique_ptr<EntrySink> sink =
      NewMaterializingSink(start_, options_.codec, options_.decode_threads, &ents);
  RecoveredState found;
  absl::Status result = Recover(sink.get(), &found);
  out->torn_tail = found.torn_tail;
  out->torn_detail = found.torn_detail;
  if (!found.filled) return result;
  out->has_metadata = found.has_metadata;
  out->metadata = std::move(found.metadata);
  out->hardstate = found.hardstate;
  out->entries = std::move(ents);
  return result;
}

absl::Status Wal::ReadAllIndexed(const LogReaderOptions& options,
                                 std::unique_ptr<LogReader>* out) {
  out->reset();
  const bool fresh = read_done_ && read_paths_.empty() && write_mode_;  // from Create
  if (index_ != nullptr || (read_done_ && !fresh)) {
    return absl::FailedPreconditionError("wal: ReadAll already called");
  }
  auto state = std::make_shared<LogState>(options_.fs, options_.codec, options_.decode_threads,
                                          options, start_);
  if (fresh) {
    // Fresh from Create: nothing to read; the reader follows the Saves.
    state->recovered.filled = true;
    state->recovered.has_metadata = has_metadata_;
    state->recovered.metadata = metadata_;
    // The I/O thread reads the index pointer: set it while nothing runs.
    SEALWAL_RETURN_IF_ERROR(io_->Drain());
    index_ = state;
    io_->SetIndex(index_.get());
    *out = std::unique_ptr<LogReader>(new LogReader(std::move(state)));
    return absl::OkStatus();
  }
  read_done_ = true;
  {
    absl::MutexLock l(&state->mu);
    for (size_t i = 0; i < read_paths_.size(); ++i) {
      uint64_t seq, index;
      if (!ParseSegmentFileName(env::Basename(read_paths_[i]), &seq, &index)) seq = i;
      state->SegmentSlot(seq, read_paths_[i]);
    }
  }
  std::unique_ptr<EntrySink> sink = NewIndexSink(
      state.get(), options_.codec, options_.decode_threads, options.verify_payloads,
      options.visitor);
  absl::Status result = Recover(sink.get(), &state->recovered);
  sink.reset();
  if (!state->recovered.filled) return result;
  if (write_mode_ && io_->attached()) {
    index_ = state;
    io_->SetIndex(index_.get());
  }
  *out = std::unique_ptr<LogReader>(new LogReader(std::move(state)));
  return result;
}

absl::Status Wal::Recover(EntrySink* sink, RecoveredState* found) {
  // 1. Read the records (RecordReader checks the CRC chain).
  RecordReader reader(options_.fs, read_paths_);
  Record rec;
  bool match = false;
  MetadataCheck metadata(options_.codec);
  raftpb::HardState state;
  uint64_t next = start_.index + 1;  // the index the next live entry may have, at most
  uint64_t last_index = 0;
  uint32_t prev_crc = reader.crc();
  for (; reader.ReadRecord(&rec); prev_crc = reader.crc()) {
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kEntry: {
        uint64_t index, term;
        SEALWAL_RETURN_IF_ERROR(sink->Parse(rec, &index, &term));
        if (index > start_.index) {
          if (index > next) {
            return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kSliceOutOfRange,
                            absl::StrCat("wal: slice bounds out of range (entry ", index,
                                         " follows ", next - 1, ")"));
          }
          const uint64_t frame_bytes = reader.last_valid_offset() - rec.position.offset;
          SEALWAL_RETURN_IF_ERROR(
              sink->Add(rec, index, static_cast<uint32_t>(frame_bytes), prev_crc));
          next = index + 1;
        }
        last_index = index;
        break;
      }
      case RecordType::kState:
        if (!state.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: state record does not parse as raftpb.HardState");
        }
        break;
      case RecordType::kMetadata:
        // etcd's "metadata != nil" holds once a metadata record is seen
        // (a record without data inherits stale data, see decoder.h); the
        // data is nil only before any record had data.
        if (rec.data.data() != nullptr) SEALWAL_RETURN_IF_ERROR(metadata.Add(rec.data));
        break;
      case RecordType::kCrc:
        break;  // checked by the reader
      case RecordType::kSnapshot: {
        SnapshotPosition snap;
        if (!ParseSnapshotRecord(rec.data, &snap)) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: snapshot record does not parse as walpb.Snapshot");
        }
        if (snap.index == start_.index) {
          if (snap.term != start_.term) {
            return WalError(absl::StatusCode::kFailedPrecondition,
                            WalErrorClass::kSnapshotMismatch,
                            absl::StrCat("wal: snapshot mismatch (record ", snap.index, "/",
                                         snap.term, ", wanted ", start_.index, "/", start_.term,
                                         ")"));
          }
          match = true;
        }
        break;
      }
      default:
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                        absl::StrCat("wal: unexpected block type ", rec.type));
    }
  }
  if (reader.end() == RecordReader::End::kTornTail && !write_mode_) {
    // Read mode need not read everything: a torn tail ends the log.
    found->torn_tail = true;
    found->torn_detail = std::string(reader.status().message());
  } else if (!reader.status().ok()) {
    return reader.status();  // write mode must see a whole log (Repair first)
  }

  // 2. Decode payloads (decrypt) in index order; the first failure ends the
  // entries, and entries before it are still returned (as etcd's driver).
  // Metadata is compared as plaintext.
  absl::Status decode_err;
  std::string plain_metadata;
  if (options_.codec != nullptr) {
    decode_err = sink->Decode();
    if (decode_err.ok()) {
      decode_err = metadata.Finish(&plain_metadata);
      if (GetWalErrorClass(decode_err) == WalErrorClass::kMetadataConflict) return decode_err;
    }
  } else {
    SEALWAL_RETURN_IF_ERROR(metadata.Finish(&plain_metadata));
  }

  absl::Status result = decode_err;
  if (result.ok() && !match) {
    result = WalError(absl::StatusCode::kNotFound, WalErrorClass::kSnapshotNotFound,
                      absl::StrCat("wal: snapshot not found (no snapshot record at ",
                                   start_.index, "/", start_.term, ")"));
  }

  // 3. Prepare the tail for appending.
  if (write_mode_ && decode_err.ok()) {
    SEALWAL_RETURN_IF_ERROR(PrepareTail(reader.last_valid_offset(), reader.crc()));
    metadata_ = plain_metadata;
    // Cuts under the same key repeat the stored bytes of the last segment.
    if (metadata.has_metadata()) stored_metadata_ = metadata.last_stored();
    has_metadata_ = metadata.has_metadata();
    state_ = state;
    last_index_ = last_index;
    StartSegmentPipeline();
    MaybeRequestNextSegment();
  } else {
    last_index_ = last_index;
  }

  if (!result.ok() && GetWalErrorClass(result) != WalErrorClass::kSnapshotNotFound &&
      GetWalErrorClass(result) != WalErrorClass::kDecryptFailed) {
    return result;
  }
  found->filled = true;
  found->has_metadata = metadata.has_metadata();
  found->metadata = std::move(plain_metadata);
  found->hardstate = state;
  return result;
}

absl::Status Wal::PrepareTail(uint64_t off, uint32_t crc) {
  // Chain the CRC, zero everything after the last good record (torn
  // leftovers must never mix with new records), and keep the tail
  // preallocated.
  const std::string tail_path = tail_final_path_;
  env::WritableFileOptions wopts;
  wopts.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
  wopts.offset = off;
  // Every error from here fails the WAL for good: a Save after a half
  // prepared tail would chain its CRC from nothing.
  absl::Status s;
  auto size = options_.fs->GetFileSize(tail_path);
  if (!size.ok()) return Fail(size.status());
  auto f = options_.fs->NewWritableFile(tail_path, wopts);
  if (!f.ok()) return Fail(f.status());
  std::unique_ptr<env::WritableFile> tail = std::move(*f);
  s = tail->Truncate(off);
  if (s.ok()) {
    s = PrepareSpace(tail.get(), off, std::max<uint64_t>(*size, options_.segment_size),
                     options_.preallocation);
  }
  // What ReadAll returns is what raft will treat as persisted, but a
  // process that crashed before us may have left it only in the page
  // cache: records written but not synced, or a segment renamed into
  // place without its directory sync. Make both durable before anything
  // is appended (found by wal_model_fuzzer: an entry saved after such a
  // reopen vanished with the unsynced rename on power loss).
  if (s.ok()) s = tail->Sync();
  if (s.ok()) s = options_.fs->SyncDir(dir_);
  if (!s.ok()) return Fail(s);
  io_->Attach(std::move(tail), tail_path, off);
  writer_->Resume(crc, off);
  return absl::OkStatus();
}

absl::Status Wal::CheckWritable() const {
  if (!write_mode_) return absl::FailedPreconditionError("wal: opened read-only");
  if (closed_) return absl::FailedPreconditionError("wal: closed");
  SEALWAL_RETURN_IF_ERROR(io_->error());
  if (!io_->attached()) {
    return absl::FailedPreconditionError("wal: call ReadAll before appending");
  }
  return absl::OkStatus();
}

absl::Status Wal::Fail(absl::Status s) { return io_->Fail(std::move(s)); }

absl::Status Wal::error() const { return io_->error(); }

void Wal::StartSegmentPipeline() {
  pipeline_ = std::make_unique<SegmentPipeline>(options_.fs, dir_, options_.segment_size,
                                                options_.preallocation);
  io_->SetSegmentPipeline(pipeline_.get());
}

absl::Status Wal::EncodeMetadata() {
  if (options_.codec == nullptr) {
    stored_metadata_ = metadata_;
    return absl::OkStatus();
  }
  PayloadContext ctx;
  ctx.kind = PayloadContext::Kind::kMetadata;
  return options_.codec->Encode(ctx, metadata_, &stored_metadata_);
}

absl::Status Wal::EncodeHardState(const raftpb::HardState& hs) {
  if (IsEmptyHardState(hs)) return absl::OkStatus();
  state_ = hs;
  return writer_->AppendHardState(hs);
}

std::string Wal::TakeBytes() {
  std::string bytes = io_->TakeBuffer();
  writer_->SwapBuffer(&bytes);
  return bytes;
}

TailOp Wal::TakeFrames(bool sync) {
  TailOp op;
  op.sync = sync;
  op.bytes = TakeBytes();
  // etcd flushes its page writer on every sync: cut points follow the
  // syncs raft asks for, not the ones group commit merges.
  if (sync) writer_->Synced();
  return op;
}

absl::Status Wal::SyncTail() {
  std::vector<TailOp> ops;
  ops.push_back(TakeFrames(/*sync=*/true));
  return io_->RunInline(std::move(ops));
}

// Writes the records that open every segment: crc, metadata, last state.
absl::Status Wal::StartTail(uint32_t prev_crc) {
  writer_->StartSegment(prev_crc);
  SEALWAL_RETURN_IF_ERROR(writer_->Append(RecordType::kCrc, false, {}, {}));
  SEALWAL_RETURN_IF_ERROR(
      writer_->Append(RecordType::kMetadata, has_metadata_, stored_metadata_, {}));
  return EncodeHardState(state_);
}

void Wal::MaybeRequestNextSegment() {
  if (pipeline_ != nullptr && writer_->offset() >= options_.segment_size / 2) {
    pipeline_->Request();
  }
}

absl::Status Wal::PlanCut(std::vector<TailOp>* ops) {
  // The old tail: what is buffered, then closed at its end and synced by
  // the cut itself (on which etcd's page writer flushes).
  TailOp rest = TakeFrames(/*sync=*/false);
  writer_->Synced();
  if (!rest.bytes.empty()) ops->push_back(std::move(rest));
  TailOp cut;
  cut.kind = TailOp::Kind::kCut;
  cut.old_end = writer_->offset();
  cut.seq = tail_seq_ + 1;
  cut.first_index = last_index_ + 1;
  cut.final_path = env::JoinPath(dir_, SegmentFileName(cut.seq, cut.first_index));
  // From here on the framing has moved to the next segment: any error
  // must fail the WAL, or later Saves would chain from a cut never made.
  if (absl::Status s = StartTail(writer_->crc()); !s.ok()) return Fail(s);
  cut.bytes = TakeBytes();
  writer_->Synced();  // the cut syncs the new segment too
  // etcd reopens the file and starts a new page writer at this offset.
  writer_->ReopenPageWriter();
  tail_seq_ = cut.seq;
  tail_final_path_ = cut.final_path;
  ops->push_back(std::move(cut));
  return absl::OkStatus();
}

absl::Status Wal::SwitchWriteKey(PayloadCodec* codec) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (codec != nullptr) options_.codec = codec;
  // Re-seal the plaintext metadata under the new write key before anything
  // is framed: a codec that cannot seal fails the WAL here, with the old
  // tail intact and synced state unchanged.
  if (has_metadata_) {
    if (absl::Status s = EncodeMetadata(); !s.ok()) return Fail(s);
  }
  // The cut syncs what is buffered, then makes the new segment durable
  // (fsync, rename, directory fsync) before RunInline returns; any error
  // fails the WAL.
  std::vector<TailOp> ops;
  SEALWAL_RETURN_IF_ERROR(PlanCut(&ops));
  return io_->RunInline(std::move(ops));
}

absl::Status Wal::FrameSave(const raftpb::HardState& hs, absl::Span<const raftpb::Entry> entries,
                            bool hand_off, std::vector<TailOp>* ops) {
  // Refuse a batch that would leave a gap: etcd writes it and then cannot
  // read its own log back (ErrSliceOutOfRange).
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t want = i == 0 ? 0 : entries[i - 1].index() + 1;
    if ((i == 0 && entries[0].index() > last_index_ + 1) ||
        (i > 0 && entries[i].index() != want)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "wal: entries must be contiguous and follow index ", last_index_, "; got index ",
          entries[i].index(), " at position ", i));
    }
  }
  const bool must_sync =
      !entries.empty() || hs.vote() != state_.vote() || hs.term() != state_.term();

  // 1. Encode (seal) every payload; nothing is framed yet, so a refused
  // batch leaves no trace.
  const size_t n = entries.size();
  const bool coded = options_.codec != nullptr && n > 0;
  if (coded) {
    batch_ctx_.resize(n);
    batch_plain_.resize(n);
    if (batch_encoded_.size() < n) batch_encoded_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const raftpb::Entry& e = entries[i];
      batch_ctx_[i] = PayloadContext{PayloadContext::Kind::kEntry, e.index(), e.term(),
                                     static_cast<int32_t>(e.type())};
      batch_plain_[i] = e.data();
    }
    // The codec may spread the batch over threads.
    SEALWAL_RETURN_IF_ERROR(options_.codec->EncodeBatch(batch_ctx_, batch_plain_,
                                                        batch_encoded_.data()));
  }

  // 2. Frame the entries, then the HardState; a record refused here (too
  // large) undoes the whole batch.
  size_t frame_bytes = kMaxHardStateFrameBytes;
  for (size_t i = 0; i < n; ++i) {
    frame_bytes += (coded ? batch_encoded_[i].size() : entries[i].data().size()) +
                   kMaxEntryFrameOverhead;
  }
  writer_->Reserve(frame_bytes);
  const RecordWriter::Mark mark = writer_->mark();
  const uint64_t li = last_index_;
  const raftpb::HardState st_mark = state_;
  // Where each entry goes, for the LogReader (published once durable).
  std::vector<AppendedEntry> appended;
  if (index_ != nullptr) appended.reserve(n);
  absl::Status s;
  for (size_t i = 0; s.ok() && i < n; ++i) {
    const raftpb::Entry& e = entries[i];
    const uint64_t off = writer_->offset();
    const uint32_t prev_crc = writer_->crc();
    s = writer_->AppendEntry(e, coded ? &batch_encoded_[i] : nullptr);
    if (s.ok() && index_ != nullptr) {
      appended.push_back(AppendedEntry{e.index(), e.term(), off,
                                       static_cast<uint32_t>(writer_->offset() - off), prev_crc});
    }
    if (s.ok()) last_index_ = e.index();
  }
  if (s.ok()) s = EncodeHardState(hs);
  if (!s.ok()) {
    writer_->Rollback(mark);
    last_index_ = li;
    state_ = st_mark;
    return s;
  }
  const uint64_t seg_seq = tail_seq_;
  const std::string seg_path = tail_final_path_;

  // 3. Turn the frames into ops: a synced write, or a cut once etcd would
  // cut (cut points depend on etcd's page writer, record_writer.h).
  MaybeRequestNextSegment();
  if (writer_->etcd_flushed() < options_.segment_size) {
    if (must_sync || hand_off || writer_->buffer().size() >= kMaxBufferedBytes) {
      ops->push_back(TakeFrames(must_sync));
    }
  } else {
    SEALWAL_RETURN_IF_ERROR(PlanCut(ops));
  }
  // Entries always sync (or cut, which syncs): they are published with the
  // batch's last op, once it is durable.
  if (!appended.empty() && !ops->empty()) {
    TailOp& last = ops->back();
    last.published = std::move(appended);
    last.published_seq = seg_seq;
    last.published_path = seg_path;
  }
  return absl::OkStatus();
}

absl::Status Wal::Save(const raftpb::HardState& hs, absl::Span<const raftpb::Entry> entries) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (IsEmptyHardState(hs) && entries.empty()) return absl::OkStatus();
  std::vector<TailOp> ops;
  SEALWAL_RETURN_IF_ERROR(FrameSave(hs, entries, /*hand_off=*/false, &ops));
  if (ops.empty()) return absl::OkStatus();  // buffered: raft needs no sync
  return io_->RunInline(std::move(ops));
}

absl::Status Wal::Submit(const raftpb::HardState& hs, absl::Span<const raftpb::Entry> entries,
                         Completion done) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (pipeline_ != nullptr) pipeline_->SetMode(options_.pipelined_preallocation);
  // Back-pressure before framing: at most pipeline_depth batches of frames
  // exist at once.
  SEALWAL_RETURN_IF_ERROR(io_->WaitForRoom());
  std::vector<TailOp> ops;
  if (!IsEmptyHardState(hs) || !entries.empty()) {
    SEALWAL_RETURN_IF_ERROR(FrameSave(hs, entries, /*hand_off=*/true, &ops));
  } else {
    ops.push_back(TakeFrames(/*sync=*/false));  // completes in its turn
  }
  ops.back().done = std::move(done);
  ops.back().counted = true;
  io_->Enqueue(std::move(ops));
  return absl::OkStatus();
}

absl::Status Wal::Flush() {
  if (!write_mode_) return absl::FailedPreconditionError("wal: opened read-only");
  return io_->Drain();
}

absl::Status Wal::SaveSnapshot(SnapshotPosition snap) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  SEALWAL_RETURN_IF_ERROR(writer_->AppendSnapshot(snap));
  if (last_index_ < snap.index) last_index_ = snap.index;
  return SyncTail();
}

absl::Status Wal::Sync() {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  return SyncTail();
}

absl::Status Wal::ReleaseLockTo(uint64_t index) {
  io_->ReleaseLocksBefore(index);
  return absl::OkStatus();
}

absl::Status Wal::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  // Waits for every submission, then syncs what Save left buffered; a
  // failed WAL returns its first error (nothing more could be synced, and
  // fsync is never retried).
  absl::Status s = write_mode_ && io_->attached() ? SyncTail() : io_->error();
  absl::Status c = io_->Shutdown();
  if (s.ok()) s = c;
  pipeline_.reset();
  return s;
}

}  // namespace sealwal::wal
