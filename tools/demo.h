// tools/demo.h: the pieces of `sealwal demo` (tools/demo.cc drives them):
// a simulated Raft node over the storage facade (demo_node.cc) and a child
// writer killed with SIGKILL, then recovered and verified (demo_crash.cc).
//
// Every entry and snapshot is written as `sealwal store gen` writes them
// (entry i: data_gen(seed, i, 1, size), term 1; snapshot I:
// data_gen(seed, I, 0, kDemoSnapshotSize)), so the demo's own writes and
// the child's (`store gen` itself) verify with one seed.
#ifndef SEALWAL_TOOLS_DEMO_H_
#define SEALWAL_TOOLS_DEMO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/raft_storage.h"

namespace sealwal::cli::demo {

// As `store gen` (tools/store_commands.cc): the snapshot size and how many
// snapshots GC keeps.
inline constexpr size_t kDemoSnapshotSize = 4096;
inline constexpr size_t kDemoKeepSnapshots = 2;

// "0x1234abcd".
std::string KeyText(encryption::KeyId id);
// "12.3 MiB".
std::string Bytes(uint64_t n);
// Prints a progress line on stderr (stdout flushed first, so that the two
// interleave in order on a terminal).
void Progress(const std::string& line);

struct NodeRunOptions {
  std::string data_dir;
  // The key file's unlock key (nullptr: a plaintext store). Borrowed.
  const pem::UnlockKey* unlock_key = nullptr;
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t batch = 0;
  uint64_t seed = 0;
  uint64_t segment_size = 0;
  uint64_t snapshot_every = 0;
  // Ask for a DEK rotation once this index is durable (0: never).
  uint64_t rotate_at = 0;
  // Print snapshots and rotation steps as they happen.
  bool narrate = false;
  std::string label;  // for progress lines
};

struct NodeRunResult {
  uint64_t first = 0;         // first index appended
  uint64_t last = 0;          // last index appended
  uint64_t entry_bytes = 0;   // entry data appended
  uint64_t batches = 0;
  absl::Duration append_time;  // spent inside SaveEntries (the durable append)
  absl::Duration wall;
  int snapshots = 0;
  // The rotation, when one ran: the old and the new raft DEK.
  std::optional<encryption::KeyId> old_key;
  std::optional<encryption::KeyId> new_key;
  bool rotation_completed = false;
};

// Opens an existing store, bootstraps it and appends `entries` entries
// after its last one as a Raft node does: each batch durable (SaveEntries)
// before it counts as acknowledged, a snapshot every `snapshot_every`
// entries and whenever the storage asks (the rotation's), GC after each.
absl::StatusOr<NodeRunResult> RunNode(const NodeRunOptions& o);

struct CrashOptions {
  std::string data_dir;  // an existing encrypted store
  const pem::UnlockKey* unlock_key = nullptr;  // borrowed
  uint64_t size = 0;
  uint64_t batch = 0;
  uint64_t seed = 0;
  uint64_t segment_size = 0;
  uint64_t snapshot_every = 0;
  // SIGKILL the child once it has reported this many more entries synced.
  uint64_t kill_after = 0;
};

struct CrashResult {
  uint64_t child_first = 0;       // first index the child appended
  uint64_t synced_reported = 0;   // the last `synced N` line read from the child
  uint64_t synced_lines = 0;
  uint64_t child_snapshots = 0;   // `snapshot N` lines
  long child_max_rss_kib = 0;     // getrusage of the reaped child
  bool repaired_torn_tail = false;
  uint64_t snapshot_index = 0;    // the snapshot recovery started from
  uint64_t log_first = 0;
  uint64_t log_last = 0;
  uint64_t entries_verified = 0;
  absl::Duration recover_time;
  storage::StoreInventory inventory;  // the store after recovery
};

// Runs `<this binary> store gen` on the store (the unlock key in its
// environment), kills it with SIGKILL mid-run, reopens the store and checks
// every entry it reported synced byte for byte.
absl::StatusOr<CrashResult> CrashAndRecover(const CrashOptions& o);

}  // namespace sealwal::cli::demo

#endif  // SEALWAL_TOOLS_DEMO_H_
