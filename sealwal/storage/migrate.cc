#include "sealwal/storage/migrate.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/keyring_loader.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/snapshotter.h"
#include "sealwal/storage/raft_storage.h"
#include "sealwal/wal/transcode.h"
#include "sealwal/wal/wal.h"
#include "sealwal/walcrypt/wal_codec.h"

namespace sealwal::storage {
namespace {

constexpr absl::string_view kTmpSuffix = ".tmp";
// The journal's text (docs/format.md §13): a header line and the kind the
// store is moving to.
constexpr absl::string_view kJournalHeader = "sealwal-migrate-journal 1";
// Streamed snapshots are copied through a buffer of this size.
constexpr size_t kStreamCopyBytes = 1 << 20;

bool Exists(env::FileSystem* fs, const std::string& path) { return fs->FileExists(path).ok(); }

struct Layout {
  std::string wal, snap;  // full paths
  std::string wal_name, snap_name;
};

Layout LayoutOf(const std::string& dd, bool encrypted) {
  Layout l;
  l.wal_name = std::string(encrypted ? walcrypt::kEncryptedWalDirName
                                     : walcrypt::kPlaintextWalDirName);
  l.snap_name = std::string(encrypted ? kEncryptedSnapDirName : kPlaintextSnapDirName);
  l.wal = env::JoinPath(dd, l.wal_name);
  l.snap = env::JoinPath(dd, l.snap_name);
  return l;
}

std::string Tmp(const std::string& path) { return absl::StrCat(path, kTmpSuffix); }

// Removes `path` and everything under it (nothing when it does not exist).
// The caller fsyncs the parent.
absl::Status RemoveTree(env::FileSystem* fs, const std::string& path) {
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(path);
  if (!names.ok()) {
    if (absl::IsNotFound(names.status())) return absl::OkStatus();
    // Not a directory: a file.
    if (absl::Status s = fs->RemoveFile(path); s.ok() || absl::IsNotFound(s)) {
      return absl::OkStatus();
    }
    return names.status();
  }
  for (const std::string& n : *names) {
    const std::string child = env::JoinPath(path, n);
    absl::Status s = fs->RemoveFile(child);
    if (!s.ok() && !absl::IsNotFound(s)) {
      // A directory (RemoveFile refuses it): recurse.
      SEALWAL_RETURN_IF_ERROR(RemoveTree(fs, child));
    }
  }
  absl::Status s = fs->RemoveDir(path);
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  return absl::OkStatus();
}

// Locks every segment of `wal_dir` (as a writer's Wal::Open does), so that
// no writer can open the store while it moves. kUnavailable when one holds it.
absl::StatusOr<std::vector<std::unique_ptr<env::FileLock>>> LockSegments(
    env::FileSystem* fs, const std::string& wal_dir, absl::string_view why) {
  std::vector<std::unique_ptr<env::FileLock>> locks;
  absl::StatusOr<std::vector<std::string>> names = wal::Wal::SegmentNames(wal_dir, fs);
  if (!names.ok()) {
    if (absl::IsNotFound(names.status())) return locks;
    return names.status();
  }
  for (const std::string& n : *names) {
    absl::StatusOr<std::unique_ptr<env::FileLock>> l = fs->LockFile(env::JoinPath(wal_dir, n));
    if (!l.ok()) {
      if (absl::IsUnavailable(l.status())) {
        return absl::UnavailableError(absl::StrCat(wal_dir, "/", n, " is locked: ", why));
      }
      return l.status();
    }
    locks.push_back(std::move(*l));
  }
  return locks;
}

std::string JournalText(bool to_encrypted) {
  return absl::StrCat(kJournalHeader, "\nto ", to_encrypted ? "encrypted" : "plaintext", "\n");
}

// Step 4: the new directories under their final names, the old ones gone,
// then the journal. Idempotent; every change is fsynced into DATADIR
// before the next one depends on it.
absl::Status RollForward(const std::string& dd, env::FileSystem* fs, bool to_encrypted) {
  const Layout to = LayoutOf(dd, to_encrypted);
  const Layout from = LayoutOf(dd, !to_encrypted);
  // The snapshot directory first: once the new WAL has its final name the
  // new store is complete under final names.
  for (const std::string& dir : {to.snap, to.wal}) {
    const bool final_exists = Exists(fs, dir);
    const bool tmp_exists = Exists(fs, Tmp(dir));
    if (!final_exists && tmp_exists) {
      SEALWAL_RETURN_IF_ERROR(fs->Rename(Tmp(dir), dir));
    } else if (!final_exists) {
      return absl::DataLossError(absl::StrCat(env::JoinPath(dd, kMigrateJournalName),
                                              ": the migration's new directory ", dir,
                                              " is missing (neither it nor ", Tmp(dir),
                                              " exists)"));
    } else if (tmp_exists) {
      // Cannot happen (a rename is atomic); a copy under both names would
      // be a second run's leftover: the final one is the committed one.
      SEALWAL_RETURN_IF_ERROR(RemoveTree(fs, Tmp(dir)));
    }
  }
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dd));
  SEALWAL_RETURN_IF_ERROR(RemoveTree(fs, from.snap));
  SEALWAL_RETURN_IF_ERROR(RemoveTree(fs, from.wal));
  SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dd));
  absl::Status s = fs->RemoveFile(env::JoinPath(dd, kMigrateJournalName));
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  return fs->SyncDir(dd);
}

absl::StatusOr<std::optional<bool>> ReadJournal(const std::string& dd, env::FileSystem* fs) {
  const std::string path = env::JoinPath(dd, kMigrateJournalName);
  absl::StatusOr<std::string> text = env::ReadFileToString(fs, path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return std::optional<bool>();
    return text.status();
  }
  if (*text == JournalText(true)) return std::optional<bool>(true);
  if (*text == JournalText(false)) return std::optional<bool>(false);
  return absl::DataLossError(
      absl::StrCat(path, ": not a sealwal migration journal (expected \"", kJournalHeader,
                   "\" and a \"to encrypted|plaintext\" line)"));
}

// Everything a migration needs from the keys: the keyring, and whether
// this run made node.key (to remove it again on failure).
struct Keys {
  std::shared_ptr<encryption::Keyring> keyring;
  std::unique_ptr<walcrypt::WalCodec> codec;
  bool created = false;
  bool lock_existed = false;  // node.key.lock was there before this run
};

// Removes the node.key (and node.key.lock) this run made: after a failure
// DATADIR is as it was.
void UndoKeyFile(const MigrateOptions& o, bool lock_existed) {
  const std::string key_path = env::JoinPath(o.data_dir, kKeyFileName);
  (void)o.fs->RemoveFile(key_path);
  if (!lock_existed) (void)o.fs->RemoveFile(absl::StrCat(key_path, ".lock"));
  (void)o.fs->SyncDir(o.data_dir);
}

absl::StatusOr<Keys> LoadKeys(const MigrateOptions& o, bool encrypt) {
  env::FileSystem* fs = o.fs;
  const std::string key_path = env::JoinPath(o.data_dir, kKeyFileName);
  pem::KeyReadWriterOptions ko;
  ko.fs = fs;
  ko.path = key_path;
  if (o.unlock_key.has_value()) ko.unlock_key = o.unlock_key->Clone();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<pem::KeyReadWriter> krw_u,
                           pem::KeyReadWriter::Create(std::move(ko)));
  std::shared_ptr<pem::KeyReadWriter> krw = std::move(krw_u);
  Keys keys;
  keys.lock_existed = Exists(fs, absl::StrCat(key_path, ".lock"));
  if (!Exists(fs, key_path)) {
    if (!encrypt) {
      return absl::FailedPreconditionError(
          absl::StrCat(key_path, " does not exist: decrypting needs the store's key file"));
    }
    // As RaftStorage::Open makes a new store's key file (and `store init`):
    // a TLS key and one DEK, locked when an unlock key was given; one
    // atomic write.
    SEALWAL_ASSIGN_OR_RETURN(pem::PrivateKey key, pem::PrivateKey::GenerateEcP256());
    SEALWAL_ASSIGN_OR_RETURN(encryption::Dek dek, encryption::Dek::Generate());
    pem::DekHeaders headers;
    headers.current = pem::StoredDek{std::move(dek), 0};
    if (absl::Status s = krw->Write(key, headers); !s.ok()) {
      UndoKeyFile(o, keys.lock_existed);
      return s;
    }
    keys.created = true;
  }
  pem::LoadKeyringOptions lo;
  // Decrypting seals nothing: the key file is only read.
  lo.persist_counts = encrypt;
  lo.reservation_block = o.reservation_block;
  absl::StatusOr<pem::LoadedKeyring> loaded = pem::LoadKeyring(krw, lo);
  if (!loaded.ok()) {
    if (keys.created) UndoKeyFile(o, keys.lock_existed);
    return loaded.status();
  }
  keys.keyring = std::move(loaded->keyring);
  SEALWAL_ASSIGN_OR_RETURN(keys.codec, walcrypt::WalCodec::ForKeyring(keys.keyring));
  return keys;
}

// Re-saves every .snap of `from` into `to`, inline or streamed as it was.
absl::Status CopySnapshots(const MigrateOptions& o, const std::string& from_dir,
                           const std::string& to_dir, const std::string& from_name,
                           std::shared_ptr<const encryption::Keyring> from_keys,
                           std::shared_ptr<const encryption::Keyring> to_keys,
                           MigrateResult* result) {
  env::FileSystem* fs = o.fs;
  if (!Exists(fs, from_dir)) return absl::OkStatus();  // a store without snapshots yet
  snap::SnapshotterOptions so;
  so.fs = fs;
  so.keys = std::move(from_keys);
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<snap::Snapshotter> src,
                           snap::Snapshotter::Open(from_dir, std::move(so)));
  snap::SnapshotterOptions dso;
  dso.fs = fs;
  dso.keys = std::move(to_keys);
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<snap::Snapshotter> dst,
                           snap::Snapshotter::Open(to_dir, std::move(dso)));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, src->List());
  // Every .snap must decode before any is loaded: Load would rename one
  // that does not to .broken, and the old store must stay as it is.
  for (const std::string& n : names) {
    SEALWAL_ASSIGN_OR_RETURN(snap::SnapFileInfo info, src->Inspect(n));
    if (!info.status.ok()) {
      return absl::DataLossError(absl::StrCat(
          from_dir, "/", n, " is damaged (", info.status.message(),
          "); a writing open of the store renames it .broken, or remove it, then migrate"));
    }
  }
  std::string buf;
  for (const std::string& n : names) {
    uint64_t term = 0, index = 0;
    if (!snap::ParseSnapFileName(n, &term, &index)) continue;
    const wal::SnapshotPosition pos{index, term};
    absl::StatusOr<snap::LoadedSnapshot> loaded =
        src->LoadNewestAvailable(absl::MakeConstSpan(&pos, 1));
    if (!loaded.ok()) {
      if (absl::IsNotFound(loaded.status()) && !encryption::IsMissingKeyError(loaded.status())) {
        return absl::DataLossError(absl::StrCat(from_dir, "/", n,
                                                " cannot be loaded (its stream is missing or "
                                                "broken): ", loaded.status().message()));
      }
      return loaded.status();
    }
    if (loaded->file != n) {
      return absl::InternalError(absl::StrCat("migrate: loaded ", loaded->file, " for ", n));
    }
    if (loaded->streamed()) {
      SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<snap::SnapshotStreamSaver> saver,
                               dst->SaveStream(loaded->metadata));
      buf.resize(kStreamCopyBytes);
      uint64_t copied = 0;
      for (;;) {
        SEALWAL_ASSIGN_OR_RETURN(size_t got, loaded->stream->Read(absl::MakeSpan(buf)));
        if (got == 0) break;
        SEALWAL_RETURN_IF_ERROR(saver->Append(absl::string_view(buf.data(), got)));
        copied += got;
      }
      if (copied != loaded->stream->size()) {
        return absl::DataLossError(absl::StrCat(from_dir, "/", n, ": stream ended at ", copied,
                                                " of ", loaded->stream->size(), " bytes"));
      }
      SEALWAL_RETURN_IF_ERROR(saver->Commit());
    } else {
      SEALWAL_RETURN_IF_ERROR(dst->Save(loaded->metadata, loaded->data));
    }
    result->snapshots.push_back(n);
  }
  // What is not a listed snapshot (or its stream) stays behind.
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> all, fs->ListDir(from_dir));
  for (const std::string& n : all) {
    bool carried = false;
    for (const std::string& s : result->snapshots) {
      uint64_t term = 0, index = 0;
      snap::ParseSnapFileName(s, &term, &index);
      if (n == s || n == snap::StreamFileName(term, index)) carried = true;
    }
    if (!carried) result->skipped.push_back(absl::StrCat(from_name, "/", n));
  }
  return fs->SyncDir(to_dir);
}

// Files in the old store's directories that are neither segments,
// snapshots (.snap and the .snap.stream it names) nor leftovers of an
// interrupted write (*.tmp, which every reader ignores). They would be
// deleted with the old directories and cannot be carried over unread (a
// plaintext file must not land in an encrypted directory), so the
// operator moves them away first: etcd's member/snap/db, *.broken copies,
// orphan streams, anything else.
absl::StatusOr<std::vector<std::string>> ForeignFiles(env::FileSystem* fs, const Layout& from) {
  std::vector<std::string> foreign;
  for (const auto& [dir, name] : {std::pair{from.wal, from.wal_name},
                                  std::pair{from.snap, from.snap_name}}) {
    absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
    if (!names.ok()) {
      if (absl::IsNotFound(names.status())) continue;
      return names.status();
    }
    for (const std::string& n : *names) {
      uint64_t a = 0, b = 0;
      bool known = absl::EndsWith(n, kTmpSuffix);
      if (dir == from.wal) {
        known = known || wal::ParseSegmentFileName(n, &a, &b);
      } else if (snap::ParseSnapFileName(n, &a, &b)) {
        known = true;
      } else if (absl::EndsWith(n, ".stream")) {
        const std::string snap_name = n.substr(0, n.size() - std::string(".stream").size());
        known = snap::ParseSnapFileName(snap_name, &a, &b) &&
                std::find(names->begin(), names->end(), snap_name) != names->end();
      }
      if (!known || fs->ListDir(env::JoinPath(dir, n)).ok()) {
        foreign.push_back(absl::StrCat(name, "/", n));
      }
    }
  }
  return foreign;
}

}  // namespace

absl::StatusOr<std::optional<PendingMigration>> ReadPendingMigration(const std::string& data_dir,
                                                                     env::FileSystem* fs) {
  SEALWAL_ASSIGN_OR_RETURN(std::optional<bool> to, ReadJournal(data_dir, fs));
  if (!to.has_value()) return std::optional<PendingMigration>();
  const Layout l = LayoutOf(data_dir, *to);
  PendingMigration p;
  p.to_encrypted = *to;
  p.wal_dir = Exists(fs, l.wal) ? l.wal : Tmp(l.wal);
  p.snap_dir = Exists(fs, l.snap) ? l.snap : Tmp(l.snap);
  if (!Exists(fs, p.wal_dir)) {
    return absl::DataLossError(absl::StrCat(env::JoinPath(data_dir, kMigrateJournalName),
                                            ": the migration's new WAL (", l.wal, ") is missing"));
  }
  return std::optional<PendingMigration>(std::move(p));
}

absl::StatusOr<bool> FinishPendingMigration(const std::string& data_dir, env::FileSystem* fs) {
  SEALWAL_ASSIGN_OR_RETURN(std::optional<bool> to, ReadJournal(data_dir, fs));
  if (!to.has_value()) return false;
  // A migration still running (or a writer on the old store) holds the old
  // WAL's segments: leave it alone.
  SEALWAL_ASSIGN_OR_RETURN(
      std::vector<std::unique_ptr<env::FileLock>> locks,
      LockSegments(fs, LayoutOf(data_dir, !*to).wal,
                   "a migration of this store is still running (or a writer holds the old store)"));
  SEALWAL_RETURN_IF_ERROR(RollForward(data_dir, fs, *to));
  return true;
}

absl::StatusOr<MigrateResult> Migrate(const MigrateOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("migrate: empty data directory");
  if (o.fs == nullptr) return absl::InvalidArgumentError("migrate: null file system");
  env::FileSystem* fs = o.fs;
  const std::string& dd = o.data_dir;
  const bool encrypt = o.direction == MigrateDirection::kEncrypt;
  MigrateResult result;
  const Layout to = LayoutOf(dd, encrypt);
  const Layout from = LayoutOf(dd, !encrypt);
  result.wal_dir = to.wal_name;
  result.snap_dir = to.snap_name;

  // 1. An interrupted migration is finished first.
  SEALWAL_ASSIGN_OR_RETURN(result.resumed, FinishPendingMigration(dd, fs));
  const bool has_to = Exists(fs, to.wal);
  const bool has_from = Exists(fs, from.wal);
  if (has_to && has_from) {
    return absl::FailedPreconditionError(absl::StrCat(
        dd, " holds both ", from.wal_name, " and ", to.wal_name, "; refusing to guess which is the store"));
  }
  if (has_to) {
    if (result.resumed) {
      result.already = true;
      return result;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        dd, " is already ", encrypt ? "encrypted" : "plaintext", " (it holds ", to.wal_name, ")"));
  }
  if (!has_from) {
    return absl::NotFoundError(absl::StrCat(dd, ": no store (no ", from.wal_name, ")"));
  }
  SEALWAL_ASSIGN_OR_RETURN(
      std::vector<std::unique_ptr<env::FileLock>> locks,
      LockSegments(fs, from.wal, "a writer (or another migration) holds the store; stop it first"));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> foreign, ForeignFiles(fs, from));
  if (!foreign.empty()) {
    const size_t shown = std::min<size_t>(foreign.size(), 3);
    return absl::FailedPreconditionError(absl::StrCat(
        dd, " holds files migrate would not carry over (",
        absl::StrJoin(foreign.begin(), foreign.begin() + shown, ", "),
        foreign.size() > shown ? ", ..." : "",
        "); move them out of the store first, they would be deleted with the old directories"));
  }
  // Leftovers of a run that crashed before its commit point.
  bool removed = false;
  for (const std::string& d : {Tmp(to.wal), Tmp(to.snap)}) {
    if (Exists(fs, d)) {
      SEALWAL_RETURN_IF_ERROR(RemoveTree(fs, d));
      removed = true;
    }
  }
  if (const std::string jt = Tmp(env::JoinPath(dd, kMigrateJournalName)); Exists(fs, jt)) {
    SEALWAL_RETURN_IF_ERROR(fs->RemoveFile(jt));
    removed = true;
  }
  if (removed) SEALWAL_RETURN_IF_ERROR(fs->SyncDir(dd));

  SEALWAL_ASSIGN_OR_RETURN(Keys keys, LoadKeys(o, encrypt));
  result.created_key_file = keys.created;

  // 2. Build the new store under .tmp names.
  auto build = [&]() -> absl::Status {
    SEALWAL_RETURN_IF_ERROR(fs->CreateDir(Tmp(to.wal), 0700));
    SEALWAL_RETURN_IF_ERROR(fs->CreateDir(Tmp(to.snap), 0700));
    wal::TranscodeOptions to_opts;
    to_opts.fs = fs;
    if (encrypt) {
      to_opts.encode = keys.codec.get();
    } else {
      to_opts.decode = keys.codec.get();
    }
    absl::StatusOr<wal::TranscodeResult> copied = wal::TranscodeWal(from.wal, Tmp(to.wal), to_opts);
    if (!copied.ok()) {
      if (wal::GetWalErrorClass(copied.status()) == wal::WalErrorClass::kUnexpectedEof) {
        return absl::FailedPreconditionError(absl::StrCat(
            copied.status().message(), ": open the store for writing once (that repairs a "
            "torn tail) or run `sealwal wal repair ", from.wal, "`, then migrate"));
      }
      return copied.status();
    }
    result.segments = std::move(copied->segments);
    result.entries = copied->entries;
    for (const std::string& n : copied->skipped) {
      result.skipped.push_back(absl::StrCat(from.wal_name, "/", n));
    }
    std::shared_ptr<const encryption::Keyring> ring = keys.keyring;
    SEALWAL_RETURN_IF_ERROR(CopySnapshots(o, from.snap, Tmp(to.snap), from.snap_name,
                                          encrypt ? nullptr : ring, encrypt ? ring : nullptr,
                                          &result));
    return fs->SyncDir(dd);
  };
  if (absl::Status s = build(); !s.ok()) {
    // The old store was only read: put DATADIR back as it was.
    (void)RemoveTree(fs, Tmp(to.wal));
    (void)RemoveTree(fs, Tmp(to.snap));
    if (keys.created) {
      keys.codec.reset();
      keys.keyring.reset();
      UndoKeyFile(o, keys.lock_existed);
    }
    (void)fs->SyncDir(dd);
    return s;
  }

  // 3. The commit point.
  SEALWAL_RETURN_IF_ERROR(
      env::WriteFileAtomically(fs, env::JoinPath(dd, kMigrateJournalName), JournalText(encrypt)));
  // 4. Roll forward (as the next Open would after a crash).
  SEALWAL_RETURN_IF_ERROR(RollForward(dd, fs, encrypt));
  return result;
}

}  // namespace sealwal::storage
