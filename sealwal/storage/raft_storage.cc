#include "sealwal/storage/raft_storage.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/keyring_loader.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/snap/format.h"
#include "sealwal/storage/migrate.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/walcrypt/wal_codec.h"

namespace sealwal::storage {
namespace {

using encryption::KeyId;

// The log after a snapshot, served by the WAL's LogReader: an offset index
// in memory (16 bytes per entry), entries read and decrypted from disk on
// demand, so Bootstrap's memory does not grow with the log. Entries saved
// after Bootstrap appear in it as they become durable.
class ReaderLog final : public LogView {
 public:
  explicit ReaderLog(std::shared_ptr<wal::LogReader> reader) : reader_(std::move(reader)) {}
  uint64_t FirstIndex() const override { return reader_->FirstIndex(); }
  uint64_t LastIndex() const override { return reader_->LastIndex(); }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override { return reader_->Term(i); }
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi) const override {
    return reader_->Entries(lo, hi);
  }

 private:
  std::shared_ptr<wal::LogReader> reader_;
};

bool Exists(env::FileSystem* fs, const std::string& path) { return fs->FileExists(path).ok(); }

bool Contains(const std::vector<KeyId>& v, KeyId k) {
  return std::find(v.begin(), v.end(), k) != v.end();
}

}  // namespace

absl::StatusOr<std::string> ReadSnapshotData(snap::LoadedSnapshot& snapshot) {
  if (!snapshot.streamed()) return std::move(snapshot.data);
  std::string out(snapshot.stream->size(), '\0');
  size_t got = 0;
  while (got < out.size()) {
    SEALWAL_ASSIGN_OR_RETURN(size_t n, snapshot.stream->Read(absl::MakeSpan(out).subspan(got)));
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("snapshot ", snapshot.file, ": stream ended at ",
                                              got, " of ", out.size(), " bytes"));
    }
    got += n;
  }
  return out;
}

RaftStorage::RaftStorage(StorageOptions options)
    : options_(std::move(options)), fs_(options_.fs), rotator_(options_.rotation) {}

RaftStorage::~RaftStorage() {
  if (wal_ != nullptr) (void)wal_->Close();
}

absl::StatusOr<std::unique_ptr<RaftStorage>> RaftStorage::Open(StorageOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("storage: empty data directory");
  if (options.fs == nullptr) return absl::InvalidArgumentError("storage: null file system");
  std::unique_ptr<RaftStorage> s(new RaftStorage(std::move(options)));
  SEALWAL_RETURN_IF_ERROR(s->OpenStore());
  return s;
}

absl::Status RaftStorage::OpenStore() {
  const std::string& dd = options_.data_dir;
  // An interrupted `store migrate` (sealwal/storage/migrate.h): its journal
  // makes the new store the store. A writer finishes the move first; a
  // reader modifies nothing and reads the new store where it is.
  std::optional<PendingMigration> pending;
  if (options_.read_only) {
    SEALWAL_ASSIGN_OR_RETURN(pending, ReadPendingMigration(dd, fs_));
  } else {
    SEALWAL_RETURN_IF_ERROR(FinishPendingMigration(dd, fs_).status());
  }
  const std::string enc_wal = env::JoinPath(dd, walcrypt::kEncryptedWalDirName);
  const std::string plain_wal = env::JoinPath(dd, walcrypt::kPlaintextWalDirName);
  const bool has_enc = pending.has_value() ? pending->to_encrypted : Exists(fs_, enc_wal);
  const bool has_plain = pending.has_value() ? !pending->to_encrypted : Exists(fs_, plain_wal);
  if (has_enc && has_plain) {
    return absl::FailedPreconditionError(absl::StrCat(
        dd, " holds both ", walcrypt::kPlaintextWalDirName, " and ",
        walcrypt::kEncryptedWalDirName, "; refusing to guess which is the store"));
  }
  bool create = false;
  bool encrypted = has_enc;
  if (!has_enc && !has_plain) {
    if (!options_.create_if_missing || options_.read_only) {
      return absl::NotFoundError(absl::StrCat(dd, ": no store (no ", walcrypt::kPlaintextWalDirName,
                                              " or ", walcrypt::kEncryptedWalDirName, ")"));
    }
    create = true;
    encrypted = options_.encrypted;
    SEALWAL_RETURN_IF_ERROR(env::CreateDirAll(fs_, dd));
  }
  wal_dir_ = encrypted ? enc_wal : plain_wal;
  snap_dir_ = env::JoinPath(dd, encrypted ? kEncryptedSnapDirName : kPlaintextSnapDirName);
  if (pending.has_value()) {
    wal_dir_ = pending->wal_dir;
    snap_dir_ = pending->snap_dir;
  }
  key_path_ = env::JoinPath(dd, kKeyFileName);

  if (encrypted) {
    pem::KeyReadWriterOptions ko;
    ko.fs = fs_;
    ko.path = key_path_;
    if (options_.unlock_key.has_value()) ko.unlock_key = options_.unlock_key->Clone();
    if (options_.unlock_key.has_value()) ko.kek_binding = options_.kek_binding;
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<pem::KeyReadWriter> krw,
                             pem::KeyReadWriter::Create(std::move(ko)));
    krw_ = std::move(krw);
    if (create && !Exists(fs_, key_path_)) {
      // A new key file: a TLS key and one DEK, locked when an unlock key
      // was given. One atomic write; a crash leaves no file or a whole one.
      SEALWAL_ASSIGN_OR_RETURN(pem::PrivateKey key, pem::PrivateKey::GenerateEcP256());
      SEALWAL_ASSIGN_OR_RETURN(encryption::Dek dek, encryption::Dek::Generate());
      pem::DekHeaders headers;
      headers.current = pem::StoredDek{std::move(dek), 0, pem::DekCreatedAt(Now())};
      SEALWAL_RETURN_IF_ERROR(krw_->Write(key, headers));
    }
    pem::LoadKeyringOptions lo;
    lo.persist_counts = !options_.read_only;
    lo.reservation_block = options_.reservation_block;
    // A failed count reservation fails the storage for good (CheckWritable),
    // as a failed WAL write does: the next reservation would write the key
    // file and fsync its directory again after a failed fsync.
    lo.on_reserve_error = [failed = key_write_error_](const absl::Status& s) {
      absl::MutexLock lock(&failed->mu);
      if (failed->status.ok()) failed->status = s;
    };
    SEALWAL_ASSIGN_OR_RETURN(pem::LoadedKeyring loaded, pem::LoadKeyring(krw_, lo));
    keyring_ = std::move(loaded.keyring);
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<walcrypt::WalCodec> codec,
                             walcrypt::WalCodec::ForKeyring(keyring_));
    codec_ = std::move(codec);
    // The key file's size, for the cheap "did the operator ask" check.
    if (absl::StatusOr<uint64_t> sz = fs_->GetFileSize(key_path_); sz.ok()) key_file_size_ = *sz;
  }
  snap::SnapshotterOptions so;
  so.fs = fs_;
  so.keys = keyring_;
  so.create_dir = !options_.read_only;
  SEALWAL_ASSIGN_OR_RETURN(snapshotter_, snap::Snapshotter::Open(snap_dir_, std::move(so)));
  if (create) {
    wal::WalOptions wo;
    wo.fs = fs_;
    wo.segment_size = options_.segment_size;
    wo.preallocation = options_.preallocation;
    wo.codec = codec_.get();
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<wal::Wal> w,
                             wal::Wal::Create(wal_dir_, options_.metadata, wo));
    SEALWAL_RETURN_IF_ERROR(w->Close());
  }
  return absl::OkStatus();
}

// The newest usable snapshot (nullopt: none). CRC failures are renamed
// .broken by the Snapshotter and skipped; a .snap that decodes but fails to
// authenticate under a held key (tampering) stops the Snapshotter's load,
// so it is skipped here, left as it is, and the next older one is tried; a
// .snap under a key the key file does not hold is an error.
absl::StatusOr<std::optional<snap::LoadedSnapshot>> RaftStorage::LoadNewestSnapshot(
    const wal::WalOptions& wo, std::vector<snap::SkippedSnapshot>* skipped) {
  // ValidSnapshotEntries reads the whole WAL: not when there is no .snap.
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> snaps, snapshotter_->List());
  if (snaps.empty()) return std::optional<snap::LoadedSnapshot>();
  SEALWAL_ASSIGN_OR_RETURN(std::vector<wal::SnapshotPosition> positions,
                           wal::Wal::ValidSnapshotEntries(wal_dir_, wo));
  std::vector<wal::SnapshotPosition> candidates = positions;
  absl::StatusOr<snap::LoadedSnapshot> loaded = absl::NotFoundError("no snapshot");
  for (;;) {
    snap::LoadReport report;
    loaded = snapshotter_->LoadNewestAvailable(candidates, &report);
    for (snap::SkippedSnapshot& k : report.skipped) skipped->push_back(std::move(k));
    if (loaded.ok() || loaded.status().code() != absl::StatusCode::kDataLoss ||
        encryption::IsMissingKeyError(loaded.status())) {
      break;
    }
    // The newest candidate whose .snap still exists is the one that failed.
    std::sort(candidates.begin(), candidates.end(),
              [](const wal::SnapshotPosition& a, const wal::SnapshotPosition& b) {
                return a.term != b.term ? a.term < b.term : a.index < b.index;
              });
    bool dropped = false;
    for (size_t i = candidates.size(); i-- > 0;) {
      const std::string name = snap::SnapFileName(candidates[i].term, candidates[i].index);
      if (Exists(fs_, env::JoinPath(snap_dir_, name))) {
        skipped->push_back(snap::SkippedSnapshot{name, loaded.status(), false});
        candidates.erase(candidates.begin() + i);
        dropped = true;
        break;
      }
    }
    if (!dropped) break;  // not a file we can pass over: report it
  }
  if (loaded.ok()) return std::optional<snap::LoadedSnapshot>(std::move(*loaded));
  if (encryption::IsMissingKeyError(loaded.status()) ||
      loaded.status().code() != absl::StatusCode::kNotFound) {
    return loaded.status();
  }
  return std::optional<snap::LoadedSnapshot>();
}

absl::StatusOr<BootstrapState> RaftStorage::Bootstrap() {
  if (bootstrapped_) return absl::FailedPreconditionError("storage: Bootstrap called twice");
  bootstrapped_ = true;
  wal::WalOptions wo;
  wo.fs = fs_;
  wo.segment_size = options_.segment_size;
  wo.preallocation = options_.preallocation;
  wo.codec = codec_.get();
  wo.pipeline_depth = options_.pipeline_depth;
  BootstrapState out;
  if (!options_.read_only) {
    SEALWAL_ASSIGN_OR_RETURN(out.repaired_torn_tail, wal::Wal::Repair(wal_dir_, wo));
  }
  SEALWAL_ASSIGN_OR_RETURN(out.snapshot, LoadNewestSnapshot(wo, &out.skipped));
  wal::SnapshotPosition pos;
  if (out.snapshot.has_value()) {
    pos = {out.snapshot->metadata.index(), out.snapshot->metadata.term()};
  }
  // Appending continues under the key the tail segment's metadata is
  // sealed under (a rotation may have switched the WAL before a crash).
  if (encrypted()) {
    SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, wal::Wal::SegmentNames(wal_dir_, fs_));
    if (!names.empty()) {
      SEALWAL_ASSIGN_OR_RETURN(KeyId tail_key, SegmentKey(names.back()));
      if (tail_key != KeyId() && keyring_->HasKey(tail_key) && keyring_->write_key_id() != tail_key) {
        SEALWAL_RETURN_IF_ERROR(keyring_->SetWriteKey(tail_key));
      }
    }
  }
  if (options_.read_only) {
    SEALWAL_ASSIGN_OR_RETURN(wal_, wal::Wal::OpenForRead(wal_dir_, pos, wo));
  } else {
    SEALWAL_ASSIGN_OR_RETURN(wal_, wal::Wal::Open(wal_dir_, pos, wo));
  }
  // One pass over the retained WAL: the CRC chain, every payload
  // authenticated, and an offset index instead of the entries themselves.
  std::unique_ptr<wal::LogReader> reader;
  SEALWAL_RETURN_IF_ERROR(wal_->ReadAllIndexed(wal::LogReaderOptions{}, &reader));
  log_ = std::move(reader);
  out.hardstate = log_->hardstate();
  out.metadata = log_->metadata();
  out.log = std::make_unique<ReaderLog>(log_);
  snapshot_index_ = pos.index;
  // The first save looks at the key file and the rotation state.
  saves_since_check_ = options_.key_file_check_interval;
  rotation_active_ = true;
  return out;
}

absl::StatusOr<VerifyState> RaftStorage::Verify(wal::EntryVisitor* visitor) {
  if (!options_.read_only) {
    return absl::FailedPreconditionError("storage: Verify needs a store opened read-only");
  }
  if (bootstrapped_) return absl::FailedPreconditionError("storage: Verify after Bootstrap");
  bootstrapped_ = true;
  wal::WalOptions wo;
  wo.fs = fs_;
  wo.codec = codec_.get();
  VerifyState out;
  SEALWAL_ASSIGN_OR_RETURN(out.snapshot, LoadNewestSnapshot(wo, &out.skipped));
  // Every retained entry, also those below the newest snapshot that the
  // segments still hold: verify checks what is on disk, not only what a
  // restart would replay.
  SEALWAL_ASSIGN_OR_RETURN(out.wal_start, wal::Wal::OldestReadablePosition(wal_dir_, wo));
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<wal::Wal> w,
                           wal::Wal::OpenForRead(wal_dir_, out.wal_start, wo));
  wal::LogReaderOptions lo;
  lo.cache_bytes = 0;  // read once, by the visitor
  lo.visitor = visitor;
  // A torn tail ends the log (read mode), as the repair a writer's Open
  // makes would: out.log->torn_tail() says so.
  SEALWAL_RETURN_IF_ERROR(w->ReadAllIndexed(lo, &out.log));
  out.hardstate = out.log->hardstate();
  out.metadata = out.log->metadata();
  return out;
}

absl::Status RaftStorage::CheckWritable() {
  if (!bootstrapped_ || wal_ == nullptr) {
    return absl::FailedPreconditionError("storage: call Bootstrap before saving");
  }
  if (options_.read_only) return absl::FailedPreconditionError("storage: opened read-only");
  return StickyError();
}

absl::Status RaftStorage::StickyError() {
  if (error_.ok()) {
    absl::MutexLock lock(&key_write_error_->mu);
    error_ = key_write_error_->status;
  }
  return error_;
}

absl::Status RaftStorage::Fail(absl::Status s) {
  if (error_.ok()) error_ = s;
  return s;
}

absl::Status RaftStorage::FailIfWalFailed(absl::Status s) {
  // A batch the WAL refused (a gap, a payload too large) left it usable,
  // unless what refused it was a failed count reservation.
  if (!StickyError().ok()) return Fail(std::move(s));
  return wal_->error().ok() ? s : Fail(std::move(s));
}

absl::Status RaftStorage::SaveEntries(const raftpb::HardState& hardstate,
                                      absl::Span<const raftpb::Entry> entries) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (absl::Status s = wal_->Save(hardstate, entries); !s.ok()) return FailIfWalFailed(s);
  return AdvanceRotation(false);
}

absl::Status RaftStorage::SubmitEntries(const raftpb::HardState& hardstate,
                                        absl::Span<const raftpb::Entry> entries,
                                        wal::Wal::Completion done) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (absl::Status s = wal_->Submit(hardstate, entries, std::move(done)); !s.ok()) {
    return FailIfWalFailed(s);
  }
  return AdvanceRotation(false);
}

absl::Status RaftStorage::Flush() {
  if (!bootstrapped_ || wal_ == nullptr || options_.read_only) return CheckWritable();
  // Waits even on a failed storage: every batch queued before the failure
  // still gets its completion.
  if (absl::Status s = wal_->Flush(); !s.ok()) return Fail(s);
  return StickyError();
}

absl::Status RaftStorage::RecordSnapshot(const raftpb::SnapshotMetadata& metadata) {
  snapshot_keys_.erase(snap::SnapFileName(metadata.term(), metadata.index()));
  if (absl::Status s = wal_->SaveSnapshot({metadata.index(), metadata.term()}); !s.ok()) {
    return Fail(s);
  }
  if (absl::Status s = wal_->ReleaseLockTo(metadata.index()); !s.ok()) return Fail(s);
  snapshot_index_ = std::max(snapshot_index_, metadata.index());
  // A leader's snapshot past the log's end: the log Raft reads restarts
  // after it, as raft's own storage does when it applies a snapshot.
  if (log_ != nullptr && metadata.index() > log_->LastIndex()) {
    SEALWAL_RETURN_IF_ERROR(log_->RestartAfter(metadata.index(), metadata.term()));
  }
  return absl::OkStatus();
}

absl::Status RaftStorage::SaveSnapshot(const raftpb::SnapshotMetadata& metadata,
                                       absl::string_view data) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (metadata.index() == 0) return absl::InvalidArgumentError("storage: snapshot index 0");
  // A failed write or fsync of the snapshot fails the storage for good,
  // as any other: the next snapshot would fsync the directory again.
  if (absl::Status s = snapshotter_->Save(metadata, data); !s.ok()) {
    return absl::IsInvalidArgument(s) ? s : Fail(std::move(s));
  }
  SEALWAL_RETURN_IF_ERROR(RecordSnapshot(metadata));
  return AdvanceRotation(true);
}

absl::StatusOr<std::unique_ptr<SnapshotWriter>> RaftStorage::SaveSnapshotStream(
    const raftpb::SnapshotMetadata& metadata) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<snap::SnapshotStreamSaver> saver,
                           snapshotter_->SaveStream(metadata));
  return std::unique_ptr<SnapshotWriter>(new SnapshotWriter(this, metadata, std::move(saver)));
}

SnapshotWriter::~SnapshotWriter() = default;

absl::Status SnapshotWriter::Append(absl::string_view data) {
  if (saver_ == nullptr) return absl::FailedPreconditionError("snapshot writer: committed");
  return saver_->Append(data);
}

absl::Status SnapshotWriter::Commit() {
  if (saver_ == nullptr) return absl::FailedPreconditionError("snapshot writer: committed");
  SEALWAL_RETURN_IF_ERROR(owner_->CheckWritable());
  if (absl::Status s = saver_->Commit(); !s.ok()) {
    saver_.reset();
    return absl::IsInvalidArgument(s) ? s : owner_->Fail(std::move(s));
  }
  saver_.reset();
  SEALWAL_RETURN_IF_ERROR(owner_->RecordSnapshot(metadata_));
  return owner_->AdvanceRotation(true);
}

absl::Status RaftStorage::RemoveSnapshot(const std::string& name) {
  uint64_t term = 0, index = 0;
  SEALWAL_RETURN_IF_ERROR(fs_->RemoveFile(env::JoinPath(snap_dir_, name)));
  snapshot_keys_.erase(name);
  if (snap::ParseSnapFileName(name, &term, &index)) {
    const std::string stream = env::JoinPath(snap_dir_, snap::StreamFileName(term, index));
    if (Exists(fs_, stream)) SEALWAL_RETURN_IF_ERROR(fs_->RemoveFile(stream));
  }
  return absl::OkStatus();
}

absl::Status RaftStorage::RemoveSegmentsBelow(uint64_t index) {
  if (absl::Status s = wal_->ReleaseLockTo(index); !s.ok()) return Fail(s);
  // The log reader forgets what the removed segments held before they go
  // (entries up to the snapshot; a snapshot past the log compacts it all).
  if (log_ != nullptr && index >= log_->FirstIndex()) {
    SEALWAL_RETURN_IF_ERROR(log_->CompactTo(std::min(index, log_->LastIndex())));
  }
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, wal::Wal::SegmentNames(wal_dir_, fs_));
  // Everything before the segment holding `index` goes.
  const std::optional<wal::SegmentPosition> holding = wal::SegmentHolding(names, index);
  const size_t keep_from = holding.has_value() ? holding->position : 0;
  if (keep_from == 0) return absl::OkStatus();
  for (size_t i = 0; i < keep_from; ++i) {
    SEALWAL_RETURN_IF_ERROR(fs_->RemoveFile(env::JoinPath(wal_dir_, names[i])));
    segment_keys_.erase(names[i]);
  }
  return fs_->SyncDir(wal_dir_);
}

absl::Status RaftStorage::GC(size_t keep_old_snapshots) {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  if (keep_old_snapshots == 0) return absl::InvalidArgumentError("storage: GC keeps at least 1");
  // A failed removal or directory sync leaves it unknown what a power loss
  // brings back (removed files return until their directory is synced):
  // the storage fails for good rather than build on it (a later rotation
  // step would otherwise drop a key those files need).
  if (absl::Status s = CollectGarbage(keep_old_snapshots); !s.ok()) return Fail(s);
  return AdvanceRotation(true);
}

absl::Status RaftStorage::CollectGarbage(size_t keep_old_snapshots) {
  // Recovery uses only a snapshot at or below the HardState's commit
  // (Wal::ValidSnapshotEntries). A recorded snapshot above it (a leader's
  // snapshot saved before the HardState that commits it) is kept but does
  // not count: deleting for it would leave nothing to recover from if the
  // node stopped now. The commit is made durable before anything goes.
  if (absl::Status s = wal_->Sync(); !s.ok()) return Fail(s);
  const uint64_t commit = wal_->hardstate().commit();
  // A .snap newer than the newest recorded snapshot has no WAL record (a
  // crash between writing it and recording it): it must not push a
  // recorded snapshot out of the retained set.
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, snapshotter_->List());
  bool removed = false;
  size_t uncommitted = 0;
  for (const std::string& n : names) {
    uint64_t term = 0, index = 0;
    if (!snap::ParseSnapFileName(n, &term, &index)) continue;
    if (index > snapshot_index_) {
      SEALWAL_RETURN_IF_ERROR(RemoveSnapshot(n));
      removed = true;
    } else if (index > commit) {
      ++uncommitted;
    }
  }
  if (removed) SEALWAL_RETURN_IF_ERROR(fs_->SyncDir(snap_dir_));
  // Names sort by (term, index), so the uncommitted ones are the newest.
  SEALWAL_RETURN_IF_ERROR(snapshotter_->Purge(keep_old_snapshots + uncommitted));
  snapshot_keys_.clear();
  SEALWAL_ASSIGN_OR_RETURN(names, snapshotter_->List());
  std::optional<uint64_t> oldest;
  for (const std::string& n : names) {
    uint64_t term = 0, index = 0;
    if (snap::ParseSnapFileName(n, &term, &index) && index <= commit) {
      oldest = std::min(oldest.value_or(index), index);
    }
  }
  // No snapshot recovery could use: every segment stays.
  if (oldest.has_value()) SEALWAL_RETURN_IF_ERROR(RemoveSegmentsBelow(*oldest));
  return absl::OkStatus();
}

absl::Status RaftStorage::Poll() {
  SEALWAL_RETURN_IF_ERROR(CheckWritable());
  return AdvanceRotation(false);
}

void RaftStorage::RequestRotation() {
  if (!encrypted()) return;
  rotator_.RequestRotation();
  requested_ = true;
}

absl::Status RaftStorage::Close() {
  if (wal_ == nullptr) return absl::OkStatus();
  return wal_->Close();
}

uint64_t RaftStorage::last_index() const { return wal_ != nullptr ? wal_->last_index() : 0; }

std::optional<KeyId> RaftStorage::write_key() const {
  if (keyring_ == nullptr) return std::nullopt;
  return keyring_->write_key_id();
}

absl::StatusOr<KeyId> RaftStorage::SegmentKey(const std::string& name) {
  if (auto it = segment_keys_.find(name); it != segment_keys_.end()) return it->second;
  KeyId key;
  if (encrypted()) {
    // The metadata record follows the segment's crc record; read no more.
    wal::RecordReader reader(fs_, {env::JoinPath(wal_dir_, name)});
    wal::Record rec;
    bool found = false;
    while (reader.ReadRecord(&rec)) {
      if (rec.type == static_cast<int64_t>(wal::RecordType::kMetadata)) {
        SEALWAL_ASSIGN_OR_RETURN(key, encryption::MultiDecrypter::KeyIdOf(rec.data));
        found = true;
        break;
      }
    }
    if (!found) {
      if (!reader.status().ok()) return reader.status();
      return absl::DataLossError(absl::StrCat(wal_dir_, "/", name, ": no metadata record"));
    }
  }
  segment_keys_[name] = key;
  return key;
}

absl::StatusOr<KeyId> RaftStorage::SnapshotKey(const std::string& name) {
  if (auto it = snapshot_keys_.find(name); it != snapshot_keys_.end()) return it->second;
  SEALWAL_ASSIGN_OR_RETURN(snap::SnapFileInfo info, snapshotter_->Inspect(name));
  if (!info.status.ok()) return info.status;
  const KeyId key = info.encrypted_record ? info.key_id : KeyId();
  snapshot_keys_[name] = key;
  return key;
}

absl::StatusOr<StoreInventory> RaftStorage::Inventory() {
  StoreInventory inv;
  inv.encrypted = encrypted();
  std::vector<KeyId> in_file;
  if (encrypted()) {
    // The headers only: this runs at every periodic rotation check.
    SEALWAL_ASSIGN_OR_RETURN(pem::KeyReadWriter::Headers file, krw_->ReadHeaders());
    if (file.headers.current.has_value()) {
      inv.current_key = file.headers.current->dek.id;
      inv.current_encryptions = file.headers.current->encryptions;
      inv.current_created = file.headers.current->CreatedTime();
      in_file.push_back(*inv.current_key);
    }
    if (file.headers.pending.has_value()) {
      inv.pending_key = file.headers.pending->dek.id;
      in_file.push_back(*inv.pending_key);
    }
    inv.needs_rotation = file.headers.needs_rotation;
    inv.key_file_locked = file.locked;
    if (file.kek_binding.has_value()) inv.kek_source = file.kek_binding->source;
  }
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> segs, wal::Wal::SegmentNames(wal_dir_, fs_));
  const std::string wal_base = env::Basename(wal_dir_);
  const std::string snap_base = env::Basename(snap_dir_);
  for (const std::string& n : segs) {
    RetainedFile f;
    f.name = absl::StrCat(wal_base, "/", n);
    uint64_t seq = 0;
    wal::ParseSegmentFileName(n, &seq, &f.index);
    SEALWAL_ASSIGN_OR_RETURN(f.key, SegmentKey(n));
    f.key_in_key_file = f.key == KeyId() ? !encrypted() : Contains(in_file, f.key);
    inv.all_keys_present = inv.all_keys_present && f.key_in_key_file;
    inv.segments.push_back(std::move(f));
  }
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> snaps, snapshotter_->List());
  for (const std::string& n : snaps) {
    absl::StatusOr<KeyId> key = SnapshotKey(n);
    if (!key.ok()) continue;  // a damaged .snap: Load renames it, it needs no key
    RetainedFile f;
    f.name = absl::StrCat(snap_base, "/", n);
    snap::ParseSnapFileName(n, &f.term, &f.index);
    f.key = *key;
    f.key_in_key_file = f.key == KeyId() ? !encrypted() : Contains(in_file, f.key);
    inv.all_keys_present = inv.all_keys_present && f.key_in_key_file;
    inv.snapshots.push_back(std::move(f));
  }
  return inv;
}

absl::StatusOr<keyrotator::KeyStoreState> RaftStorage::BuildState(const StoreInventory& inv) {
  keyrotator::KeyStoreState st;
  if (inv.current_key.has_value()) st.current = *inv.current_key;
  st.pending = inv.pending_key;
  st.rotation_requested = inv.needs_rotation;
  st.current_encryptions = inv.current_encryptions;
  st.current_created = inv.current_created;
  current_created_ = inv.current_created;
  if (std::shared_ptr<encryption::KeyUsage> u = keyring_->UsageOf(st.current); u != nullptr) {
    st.current_encryptions = std::max(st.current_encryptions, u->used());
  }
  if (std::optional<KeyId> w = keyring_->write_key_id(); w.has_value()) st.wal_write_key = *w;
  // The first index of the trailing run of segments sealed under the
  // write key (0 when the WAL was created under it).
  st.write_key_first_index = 0;
  for (size_t i = inv.segments.size(); i-- > 0;) {
    if (inv.segments[i].key != st.wal_write_key) break;
    st.write_key_first_index = inv.segments[i].index;
  }
  // The newest snapshot recovery would use: recorded, and at or below the
  // commit (see GC). The rotation releases old files only below it.
  const uint64_t commit = wal_ != nullptr ? wal_->hardstate().commit() : 0;
  st.snapshot_index = 0;
  for (const RetainedFile& f : inv.snapshots) {
    if (f.index <= snapshot_index_ && f.index <= commit) {
      st.snapshot_index = std::max(st.snapshot_index, f.index);
    }
  }
  for (const RetainedFile& f : inv.segments) {
    if (f.key != KeyId() && !Contains(st.keys_in_use, f.key)) st.keys_in_use.push_back(f.key);
  }
  for (const RetainedFile& f : inv.snapshots) {
    if (f.key != KeyId() && !Contains(st.keys_in_use, f.key)) st.keys_in_use.push_back(f.key);
  }
  st.keys_held = keyring_->KeyIds();
  st.now = Now();
  return st;
}

absl::Time RaftStorage::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

bool RaftStorage::AgeDue() const {
  const std::optional<absl::Duration>& max_age = options_.rotation.max_age;
  return max_age.has_value() && current_created_.has_value() &&
         Now() - *current_created_ >= *max_age;
}

absl::StatusOr<keyrotator::KeyStoreState> RaftStorage::KeyState() {
  if (!encrypted()) return absl::FailedPreconditionError("storage: a plaintext store has no keys");
  SEALWAL_ASSIGN_OR_RETURN(StoreInventory inv, Inventory());
  return BuildState(inv);
}

absl::Status RaftStorage::AdvanceRotation(bool force_check) {
  if (!encrypted() || options_.read_only || in_rotation_) return absl::OkStatus();
  // While a rotation waits for its snapshot, only a saved snapshot
  // (force_check) or a changed key file can move it on: the full look (the
  // key file read and decrypted, the directories listed) is not repeated at
  // every save meanwhile, only at the periodic check.
  const bool rotation_busy =
      !waiting_for_snapshot_ && (rotation_active_ || keyring_->KeyIds().size() > 1);
  // An old DEK starts a rotation as a high count does. Not while one runs
  // (rotation_active_): the old DEK stays current until the promotion, and
  // checking its age would undo the wait for the snapshot above.
  bool check = force_check || rotation_busy || requested_ ||
               ++saves_since_check_ >= options_.key_file_check_interval ||
               keyring_->encryptions() >= options_.rotation.max_encryptions ||
               (!rotation_active_ && AgeDue());
  if (!check) {
    absl::StatusOr<uint64_t> sz = fs_->GetFileSize(key_path_);
    check = !sz.ok() || !key_file_size_.has_value() || *sz != *key_file_size_;
  }
  if (!check) return absl::OkStatus();
  saves_since_check_ = 0;
  requested_ = false;
  in_rotation_ = true;
  waiting_for_snapshot_ = false;  // until the rotator says so again
  absl::Status result;
  keyrotator::Step last;
  for (int round = 0; round < 16; ++round) {
    absl::StatusOr<StoreInventory> inv = Inventory();
    if (!inv.ok()) { result = inv.status(); break; }
    absl::StatusOr<keyrotator::KeyStoreState> st = BuildState(*inv);
    if (!st.ok()) { result = st.status(); break; }
    rotation_active_ = st->pending.has_value();
    const keyrotator::Step step = rotator_.Next(*st);
    waiting_for_snapshot_ = step.kind == keyrotator::StepKind::kNone && st->pending.has_value();
    if (step.kind == keyrotator::StepKind::kNone) break;
    if (round > 0 && step.kind == last.kind && step.key == last.key && step.index == last.index &&
        step.kind != keyrotator::StepKind::kRequestSnapshot) {
      result = absl::InternalError(absl::StrCat("storage: rotation step repeated without progress: ",
                                                step.DebugString()));
      break;
    }
    last = step;
    result = DoStep(step);
    // Each step is one durable action (a key file write, a key switch, a
    // release of old files): once one failed, what a power loss would keep
    // of it is unknown, and a later step building on it (a promotion that
    // drops the old DEK while released segments may come back, data
    // sealed under a pending DEK whose key file write was not synced)
    // could lose data. So the storage fails for good, as for the WAL.
    if (!result.ok()) {
      result = Fail(std::move(result));
      break;
    }
    if (options_.on_rotation_step) options_.on_rotation_step(step);
  }
  in_rotation_ = false;
  if (absl::StatusOr<uint64_t> sz = fs_->GetFileSize(key_path_); sz.ok()) key_file_size_ = *sz;
  return result;
}

absl::Status RaftStorage::DoStep(const keyrotator::Step& step) {
  using keyrotator::StepKind;
  switch (step.kind) {
    case StepKind::kNone:
      return absl::OkStatus();
    case StepKind::kCreatePending: {
      SEALWAL_RETURN_IF_ERROR(krw_->ViewAndUpdateHeaders(
          [&](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
            pem::DekHeaders out = h.Clone();
            if (h.pending.has_value()) return out;  // already made (idempotent)
            encryption::Algorithm alg =
                h.current.has_value() ? h.current->dek.algorithm : encryption::kDefaultAlgorithm;
            for (;;) {
              SEALWAL_ASSIGN_OR_RETURN(encryption::Dek dek, encryption::Dek::Generate(alg));
              if (h.current.has_value() && dek.id == h.current->dek.id) continue;
              out.pending = pem::StoredDek{std::move(dek), 0, pem::DekCreatedAt(Now())};
              break;
            }
            out.needs_rotation = false;
            return out;
          }));
      SEALWAL_ASSIGN_OR_RETURN(pem::KeyReadWriter::Headers file, krw_->ReadHeaders());
      if (!file.headers.pending.has_value()) {
        return absl::InternalError("storage: raft-dek-pending missing after it was written");
      }
      return keyring_->AddKey(file.headers.pending->dek, file.headers.pending->encryptions);
    }
    case StepKind::kSwitchWriteKey: {
      if (!keyring_->HasKey(step.key)) {
        SEALWAL_ASSIGN_OR_RETURN(pem::KeyReadWriter::Headers file, krw_->ReadHeaders());
        if (!file.headers.pending.has_value() || file.headers.pending->dek.id != step.key) {
          return encryption::MissingKeyError(step.key, "the pending DEK is not in the key file");
        }
        SEALWAL_RETURN_IF_ERROR(
            keyring_->AddKey(file.headers.pending->dek, file.headers.pending->encryptions));
      }
      SEALWAL_RETURN_IF_ERROR(keyring_->SetWriteKey(step.key));
      if (absl::Status s = wal_->SwitchWriteKey(); !s.ok()) return Fail(s);
      write_key_first_index_ = wal_->last_index() + 1;
      return absl::OkStatus();
    }
    case StepKind::kRequestSnapshot:
      if (options_.request_snapshot) options_.request_snapshot(step.index);
      return absl::OkStatus();
    case StepKind::kReleaseOldFiles: {
      const uint64_t s_index = step.index;
      // The commit that makes this snapshot the one recovery uses is made
      // durable before anything older goes (see GC).
      if (absl::Status s = wal_->Sync(); !s.ok()) return Fail(s);
      if (absl::Status s = wal_->ReleaseLockTo(s_index); !s.ok()) return Fail(s);
      // The first index of the segment that will hold s_index once older
      // ones are gone: a snapshot below it could not be recovered from.
      SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> segs, wal::Wal::SegmentNames(wal_dir_, fs_));
      const std::optional<wal::SegmentPosition> holding = wal::SegmentHolding(segs, s_index);
      const uint64_t keep_first = holding.has_value() ? holding->first_index : 0;
      SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> snaps, snapshotter_->List());
      bool removed = false;
      for (const std::string& n : snaps) {
        uint64_t term = 0, index = 0;
        if (!snap::ParseSnapFileName(n, &term, &index) || index >= s_index) continue;
        absl::StatusOr<KeyId> key = SnapshotKey(n);
        if (index < keep_first || !key.ok() || *key == step.key) {
          SEALWAL_RETURN_IF_ERROR(RemoveSnapshot(n));
          removed = true;
        }
      }
      if (removed) SEALWAL_RETURN_IF_ERROR(fs_->SyncDir(snap_dir_));
      return RemoveSegmentsBelow(s_index);
    }
    case StepKind::kPromotePending: {
      KeyId old;
      SEALWAL_RETURN_IF_ERROR(krw_->ViewAndUpdateHeaders(
          [&](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
            pem::DekHeaders out = h.Clone();
            if (h.pending.has_value() && h.pending->dek.id == step.key) {
              if (h.current.has_value()) old = h.current->dek.id;
              out.current = h.pending->Clone();
              out.pending.reset();
              return out;
            }
            if (h.current.has_value() && h.current->dek.id == step.key) return out;  // done
            return absl::FailedPreconditionError(absl::StrCat(
                "storage: cannot promote ", encryption::FormatKeyId(step.key),
                ": it is not the key file's pending DEK"));
          }));
      SEALWAL_RETURN_IF_ERROR(keyring_->SetWriteKey(step.key));
      if (old != KeyId() && old != step.key && keyring_->HasKey(old)) {
        SEALWAL_RETURN_IF_ERROR(keyring_->RemoveKey(old));
      }
      return absl::OkStatus();
    }
    case StepKind::kForgetKey:
      if (keyring_->HasKey(step.key) && keyring_->write_key_id() != step.key) {
        return keyring_->RemoveKey(step.key);
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status RaftStorage::RequestRotationInKeyFile(const std::string& data_dir,
                                                   const std::optional<pem::UnlockKey>& unlock_key,
                                                   env::FileSystem* fs) {
  const std::string path = env::JoinPath(data_dir, kKeyFileName);
  if (!Exists(fs, env::JoinPath(data_dir, walcrypt::kEncryptedWalDirName))) {
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, ": not an encrypted store (no ", walcrypt::kEncryptedWalDirName, ")"));
  }
  pem::KeyReadWriterOptions ko;
  ko.fs = fs;
  ko.path = path;
  if (unlock_key.has_value()) ko.unlock_key = unlock_key->Clone();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<pem::KeyReadWriter> krw,
                           pem::KeyReadWriter::Create(std::move(ko)));
  return krw->ViewAndUpdateHeaders([](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
    pem::DekHeaders out = h.Clone();
    out.needs_rotation = true;
    return out;
  });
}

}  // namespace sealwal::storage
