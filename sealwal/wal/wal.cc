#include "sealwal/wal/wal.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/hex.h"
#include "sealwal/base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "sealwal/wal/decoder.h"

namespace sealwal::wal {
namespace {

using google::protobuf::io::CodedOutputStream;

constexpr char kTmpSuffix[] = ".tmp";
// Records are written to the file once this much is buffered, even without
// a sync, to bound memory (the bytes on disk do not depend on it).
constexpr size_t kMaxBufferedBytes = 4 << 20;
constexpr size_t kZeroChunk = 1 << 20;

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

bool IsEmptyHardState(const raftpb::HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

// etcd marshals HardState with every field present (gogo, non-nullable).
FieldBuf MarshalHardState(const raftpb::HardState& hs) {
  FieldBuf b;
  b.PutVarintField(0x08, hs.term());
  b.PutVarintField(0x10, hs.vote());
  b.PutVarintField(0x18, hs.commit());
  return b;
}

FieldBuf MarshalSnapshot(SnapshotPosition snap) {
  FieldBuf b;
  b.PutVarintField(0x08, snap.index);
  b.PutVarintField(0x10, snap.term);
  return b;
}

// Reserves the segment's space: fallocate, and with kZeroFill also zeros
// written over [from, size) and fsynced so that later appends only
// overwrite data blocks.
absl::Status PrepareSpace(env::WritableFile* f, uint64_t from, uint64_t size,
                          Preallocation mode) {
  if (size <= from) return absl::OkStatus();
  SEALWAL_RETURN_IF_ERROR(f->Fallocate(from, size - from));
  if (mode == Preallocation::kZeroFill) {
    static const std::string* const zeros = new std::string(kZeroChunk, '\0');
    SEALWAL_RETURN_IF_ERROR(f->Seek(from));
    for (uint64_t off = from; off < size; off += kZeroChunk) {
      SEALWAL_RETURN_IF_ERROR(f->Append(absl::string_view(*zeros).substr(
          0, static_cast<size_t>(std::min<uint64_t>(kZeroChunk, size - off)))));
    }
    SEALWAL_RETURN_IF_ERROR(f->Sync());
  }
  return f->Seek(from);
}

// Parses a walpb.Snapshot (1 index, 2 term; 3 conf_state and unknown
// fields skipped). False when the bytes do not parse.
bool ParseWalSnapshot(absl::string_view data, SnapshotPosition* out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                                            static_cast<int>(data.size()));
  *out = {};
  while (in.CurrentPosition() < static_cast<int>(data.size())) {
    const uint32_t tag = in.ReadTag();
    bool ok;
    if (tag == 0x08) ok = in.ReadVarint64(&out->index);
    else if (tag == 0x10) ok = in.ReadVarint64(&out->term);
    else ok = tag != 0 && google::protobuf::internal::WireFormatLite::SkipField(&in, tag);
    if (!ok) return false;
  }
  return true;
}

// A codec's kNotFound (no key with that id) stays distinguishable from a
// payload that failed authentication (kDataLoss).
absl::StatusCode DecodeErrorCode(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound ? absl::StatusCode::kNotFound
                                                 : absl::StatusCode::kDataLoss;
}

absl::Status RemoveAll(env::FileSystem* fs, const std::string& dir) {
  SEALWAL_ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  for (const auto& n : names) {
    absl::Status s = fs->RemoveFile(env::JoinPath(dir, n));
    if (!s.ok()) SEALWAL_RETURN_IF_ERROR(RemoveAll(fs, env::JoinPath(dir, n)));
  }
  return fs->RemoveDir(dir);
}

}  // namespace

std::string SegmentFileName(uint64_t seq, uint64_t index) {
  return absl::StrFormat("%016x-%016x.wal", seq, index);
}

bool ParseSegmentFileName(const std::string& name, uint64_t* seq, uint64_t* index) {
  // Exactly etcd's pattern: 16 hex, '-', 16 hex, ".wal".
  if (name.size() != 16 + 1 + 16 + 4 || name.compare(33, 4, ".wal") != 0 || name[16] != '-') {
    return false;
  }
  absl::string_view n(name);
  return ParseHex16(n.substr(0, 16), seq) && ParseHex16(n.substr(17, 16), index);
}

// ---------------------------------------------------------------------------
// A locked segment of a writable WAL.
struct Wal::Segment {
  std::string path;
  uint64_t seq = 0;
  uint64_t index = 0;
  std::unique_ptr<env::FileLock> lock;
};

// Prepares the next segment file ("0.tmp"/"1.tmp", as etcd) on a background
// thread so that a cut does not wait for preallocation. Preparation starts
// when the writer asks (once its tail is half full), so that zero-filling
// does not compete with the writer's fsyncs right after it opens.
class Wal::FilePipeline {
 public:
  struct Prepared {
    std::string path;
    std::unique_ptr<env::WritableFile> file;
    std::unique_ptr<env::FileLock> lock;
  };

  FilePipeline(env::FileSystem* fs, std::string dir, uint64_t size, Preallocation mode)
      : fs_(fs), dir_(std::move(dir)), size_(size), mode_(mode),
        thread_([this] { Run(); }) {}

  ~FilePipeline() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
    if (ready_.has_value() && ready_->ok()) {
      // Nobody took it: remove it, as etcd's pipeline does on close.
      std::string path = (*ready_)->path;
      ready_.reset();
      fs_->RemoveFile(path).IgnoreError();
    }
  }

  // Starts preparing the next file if none is prepared or being prepared.
  void Request() {
    absl::MutexLock l(&mu_);
    want_ = true;
  }

  // Waits for the prepared file and hands it over.
  absl::StatusOr<Prepared> Take() {
    absl::MutexLock l(&mu_);
    want_ = true;
    mu_.Await(absl::Condition(
        +[](FilePipeline* p) { return p->ready_.has_value(); }, this));
    absl::StatusOr<Prepared> r = std::move(*ready_);
    ready_.reset();
    want_ = false;
    return r;
  }

 private:
  void Run() {
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](FilePipeline* p) { return p->stop_ || (p->want_ && !p->ready_.has_value()); },
            this));
        if (stop_) return;
      }
      absl::StatusOr<Prepared> r = Alloc();
      absl::MutexLock l(&mu_);
      ready_ = std::move(r);
    }
  }

  absl::StatusOr<Prepared> Alloc() {
    Prepared p;
    p.path = env::JoinPath(dir_, absl::StrCat(count_++ % 2, kTmpSuffix));
    SEALWAL_ASSIGN_OR_RETURN(p.file, fs_->NewWritableFile(p.path));
    SEALWAL_ASSIGN_OR_RETURN(p.lock, fs_->LockFile(p.path));
    SEALWAL_RETURN_IF_ERROR(PrepareSpace(p.file.get(), 0, size_, mode_));
    return p;
  }

  env::FileSystem* const fs_;
  const std::string dir_;
  const uint64_t size_;
  const Preallocation mode_;
  uint64_t count_ = 0;  // only the pipeline thread touches it
  absl::Mutex mu_;
  bool stop_ = false;
  bool want_ = false;
  std::optional<absl::StatusOr<Prepared>> ready_;
  std::thread thread_;  // last: starts after the fields above exist
};

// ---------------------------------------------------------------------------

Wal::Wal(std::string dir, const WalOptions& options) : dir_(std::move(dir)), options_(options) {}

Wal::~Wal() { Close().IgnoreError(); }

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

absl::StatusOr<std::unique_ptr<Wal>> Wal::Create(const std::string& dir_in,
                                                 absl::string_view metadata,
                                                 const WalOptions& options) {
  env::FileSystem* fs = options.fs;
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
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
  SEALWAL_ASSIGN_OR_RETURN(w->tail_, fs->NewWritableFile(tmp_path, wopts));
  auto seg = std::make_unique<Segment>();
  SEALWAL_ASSIGN_OR_RETURN(seg->lock, fs->LockFile(tmp_path));
  seg->path = env::JoinPath(dir, name);
  w->segments_.push_back(std::move(seg));
  SEALWAL_RETURN_IF_ERROR(PrepareSpace(w->tail_.get(), 0, options.segment_size, options.preallocation));

  // Metadata goes through the codec once; every cut repeats these bytes.
  if (options.codec != nullptr) {
    PayloadContext ctx;
    ctx.kind = PayloadContext::Kind::kMetadata;
    SEALWAL_RETURN_IF_ERROR(options.codec->Encode(ctx, metadata, &w->metadata_));
  } else {
    w->metadata_.assign(metadata.data(), metadata.size());
  }
  // Always written with a data field (even empty): etcd's reader would
  // otherwise see the previous record's data in its place (decoder.h).
  w->has_metadata_ = true;
  SEALWAL_RETURN_IF_ERROR(w->StartTail(0));
  SEALWAL_RETURN_IF_ERROR(w->EncodeRecord(RecordType::kSnapshot, true, MarshalSnapshot({}).view(), {}));
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
  w->tail_path_ = w->segments_.back()->path;
  w->pipeline_ = std::make_unique<FilePipeline>(fs, dir, options.segment_size,
                                                options.preallocation);
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
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> paths, SelectSegments(options.fs, dir, snap.index));
  std::unique_ptr<Wal> w(new Wal(dir, options));
  w->write_mode_ = write;
  w->start_ = snap;
  if (write) {
    for (const auto& p : paths) {
      auto seg = std::make_unique<Segment>();
      seg->path = p;
      ParseSegmentFileName(env::Basename(p), &seg->seq, &seg->index);
      SEALWAL_ASSIGN_OR_RETURN(seg->lock, options.fs->LockFile(p));
      w->segments_.push_back(std::move(seg));
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
  Decoder decoder(options_.fs, read_paths_);
  DecodedRecord rec;
  bool match = false;
  bool has_metadata = false;
  std::string metadata;
  raftpb::HardState state;
  std::vector<raftpb::Entry> ents;
  uint64_t last_index = 0;
  absl::Status err;
  for (;;) {
    absl::StatusOr<bool> more = decoder.Next(&rec);
    if (!more.ok()) {
      err = more.status();
      break;
    }
    if (!*more) break;
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kEntry: {
        raftpb::Entry e;
        if (!e.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: entry record does not parse as raftpb.Entry");
        }
        const uint64_t index = e.index();
        if (index > start_.index) {
          const uint64_t up = e.index() - start_.index - 1;
          if (up > ents.size()) {
            return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kSliceOutOfRange,
                            absl::StrCat("wal: slice bounds out of range (entry ", e.index(),
                                         " follows ", start_.index + ents.size(), ")"));
          }
          ents.resize(static_cast<size_t>(up));
          ents.push_back(std::move(e));
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
        if (has_metadata && metadata != rec.data) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kMetadataConflict,
                          "wal: conflicting metadata found");
        }
        // etcd's "metadata != nil" holds once a metadata record is seen
        // (a record without data inherits stale data, see decoder.h).
        if (rec.data.data() != nullptr) {  // nil only before any record had data
          metadata.assign(rec.data.data(), rec.data.size());
          has_metadata = true;
        }
        break;
      case RecordType::kCrc: {
        const uint32_t crc = decoder.crc();
        // A fresh decoder (crc 0) starts from whatever the first crc record says.
        if (crc != 0 && rec.crc != crc) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                          "wal: crc mismatch (segment chain broken)");
        }
        decoder.UpdateCrc(rec.crc);
        break;
      }
      case RecordType::kSnapshot: {
        SnapshotPosition snap;
        if (!ParseWalSnapshot(rec.data, &snap)) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: snapshot record does not parse as walpb.Snapshot");
        }
        const uint64_t idx = snap.index, term = snap.term;
        if (idx == start_.index) {
          if (term != start_.term) {
            return WalError(absl::StatusCode::kFailedPrecondition,
                            WalErrorClass::kSnapshotMismatch,
                            absl::StrCat("wal: snapshot mismatch (record ", idx, "/", term,
                                         ", wanted ", start_.index, "/", start_.term, ")"));
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

  if (!write_mode_) {
    // Read mode need not read everything: a torn tail ends the log.
    if (!err.ok() && GetWalErrorClass(err) != WalErrorClass::kUnexpectedEof) return err;
    if (!err.ok()) {
      out->torn_tail = true;
      out->torn_detail = std::string(err.message());
    }
  } else {
    if (!err.ok()) return err;
  }

  // Decode payloads (decrypt) in index order; the first failure ends the
  // entries, and entries before it are still returned (as etcd's driver).
  absl::Status decode_err;
  if (options_.codec != nullptr) {
    PayloadCodec* codec = options_.codec;
    auto decode_range = [&](size_t begin, size_t end, size_t* failed, absl::Status* st) {
      std::string plain;
      // One session per thread: no shared cipher-context pool per entry.
      std::unique_ptr<PayloadCodec::DecodeSession> session = codec->NewDecodeSession();
      for (size_t i = begin; i < end; ++i) {
        raftpb::Entry& e = ents[i];
        // With a codec every entry carries a payload, empty ones too (see
        // EncodeEntry): a missing one was stripped and must not read as "".
        PayloadContext ctx{PayloadContext::Kind::kEntry, e.index(), e.term(),
                           static_cast<int32_t>(e.type())};
        absl::Status s = session->Decode(ctx, e.data(), &plain);
        if (!s.ok()) {
          *failed = i;
          *st = s;
          return;
        }
        e.mutable_data()->swap(plain);
      }
    };
    const size_t n = ents.size();
    const size_t threads =
        std::clamp<size_t>(static_cast<size_t>(std::max(1, options_.decode_threads)), 1,
                           std::max<size_t>(1, n / 256));
    std::vector<size_t> failed(threads, SIZE_MAX);
    std::vector<absl::Status> st(threads);
    std::vector<std::thread> workers;
    for (size_t t = 1; t < threads; ++t) {
      workers.emplace_back(decode_range, n * t / threads, n * (t + 1) / threads, &failed[t],
                           &st[t]);
    }
    decode_range(0, n / threads, &failed[0], &st[0]);
    for (auto& th : workers) th.join();
    for (size_t t = 0; t < threads; ++t) {
      if (failed[t] != SIZE_MAX) {
        const raftpb::Entry& e = ents[failed[t]];
        decode_err = WalError(DecodeErrorCode(st[t]), WalErrorClass::kDecryptFailed,
                              absl::StrCat("entry ", e.index(), ": ", st[t].message()));
        ents.resize(failed[t]);
        break;
      }
    }
    if (decode_err.ok() && has_metadata) {
      PayloadContext ctx;
      ctx.kind = PayloadContext::Kind::kMetadata;
      std::string plain;
      absl::Status s = codec->Decode(ctx, metadata, &plain);
      if (!s.ok()) {
        decode_err = WalError(DecodeErrorCode(s), WalErrorClass::kDecryptFailed,
                              absl::StrCat("metadata: ", s.message()));
      } else {
        out->metadata = std::move(plain);
      }
    }
  }

  absl::Status result = decode_err;
  if (result.ok() && !match) {
    result = WalError(absl::StatusCode::kNotFound, WalErrorClass::kSnapshotNotFound,
                      absl::StrCat("wal: snapshot not found (no snapshot record at ",
                                   start_.index, "/", start_.term, ")"));
  }

  if (write_mode_ && decode_err.ok()) {
    // Prepare for appending: chain the CRC, zero everything after the last
    // good record (torn leftovers must never mix with new records), and
    // keep the tail preallocated.
    const std::string& tail_path = segments_.back()->path;
    env::WritableFileOptions wopts;
    wopts.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
    wopts.offset = decoder.last_valid_offset();
    // Every error from here fails the WAL for good: a Save after a half
    // prepared tail would chain its CRC from nothing.
    absl::Status s;
    auto size = options_.fs->GetFileSize(tail_path);
    if (!size.ok()) return Fail(size.status());
    auto f = options_.fs->NewWritableFile(tail_path, wopts);
    if (!f.ok()) return Fail(f.status());
    tail_ = std::move(*f);
    tail_path_ = tail_path;
    const uint64_t off = decoder.last_valid_offset();
    s = tail_->Truncate(off);
    if (s.ok()) {
      s = PrepareSpace(tail_.get(), off, std::max<uint64_t>(*size, options_.segment_size),
                       options_.preallocation);
    }
    // What ReadAll returns is what raft will treat as persisted, but a
    // process that crashed before us may have left it only in the page
    // cache: records written but not synced, or a segment renamed into
    // place without its directory sync. Make both durable before anything
    // is appended (found by wal_model_fuzzer: an entry saved after such a
    // reopen vanished with the unsynced rename on power loss).
    if (s.ok()) s = tail_->Sync();
    if (s.ok()) s = options_.fs->SyncDir(dir_);
    if (!s.ok()) return Fail(s);
    crc_ = decoder.crc();
    tail_offset_ = off;
    etcd_flushed_ = off;
    etcd_page_offset_ = off % kPageBytes;
    etcd_buffered_ = 0;
    metadata_ = metadata;  // stored bytes: cuts repeat the same ciphertext
    has_metadata_ = has_metadata;
    state_ = state;
    last_index_ = last_index;
    pipeline_ = std::make_unique<FilePipeline>(options_.fs, dir_, options_.segment_size,
                                               options_.preallocation);
    MaybeRequestNextSegment();
  } else {
    last_index_ = last_index;
  }

  if (!result.ok() && GetWalErrorClass(result) != WalErrorClass::kSnapshotNotFound &&
      GetWalErrorClass(result) != WalErrorClass::kDecryptFailed) {
    return result;
  }
  out->has_metadata = has_metadata;
  if (options_.codec == nullptr) out->metadata = std::move(metadata);
  out->hardstate = state;
  out->entries = std::move(ents);
  return result;
}

absl::Status Wal::CheckWritable() const {
  if (!write_mode_) return absl::FailedPreconditionError("wal: opened read-only");
  if (closed_) return absl::FailedPreconditionError("wal: closed");
  if (!error_.ok()) return error_;
  if (tail_ == nullptr) {
    return absl::FailedPreconditionError("wal: call ReadAll before appending");
  }
  return absl::OkStatus();
}

absl::Status Wal::Fail(absl::Status s) {
  if (error_.ok()) {
    error_ = s;
    // A failed WAL touches no file again: stop preparing the next segment
    // (this waits for a preparation under way and removes what it made),
    // rather than let a background thread go on writing to a failing disk.
    pipeline_.reset();
  }
  return error_;
}

// Models etcd's PageWriter.Write for a write of n bytes: etcd decides to cut
// on the offset its page writer has flushed, so we track that offset.
static void ModelPageWrite(uint64_t n, uint64_t* flushed, uint64_t* buffered,
                           uint64_t* page_offset) {
  for (;;) {
    if (n + *buffered <= kEtcdPageWriterBufferBytes) {
      *buffered += n;
      return;
    }
    uint64_t slack = kPageBytes - ((*page_offset + *buffered) % kPageBytes);
    if (slack != kPageBytes) {
      const bool partial = slack > n;
      if (partial) slack = n;
      *buffered += slack;
      n -= slack;
      if (partial) return;
    }
    // Flush the (now page-aligned) buffer.
    *flushed += *buffered;
    *page_offset = (*page_offset + *buffered) % kPageBytes;
    *buffered = 0;
    if (n > kPageBytes) {
      const uint64_t pages = n / kPageBytes;
      *flushed += pages * kPageBytes;  // written directly; page offset unchanged
      n -= pages * kPageBytes;
    }
  }
}

absl::Status Wal::EncodeRecord(RecordType type, bool has_data, absl::string_view head,
                               absl::string_view body) {
  crc_ = crc32c::Extend(crc_, head);
  crc_ = crc32c::Extend(crc_, body);
  uint8_t hdr[1 + 10 + 1 + 10 + 1 + 10];
  uint8_t* p = hdr;
  *p++ = 0x08;
  p = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(type), p);
  *p++ = 0x10;
  p = CodedOutputStream::WriteVarint64ToArray(crc_, p);
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
  char word_bytes[8];
  std::memcpy(word_bytes, &word, 8);  // little-endian host
  buf_.append(word_bytes, 8);
  buf_.append(reinterpret_cast<const char*>(hdr), hdr_len);
  buf_.append(head.data(), head.size());
  buf_.append(body.data(), body.size());
  buf_.append(pad, '\0');
  tail_offset_ += kFrameSizeBytes + rec_len + pad;
  // etcd's encoder writes the length word and the padded record separately.
  ModelPageWrite(kFrameSizeBytes, &etcd_flushed_, &etcd_buffered_, &etcd_page_offset_);
  ModelPageWrite(rec_len + pad, &etcd_flushed_, &etcd_buffered_, &etcd_page_offset_);
  return absl::OkStatus();
}

absl::Status Wal::EncodeEntry(const raftpb::Entry& e, const std::string* encoded) {
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
  return EncodeRecord(RecordType::kEntry, true, head.view(), has_payload ? payload : "");
}

absl::Status Wal::EncodeHardState(const raftpb::HardState& hs) {
  if (IsEmptyHardState(hs)) return absl::OkStatus();
  state_ = hs;
  return EncodeRecord(RecordType::kState, true, MarshalHardState(hs).view(), {});
}

namespace {
uint64_t NowNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

absl::Status Wal::WriteBuffered() {
  if (buf_.empty()) return absl::OkStatus();
  const uint64_t t0 = NowNanos();
  const uint64_t start = tail_offset_ - buf_.size();  // where buf_ goes in the file
  absl::Status s = tail_->Append(buf_);
  stats_.write_nanos += NowNanos() - t0;
  if (!s.ok()) {
    DiscardPartialWrite(start);
    return Fail(s);
  }
  stats_.bytes_written += buf_.size();
  buf_.clear();
  return absl::OkStatus();
}

// A failed write (ENOSPC, EIO) may have put a prefix of buf_ into the file.
// A partial frame that ends inside a 512-byte sector has no all-zero sector,
// so readers (etcd's rule, kept for byte compatibility) take it for a CRC
// mismatch -- corruption that Repair rightly refuses -- and the WAL could
// not be reopened although every acknowledged record is intact. So cut the
// file back to `start`, the end of the last whole frame, through a fresh
// handle (the failed one refuses every call). Nothing at or after `start`
// was acknowledged. Truncating needs no free space, and its fsync is not a
// retry of a failed one: this runs only when a write failed. Best effort:
// the WAL is failed either way, and a leftover is still caught by readers.
void Wal::DiscardPartialWrite(uint64_t start) {
  if (tail_path_.empty()) return;  // a temporary no reader looks at
  env::WritableFileOptions wopts;
  wopts.disposition = env::WritableFileOptions::Disposition::kOpenExisting;
  wopts.offset = start;
  auto f = options_.fs->NewWritableFile(tail_path_, wopts);
  if (!f.ok()) return;
  if ((*f)->Truncate(start).ok()) (*f)->Sync().IgnoreError();
  (*f)->Close().IgnoreError();
}

absl::Status Wal::SyncTail() {
  SEALWAL_RETURN_IF_ERROR(WriteBuffered());
  const uint64_t t0 = NowNanos();
  absl::Status s = tail_->Sync();
  stats_.fsync_nanos += NowNanos() - t0;
  if (!s.ok()) return Fail(s);
  ++stats_.fsyncs;
  // etcd's sync flushes its page writer.
  etcd_flushed_ += etcd_buffered_;
  etcd_page_offset_ = (etcd_page_offset_ + etcd_buffered_) % kPageBytes;
  etcd_buffered_ = 0;
  return absl::OkStatus();
}

// Writes the records that open every segment: crc, metadata, last state.
absl::Status Wal::StartTail(uint32_t prev_crc) {
  crc_ = prev_crc;
  etcd_flushed_ = etcd_buffered_ = etcd_page_offset_ = 0;
  tail_offset_ = 0;
  SEALWAL_RETURN_IF_ERROR(EncodeRecord(RecordType::kCrc, false, {}, {}));
  SEALWAL_RETURN_IF_ERROR(EncodeRecord(RecordType::kMetadata, has_metadata_, metadata_, {}));
  return EncodeHardState(state_);
}

void Wal::MaybeRequestNextSegment() {
  if (pipeline_ != nullptr && tail_offset_ >= options_.segment_size / 2) pipeline_->Request();
}

absl::Status Wal::Cut() {
  // Close the old tail at its used length (it was preallocated) and sync.
  SEALWAL_RETURN_IF_ERROR(WriteBuffered());
  if (absl::Status s = tail_->Truncate(tail_offset_); !s.ok()) return Fail(s);
  SEALWAL_RETURN_IF_ERROR(SyncTail());
  if (absl::Status s = tail_->Close(); !s.ok()) return Fail(s);

  auto prepared = pipeline_->Take();
  if (!prepared.ok()) return Fail(prepared.status());
  const uint64_t seq = segments_.back()->seq + 1;
  const std::string final_path = env::JoinPath(dir_, SegmentFileName(seq, last_index_ + 1));
  tail_ = std::move(prepared->file);
  tail_path_.clear();  // until the rename, the new tail is a .tmp readers ignore
  // From here on the old tail is closed: any error must fail the WAL, or
  // later Saves would go into a .tmp file that never becomes a segment.
  if (absl::Status s = StartTail(crc_); !s.ok()) return Fail(s);
  SEALWAL_RETURN_IF_ERROR(SyncTail());
  // The segment is complete before its name appears.
  if (absl::Status s = options_.fs->Rename(prepared->path, final_path); !s.ok()) return Fail(s);
  if (absl::Status s = options_.fs->SyncDir(dir_); !s.ok()) return Fail(s);
  tail_path_ = final_path;
  auto seg = std::make_unique<Segment>();
  seg->path = final_path;
  seg->seq = seq;
  seg->index = last_index_ + 1;
  seg->lock = std::move(prepared->lock);  // the lock follows the inode across rename
  segments_.push_back(std::move(seg));
  // etcd reopens the file and starts a new page writer at this offset.
  etcd_page_offset_ = tail_offset_ % kPageBytes;
  ++stats_.cuts;
  return absl::OkStatus();
}

absl::Status Wal::Save(const raftpb::HardState& hs, absl::Span<const raftpb::Entry> entries) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (IsEmptyHardState(hs) && entries.empty()) return absl::OkStatus();
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

  // Encoding only touches memory; undo it all if any entry is refused.
  const size_t buf_mark = buf_.size();
  const uint32_t crc_mark = crc_;
  const uint64_t tail_mark = tail_offset_, fl = etcd_flushed_, bu = etcd_buffered_,
                 po = etcd_page_offset_, li = last_index_;
  const raftpb::HardState st_mark = state_;
  absl::Status s;
  const bool coded = options_.codec != nullptr && !entries.empty();
  if (coded) {
    // The whole batch goes to the codec at once so that it can seal on
    // several threads; entries are framed as their payloads come out, in
    // order, and all of it is undone below if the batch fails.
    const size_t n = entries.size();
    batch_ctx_.resize(n);
    batch_plain_.resize(n);
    if (batch_encoded_.size() < n) batch_encoded_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const raftpb::Entry& e = entries[i];
      batch_ctx_[i] = PayloadContext{PayloadContext::Kind::kEntry, e.index(), e.term(),
                                     static_cast<int32_t>(e.type())};
      batch_plain_[i] = e.data();
    }
    s = options_.codec->EncodeBatch(
        batch_ctx_, batch_plain_, batch_encoded_.data(), [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i) {
            SEALWAL_RETURN_IF_ERROR(EncodeEntry(entries[i], &batch_encoded_[i]));
            last_index_ = entries[i].index();
          }
          return absl::OkStatus();
        });
  }
  for (size_t i = 0; !coded && s.ok() && i < entries.size(); ++i) {
    s = EncodeEntry(entries[i], nullptr);
    if (s.ok()) last_index_ = entries[i].index();
  }
  if (s.ok()) s = EncodeHardState(hs);
  if (!s.ok()) {
    buf_.resize(buf_mark);
    crc_ = crc_mark;
    tail_offset_ = tail_mark;
    etcd_flushed_ = fl;
    etcd_buffered_ = bu;
    etcd_page_offset_ = po;
    last_index_ = li;
    state_ = st_mark;
    return s;
  }

  MaybeRequestNextSegment();
  if (etcd_flushed_ < options_.segment_size) {
    if (must_sync) return SyncTail();
    if (buf_.size() >= kMaxBufferedBytes) return WriteBuffered();
    return absl::OkStatus();
  }
  return Cut();
}

absl::Status Wal::SaveSnapshot(SnapshotPosition snap) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  SEALWAL_RETURN_IF_ERROR(EncodeRecord(RecordType::kSnapshot, true, MarshalSnapshot(snap).view(), {}));
  if (last_index_ < snap.index) last_index_ = snap.index;
  return SyncTail();
}

absl::Status Wal::Sync() {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  return SyncTail();
}

absl::Status Wal::ReleaseLockTo(uint64_t index) {
  if (segments_.empty()) return absl::OkStatus();
  // Keep the segment that may hold `index` (the one before the first whose
  // first index is >= index) and everything after it.
  long smaller = -1;
  bool found = false;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i]->index >= index) {
      smaller = static_cast<long>(i) - 1;
      found = true;
      break;
    }
  }
  if (!found) smaller = static_cast<long>(segments_.size()) - 1;
  if (smaller <= 0) return absl::OkStatus();
  segments_.erase(segments_.begin(), segments_.begin() + smaller);
  return absl::OkStatus();
}

absl::Status Wal::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status s;
  if (write_mode_ && tail_ != nullptr && error_.ok()) {
    s = SyncTail();
    absl::Status c = tail_->Close();
    if (s.ok()) s = c;
  } else if (!error_.ok()) {
    // A failed WAL cannot sync what it buffered (and never retries an
    // fsync): say so rather than report a clean close.
    s = error_;
  }
  pipeline_.reset();
  tail_.reset();
  segments_.clear();
  return s;
}

// ---------------------------------------------------------------------------

absl::StatusOr<bool> Wal::Repair(const std::string& dir, const WalOptions& options) {
  env::FileSystem* fs = options.fs;
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, SegmentNames(dir, fs));
  const std::string last = env::JoinPath(dir, names.back());
  SEALWAL_ASSIGN_OR_RETURN(auto lock, fs->LockFile(last));
  Decoder decoder(fs, {last});
  DecodedRecord rec;
  for (;;) {
    const uint64_t last_offset = decoder.last_valid_offset();
    absl::StatusOr<bool> more = decoder.Next(&rec);
    if (more.ok()) {
      if (!*more) return false;  // nothing torn
      if (rec.type == static_cast<int64_t>(RecordType::kCrc)) {
        if (decoder.crc() != 0 && rec.crc != decoder.crc()) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                          "wal: crc mismatch (segment chain broken); not repairable");
        }
        decoder.UpdateCrc(rec.crc);
      }
      continue;
    }
    if (GetWalErrorClass(more.status()) != WalErrorClass::kUnexpectedEof) {
      return more.status();  // corruption: never "repaired"
    }
    // Keep a copy of what we cut, then truncate at the last good record.
    SEALWAL_ASSIGN_OR_RETURN(std::string content, env::ReadFileToString(fs, last));
    {
      SEALWAL_ASSIGN_OR_RETURN(auto broken, fs->NewWritableFile(last + ".broken"));
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
}

absl::Status Wal::Verify(const std::string& dir, SnapshotPosition snap,
                         const WalOptions& options) {
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> paths, SelectSegments(options.fs, dir, snap.index));
  Decoder decoder(options.fs, std::move(paths));
  DecodedRecord rec;
  bool has_metadata = false, match = false;
  std::string metadata;
  absl::Status err;
  for (;;) {
    absl::StatusOr<bool> more = decoder.Next(&rec);
    if (!more.ok()) {
      err = more.status();
      break;
    }
    if (!*more) break;
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kMetadata:
        if (has_metadata && metadata != rec.data) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kMetadataConflict,
                          "wal: conflicting metadata found");
        }
        metadata.assign(rec.data.data(), rec.data.size());
        has_metadata = true;
        break;
      case RecordType::kCrc:
        if (decoder.crc() != 0 && rec.crc != decoder.crc()) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                          "wal: crc mismatch (segment chain broken)");
        }
        decoder.UpdateCrc(rec.crc);
        break;
      case RecordType::kSnapshot: {
        SnapshotPosition loaded;
        if (!ParseWalSnapshot(rec.data, &loaded)) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: snapshot record does not parse as walpb.Snapshot");
        }
        const uint64_t idx = loaded.index, term = loaded.term;
        if (idx == snap.index) {
          if (term != snap.term) {
            return WalError(absl::StatusCode::kFailedPrecondition,
                            WalErrorClass::kSnapshotMismatch, "wal: snapshot mismatch");
          }
          match = true;
        }
        break;
      }
      case RecordType::kEntry:
      case RecordType::kState:
        break;
      default:
        return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                        absl::StrCat("wal: unexpected block type ", rec.type));
    }
  }
  if (!err.ok() && GetWalErrorClass(err) != WalErrorClass::kUnexpectedEof) return err;
  if (!match) {
    return WalError(absl::StatusCode::kNotFound, WalErrorClass::kSnapshotNotFound,
                    "wal: snapshot not found");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SnapshotPosition>> Wal::ValidSnapshotEntries(
    const std::string& dir, const WalOptions& options) {
  // Every segment, as etcd reads them here (no sequence check).
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, SegmentNames(dir, options.fs));
  std::vector<std::string> paths;
  for (const auto& n : names) paths.push_back(env::JoinPath(dir, n));
  Decoder decoder(options.fs, std::move(paths));
  DecodedRecord rec;
  std::vector<SnapshotPosition> snaps;
  raftpb::HardState state;
  for (;;) {
    absl::StatusOr<bool> more = decoder.Next(&rec);
    if (!more.ok()) {
      if (GetWalErrorClass(more.status()) == WalErrorClass::kUnexpectedEof) break;
      return more.status();
    }
    if (!*more) break;
    switch (static_cast<RecordType>(rec.type)) {
      case RecordType::kSnapshot: {
        SnapshotPosition p;
        if (!ParseWalSnapshot(rec.data, &p)) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                          "wal: snapshot record does not parse as walpb.Snapshot");
        }
        snaps.push_back(p);
        break;
      }
      case RecordType::kState:
        state.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()));
        break;
      case RecordType::kCrc:
        if (decoder.crc() != 0 && rec.crc != decoder.crc()) {
          return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                          "wal: crc mismatch (segment chain broken)");
        }
        decoder.UpdateCrc(rec.crc);
        break;
      default:
        break;
    }
  }
  std::vector<SnapshotPosition> valid;
  for (const auto& s : snaps) {
    if (s.index <= state.commit()) valid.push_back(s);
  }
  return valid;
}

}  // namespace sealwal::wal
