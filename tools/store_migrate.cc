// `sealwal store migrate DATADIR --encrypt|--decrypt` (docs/cli-store.md):
// a thin command over storage::Migrate (sealwal/storage/migrate.h), which
// holds every step and the crash protocol.
//
// Exit status, as the rest of `sealwal store`: 0 done (also when an
// interrupted migration was finished); 1 the data is bad (corruption, a
// .snap that does not decode or authenticate, no store); 2 usage, keys or
// a refusal (no or wrong unlock key, a DEK the key file lacks, no node.key
// for --decrypt, already of the target kind, a torn WAL tail, a writer
// holding the WAL). Errors are one line on stderr starting "sealwal: ".
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/migrate.h"
#include "sealwal/storage/raft_storage.h"
#include "tools/cli.h"

namespace sealwal::cli {
namespace {

}  // namespace

// Called by StoreMain (tools/store_commands.cc) with the arguments after
// "migrate".
int StoreMigrateMain(const std::vector<std::string>& args) {
  Command a("store migrate",
            "Moves a plaintext store (wal-v3/, snap-v3/, as etcd writes it) to an encrypted one "
            "(wal-v3-encrypted/, snap-v3-encrypted/, node.key made if absent, locked under the "
            "unlock key when one is given), or back. The new directories are built as <new>.tmp "
            "and committed through DATADIR/migrate.journal, so a crash leaves exactly one store "
            "and a re-run (or a writer's open) finishes the move (docs/cli-store.md).");
  a.Positional("DATADIR", "the node's data directory");
  a.Switch("encrypt", "plaintext to encrypted");
  a.Switch("decrypt", "encrypted to plaintext");
  a.Option("unlock-key-file", "U", "a file holding the unlock key (else $SEALWAL_UNLOCK_KEY)");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  if (a.Has("encrypt") == a.Has("decrypt")) {
    return Fail(kExitUsage, "give exactly one of --encrypt and --decrypt");
  }
  storage::MigrateOptions o;
  o.data_dir = a.positional()[0];
  o.direction = a.Has("encrypt") ? storage::MigrateDirection::kEncrypt
                                  : storage::MigrateDirection::kDecrypt;
  absl::StatusOr<std::optional<pem::UnlockKey>> unlock =
      UnlockKeyFromArgs(a, env::JoinPath(o.data_dir, storage::kKeyFileName));
  if (!unlock.ok()) return Fail(kExitUsage, unlock.status().message());
  o.unlock_key = std::move(*unlock);
  // Tests only, as for `store gen`: a smaller reservation block.
  if (const char* b = std::getenv("SEALWAL_RESERVATION_BLOCK"); b != nullptr && *b != '\0') {
    uint64_t block = 0;
    if (!absl::SimpleAtoi(b, &block) || block == 0 ||
        block > encryption::kDefaultReservationBlock) {
      return Fail(kExitUsage, absl::StrCat("$SEALWAL_RESERVATION_BLOCK must be 1..",
                                           encryption::kDefaultReservationBlock));
    }
    o.reservation_block = block;
  }
  const bool locked_new_key = o.unlock_key.has_value();
  absl::StatusOr<storage::MigrateResult> r = storage::Migrate(o);
  if (!r.ok()) return StoreFail(r.status());
  const bool encrypt = o.direction == storage::MigrateDirection::kEncrypt;
  std::printf("store %s\n", o.data_dir.c_str());
  if (r->resumed) std::printf("resumed true\n");
  if (!r->already) {
    std::printf("from %s\n", encrypt ? "plaintext" : "encrypted");
    if (encrypt) {
      std::printf("key-file %s\n", r->created_key_file
                                       ? (locked_new_key ? "created locked" : "created unlocked")
                                       : "existing");
    }
    std::printf("segments %zu\n", r->segments.size());
    std::printf("entry-records %llu\n", static_cast<unsigned long long>(r->entries));
    std::printf("snapshots %zu\n", r->snapshots.size());
    for (const std::string& s : r->skipped) std::printf("skipped %s\n", s.c_str());
  }
  std::printf("kind %s\n", encrypt ? "encrypted" : "plaintext");
  if (encrypt && r->created_key_file && !locked_new_key) {
    std::fflush(stdout);
    std::fprintf(stderr, "sealwal: warning: autolock is off: the DEKs in node.key are stored "
                         "unencrypted (run `sealwal key lock --key-file DATADIR/node.key`)\n");
  }
  return kExitOk;
}

}  // namespace sealwal::cli
