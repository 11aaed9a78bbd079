#include "sealwal/backup/backup.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "sealwal/backup/backup_file.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/snap/format.h"
#include "sealwal/storage/migrate.h"
#include "sealwal/storage/raft_storage.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"
#include "sealwal/walcrypt/wal_codec.h"

namespace sealwal::backup {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

bool Exists(env::FileSystem* fs, const std::string& path) { return fs->FileExists(path).ok(); }

// A store an interrupted `store migrate` left (its journal exists) is not
// backed up: checked before the copy and again after it.
absl::Status RefuseMidMigration(env::FileSystem* fs, const std::string& data_dir) {
  if (!Exists(fs, env::JoinPath(data_dir, storage::kMigrateJournalName))) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(data_dir, " is in the middle of a store migrate (", storage::kMigrateJournalName,
                   "): open the store or re-run store migrate first"));
}

struct Layout {
  bool encrypted = false;
  std::string wal_dir_name;
  std::string snap_dir_name;
};

Layout LayoutOf(bool encrypted) {
  Layout l;
  l.encrypted = encrypted;
  l.wal_dir_name = std::string(encrypted ? walcrypt::kEncryptedWalDirName
                                         : walcrypt::kPlaintextWalDirName);
  l.snap_dir_name = std::string(encrypted ? storage::kEncryptedSnapDirName
                                          : storage::kPlaintextSnapDirName);
  return l;
}

absl::StatusOr<Layout> DetectLayout(env::FileSystem* fs, const std::string& data_dir) {
  const bool enc = Exists(fs, env::JoinPath(data_dir, walcrypt::kEncryptedWalDirName));
  const bool plain = Exists(fs, env::JoinPath(data_dir, walcrypt::kPlaintextWalDirName));
  if (enc && plain) {
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, " holds both a plaintext and an encrypted WAL"));
  }
  if (!enc && !plain) {
    return absl::NotFoundError(
        absl::StrCat("no store at ", data_dir, " (no wal-v3/ or wal-v3-encrypted/)"));
  }
  return LayoutOf(enc);
}

// The DEK ids a key file holds (raft-dek, raft-dek-pending): what must not
// change while a backup copies the files sealed under them.
struct DekIds {
  std::optional<uint32_t> current;
  std::optional<uint32_t> pending;
  bool operator==(const DekIds&) const = default;
};

absl::StatusOr<DekIds> DekIdsOf(const pem::ParsedKeyFile& parsed,
                                const std::optional<pem::UnlockKey>& unlock_key) {
  if (!parsed.locked && unlock_key.has_value()) {
    return absl::FailedPreconditionError(
        "node.key is not locked, but an unlock key was given: refusing to use it (the file may "
        "have been replaced)");
  }
  if (parsed.locked && !unlock_key.has_value()) {
    return absl::PermissionDeniedError(
        "node.key is locked: its unlock key is needed to back the store up with its keys (a "
        "--redact backup needs none)");
  }
  SEALWAL_ASSIGN_OR_RETURN(pem::DekHeaders h,
                           pem::OpenDekHeaders(parsed, unlock_key ? &*unlock_key : nullptr));
  DekIds ids;
  if (h.current) ids.current = h.current->dek.id.value();
  if (h.pending) ids.pending = h.pending->dek.id.value();
  return ids;
}

// Why an attempt must start again (a writer changed something it copies).
struct Retry {
  std::string reason;
  absl::Status last_error;  // returned when the attempts run out
};

// Appends `path` (up to `limit` bytes, or to its end) as member `name`.
absl::Status CopyMember(env::FileSystem* fs, const std::string& path, const std::string& name,
                        std::optional<uint64_t> limit, BackupFileWriter* w,
                        const std::function<void(uint64_t)>& advanced) {
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::SequentialFile> f, fs->NewSequentialFile(path));
  SEALWAL_RETURN_IF_ERROR(w->BeginMember(name));
  std::string buf(kChunk, '\0');
  uint64_t done = 0;
  for (;;) {
    size_t want = buf.size();
    if (limit) want = static_cast<size_t>(std::min<uint64_t>(want, *limit - done));
    if (want == 0) break;
    SEALWAL_ASSIGN_OR_RETURN(size_t n, f->Read(absl::MakeSpan(buf).first(want)));
    if (n == 0) break;
    SEALWAL_RETURN_IF_ERROR(w->Append(absl::string_view(buf.data(), n)));
    done += n;
    advanced(n);
  }
  if (limit && done != *limit) {
    return absl::DataLossError(absl::StrCat(path, " is shorter (", done, " bytes) than the ",
                                            *limit, " its records end at"));
  }
  return w->EndMember();
}

absl::StatusOr<BackupResult> Attempt(const BackupOptions& o, const Layout& layout,
                                     std::optional<Retry>* retry) {
  env::FileSystem* fs = o.fs;
  const std::string wal_dir = env::JoinPath(o.data_dir, layout.wal_dir_name);
  const std::string snap_dir = env::JoinPath(o.data_dir, layout.snap_dir_name);
  const std::string key_path = env::JoinPath(o.data_dir, storage::kKeyFileName);
  auto again = [&](std::string reason, absl::Status error) -> absl::Status {
    *retry = Retry{reason, error};
    return error;
  };

  // 1. The DEK set before anything is copied.
  std::optional<DekIds> ids_before;
  if (layout.encrypted && !o.redact) {
    absl::StatusOr<std::string> text = env::ReadSecretFile(fs, key_path);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) {
        return absl::NotFoundError(absl::StrCat("encrypted store ", o.data_dir, " has no ",
                                                storage::kKeyFileName));
      }
      return text.status();
    }
    absl::Cleanup wipe = [&] { pem::WipeString(&*text); };
    SEALWAL_ASSIGN_OR_RETURN(pem::ParsedKeyFile parsed, pem::ParseKeyFile(*text));
    SEALWAL_ASSIGN_OR_RETURN(ids_before, DekIdsOf(parsed, o.unlock_key));
  }

  // 2. The two newest snapshots: the newest may not have its WAL record yet
  // (a writer saves the .snap first), and then the one before it is used.
  std::vector<wal::SnapshotPosition> snaps;
  if (absl::StatusOr<std::vector<std::string>> names = fs->ListDir(snap_dir); names.ok()) {
    for (const std::string& n : *names) {
      wal::SnapshotPosition p;
      if (snap::ParseSnapFileName(n, &p.term, &p.index)) snaps.push_back(p);
    }
  } else if (!absl::IsNotFound(names.status())) {
    return names.status();
  }
  std::sort(snaps.begin(), snaps.end(), [](const auto& a, const auto& b) {
    return a.term != b.term ? a.term > b.term : a.index > b.index;
  });
  if (snaps.size() > 2) snaps.resize(2);

  // 3. Scan every retained segment (what the store itself would verify):
  // the CRC chain, the snapshot records, and where the last whole record
  // ends.
  absl::StatusOr<std::vector<std::string>> segs = wal::Wal::SegmentNames(wal_dir, fs);
  if (!segs.ok()) return segs.status();
  if (segs->empty()) return absl::DataLossError(absl::StrCat(wal_dir, ": no WAL segment"));
  std::vector<std::string> seg_paths;
  for (const std::string& n : *segs) seg_paths.push_back(env::JoinPath(wal_dir, n));
  auto reader = std::make_unique<wal::RecordReader>(fs, std::move(seg_paths));
  std::set<std::pair<uint64_t, uint64_t>> recorded;
  wal::Record rec;
  while (reader->ReadRecord(&rec)) {
    wal::SnapshotPosition p;
    if (rec.type == static_cast<int64_t>(wal::RecordType::kSnapshot) &&
        wal::ParseSnapshotRecord(rec.data, &p)) {
      recorded.insert({p.index, p.term});
    }
  }
  switch (reader->end()) {
    case wal::RecordReader::End::kEof:
    case wal::RecordReader::End::kTornTail:
      break;
    case wal::RecordReader::End::kCorruption:
      // A record being written as it is read looks damaged; real damage
      // stays and is reported once the attempts run out.
      return again("the WAL's tail changed while it was read", reader->status());
    default:
      if (absl::IsNotFound(reader->status())) {
        return again("a WAL segment went away (GC)", reader->status());
      }
      return reader->status();
  }
  const std::vector<std::string> paths = reader->paths();
  const uint64_t wal_end = reader->last_valid_offset();
  reader.reset();

  std::optional<wal::SnapshotPosition> chosen;
  for (const wal::SnapshotPosition& s : snaps) {
    if (recorded.count({s.index, s.term}) != 0) {
      chosen = s;
      break;
    }
  }
  if (!snaps.empty() && !chosen) {
    return again("no snapshot's WAL record is in the copy yet",
                 absl::FailedPreconditionError(absl::StrCat(
                     "no snapshot in ", snap_dir, " has a snapshot record in the WAL")));
  }
  // 4. Copy. Sizes are known up front, for the progress report.
  std::vector<std::pair<std::string, std::string>> snap_files;  // path, member name
  if (chosen) {
    const std::string snap_name = snap::SnapFileName(chosen->term, chosen->index);
    snap_files.emplace_back(env::JoinPath(snap_dir, snap_name),
                            absl::StrCat(layout.snap_dir_name, "/", snap_name));
    const std::string stream_name = snap::StreamFileName(chosen->term, chosen->index);
    if (Exists(fs, env::JoinPath(snap_dir, stream_name))) {
      snap_files.emplace_back(env::JoinPath(snap_dir, stream_name),
                              absl::StrCat(layout.snap_dir_name, "/", stream_name));
    }
  }
  uint64_t total = 0;
  for (const auto& [path, name] : snap_files) {
    if (absl::StatusOr<uint64_t> n = fs->GetFileSize(path); n.ok()) total += *n;
  }
  for (size_t i = 0; i + 1 < paths.size(); ++i) {
    if (absl::StatusOr<uint64_t> n = fs->GetFileSize(paths[i]); n.ok()) total += *n;
  }
  total += wal_end;
  uint64_t done = 0;
  auto advanced = [&](uint64_t n) {
    done += n;
    if (o.progress) o.progress(done, std::max(total, done));
  };

  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<BackupFileWriter> w,
                           BackupFileWriter::Create(fs, o.out));
  auto copy = [&](const std::string& path, const std::string& name,
                  std::optional<uint64_t> limit) -> absl::Status {
    absl::Status s = CopyMember(fs, path, name, limit, w.get(), advanced);
    if (absl::IsNotFound(s)) return again(absl::StrCat(path, " went away (GC)"), s);
    return s;
  };
  for (const auto& [path, name] : snap_files) SEALWAL_RETURN_IF_ERROR(copy(path, name, {}));
  for (size_t i = 0; i < paths.size(); ++i) {
    const bool last = i + 1 == paths.size();
    SEALWAL_RETURN_IF_ERROR(
        copy(paths[i], absl::StrCat(layout.wal_dir_name, "/", env::Basename(paths[i])),
             last ? std::optional<uint64_t>(wal_end) : std::nullopt));
  }

  // 5. The key file after the copy: the DEK set must be the one before it.
  // This later text is the one kept (its counts are the higher).
  backuppb::KeyMaterial material = backuppb::KEY_MATERIAL_NONE;
  if (layout.encrypted && !o.redact) {
    SEALWAL_ASSIGN_OR_RETURN(std::string text, env::ReadSecretFile(fs, key_path));
    absl::Cleanup wipe = [&] { pem::WipeString(&text); };
    SEALWAL_ASSIGN_OR_RETURN(pem::ParsedKeyFile parsed, pem::ParseKeyFile(text));
    SEALWAL_ASSIGN_OR_RETURN(DekIds ids_after, DekIdsOf(parsed, o.unlock_key));
    if (ids_after != *ids_before) {
      return again("a DEK rotation step changed node.key during the copy",
                   absl::UnavailableError("node.key kept changing its DEKs during the copy"));
    }
    material = parsed.kek_binding.has_value() ? backuppb::KEY_MATERIAL_KEK_SOURCE
               : parsed.locked                ? backuppb::KEY_MATERIAL_WRAPPED
                                              : backuppb::KEY_MATERIAL_CLEAR;
    SEALWAL_RETURN_IF_ERROR(w->BeginMember(kKeyFileMember));
    SEALWAL_RETURN_IF_ERROR(w->Append(text));
    SEALWAL_RETURN_IF_ERROR(w->EndMember());
  }
  SEALWAL_RETURN_IF_ERROR(RefuseMidMigration(fs, o.data_dir));

  backuppb::Manifest m;
  m.set_encrypted(layout.encrypted);
  m.set_redacted(o.redact);
  m.set_key_material(material);
  if (chosen) {
    m.set_snapshot_index(chosen->index);
    m.set_snapshot_term(chosen->term);
  }
  m.set_wal_last_segment(absl::StrCat(layout.wal_dir_name, "/", env::Basename(paths.back())));
  m.set_wal_end_offset(wal_end);
  m.set_created_unix(absl::ToUnixSeconds(o.clock ? o.clock() : absl::Now()));
  SEALWAL_RETURN_IF_ERROR(w->Commit(&m));
  BackupResult r;
  r.manifest = std::move(m);
  SEALWAL_ASSIGN_OR_RETURN(r.bytes, fs->GetFileSize(o.out));
  return r;
}

// Removes a restore's staging directory (DATADIR.restore-tmp): its files
// and the one level of directories restore makes.
absl::Status RemoveStaging(env::FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  SEALWAL_RETURN_IF_ERROR(names.status());
  for (const std::string& n : *names) {
    const std::string p = env::JoinPath(dir, n);
    if (absl::StatusOr<std::vector<std::string>> sub = fs->ListDir(p); sub.ok()) {
      for (const std::string& f : *sub) SEALWAL_RETURN_IF_ERROR(fs->RemoveFile(env::JoinPath(p, f)));
      SEALWAL_RETURN_IF_ERROR(fs->RemoveDir(p));
    } else {
      SEALWAL_RETURN_IF_ERROR(fs->RemoveFile(p));
    }
  }
  SEALWAL_RETURN_IF_ERROR(fs->RemoveDir(dir));
  return fs->SyncDir(env::Dirname(dir));
}

// Reads the restored copy as a writer's Bootstrap would, read-only: every
// WAL payload and every byte of the snapshot authenticated.
absl::Status VerifyRestored(const RestoreOptions& o,
                            const std::optional<pem::UnlockKey>& unlock_key,
                            const std::string& dir, const backuppb::Manifest& m,
                            RestoreResult* r) {
  storage::StorageOptions so;
  so.data_dir = dir;
  so.fs = o.fs;
  so.read_only = true;
  if (unlock_key) so.unlock_key = unlock_key->Clone();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<storage::RaftStorage> st,
                           storage::RaftStorage::Open(std::move(so)));
  SEALWAL_ASSIGN_OR_RETURN(storage::VerifyState vs, st->Verify(nullptr));
  if (vs.log->torn_tail()) {
    return absl::DataLossError(absl::StrCat("its WAL ends in a torn record: ", vs.log->torn_detail()));
  }
  const uint64_t got = vs.snapshot ? vs.snapshot->metadata.index() : 0;
  if (got != m.snapshot_index()) {
    return absl::DataLossError(absl::StrCat("it recovers from snapshot ", got,
                                            ", the manifest says ", m.snapshot_index()));
  }
  if (vs.snapshot && vs.snapshot->streamed()) {
    std::string buf(kChunk, '\0');
    uint64_t read = 0;
    for (;;) {
      SEALWAL_ASSIGN_OR_RETURN(size_t n, vs.snapshot->stream->Read(absl::MakeSpan(buf)));
      if (n == 0) break;
      read += n;
    }
    if (read != vs.snapshot->size()) {
      return absl::DataLossError(absl::StrCat("its snapshot stream ended at ", read, " of ",
                                              vs.snapshot->size(), " bytes"));
    }
  }
  r->first_index = vs.log->FirstIndex();
  r->last_index = vs.log->LastIndex();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BackupResult> CreateBackup(const BackupOptions& o) {
  if (o.data_dir.empty() || o.out.empty()) {
    return absl::InvalidArgumentError("backup: DATADIR and the output file are required");
  }
  if (o.fs == nullptr) return absl::InvalidArgumentError("backup: null file system");
  SEALWAL_ASSIGN_OR_RETURN(Layout layout, DetectLayout(o.fs, o.data_dir));
  SEALWAL_RETURN_IF_ERROR(RefuseMidMigration(o.fs, o.data_dir));
  absl::Status last;
  for (int attempt = 1; attempt <= std::max(1, o.max_attempts); ++attempt) {
    std::optional<Retry> retry;
    absl::StatusOr<BackupResult> r = Attempt(o, layout, &retry);
    if (r.ok()) {
      r->attempts = attempt;
      return r;
    }
    if (!retry) return r.status();
    last = absl::Status(retry->last_error.code(),
                        absl::StrCat(retry->last_error.message(), " (", retry->reason, "; tried ",
                                     attempt, " times)"));
    std::this_thread::sleep_for(std::chrono::milliseconds(25 * attempt));
  }
  return last;
}

absl::StatusOr<RestoreResult> RestoreBackup(const RestoreOptions& o) {
  env::FileSystem* fs = o.fs;
  if (fs == nullptr) return absl::InvalidArgumentError("restore: null file system");
  if (o.data_dir.empty() || o.backup.empty()) {
    return absl::InvalidArgumentError("restore: the backup file and DATADIR are required");
  }
  std::optional<pem::UnlockKey> unlock_key;
  if (o.unlock_key.has_value()) unlock_key = o.unlock_key->Clone();
  // 1. Refusals, before anything is written.
  bool target_exists = false;
  if (fs->FileExists(o.data_dir).ok()) {
    absl::StatusOr<std::vector<std::string>> names = fs->ListDir(o.data_dir);
    if (!names.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("restore target ", o.data_dir, " exists and is not a directory"));
    }
    if (!names->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "restore target ", o.data_dir, " is not empty; restore into a new directory"));
    }
    target_exists = true;
  }
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<BackupFileReader> reader,
                           BackupFileReader::Open(fs, o.backup));
  const backuppb::Manifest& m = reader->manifest();
  if (m.encrypted() && m.redacted()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backup ", o.backup, " is redacted: it holds no key material (node.key was left out), so "
        "its sealed WAL and snapshot cannot be read; restore from an unredacted backup"));
  }
  if (m.encrypted()) {
    SEALWAL_ASSIGN_OR_RETURN(std::string text,
                             reader->ReadSmallMember(reader->FindMember(kKeyFileMember),
                                                     kMaxKeyFileSize));
    absl::Cleanup wipe = [&] { pem::WipeString(&text); };
    SEALWAL_ASSIGN_OR_RETURN(pem::ParsedKeyFile parsed, pem::ParseKeyFile(text));
    if (parsed.kek_binding.has_value() && !unlock_key) {
      // The unlock key is held by the KEK source the file names.
      absl::StatusOr<pem::UnlockKey> u =
          kek::UnwrapBinding(*parsed.kek_binding, o.kek_source_options);
      if (!u.ok()) {
        return absl::Status(u.status().code(),
                            absl::StrCat("the backup's node.key: ", u.status().message()));
      }
      unlock_key = std::move(*u);
    }
    if (parsed.locked && !unlock_key) {
      return absl::PermissionDeniedError(
          "the backup's node.key is locked: its unlock key is needed");
    }
    if (!parsed.locked && unlock_key) {
      return absl::FailedPreconditionError(
          "the backup's node.key is not locked, but an unlock key was given: refusing to use it "
          "(the file may have been replaced); restore without the unlock key to use it "
          "deliberately");
    }
    SEALWAL_ASSIGN_OR_RETURN(pem::DekHeaders headers,
                             pem::OpenDekHeaders(parsed, unlock_key ? &*unlock_key : nullptr));
  }

  // 2. The copy, beside the target.
  const Layout layout = LayoutOf(m.encrypted());
  const std::string staging = o.data_dir + ".restore-tmp";
  SEALWAL_RETURN_IF_ERROR(env::CreateDirAll(fs, env::Dirname(o.data_dir)));
  SEALWAL_RETURN_IF_ERROR(RemoveStaging(fs, staging));
  SEALWAL_RETURN_IF_ERROR(fs->CreateDir(staging, 0700));
  bool committed = false;
  absl::Cleanup remove = [&] {
    if (!committed) (void)RemoveStaging(fs, staging);
  };
  for (const std::string& d : {layout.wal_dir_name, layout.snap_dir_name}) {
    SEALWAL_RETURN_IF_ERROR(fs->CreateDir(env::JoinPath(staging, d), 0700));
  }
  RestoreResult r;
  r.manifest = m;
  uint64_t total = 0, done = 0;
  for (const backuppb::Member& mem : m.members()) total += mem.size();
  for (int i = 0; i < m.members_size(); ++i) {
    const std::string path = env::JoinPath(staging, m.members(i).name());
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::WritableFile> f,
                             env::NewTempFile(fs, path, 0600));
    SEALWAL_RETURN_IF_ERROR(reader->ReadMember(i, [&](absl::string_view d) {
      SEALWAL_RETURN_IF_ERROR(f->Append(d));
      done += d.size();
      if (o.progress) o.progress(done, total);
      return absl::OkStatus();
    }));
    SEALWAL_RETURN_IF_ERROR(f->Sync());
    SEALWAL_RETURN_IF_ERROR(f->Close());
    ++r.files;
    r.bytes += m.members(i).size();
  }
  for (const std::string& d : {layout.wal_dir_name, layout.snap_dir_name}) {
    SEALWAL_RETURN_IF_ERROR(fs->SyncDir(env::JoinPath(staging, d)));
  }
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(staging));

  // 3. Everything read back and authenticated before the target appears.
  if (absl::Status s = VerifyRestored(o, unlock_key, staging, m, &r); !s.ok()) {
    if (s.code() == absl::StatusCode::kPermissionDenied || encryption::IsMissingKeyError(s)) {
      return s;
    }
    return absl::DataLossError(
        absl::StrCat("backup ", o.backup, ": the restored store does not verify: ", s.message()));
  }
  if (m.encrypted()) {
    SEALWAL_RETURN_IF_ERROR(
        storage::RaftStorage::RequestRotationInKeyFile(staging, unlock_key, fs));
  }

  // 4. Commit: one rename (over an empty target directory, if there is one).
  (void)target_exists;  // rename(2) replaces an empty directory
  SEALWAL_RETURN_IF_ERROR(fs->Rename(staging, o.data_dir));
  committed = true;
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(env::Dirname(o.data_dir)));
  return r;
}

absl::StatusOr<backuppb::Manifest> InspectBackup(env::FileSystem* fs, const std::string& path,
                                                 bool check_members) {
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<BackupFileReader> reader,
                           BackupFileReader::Open(fs, path));
  if (check_members) {
    for (int i = 0; i < reader->manifest().members_size(); ++i) {
      SEALWAL_RETURN_IF_ERROR(
          reader->ReadMember(i, [](absl::string_view) { return absl::OkStatus(); }));
    }
  }
  return reader->manifest();
}

std::string KeyMaterialText(const backuppb::Manifest& m) {
  switch (m.key_material()) {
    case backuppb::KEY_MATERIAL_WRAPPED:
      return "wrapped (node.key is locked: its DEKs open only with the unlock key)";
    case backuppb::KEY_MATERIAL_KEK_SOURCE:
      return "none unwrapped (node.key's unlock key is wrapped by an external KEK source, a "
             "PKCS#11 token or a KMS: restoring needs that source)";
    case backuppb::KEY_MATERIAL_CLEAR:
      return "in the clear (node.key is unlocked, autolock off: whoever holds this backup can "
             "read the store)";
    default:
      if (m.redacted()) {
        return "none (redacted: node.key was left out; the payloads stay sealed and this "
               "backup cannot be restored)";
      }
      return m.encrypted() ? "none" : "none (a plaintext store: its entries are in the clear)";
  }
}

}  // namespace sealwal::backup
