// The simulated Raft node of `sealwal demo` (tools/demo.h): the calls a
// consensus implementation makes on storage::RaftStorage, in its order,
// with snapshots and the DEK rotation narrated as they happen.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/file_system.h"
#include "sealwal/keyrotator/key_rotator.h"
#include "sealwal/storage/raft_storage.h"
#include "tools/cli.h"
#include "tools/demo.h"

namespace sealwal::cli::demo {

std::string KeyText(encryption::KeyId id) { return absl::StrFormat("0x%08x", id.value()); }

std::string Bytes(uint64_t n) {
  if (n < 1024) return absl::StrCat(n, " B");
  if (n < 1024 * 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  if (n < uint64_t{1024} * 1024 * 1024) return absl::StrFormat("%.1f MiB", n / 1048576.0);
  return absl::StrFormat("%.2f GiB", n / 1073741824.0);
}

void Progress(const std::string& line) {
  std::fflush(stdout);
  std::fprintf(stderr, "  .. %s\n", line.c_str());
}

namespace {

// The store's WAL segments and snapshots, relative to DATADIR: the release
// step is shown as the names that disappeared.
std::set<std::string> StoreFiles(const storage::RaftStorage& s, const std::string& data_dir) {
  std::set<std::string> out;
  env::FileSystem* fs = env::DefaultFileSystem();
  for (const std::string& dir : {s.wal_dir(), s.snap_dir()}) {
    absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
    if (!names.ok()) continue;
    const std::string rel = dir.substr(std::min(dir.size(), data_dir.size() + 1));
    for (const std::string& n : *names) {
      if (absl::EndsWith(n, ".wal") || absl::EndsWith(n, ".snap")) out.insert(rel + "/" + n);
    }
  }
  return out;
}

std::string Basenames(const std::vector<std::string>& paths) {
  std::vector<std::string> b;
  for (const std::string& p : paths) b.push_back(p.substr(p.rfind('/') + 1));
  return absl::StrJoin(b, ", ");
}

}  // namespace

absl::StatusOr<NodeRunResult> RunNode(const NodeRunOptions& o) {
  NodeRunResult r;
  const absl::Time t0 = absl::Now();

  // What the storage asks of the node (request_snapshot) is only recorded
  // here: the callback runs inside a storage call and must not call back.
  std::optional<uint64_t> asked;
  uint64_t saving_hi = 0;  // the batch SaveEntries is writing (for the narration)
  std::set<std::string> before_release;
  storage::RaftStorage* sp = nullptr;
  int step_no = 0;

  storage::StorageOptions so;
  so.data_dir = o.data_dir;
  if (o.unlock_key != nullptr) so.unlock_key = o.unlock_key->Clone();
  so.segment_size = o.segment_size;
  so.request_snapshot = [&asked](uint64_t min_index) { asked = min_index; };
  so.on_rotation_step = [&](const keyrotator::Step& step) {
    if (!o.narrate) return;
    using keyrotator::StepKind;
    ++step_no;
    std::string what;
    switch (step.kind) {
      case StepKind::kCreatePending:
        what = "pending DEK persisted: node.key now holds raft-dek-pending (one atomic rewrite)";
        break;
      case StepKind::kSwitchWriteKey:
        r.new_key = step.key;
        what = absl::StrCat("WAL switched to the new key ", KeyText(step.key), " at index ",
                            saving_hi + 1, ": a new segment sealed under it; every entry from ",
                            saving_hi + 1, " on uses it");
        break;
      case StepKind::kRequestSnapshot:
        what = absl::StrCat("snapshot at >= ", step.index,
                            " requested from the node (request_snapshot callback)");
        break;
      case StepKind::kReleaseOldFiles: {
        std::vector<std::string> gone;
        const std::set<std::string> now = StoreFiles(*sp, o.data_dir);
        for (const std::string& f : before_release) {
          if (!now.contains(f)) gone.push_back(f);
        }
        what = absl::StrCat("old files released: everything below snapshot ", step.index,
                            " that needs ", KeyText(step.key), " deleted (",
                            gone.empty() ? std::string("nothing left to delete")
                                         : Basenames(gone),
                            ")");
        break;
      }
      case StepKind::kPromotePending:
        what = absl::StrCat("pending promoted: ", KeyText(step.key),
                            " is raft-dek; the old DEK is gone from node.key");
        r.rotation_completed = true;
        break;
      case StepKind::kForgetKey:
        what = absl::StrCat("old key ", KeyText(step.key), " dropped from memory");
        break;
      case StepKind::kNone:
        return;
    }
    std::printf("    rotation %d %-18s %s\n", step_no, keyrotator::StepKindName(step.kind),
                what.c_str());
  };

  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<storage::RaftStorage> st,
                           storage::RaftStorage::Open(std::move(so)));
  sp = st.get();
  // Bootstrap before any save: the snapshot and the log a restarted node
  // would hand to its Raft library. This run only appends after it.
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState boot, st->Bootstrap());
  const uint64_t start = boot.log->LastIndex();
  boot.log.reset();
  if (st->encrypted()) r.old_key = st->write_key();

  // `for_rotation`: the least index the rotation asked for (0: periodic).
  auto snapshot = [&](uint64_t index, uint64_t for_rotation) -> absl::Status {
    raftpb::SnapshotMetadata m;
    m.set_index(index);
    m.set_term(1);
    m.mutable_conf_state()->add_voters(1);
    before_release = StoreFiles(*st, o.data_dir);
    if (o.narrate && for_rotation > 0) {
      // Said before the call: the rotation's last steps run inside it.
      std::printf("    index %7llu  the state machine has reached %llu: SaveSnapshot(%llu) under %s\n",
                  static_cast<unsigned long long>(index),
                  static_cast<unsigned long long>(for_rotation),
                  static_cast<unsigned long long>(index), KeyText(*st->write_key()).c_str());
    }
    // The snapshot first (durable .snap, then its WAL record), then GC: a
    // crash in between keeps both the new snapshot and the older files.
    SEALWAL_RETURN_IF_ERROR(st->SaveSnapshot(m, DataGen(o.seed, index, 0, kDemoSnapshotSize)));
    const size_t files_before_gc = StoreFiles(*st, o.data_dir).size();
    SEALWAL_RETURN_IF_ERROR(st->GC(kDemoKeepSnapshots));
    ++r.snapshots;
    if (o.narrate) {
      const std::set<std::string> after = StoreFiles(*st, o.data_dir);
      std::printf("    index %7llu  snapshot saved (%s)%s; GC keeps the %zu newest: %zu file(s) "
                  "deleted\n",
                  static_cast<unsigned long long>(index),
                  for_rotation > 0 ? absl::StrCat("for the rotation, >= ", for_rotation).c_str()
                                   : "periodic",
                  st->encrypted() ? absl::StrCat(" under ", KeyText(*st->write_key())).c_str()
                                  : "",
                  kDemoKeepSnapshots, files_before_gc - after.size());
    }
    return absl::OkStatus();
  };

  r.first = start + 1;
  const uint64_t end = start + o.entries;
  uint64_t next_progress = start + o.entries / 4;
  std::vector<raftpb::Entry> ents;
  bool rotation_asked = false;
  for (uint64_t next = start + 1; next <= end;) {
    const uint64_t hi = std::min(end, next + o.batch - 1);
    const raftpb::HardState hs = FillGenBatch(o.seed, next, hi, o.size, &ents);
    saving_hi = hi;
    const absl::Time a0 = absl::Now();
    // Durable on return (fdatasync): only now may the node acknowledge the
    // entries to a client or vote on them.
    SEALWAL_RETURN_IF_ERROR(st->SaveEntries(hs, ents));
    r.append_time += absl::Now() - a0;
    r.entry_bytes += (hi - next + 1) * o.size;
    ++r.batches;
    const uint64_t prev = next - 1;
    bool snapped = false;
    if (o.snapshot_every > 0 && hi / o.snapshot_every > prev / o.snapshot_every) {
      SEALWAL_RETURN_IF_ERROR(snapshot(hi, 0));
      snapped = true;
    }
    // The rotation's snapshot: taken once the state machine has applied
    // up to the index asked for (here: the end of the next batch).
    if (asked.has_value() && hi >= *asked) {
      const uint64_t min_index = *asked;
      asked.reset();
      if (!snapped) {
        SEALWAL_RETURN_IF_ERROR(snapshot(hi, min_index));
      }
      if (o.narrate && st->encrypted()) {
        // Outside any storage call: ask the facade what the key file and
        // the retained files hold now.
        SEALWAL_ASSIGN_OR_RETURN(storage::StoreInventory inv, st->Inventory());
        std::set<std::string> needed;
        for (const auto* files : {&inv.segments, &inv.snapshots}) {
          for (const storage::RetainedFile& f : *files) needed.insert(KeyText(f.key));
        }
        std::printf("    check          node.key: raft-dek %s, pending %s; retained files "
                    "need: %s\n",
                    inv.current_key.has_value() ? KeyText(*inv.current_key).c_str() : "none",
                    inv.pending_key.has_value() ? KeyText(*inv.pending_key).c_str() : "none",
                    absl::StrJoin(needed, ", ").c_str());
      }
    }
    if (o.rotate_at > 0 && !rotation_asked && hi >= o.rotate_at && st->encrypted()) {
      rotation_asked = true;
      if (o.narrate) {
        std::printf("    index %7llu  DEK rotation requested (RequestRotation(); an operator "
                    "runs `sealwal store rotate`)\n",
                    static_cast<unsigned long long>(hi));
      }
      // Carried out inside the next SaveEntries, one durable step at a time.
      st->RequestRotation();
    }
    if (hi >= next_progress && hi < end) {
      Progress(absl::StrCat(o.label, ": ", hi - start, "/", o.entries, " entries durable"));
      next_progress += o.entries / 4;
    }
    next = hi + 1;
  }
  r.last = end;
  SEALWAL_RETURN_IF_ERROR(st->Close());
  r.wall = absl::Now() - t0;
  return r;
}

}  // namespace sealwal::cli::demo
