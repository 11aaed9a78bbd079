// `sealwal demo`: the whole product on a throw-away directory, explained by
// its own output: an autolocked encrypted store, a simulated Raft node that
// appends through the storage facade with periodic snapshots and a DEK
// rotation mid-run, the same workload on a plaintext store for comparison,
// a child writer killed with SIGKILL and every entry it reported synced
// verified after recovery, and a closing table. The pieces are in
// tools/demo.h (demo_node.cc, demo_crash.cc).
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/raft_storage.h"
#include "tools/cli.h"
#include "tools/demo.h"

namespace sealwal::cli {
namespace {

constexpr char kDemoDescription[] =
    "Shows sealwal end to end in a new temp dir ($TMPDIR or /tmp): an encrypted store locked "
    "under a new unlock key; a simulated Raft node appending N entries of S bytes (default "
    "100000 x 1024, B = 100 per durable batch) through the storage facade, with snapshots, GC "
    "and a DEK rotation mid-run; the same workload on a plaintext store; a child writer killed "
    "with SIGKILL and every entry it reported synced verified after recovery; a summary. "
    "Progress goes to stderr. Exit 0 when every check passed.";

struct DemoConfig {
  uint64_t entries = 100000;
  uint64_t size = 1024;
  uint64_t batch = 100;
  bool keep = false;
  uint64_t seed = 7;
};

void Section(const std::string& title) { std::printf("\n%s\n", title.c_str()); }

double MBps(uint64_t bytes, absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  return s > 0 ? bytes / s / 1e6 : 0;
}

long PeakRssKib(int who) {
  struct rusage ru {};
  return ::getrusage(who, &ru) == 0 ? ru.ru_maxrss : 0;
}

absl::Status WriteSecretFile(const std::string& path, absl::string_view text) {
  env::FileSystem* fs = env::DefaultFileSystem();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::WritableFile> f, fs->NewWritableFile(path));
  SEALWAL_RETURN_IF_ERROR(f->Append(text));
  SEALWAL_RETURN_IF_ERROR(f->Append("\n"));
  SEALWAL_RETURN_IF_ERROR(f->Sync());
  return f->Close();
}

// The demo itself; `dir` is the temp dir it owns.
absl::Status RunDemo(const DemoConfig& c, const std::string& dir) {
  const absl::Time t0 = absl::Now();
  const std::string node_dir = env::JoinPath(dir, "node");
  const std::string plain_dir = env::JoinPath(dir, "plain");
  // Segments small enough that cuts, GC and the rotation's release show.
  const uint64_t segment_size =
      std::clamp<uint64_t>(c.entries * c.size / 6, uint64_t{1} << 20, uint64_t{64} << 20) &
      ~((uint64_t{1} << 20) - 1);
  const uint64_t snapshot_every = std::max<uint64_t>(c.entries / 4, c.batch);
  const uint64_t rotate_at = c.entries * 2 / 5;

  std::printf("sealwal demo: an encrypted, etcd-compatible Raft WAL + snapshot store, end to "
              "end.\n"
              "A simulated Raft node writes through storage::RaftStorage "
              "(sealwal/storage/raft_storage.h),\n"
              "the one API a consensus implementation calls. Everything happens in %s.\n",
              dir.c_str());

  // ---- 1. The store.
  Section("1. Create an encrypted store whose keys are locked under an unlock key");
  SEALWAL_ASSIGN_OR_RETURN(pem::UnlockKey unlock, pem::UnlockKey::Generate());
  // Kept in memory, and in this process's environment so that the child
  // writer of step 4 gets it the way an operator's tools do.
  ::setenv(pem::kUnlockKeyEnvVar, std::string(unlock.text()).c_str(), 1);
  encryption::KeyId first_key;
  {
    storage::StorageOptions so;
    so.data_dir = node_dir;
    so.unlock_key = unlock.Clone();
    so.create_if_missing = true;
    so.metadata = "sealwal demo";
    so.segment_size = segment_size;
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<storage::RaftStorage> st,
                             storage::RaftStorage::Open(std::move(so)));
    first_key = *st->write_key();
    SEALWAL_RETURN_IF_ERROR(st->Close());
  }
  const absl::string_view text = unlock.text();
  std::printf("    data dir     %s\n", node_dir.c_str());
  std::printf("    unlock key   %.*s... (32 random bytes, shown shortened; an operator keeps it "
              "off the node;\n"
              "                 here it stays in memory and in $%s for the child writer)\n",
              static_cast<int>(pem::kUnlockKeyPrefix.size() + 4), text.data(),
              pem::kUnlockKeyEnvVar);
  std::printf("    node.key     raft-dek %s (AES-256-GCM data key), wrapped under a KEK derived "
              "from the unlock key\n",
              demo::KeyText(first_key).c_str());
  std::printf("    layout       wal-v3-encrypted/ (etcd's WAL format; entry payloads sealed), "
              "snap-v3-encrypted/, node.key\n");
  std::printf("    segments     %s each (small, so that cuts, GC and the rotation show)\n",
              demo::Bytes(segment_size).c_str());

  // ---- 2. The node.
  Section(absl::StrCat("2. A Raft node appends ", c.entries, " entries of ", c.size,
                       " bytes, ", c.batch, " per batch"));
  std::printf("    every batch: SaveEntries(HardState, entries) returns once fdatasync'd; only "
              "then is it acknowledged\n"
              "    every %llu entries: SaveSnapshot(state machine), then GC(keep %zu newest)\n"
              "    at index %llu: a DEK rotation is requested; the storage carries it out inside "
              "its own calls\n",
              static_cast<unsigned long long>(snapshot_every), demo::kDemoKeepSnapshots,
              static_cast<unsigned long long>(rotate_at));
  demo::NodeRunOptions no;
  no.data_dir = node_dir;
  no.unlock_key = &unlock;
  no.entries = c.entries;
  no.size = c.size;
  no.batch = c.batch;
  no.seed = c.seed;
  no.segment_size = segment_size;
  no.snapshot_every = snapshot_every;
  no.rotate_at = rotate_at;
  no.narrate = true;
  no.label = "encrypted node";
  SEALWAL_ASSIGN_OR_RETURN(demo::NodeRunResult enc, demo::RunNode(no));
  if (!enc.rotation_completed || !enc.new_key.has_value()) {
    return absl::InternalError("the DEK rotation did not complete during the run");
  }
  std::printf("    done: entries %llu..%llu, %llu durable batches, %d snapshots, %.2f s "
              "(%.2f s in SaveEntries)\n",
              static_cast<unsigned long long>(enc.first), static_cast<unsigned long long>(enc.last),
              static_cast<unsigned long long>(enc.batches), enc.snapshots,
              absl::ToDoubleSeconds(enc.wall), absl::ToDoubleSeconds(enc.append_time));

  // ---- 3. The comparison.
  Section("3. The same workload on a plaintext store (same process, same batches and snapshots)");
  {
    storage::StorageOptions so;
    so.data_dir = plain_dir;
    so.create_if_missing = true;
    so.encrypted = false;
    so.metadata = "sealwal demo";
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<storage::RaftStorage> st,
                             storage::RaftStorage::Open(std::move(so)));
    SEALWAL_RETURN_IF_ERROR(st->Close());
  }
  demo::NodeRunOptions po = no;
  po.data_dir = plain_dir;
  po.unlock_key = nullptr;
  po.rotate_at = 0;
  po.narrate = false;
  po.label = "plaintext node";
  SEALWAL_ASSIGN_OR_RETURN(demo::NodeRunResult plain, demo::RunNode(po));
  std::printf("    done: %llu entries, %.2f s (%.2f s in SaveEntries); store removed\n",
              static_cast<unsigned long long>(plain.last - plain.first + 1),
              absl::ToDoubleSeconds(plain.wall), absl::ToDoubleSeconds(plain.append_time));
  std::error_code ec;
  std::filesystem::remove_all(plain_dir, ec);

  // ---- 4. The crash.
  Section("4. Crash: a child writer is killed with SIGKILL mid-run; the store is reopened and "
          "checked");
  std::printf("    the child is `sealwal store gen` on the same store: it continues after index "
              "%llu and prints\n"
              "    `synced N` on a pipe after each durable batch; the demo reads them, then kills "
              "it\n",
              static_cast<unsigned long long>(enc.last));
  demo::CrashOptions co;
  co.data_dir = node_dir;
  co.unlock_key = &unlock;
  co.size = c.size;
  co.batch = c.batch;
  co.seed = c.seed;
  co.segment_size = segment_size;
  co.snapshot_every = snapshot_every;
  co.kill_after = std::max<uint64_t>(c.entries / 5, c.batch);
  demo::Progress("child writer running");
  SEALWAL_ASSIGN_OR_RETURN(demo::CrashResult crash, demo::CrashAndRecover(co));
  std::printf("    reopened: Open + Bootstrap; torn tail %s\n",
              crash.repaired_torn_tail
                  ? "found and repaired (the kill landed inside a write)"
                  : "none (the kill landed between two writes; a power cut could leave one)");
  std::printf("    recovered: snapshot %llu + log %llu..%llu; the child reported up to %llu synced\n",
              static_cast<unsigned long long>(crash.snapshot_index),
              static_cast<unsigned long long>(crash.log_first),
              static_cast<unsigned long long>(crash.log_last),
              static_cast<unsigned long long>(crash.synced_reported));
  std::printf("    verified: snapshot data and all %llu entries in the log, byte for byte "
              "(data_gen seed %llu)\n"
              "              -> every entry the child reported synced is there (%.2f s)\n",
              static_cast<unsigned long long>(crash.entries_verified),
              static_cast<unsigned long long>(c.seed), absl::ToDoubleSeconds(crash.recover_time));
  if (crash.log_last > crash.synced_reported) {
    std::printf("              (%llu more entries were written after the last line the child "
                "got out)\n",
                static_cast<unsigned long long>(crash.log_last - crash.synced_reported));
  }

  // ---- 5. The table.
  Section("5. Summary");
  const storage::StoreInventory& inv = crash.inventory;
  env::FileSystem* fs = env::DefaultFileSystem();
  auto size_of = [&](const std::string& rel) -> uint64_t {
    absl::StatusOr<uint64_t> n = fs->GetFileSize(env::JoinPath(node_dir, rel));
    return n.ok() ? *n : 0;
  };
  uint64_t seg_bytes = 0, snap_bytes = 0;
  for (const storage::RetainedFile& f : inv.segments) seg_bytes += size_of(f.name);
  for (const storage::RetainedFile& f : inv.snapshots) snap_bytes += size_of(f.name);
  const uint64_t child_entries = crash.synced_reported + 1 - crash.child_first;
  const double enc_mbps = MBps(enc.entry_bytes, enc.append_time);
  const double plain_mbps = MBps(plain.entry_bytes, plain.append_time);
  const auto row = [](const char* name, const std::string& value) {
    std::printf("    %-25s %s\n", name, value.c_str());
  };
  row("entries", absl::StrCat(c.entries, " by the node + ", child_entries,
                              " acknowledged by the child before SIGKILL (",
                              enc.last + child_entries, " in all)"));
  row("entry bytes", absl::StrCat(demo::Bytes(enc.entry_bytes), " by the node (", c.size,
                                  " B each, ", c.batch, " per fdatasync'd batch)"));
  row("append, plaintext",
      absl::StrFormat("%.0f MB/s  %.0f entries/s  (%.2f s in SaveEntries)", plain_mbps,
                      (plain.last - plain.first + 1) / absl::ToDoubleSeconds(plain.append_time),
                      absl::ToDoubleSeconds(plain.append_time)));
  row("append, encrypted",
      absl::StrFormat("%.0f MB/s  %.0f entries/s  (%.2f s in SaveEntries, the rotation's steps "
                      "included; %.2fx plaintext)",
                      enc_mbps, (enc.last - enc.first + 1) / absl::ToDoubleSeconds(enc.append_time),
                      absl::ToDoubleSeconds(enc.append_time),
                      plain_mbps > 0 ? enc_mbps / plain_mbps : 0.0));
  row("files on disk",
      absl::StrCat(inv.segments.size(), " segments (", demo::Bytes(seg_bytes), "), ",
                   inv.snapshots.size(), " snapshots (", demo::Bytes(snap_bytes), "), node.key (",
                   demo::Bytes(size_of(std::string(storage::kKeyFileName))), ")"));
  for (const storage::RetainedFile& f : inv.segments) {
    std::printf("      %-58s %9s  first index %7llu  key %s\n", f.name.c_str(),
                demo::Bytes(size_of(f.name)).c_str(), static_cast<unsigned long long>(f.index),
                demo::KeyText(f.key).c_str());
  }
  for (const storage::RetainedFile& f : inv.snapshots) {
    std::printf("      %-58s %9s  index %7llu        key %s\n", f.name.c_str(),
                demo::Bytes(size_of(f.name)).c_str(), static_cast<unsigned long long>(f.index),
                demo::KeyText(f.key).c_str());
  }
  row("peak RSS", absl::StrFormat("demo %s, child writer %s",
                                  demo::Bytes(uint64_t(PeakRssKib(RUSAGE_SELF)) * 1024),
                                  demo::Bytes(uint64_t(crash.child_max_rss_kib) * 1024)));
  std::set<std::string> needed;
  bool old_needed = false;
  for (const auto* files : {&inv.segments, &inv.snapshots}) {
    for (const storage::RetainedFile& f : *files) {
      needed.insert(demo::KeyText(f.key));
      old_needed = old_needed || f.key == first_key;
    }
  }
  const bool old_in_file = inv.current_key == first_key || inv.pending_key == first_key;
  row("keys in node.key",
      absl::StrCat("raft-dek ", inv.current_key ? demo::KeyText(*inv.current_key) : "none",
                   ", raft-dek-pending ",
                   inv.pending_key ? demo::KeyText(*inv.pending_key) : "none"));
  row("keys retained files need", absl::StrJoin(needed, ", "));
  row("old key", absl::StrCat(demo::KeyText(first_key), old_in_file || old_needed
                                                          ? " STILL PRESENT"
                                                          : ": in neither (rotated away)"));
  row("wall time", absl::StrFormat("%.1f s", absl::ToDoubleSeconds(absl::Now() - t0)));
  if (old_in_file || old_needed || !inv.all_keys_present) {
    return absl::InternalError("after the rotation the old key is still held or needed, or a "
                               "needed key is missing");
  }
  return absl::OkStatus();
}

}  // namespace

int DemoMain(const std::vector<std::string>& args) {
  Command a("demo", kDemoDescription);
  a.U64("entries", "entries, 10 batches..10000000 (default 100000)");
  a.U64("size", "data bytes per entry, 1..1048576 (default 1024)");
  a.U64("batch", "entries per durable batch, 1..10000 (default 100)");
  a.Switch("keep", "keep the files, and the unlock key in DIR/unlock-key");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  DemoConfig c;
  absl::StatusOr<uint64_t> entries = a.GetU64("entries", c.entries);
  absl::StatusOr<uint64_t> size = a.GetU64("size", c.size);
  absl::StatusOr<uint64_t> batch = a.GetU64("batch", c.batch);
  for (const auto* v : {&entries, &size, &batch}) {
    if (!v->ok()) return Fail(kExitUsage, v->status().message());
  }
  c.entries = *entries;
  c.size = *size;
  c.batch = *batch;
  c.keep = a.Has("keep");
  if (c.batch < 1 || c.batch > 10000) return Fail(kExitUsage, "--batch must be 1..10000");
  if (c.size < 1 || c.size > (1 << 20)) return Fail(kExitUsage, "--size must be 1..1048576");
  if (c.entries < 10 * c.batch || c.entries > 10'000'000) {
    return Fail(kExitUsage, "--entries must be at least 10 batches and at most 10000000");
  }

  const char* base = std::getenv("TMPDIR");
  std::string dir = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp",
                                 "/sealwal-demo-XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) {
    return Fail(kExitUsage, absl::StrCat("mkdtemp ", dir, ": ", std::strerror(errno)));
  }
  if (absl::Status s = RunDemo(c, dir); !s.ok()) {
    std::fflush(stdout);
    return Fail(ExitCodeFor(s), absl::StrCat("demo: ", s.message(), " (files kept in ", dir, ")"));
  }
  std::printf("\n");
  if (c.keep) {
    // Only so that the kept store can be explored; a real unlock key is
    // kept off the node.
    const std::string key_path = env::JoinPath(dir, "unlock-key");
    if (const char* k = std::getenv(pem::kUnlockKeyEnvVar); k != nullptr) {
      if (absl::Status s = WriteSecretFile(key_path, k); !s.ok()) {
        return Fail(kExitUsage, absl::StrCat("demo: ", s.message()));
      }
    }
    std::printf("files kept in %s (the unlock key in %s, for this demo only). Explore:\n"
                "  sealwal store inspect %s/node --unlock-key-file %s\n"
                "  sealwal key inspect --key-file %s/node/node.key --unlock-key-file %s\n",
                dir.c_str(), key_path.c_str(), dir.c_str(), key_path.c_str(), dir.c_str(),
                key_path.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::printf("%s %s (run `sealwal demo --keep` to keep the files)\n",
                ec ? "could not remove" : "removed", dir.c_str());
  }
  std::printf("demo ok\n");
  return kExitOk;
}

}  // namespace sealwal::cli
