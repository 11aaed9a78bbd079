// sealwal/backup/backup.h: one-file backups of a store (`sealwal store
// backup|restore`), their redaction and inspection. The file's bytes are in
// sealwal/backup/backup_file.h and docs/format.md §14.
//
// What a backup holds: the newest snapshot whose WAL snapshot record the
// copied WAL holds (its .snap and, when streamed, its .snap.stream), every
// WAL segment the store retains (so the restored store verifies to the
// same digest), and node.key as it is on disk: a locked file keeps its DEKs wrapped under the KEK, so the
// backup needs the unlock key to be restored, as the store does. The DEKs
// are never decrypted into the backup.
//
// Taking it while a writer runs (CreateBackup takes no lock and needs
// none: it only reads, and every change a writer makes is one the copy
// tolerates):
//   - WAL segments are append-only: bytes before a segment's end never
//     change, and a cut segment never changes again. The copy scans the
//     segments with the WAL's record reader (CRC chain checked)
//     and copies the last one only up to the end of its last whole record:
//     the consistency point. A record being written at that moment is left
//     out, as a crash at that moment would leave it.
//   - .snap, .snap.stream and node.key are replaced only by rename, and
//     removed only by GC and rotation; an open file keeps its bytes. A file
//     that vanished between the listing and the open, a snapshot whose WAL
//     record is not yet in the copy, or a key file whose DEK set changed
//     during the copy (a rotation step ran) make the attempt start again,
//     up to `max_attempts`; a change of the DEKs' counts alone does not.
//   - The writer's locks (one on each open segment, sealwal/wal/wal.h)
//     keep a second writer out; they do not block readers, and the backup
//     relies on the ordering above, not on them. An interrupted `store
//     migrate` (DATADIR/migrate.journal) is refused: open the store first.
// Checking that the DEK set did not change needs the DEK ids, which a
// locked node.key only shows under its unlock key: a backup of a locked
// store that keeps its keys needs the unlock key (kPermissionDenied
// without it). A redacted backup needs none.
//
// Restore writes DATADIR.restore-tmp (removed first if a crashed restore
// left it), checks every member's checksum while writing it, fsyncs every
// file and directory, opens the copy read-only with the unlock key and
// reads everything (every WAL payload and the snapshot's every byte
// authenticated), sets raft-dek-needs-rotation in the copy's node.key
// (the original may have sealed more under the DEK after the backup than
// the copy's key file counts, so the first writer rotates to a fresh DEK),
// and only then renames it to DATADIR (an empty directory there is
// replaced) and fsyncs the parent. On any failure the copy is removed and
// DATADIR is as before.
//
// Errors (absl::Status): a non-empty target, a redacted backup of an
// encrypted store, a missing or wrong unlock key: kFailedPrecondition /
// kPermissionDenied, checked before anything is written; a damaged or
// truncated backup kDataLoss; a store that does not verify after restore
// kDataLoss; no store at DATADIR kNotFound.
// Thread-safety: the functions are independent; each uses its arguments
// only during the call. The FileSystem is borrowed.
#ifndef SEALWAL_BACKUP_BACKUP_H_
#define SEALWAL_BACKUP_BACKUP_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/proto/backup.pb.h"

namespace sealwal::backup {

// Told how far a long copy has come: bytes done of bytes in all.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct BackupOptions {
  std::string data_dir;
  std::string out;  // the backup file; written atomically (out.tmp, rename)
  // Leave node.key out (see RedactionNote in docs/operations.md): the rest
  // stays, payloads sealed; such a backup cannot be restored.
  bool redact = false;
  // node.key's unlock key, when it is locked (not needed with redact).
  std::optional<pem::UnlockKey> unlock_key;
  env::FileSystem* fs = env::DefaultFileSystem();  // borrowed
  ProgressFn progress;
  int max_attempts = 8;
  std::function<absl::Time()> clock = absl::Now;
};

struct BackupResult {
  backuppb::Manifest manifest;
  int attempts = 1;      // 1 unless a writer's change made the copy start again
  uint64_t bytes = 0;    // the backup file's size
};

absl::StatusOr<BackupResult> CreateBackup(const BackupOptions& options);

struct RestoreOptions {
  std::string backup;    // the backup file
  std::string data_dir;  // must not exist, or be an empty directory
  // The unlock key; when absent and the backup's node.key names a KEK
  // source (sealwal/kek/key_file_kek.h), that source is asked, with these
  // options.
  std::optional<pem::UnlockKey> unlock_key;
  kek::KekSourceOptions kek_source_options;
  env::FileSystem* fs = env::DefaultFileSystem();  // borrowed
  ProgressFn progress;
};

struct RestoreResult {
  backuppb::Manifest manifest;
  uint64_t first_index = 0;  // the entries the restored store retains
  uint64_t last_index = 0;
  uint64_t files = 0;
  uint64_t bytes = 0;
};

absl::StatusOr<RestoreResult> RestoreBackup(const RestoreOptions& options);

// A backup's manifest, with every member's checksum checked when
// `check_members` (reads the whole file); nothing is decrypted.
absl::StatusOr<backuppb::Manifest> InspectBackup(env::FileSystem* fs, const std::string& path,
                                                 bool check_members);

// One line on the key material a backup holds, e.g. "wrapped (node.key is
// locked: its DEKs open only with the unlock key)".
std::string KeyMaterialText(const backuppb::Manifest& manifest);

}  // namespace sealwal::backup

#endif  // SEALWAL_BACKUP_BACKUP_H_
