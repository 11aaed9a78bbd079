// `sealwal store backup|restore` and `store inspect` of a backup file
// (docs/cli-store.md): thin commands over sealwal/backup/backup.h, which
// holds the consistency rules, the file format and every check.
//
// Exit status, as the rest of `sealwal store`: 0 done; 1 the data is bad
// (a damaged or truncated backup, a store that does not verify, no store);
// 2 usage, keys or a refusal (a wrong or missing unlock key, a redacted
// backup of an encrypted store, a non-empty target). Errors are one line on
// stderr starting "sealwal: ".
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "sealwal/backup/backup.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/storage/raft_storage.h"
#include "sealwal/pem/unlock_key.h"
#include "tools/cli.h"

namespace sealwal::cli {
namespace {

std::string Size(uint64_t b) {
  if (b >= (uint64_t{1} << 30)) return absl::StrFormat("%.2f GiB", b / 1073741824.0);
  return absl::StrFormat("%.1f MiB", b / 1048576.0);
}

// Progress on stderr for long copies: at most one line a second, and only
// once a copy is large enough (64 MiB) to take a while.
backup::ProgressFn Progress(const char* what) {
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [what, last](uint64_t done, uint64_t total) {
    if (total < (uint64_t{64} << 20)) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - *last < std::chrono::seconds(1)) return;
    *last = now;
    std::fprintf(stderr, "%s: %s of %s (%.0f%%)\n", what, Size(done).c_str(), Size(total).c_str(),
                 total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / total);
  };
}

void PrintSnapshot(const backuppb::Manifest& m) {
  if (m.snapshot_index() == 0) {
    std::printf("snapshot none\n");
  } else {
    std::printf("snapshot %llu %llu\n", static_cast<unsigned long long>(m.snapshot_index()),
                static_cast<unsigned long long>(m.snapshot_term()));
  }
}

int StoreBackup(const std::vector<std::string>& args) {
  Command a("store backup",
            "Writes one backup file of DATADIR, also while a writer runs: the newest snapshot "
            "whose WAL record the copy holds, the retained WAL up to its last whole record, and "
            "node.key as it is on disk (a locked one keeps its DEKs wrapped: restoring needs "
            "the file and the unlock key). Written as FILE.tmp, fsynced and renamed. --redact "
            "leaves node.key out: a file to hand to someone debugging the cluster, which cannot "
            "be restored. A locked store's backup with keys needs the unlock key (to check that "
            "no rotation changed the DEKs during the copy).");
  a.Positional("DATADIR", "the node's data directory");
  a.Option("out", "FILE", "the backup file to write", kRequired);
  a.Switch("redact", "leave the key material (node.key) out");
  a.Option("unlock-key-file", "U", "a file holding the unlock key (else $SEALWAL_UNLOCK_KEY)");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  backup::BackupOptions o;
  o.data_dir = a.positional()[0];
  o.out = *a.Get("out");
  o.redact = a.Has("redact");
  absl::StatusOr<std::optional<pem::UnlockKey>> unlock =
      UnlockKeyFromArgs(a, env::JoinPath(o.data_dir, storage::kKeyFileName));
  if (!unlock.ok()) return Fail(kExitUsage, unlock.status().message());
  o.unlock_key = std::move(*unlock);
  o.progress = Progress("backup");
  absl::StatusOr<backup::BackupResult> r = backup::CreateBackup(o);
  if (!r.ok()) return StoreFail(r.status());
  const backuppb::Manifest& m = r->manifest;
  std::printf("backup %s\n", o.out.c_str());
  std::printf("store %s\n", o.data_dir.c_str());
  std::printf("kind %s\n", m.encrypted() ? "encrypted" : "plaintext");
  PrintSnapshot(m);
  std::printf("wal-end %s %llu\n", m.wal_last_segment().c_str(),
              static_cast<unsigned long long>(m.wal_end_offset()));
  std::printf("members %d\n", m.members_size());
  std::printf("bytes %llu\n", static_cast<unsigned long long>(r->bytes));
  std::printf("redacted %s\n", m.redacted() ? "true" : "false");
  std::printf("key-material %s\n", backup::KeyMaterialText(m).c_str());
  std::printf("attempts %d\n", r->attempts);
  if (m.key_material() == backuppb::KEY_MATERIAL_CLEAR) {
    std::fflush(stdout);
    std::fprintf(stderr,
                 "sealwal: warning: node.key is unlocked (autolock off): the backup holds its DEKs "
                 "in the clear; lock it (sealwal key lock --key-file %s/node.key) or use --redact\n",
                 o.data_dir.c_str());
  }
  return kExitOk;
}

int StoreRestore(const std::vector<std::string>& args) {
  Command a("store restore",
            "Restores a backup file into DATADIR, which must not exist or be empty: written as "
            "DATADIR.restore-tmp, every checksum checked, every payload decrypted and "
            "authenticated, then renamed; on any failure DATADIR is as before. The restored "
            "node.key asks for a DEK rotation, which the first writer carries out. A redacted "
            "backup of an encrypted store is refused.");
  a.Positional("FILE", "the backup file");
  a.Option("to", "DATADIR", "the data directory to create", kRequired);
  a.Option("unlock-key-file", "U", "a file holding the unlock key (else $SEALWAL_UNLOCK_KEY)");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  backup::RestoreOptions o;
  o.backup = a.positional()[0];
  o.data_dir = *a.Get("to");
  // The backup's node.key may name a KEK source instead: RestoreBackup
  // asks it, with these options.
  absl::StatusOr<std::optional<pem::UnlockKey>> unlock = UnlockKeyFromArgs(a, "");
  if (!unlock.ok()) return Fail(kExitUsage, unlock.status().message());
  o.unlock_key = std::move(*unlock);
  absl::StatusOr<kek::KekSourceOptions> ko =
      kek::KekSourceOptionsFromEnvironment(env::DefaultFileSystem());
  if (!ko.ok()) return Fail(kExitUsage, ko.status().message());
  o.kek_source_options = std::move(*ko);
  o.progress = Progress("restore");
  absl::StatusOr<backup::RestoreResult> r = backup::RestoreBackup(o);
  if (!r.ok()) return StoreFail(r.status());
  const backuppb::Manifest& m = r->manifest;
  std::printf("restored %s\n", o.data_dir.c_str());
  std::printf("from %s\n", o.backup.c_str());
  std::printf("kind %s\n", m.encrypted() ? "encrypted" : "plaintext");
  PrintSnapshot(m);
  if (r->last_index >= r->first_index) {
    std::printf("entries %llu..%llu\n", static_cast<unsigned long long>(r->first_index),
                static_cast<unsigned long long>(r->last_index));
  } else {
    std::printf("entries none\n");
  }
  std::printf("files %llu\n", static_cast<unsigned long long>(r->files));
  std::printf("bytes %llu\n", static_cast<unsigned long long>(r->bytes));
  if (m.encrypted()) std::printf("raft-dek-needs-rotation true\n");
  return kExitOk;
}

}  // namespace

// Called by StoreMain (tools/store_commands.cc) with the arguments after
// "backup" / "restore".
int StoreBackupMain(const std::vector<std::string>& args) { return StoreBackup(args); }
int StoreRestoreMain(const std::vector<std::string>& args) { return StoreRestore(args); }

// `store inspect FILE` when FILE is a backup: the manifest, every member's
// checksum checked, what key material it holds. Nothing is decrypted.
int InspectBackupFile(const std::string& path) {
  absl::StatusOr<backuppb::Manifest> m =
      backup::InspectBackup(env::DefaultFileSystem(), path, /*check_members=*/true);
  if (!m.ok()) return StoreFail(m.status());
  std::printf("backup %s\n", path.c_str());
  std::printf("version %u\n", m->version());
  std::printf("kind %s\n", m->encrypted() ? "encrypted" : "plaintext");
  std::printf("created %s\n",
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(m->created_unix()),
                               absl::UTCTimeZone())
                  .c_str());
  PrintSnapshot(*m);
  std::printf("wal-end %s %llu\n", m->wal_last_segment().c_str(),
              static_cast<unsigned long long>(m->wal_end_offset()));
  for (const backuppb::Member& mem : m->members()) {
    std::printf("member %s size %llu xxh3 %s\n", mem.name().c_str(),
                static_cast<unsigned long long>(mem.size()),
                absl::BytesToHexString(mem.xxh3_128()).c_str());
  }
  std::printf("checksums ok\n");
  std::printf("redacted %s\n", m->redacted() ? "true" : "false");
  std::printf("key-material %s\n", backup::KeyMaterialText(*m).c_str());
  return kExitOk;
}

}  // namespace sealwal::cli
