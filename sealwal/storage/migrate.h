// sealwal/storage/migrate.h: moves a store from plaintext to encrypted and
// back (`sealwal store migrate DATADIR --encrypt|--decrypt`,
// docs/cli-store.md), crash-safely: at every point exactly one store is
// visible to RaftStorage::Open, the old one or the new one, never both and
// never neither.
//
//   --encrypt   wal-v3/ + snap-v3/ (as etcd writes them)  ->  wal-v3-encrypted/ +
//               snap-v3-encrypted/ + node.key (made when absent, locked under
//               the unlock key when one is given; an existing one is used as is)
//   --decrypt   wal-v3-encrypted/ + snap-v3-encrypted/    ->  wal-v3/ + snap-v3/
//               (node.key stays; it must hold every DEK the files name)
//
// What is copied. The WAL record by record, segment by segment
// (wal::TranscodeWal, sealwal/wal/transcode.h): the same segment names,
// every record in order (entries a later record overwrites too), the
// metadata, HardStates and snapshot records; entry payloads sealed
// (encrypt) or opened (decrypt) by walcrypt::WalCodec over the key file's
// keyring (pem::LoadKeyring: the DEK's stored count is reserved in
// node.key before anything is sealed, as for every writer), each bound to
// its index, term and type. Every .snap, re-saved by the Snapshotter in the
// new directory with the same index, term, metadata (ConfState) and data,
// inline or streamed as it was. Leftover temp files (*.tmp) are not
// carried over (the result lists them); any other file that is neither a
// segment nor a snapshot (etcd's member/snap/db, *.broken copies, orphan
// streams) is refused (kFailedPrecondition), since it would be deleted
// with the old directory.
//
// The protocol (docs/format.md §13 has the journal's bytes):
//   1. checks: DATADIR holds exactly one store, not already of the target
//      kind, and no file that would not be carried over; every segment of
//      its WAL can be locked (a writer holding the WAL is kUnavailable),
//      and stays locked until the end; the keys load (a wrong or missing unlock key
//      is kPermissionDenied before anything is written); leftovers of a
//      crashed run (<new>.tmp directories, the journal's temp file) are
//      removed.
//   2. build: <new wal>.tmp/ and <new snap>.tmp/, every file fsynced, both
//      directories and DATADIR fsynced. A crash here leaves the old store
//      (the .tmp directories are invisible to Open and removed by the next
//      run); an error removes them (and a node.key this run made) and
//      leaves the old store as it was.
//   3. commit: DATADIR/migrate.journal is written atomically (temp file,
//      fsync, rename, fsync DATADIR). From this moment the new store is the
//      store.
//   4. roll forward: rename <new snap>.tmp and <new wal>.tmp to their final
//      names, fsync DATADIR; remove the old directories, fsync DATADIR;
//      remove the journal, fsync DATADIR.
// While the journal exists, RaftStorage::Open does step 4 itself before it
// opens (a read-only Open modifies nothing and reads the new store where
// it is, under its final or its .tmp name), and so does the next Migrate
// (FinishPendingMigration), so a crash anywhere in 3-4 ends with the new
// store. Every step of 4 is idempotent.
//
// Errors: absl::Status, as RaftStorage: kNotFound no store;
// kFailedPrecondition the store is already of the target kind, holds both
// kinds, holds files that cannot be carried over, its WAL ends in a torn
// record (repair it first: a writing open or `sealwal wal repair`), or a
// decrypt finds no node.key; kResourceExhausted the disk is full; kUnavailable a
// writer holds the WAL or another migration runs; kPermissionDenied a
// missing or wrong unlock key; kNotFound with encryption::IsMissingKeyError
// a file sealed under a DEK the key file lacks; kDataLoss corruption (a CRC
// failure, a .snap that does not decode or authenticate, a damaged
// journal). Before step 3 an error leaves the old store untouched; after
// it, the journal finishes the move at the next Open or Migrate.
//
// Ownership: MigrateOptions::fs is borrowed for the call.
// Thread-safety: plain functions; the caller must not run two migrations
// of one DATADIR at once in one process (across processes the segment
// locks refuse the second one).
#ifndef SEALWAL_STORAGE_MIGRATE_H_
#define SEALWAL_STORAGE_MIGRATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/unlock_key.h"

namespace sealwal::storage {

// The journal in DATADIR that makes step 3 the commit point.
inline constexpr absl::string_view kMigrateJournalName = "migrate.journal";

enum class MigrateDirection { kEncrypt, kDecrypt };

struct MigrateOptions {
  std::string data_dir;
  MigrateDirection direction = MigrateDirection::kEncrypt;
  // Borrowed for the call.
  env::FileSystem* fs = env::DefaultFileSystem();
  // node.key's unlock key; for --encrypt a new node.key is locked under it.
  std::optional<pem::UnlockKey> unlock_key;
  // How far one reservation raises the DEK's stored count in node.key.
  uint64_t reservation_block = encryption::kDefaultReservationBlock;
};

struct MigrateResult {
  // An interrupted migration's journal was found and its move finished
  // first (and, when that one already went the requested way, nothing
  // else was done: `already` is true).
  bool resumed = false;
  bool already = false;
  bool created_key_file = false;  // --encrypt made node.key
  std::string wal_dir;            // the new store's directories, relative to DATADIR
  std::string snap_dir;
  std::vector<std::string> segments;   // segment names written
  std::vector<std::string> snapshots;  // .snap names written
  std::vector<std::string> skipped;    // old files not carried over (relative to DATADIR)
  uint64_t entries = 0;                // entry records copied
};

// Steps 1-4 above. With a journal present, finishes that migration first.
absl::StatusOr<MigrateResult> Migrate(const MigrateOptions& options);

// Where the store a journal designates lives right now.
struct PendingMigration {
  bool to_encrypted = false;
  std::string wal_dir;   // full path: the final name, or <name>.tmp before step 4 renamed it
  std::string snap_dir;
};
// The journal's verdict without modifying anything (nullopt: no journal).
// kDataLoss for a journal that does not parse or names no new WAL.
absl::StatusOr<std::optional<PendingMigration>> ReadPendingMigration(const std::string& data_dir,
                                                                     env::FileSystem* fs);
// Step 4 for a journal left by a crash; false when there was none.
// kUnavailable when the old WAL's segments are locked (the migration is
// still running, or a writer holds the old store).
absl::StatusOr<bool> FinishPendingMigration(const std::string& data_dir, env::FileSystem* fs);

}  // namespace sealwal::storage

#endif  // SEALWAL_STORAGE_MIGRATE_H_
