#include "sealwal/snap/snapshotter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/large_buffer.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/proto/encryption.pb.h"
#include "sealwal/wal/format.h"

namespace sealwal::snap {
namespace {

// A .snap that is intact (its CRC matches) but does not decrypt: a missing
// key stays kNotFound (IsMissingKeyError, exit 2 in the CLI), anything else
// (authentication failed under a held key, a plaintext or malformed record)
// is kDataLoss. Either way Load stops and renames nothing.
absl::Status DecryptError(const std::string& name, const absl::StatusOr<encryption::KeyId>& id,
                          const absl::Status& s) {
  const bool missing = encryption::IsMissingKeyError(s);
  const std::string msg = absl::StrCat(
      "snap: ", name, " is intact (its CRC matches) but does not decrypt",
      id.ok() ? absl::StrCat(" (key id ", encryption::FormatKeyId(*id), ")") : "", ": ",
      s.message(),
      missing ? "; a key problem, not corruption: nothing was renamed"
              : "; tampered with or sealed under another key with this id: nothing was renamed");
  if (missing) {
    absl::Status out(absl::StatusCode::kNotFound, msg);
    s.ForEachPayload([&](absl::string_view url, const absl::Cord& p) { out.SetPayload(url, p); });
    return out;
  }
  return absl::DataLossError(msg);
}

// Reads a whole file into one presized string (no doubling copies: a .snap
// may be hundreds of MiB), on huge pages when it is large.
absl::StatusOr<std::string> ReadWhole(env::FileSystem* fs, const std::string& path) {
  SEALWAL_ASSIGN_OR_RETURN(uint64_t size, fs->GetFileSize(path));
  SEALWAL_ASSIGN_OR_RETURN(auto file, fs->NewRandomAccessFile(path));
  std::string buf;
  ReserveLargeString(&buf, size);
  buf.resize(size);
  SEALWAL_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, absl::MakeSpan(buf)));
  buf.resize(n);
  return buf;
}

// The AAD context of a .snap's EncryptedRecord: purpose snapshot, index,
// term, and the ConfState's serialization as extra bytes.
encryption::AadContext SnapAad(const raftpb::SnapshotMetadata& md, const std::string& conf) {
  encryption::AadContext ctx;
  ctx.purpose = encryption::Purpose::kSnapshot;
  ctx.index = md.index();
  ctx.term = md.term();
  ctx.extra = conf;
  return ctx;
}

bool Matches(const raftpb::SnapshotMetadata& md,
             absl::Span<const wal::SnapshotPosition> positions) {
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    if (it->index == md.index() && it->term == md.term()) return true;
  }
  return false;
}

enum class Problem { kNone, kKey, kStream };

// A .snap's payload is written in slices of this size (see WriteSnapFile).
constexpr size_t kWritebackSlice = size_t{8} << 20;

}  // namespace

absl::StatusOr<raftpb::Snapshot> LoadedSnapshot::TakeRaftSnapshot() {
  if (stream != nullptr) {
    return absl::FailedPreconditionError(
        "a streamed snapshot does not fit a raftpb.Snapshot; read it through `stream`");
  }
  raftpb::Snapshot s;
  *s.mutable_metadata() = metadata;
  s.set_data(std::move(data));
  data.clear();
  return s;
}

SnapshotStreamSaver::~SnapshotStreamSaver() {
  if (!committed_) writer_->Abort();
}

absl::Status SnapshotStreamSaver::Commit() {
  if (committed_) return absl::FailedPreconditionError("snapshot already committed");
  SEALWAL_ASSIGN_OR_RETURN(StreamRef ref, writer_->Finish());
  // The stream is durable under its name; only now may a .snap name it.
  SEALWAL_RETURN_IF_ERROR(owner_->WriteSnapFile(metadata_, EncodeStreamRef(ref)));
  committed_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::Open(std::string dir,
                                                               SnapshotterOptions options) {
  return OpenImpl(std::move(dir), std::move(options), /*inspect_only=*/false);
}

absl::StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::OpenForInspect(
    std::string dir, SnapshotterOptions options) {
  options.create_dir = false;
  return OpenImpl(std::move(dir), std::move(options), /*inspect_only=*/true);
}

absl::Status Snapshotter::CheckNotInspectOnly() const {
  if (!inspect_only_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("snap: ", dir_, " was opened for inspection only (without its key)"));
}

absl::StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::OpenImpl(std::string dir,
                                                                   SnapshotterOptions options,
                                                                   bool inspect_only) {
  if (options.fs == nullptr) return absl::InvalidArgumentError("SnapshotterOptions.fs is null");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  // A directory whose name ends in -encrypted (wal/format.h) is refused
  // without a keyring, before anything is created or read. A keyring on
  // any other name is the caller's choice (a key makes a directory
  // encrypted, as the CLI contract says); every load then refuses
  // plaintext snapshots and streams.
  if (wal::IsEncryptedDirName(dir) && options.keys == nullptr && !inspect_only) {
    return absl::FailedPreconditionError(
        absl::StrCat("snap: ", dir, " is an encrypted snapshot directory (its name ends in ",
                     wal::kEncryptedDirSuffix, "): open it with a key"));
  }
  if (options.create_dir) {
    // Create missing components one by one and fsync each parent, so the
    // directory (and later every snapshot in it) survives a power loss.
    std::vector<std::string> missing;
    for (std::string d = dir; !d.empty() && d != "/" && d != "." && !options.fs->FileExists(d).ok();
         d = env::Dirname(d)) {
      missing.push_back(d);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      absl::Status s = options.fs->CreateDir(*it, 0700);
      if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
      SEALWAL_RETURN_IF_ERROR(options.fs->SyncDir(env::Dirname(*it)));
    }
  } else if (!options.fs->FileExists(dir).ok()) {
    return absl::NotFoundError(absl::StrCat("snap: directory ", dir, " does not exist"));
  }
  std::unique_ptr<Snapshotter> s(new Snapshotter(std::move(dir), std::move(options)));
  s->inspect_only_ = inspect_only;
  return s;
}

absl::Status Snapshotter::SaveSnap(const raftpb::Snapshot& snapshot) {
  return Save(snapshot.metadata(), snapshot.data());
}

absl::Status Snapshotter::Save(const raftpb::SnapshotMetadata& metadata, absl::string_view data) {
  SEALWAL_RETURN_IF_ERROR(CheckNotInspectOnly());
  if (metadata.index() == 0) return absl::OkStatus();  // etcd: raft.IsEmptySnap
  if (IsStreamRef(data)) {
    return absl::InvalidArgumentError(
        "snapshot data starts with the stream-reference magic; it would read back as a "
        "stream reference (save it as a stream instead)");
  }
  return WriteSnapFile(metadata, data);
}

absl::Status Snapshotter::WriteSnapFile(const raftpb::SnapshotMetadata& metadata,
                                        absl::string_view data) {
  std::string sealed;
  absl::string_view payload = data;
  if (options_.keys != nullptr) {
    ReserveLargeString(&sealed, data.size() + 64);  // the record's few header bytes
    SEALWAL_ASSIGN_OR_RETURN(auto enc, options_.keys->NewEncrypter());
    const std::string conf = metadata.conf_state().SerializeAsString();
    SEALWAL_RETURN_IF_ERROR(enc->EncryptTo(SnapAad(metadata, conf), data, &sealed));
    payload = sealed;
  }
  const SnapFilePieces pieces = EncodeSnapFilePieces(payload, metadata);
  const std::string path = env::JoinPath(dir_, SnapFileName(metadata.term(), metadata.index()));
  const std::string tmp = path + std::string(kTmpSuffix);
  {
    // Never through whatever was left or planted at the temp name (a
    // symlink to the key file would otherwise be overwritten).
    SEALWAL_ASSIGN_OR_RETURN(auto file, env::NewTempFile(options_.fs, tmp, 0600));
    absl::Status s = file->Append(pieces.prefix);
    // In slices, starting writeback of each behind us, so that the fsync
    // below does not wait for the whole file (as streams do).
    uint64_t written = pieces.prefix.size();
    for (size_t off = 0; s.ok() && off < payload.size(); off += kWritebackSlice) {
      const absl::string_view slice = payload.substr(off, kWritebackSlice);
      s = file->Append(slice);
      if (s.ok()) s = file->StartWriteback(written, slice.size());
      written += slice.size();
    }
    if (s.ok()) s = file->Append(pieces.suffix);
    if (s.ok()) s = file->Sync();  // durable before the name is
    absl::Status c = file->Close();
    if (s.ok()) s = c;
    if (!s.ok()) {
      options_.fs->RemoveFile(tmp).IgnoreError();
      return s;
    }
  }
  SEALWAL_RETURN_IF_ERROR(options_.fs->Rename(tmp, path));
  return options_.fs->SyncDir(dir_);
}

absl::StatusOr<std::unique_ptr<SnapshotStreamSaver>> Snapshotter::SaveStream(
    const raftpb::SnapshotMetadata& metadata) {
  SEALWAL_RETURN_IF_ERROR(CheckNotInspectOnly());
  if (metadata.index() == 0) {
    return absl::InvalidArgumentError("a streamed snapshot needs an index other than 0");
  }
  SEALWAL_ASSIGN_OR_RETURN(auto writer,
                   StreamWriter::Create(options_.fs,
                                        env::JoinPath(dir_, StreamFileName(metadata.term(),
                                                                           metadata.index())),
                                        metadata.index(), metadata.term(), options_.keys,
                                        options_.stream));
  return std::unique_ptr<SnapshotStreamSaver>(
      new SnapshotStreamSaver(this, metadata, std::move(writer)));
}

absl::StatusOr<std::vector<std::string>> Snapshotter::List() const {
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, options_.fs->ListDir(dir_));
  std::vector<std::string> snaps;
  for (auto& n : names) {
    uint64_t term, index;
    if (ParseSnapFileName(n, &term, &index)) snaps.push_back(std::move(n));
  }
  std::sort(snaps.rbegin(), snaps.rend());  // etcd: sort.Reverse(StringSlice)
  return snaps;
}

absl::StatusOr<LoadedSnapshot> Snapshotter::Load(LoadReport* report) {
  return LoadMatching({}, /*match_all=*/true, report);
}

absl::StatusOr<LoadedSnapshot> Snapshotter::LoadNewestAvailable(
    absl::Span<const wal::SnapshotPosition> positions, LoadReport* report) {
  return LoadMatching(positions, /*match_all=*/false, report);
}

absl::StatusOr<LoadedSnapshot> Snapshotter::LoadMatching(
    absl::Span<const wal::SnapshotPosition> positions, bool match_all, LoadReport* report) {
  SEALWAL_RETURN_IF_ERROR(CheckNotInspectOnly());
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, List());
  auto skip = [report](const std::string& file, absl::Status why, bool renamed) {
    if (report != nullptr) report->skipped.push_back({file, std::move(why), renamed});
  };
  for (const std::string& name : names) {
    const std::string path = env::JoinPath(dir_, name);
    absl::StatusOr<std::string> buf = ReadWhole(options_.fs, path);
    if (absl::IsNotFound(buf.status())) continue;  // removed meanwhile
    SEALWAL_RETURN_IF_ERROR(buf.status());                 // an I/O error is no verdict on the file
    // Views into *buf stay valid: it does not move until data is taken out.
    absl::StatusOr<RaftSnapshotView> view = absl::DataLossError("unset");
    absl::StatusOr<SnapFileView> file = DecodeSnapFile(*buf);
    if (file.ok()) view = DecodeRaftSnapshot(file->raft_snapshot);
    if (!file.ok() || !view.ok()) {
      // etcd's loadSnap: a file that fails snap.Read is renamed .broken.
      absl::Status why = file.ok() ? view.status() : file.status();
      SEALWAL_RETURN_IF_ERROR(options_.fs->Rename(path, path + std::string(kBrokenSuffix)));
      SEALWAL_RETURN_IF_ERROR(options_.fs->SyncDir(dir_));
      skip(name, why, true);
      continue;
    }
    if (!match_all && !Matches(view->metadata, positions)) continue;
    if (view->metadata.index() == 0) {
      skip(name, absl::DataLossError("snap: snapshot with index 0"), false);
      continue;
    }

    LoadedSnapshot out;
    out.file = name;
    out.metadata = view->metadata;
    std::string plain;  // the plaintext when it could not be decrypted in place
    absl::string_view data = view->data;
    if (options_.keys != nullptr) {
      const std::string conf = view->metadata.conf_state().SerializeAsString();
      absl::StatusOr<encryption::KeyId> id = encryption::MultiDecrypter::KeyIdOf(data);
      // In place, in the file's buffer: no second buffer as large as the
      // snapshot. The CRC was checked above, before the bytes change.
      char* record =
          data.empty() ? buf->data() : buf->data() + (data.data() - buf->data());
      absl::Status s = options_.keys->decrypter().DecryptSerializedInPlace(
          absl::MakeSpan(record, data.size()), SnapAad(view->metadata, conf), &plain, &data);
      if (!s.ok()) return DecryptError(name, id, s);
      out.key_id = *id;
      // The decrypter accepted it, so the record's algorithm is its key's.
      auto alg = options_.keys->AlgorithmOf(*id);
      if (alg.ok()) out.algorithm = *alg;
    }
    if (!IsStreamRef(data)) {
      if (data.data() == plain.data()) {
        out.data = std::move(plain);  // decrypted into scratch, not in place
      } else {
        // The data lies in the file buffer: reuse it (no second allocation).
        const size_t off = static_cast<size_t>(data.data() - buf->data());
        const size_t len = data.size();
        out.data = std::move(*buf);
        out.data.erase(0, off);
        out.data.resize(len);
      }
      return out;
    }

    // A streamed snapshot.
    absl::StatusOr<StreamRef> ref = DecodeStreamRef(data);
    if (!ref.ok()) {
      skip(name, ref.status(), false);
      continue;
    }
    if (ref->algorithm != encryption::Algorithm::kNotEncrypted &&
        (options_.keys == nullptr || !options_.keys->HasKey(ref->key_id))) {
      return encryption::MissingKeyError(
          ref->key_id, absl::StrCat("snap: ", name, " names a stream encrypted under it: "
                                    "a key problem, nothing was renamed"));
    }
    const std::string stream_path =
        env::JoinPath(dir_, StreamFileName(view->metadata.term(), view->metadata.index()));
    StreamExpectation expect{view->metadata.index(), view->metadata.term(), *ref};
    absl::StatusOr<std::unique_ptr<StreamReader>> reader = StreamReader::Open(
        options_.fs, stream_path, options_.keys, expect, options_.stream_read);
    absl::Status s = reader.status();
    if (s.ok()) s = (*reader)->VerifyEnds();
    if (s.ok() && options_.stream_check == StreamCheck::kFull) {
      for (;;) {
        absl::StatusOr<absl::string_view> c = (*reader)->NextChunk();
        if (!c.ok()) {
          s = c.status();
          break;
        }
        if (c->empty()) break;
      }
      if (s.ok()) {
        reader = StreamReader::Open(options_.fs, stream_path, options_.keys, expect,
                                    options_.stream_read);
        s = reader.status();
      }
    }
    if (!s.ok()) {
      if (!absl::IsDataLoss(s) && !absl::IsNotFound(s)) return s;  // I/O: no verdict
      skip(name, absl::DataLossError(absl::StrCat("snap: stream of ", name, ": ", s.message())),
           false);
      continue;
    }
    out.algorithm = ref->algorithm;
    out.key_id = ref->key_id;
    out.stream = std::move(*reader);
    return out;
  }
  return absl::NotFoundError("snap: no available snapshot");
}

absl::Status Snapshotter::Purge(size_t keep) {
  SEALWAL_RETURN_IF_ERROR(CheckNotInspectOnly());
  if (keep == 0) return absl::InvalidArgumentError("Purge must keep at least one snapshot");
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> snaps, List());
  if (snaps.empty()) return absl::OkStatus();
  bool changed = false;
  for (size_t i = keep; i < snaps.size(); ++i) {
    uint64_t term, index;
    ParseSnapFileName(snaps[i], &term, &index);
    // The .snap first: a crash in between leaves an orphan stream, never a
    // .snap whose stream is gone.
    SEALWAL_RETURN_IF_ERROR(options_.fs->RemoveFile(env::JoinPath(dir_, snaps[i])));
    const std::string stream = env::JoinPath(dir_, StreamFileName(term, index));
    if (options_.fs->FileExists(stream).ok()) SEALWAL_RETURN_IF_ERROR(options_.fs->RemoveFile(stream));
    changed = true;
  }
  // Orphans: streams without a .snap and .tmp files, older than the oldest
  // snapshot kept (newer ones may belong to a save in progress).
  const std::string& oldest_kept = snaps[std::min(keep, snaps.size()) - 1];
  uint64_t kt, ki;
  ParseSnapFileName(oldest_kept, &kt, &ki);
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, options_.fs->ListDir(dir_));
  for (const std::string& n : names) {
    absl::string_view base = n;
    const bool tmp = absl::ConsumeSuffix(&base, kTmpSuffix);
    uint64_t t, i;
    const bool is_stream = ParseStreamFileName(base, &t, &i);
    const bool is_snap = !is_stream && tmp && ParseSnapFileName(base, &t, &i);
    if (!is_stream && !is_snap) continue;
    if (!tmp && is_stream && options_.fs->FileExists(env::JoinPath(dir_, SnapFileName(t, i))).ok()) {
      continue;  // referenced
    }
    if (std::make_pair(t, i) < std::make_pair(kt, ki)) {
      SEALWAL_RETURN_IF_ERROR(options_.fs->RemoveFile(env::JoinPath(dir_, n)));
      changed = true;
    }
  }
  return changed ? options_.fs->SyncDir(dir_) : absl::OkStatus();
}

absl::StatusOr<SnapFileInfo> Snapshotter::Inspect(const std::string& file) const {
  SnapFileInfo info;
  info.file = file;
  SEALWAL_ASSIGN_OR_RETURN(std::string buf, ReadWhole(options_.fs, env::JoinPath(dir_, file)));
  info.file_size = buf.size();
  absl::StatusOr<SnapFileView> f = DecodeSnapFile(buf);
  if (!f.ok()) {
    info.status = f.status();
    return info;
  }
  absl::StatusOr<RaftSnapshotView> v = DecodeRaftSnapshot(f->raft_snapshot);
  if (!v.ok()) {
    info.status = v.status();
    return info;
  }
  info.metadata = v->metadata;
  info.data_size = v->data.size();
  if (IsStreamRef(v->data)) {
    absl::StatusOr<StreamRef> ref = DecodeStreamRef(v->data);
    if (ref.ok()) {
      info.stream_ref = *ref;
    } else {
      info.status = ref.status();
    }
    return info;
  }
  encryptionpb::EncryptedRecord rec;
  const bool looks_sealed =
      rec.ParseFromArray(v->data.data(), static_cast<int>(v->data.size())) &&
      (rec.algorithm() == encryptionpb::EncryptedRecord::AES_256_GCM ||
       rec.algorithm() == encryptionpb::EncryptedRecord::CHACHA20_POLY1305) &&
      rec.nonce().size() == encryption::kAeadNonceSize && rec.key_id() != 0 &&
      rec.data().size() >= encryption::kAeadTagSize;
  if (!looks_sealed && options_.keys == nullptr) return info;
  info.encrypted_record = looks_sealed;
  info.raw_algorithm = rec.algorithm();
  if (looks_sealed) {
    info.algorithm = static_cast<encryption::Algorithm>(rec.algorithm());
    info.key_id = encryption::KeyId(rec.key_id());
    info.data_size = rec.data().size() - encryption::kAeadTagSize;  // the plaintext's size
  }
  if (options_.keys != nullptr) {
    const std::string conf = v->metadata.conf_state().SerializeAsString();
    std::string plain;
    absl::Status s = options_.keys->decrypter().DecryptSerialized(
        v->data, SnapAad(v->metadata, conf), &plain);
    if (!s.ok()) {
      info.decrypt_status = s;  // kNotFound: a missing key; kDataLoss: tampered
    } else {
      info.data_size = plain.size();
      if (IsStreamRef(plain)) {
        absl::StatusOr<StreamRef> ref = DecodeStreamRef(plain);
        if (ref.ok()) info.stream_ref = *ref;
        else info.status = ref.status();
      }
    }
  }
  return info;
}

}  // namespace sealwal::snap
