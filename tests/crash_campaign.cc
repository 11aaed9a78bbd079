// sealwal_crash_campaign: the reliability campaign of docs/reliability.md
// (scripts/crash-campaign.sh runs it). Five parts, each a loop of trials
// that inject one fault into a Raft-like workload, recover, and check:
//
//   sigkill  the real `sealwal store gen` (encrypted or plaintext, synchronous
//            or --pipeline, small segments, snapshots and DEK rotations on),
//            SIGKILLed at a random moment (seeded); `store verify
//            --expect-seed` must pass and reach every index printed as
//            `synced`, and another `store gen` (with a rotation) and verify
//            must pass on the recovered store.
//   power    the same workload in this process over FaultInjectionFileSystem
//            on a mem FS: a crash at mutating step k (k = 0, 1, ...) followed
//            by a process crash (page cache kept) and a power loss (unsynced
//            data and directory entries dropped), and, when step k is an
//            Append, a power loss that keeps the torn write's prefix and one
//            that keeps it with its last sector zeroed.
//   eio      the (k+1)-th fsync fails once (transient EIO): the error must
//            reach the caller, the next save must fail too (sticky), no fsync
//            may be retried, and after a power loss nothing acknowledged is
//            missing.
//   enospc   the device fills after b bytes, for b across the workload's
//            whole write volume: the same checks.
//   keyfile  a crash (process or power loss) at every mutating step (up to
//            --steps) of `key rotate-dek`, `rotate-kek`, `lock`, `unlock` (the
//            KeyReadWriter calls the CLI makes) and of a whole DEK rotation
//            by the facade's rotator: the store opens with the old or the
//            new unlock key, holds every key its files need, reads every
//            entry and keeps rotating.
//
// After every recovery the store must accept writes and a DEK rotation
// (encrypted stores: a promotion must happen). A failure prints one line
// "sealwal: crash-campaign: ..." with what is needed to reproduce it; the
// summary table ends the output and the exit status is 1 on any failure,
// 2 on a usage error.
//
// How a kill is classified (the table's append/cut/snapshot/rotation/gc
// columns) is in docs/reliability.md: in process by the operation the
// crash stopped (FaultInjectionFileSystem::crash_point) and the facade
// call under way; for SIGKILL by what the store holds right after it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/raft_storage.h"
#include "testing/fault_injection_file_system.h"
#include "testing/wal_entries.h"

namespace sealwal::campaign {
namespace {

using env::FaultInjectionFileSystem;
using storage::RaftStorage;
using TornWrite = FaultInjectionFileSystem::TornWrite;

// ---------------------------------------------------------------------------
// The tally and the summary table.

const char* const kDuring[] = {"append", "cut", "snapshot", "rotation", "gc", "other"};

struct Tally {
  std::string part;
  int64_t trials = 0;
  std::map<std::string, int64_t> during;  // kDuring -> faults that hit it
  int64_t entries_verified = 0;
  int64_t failures = 0;
  std::map<std::string, int64_t> notes;  // printed under the table
};

int g_failure_lines = 0;
bool g_verbose = false;  // --verbose: one stderr line per in-process trial

void Failure(Tally* t, const std::string& what) {
  ++t->failures;
  if (++g_failure_lines <= 50) {
    std::fprintf(stderr, "sealwal: crash-campaign: %s: %s\n", t->part.c_str(), what.c_str());
  }
}

void Progress(const Tally& t, int64_t done, int64_t total) {
  std::fprintf(stderr, "crash-campaign: %s %lld/%lld (failures %lld)\n", t.part.c_str(),
               static_cast<long long>(done), static_cast<long long>(total),
               static_cast<long long>(t.failures));
}

void PrintTable(const std::vector<Tally>& tallies) {
  std::printf("%-9s %8s %8s %8s %9s %9s %8s %8s %17s %9s\n", "part", "trials", "append", "cut",
              "snapshot", "rotation", "gc", "other", "entries-verified", "failures");
  Tally total;
  total.part = "total";
  auto row = [](const Tally& t) {
    std::printf("%-9s %8lld", t.part.c_str(), static_cast<long long>(t.trials));
    for (const char* d : kDuring) {
      auto it = t.during.find(d);
      const long long n = it == t.during.end() ? 0 : it->second;
      std::printf(" %*lld", absl::string_view(d).size() > 8 ? 9 : 8, n);
    }
    std::printf(" %17lld %9lld\n", static_cast<long long>(t.entries_verified),
                static_cast<long long>(t.failures));
  };
  for (const Tally& t : tallies) {
    row(t);
    total.trials += t.trials;
    for (const auto& [k, v] : t.during) total.during[k] += v;
    total.entries_verified += t.entries_verified;
    total.failures += t.failures;
  }
  row(total);
  for (const Tally& t : tallies) {
    for (const auto& [note, n] : t.notes) {
      std::printf("note %s: %lld x %s\n", t.part.c_str(), static_cast<long long>(n), note.c_str());
    }
  }
}

// ---------------------------------------------------------------------------
// The in-process workload (what `store gen` does, over any FileSystem).

constexpr char kDataDir[] = "/data/node";
constexpr uint64_t kSnapshotEvery = 37;
constexpr uint64_t kRotateEvery = 90;
constexpr size_t kSnapshotSize = 1500;

std::string EntryData(uint64_t seed, uint64_t i) {
  return DataGen(seed, i, 1, 40 + (i * 7919) % 300);
}
std::string SnapshotData(uint64_t seed, uint64_t i) { return DataGen(seed, i, 0, kSnapshotSize); }

pem::UnlockKey FixedUnlockKey(int which) {
  std::string bytes(32, static_cast<char>(0x30 + which));
  return *pem::UnlockKey::FromBytes(bytes);
}

struct Config {
  bool encrypted = true;
  bool pipelined = false;
  uint64_t segment_size = 16 * 1024;
  uint64_t seed = 1;
  std::string Name() const {
    return absl::StrCat(encrypted ? "encrypted" : "plaintext", pipelined ? "/pipelined" : "/sync",
                        "/seg", segment_size);
  }
};

// What the workload saw; acked is raised only once a save is durable (the
// synchronous call returned OK, or the pipelined completion said OK).
struct RunState {
  std::atomic<uint64_t> acked{0};
  std::string phase = "other";  // the facade call under way
  int promotions = 0;
  std::optional<uint64_t> asked;
};

storage::StorageOptions Options(env::FileSystem* fs, const Config& c, RunState* rs,
                                std::optional<pem::UnlockKey> unlock) {
  storage::StorageOptions o;
  o.fs = fs;
  o.data_dir = kDataDir;
  o.create_if_missing = true;
  o.encrypted = c.encrypted;
  o.metadata = "crash-campaign";
  if (c.encrypted) o.unlock_key = std::move(unlock);
  o.segment_size = c.segment_size;
  o.preallocation = wal::Preallocation::kFallocate;
  o.pipeline_depth = 4;
  o.request_snapshot = [rs](uint64_t min_index) { rs->asked = min_index; };
  o.on_rotation_step = [rs](const keyrotator::Step& s) {
    if (s.kind == keyrotator::StepKind::kPromotePending) ++rs->promotions;
  };
  return o;
}

using ::sealwal::testing::HS;

std::vector<raftpb::Entry> Batch(uint64_t seed, uint64_t lo, uint64_t hi) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = lo; i <= hi; ++i) {
    raftpb::Entry& e = v.emplace_back();
    e.set_index(i);
    e.set_term(1);
    e.set_type(raftpb::EntryNormal);
    e.set_data(EntryData(seed, i));
  }
  return v;
}

// Saves `n` entries after the store's last one in batches of 1..4,
// snapshots every kSnapshotEvery entries and whenever the rotator asks (GC
// keeps 2), asks for a rotation every kRotateEvery entries (`rotate_now`:
// also at once). Stops at the first error and returns it.
absl::Status Drive(RaftStorage* s, const Config& c, RunState* rs, uint64_t start, uint64_t n,
                   bool rotate_now) {
  if (rotate_now) s->RequestRotation();
  for (uint64_t next = start + 1; next <= start + n;) {
    const uint64_t hi = std::min(start + n, next + (next % 4));
    const uint64_t prev = next - 1;
    rs->phase = "append";
    const raftpb::HardState hs = HS(hi);
    const std::vector<raftpb::Entry> ents = Batch(c.seed, next, hi);
    if (c.pipelined) {
      SEALWAL_RETURN_IF_ERROR(s->SubmitEntries(hs, ents, [rs, hi](absl::Status done) {
        if (done.ok()) rs->acked.store(hi);
      }));
    } else {
      SEALWAL_RETURN_IF_ERROR(s->SaveEntries(hs, ents));
      rs->acked.store(hi);
    }
    const bool due = hi / kSnapshotEvery > prev / kSnapshotEvery;
    if (due || (rs->asked.has_value() && hi >= *rs->asked)) {
      rs->asked.reset();
      if (c.pipelined) SEALWAL_RETURN_IF_ERROR(s->Flush());
      raftpb::SnapshotMetadata m;
      m.set_index(hi);
      m.set_term(1);
      m.mutable_conf_state()->add_voters(1);
      rs->phase = "snapshot";
      SEALWAL_RETURN_IF_ERROR(s->SaveSnapshot(m, SnapshotData(c.seed, hi)));
      rs->phase = "gc";
      SEALWAL_RETURN_IF_ERROR(s->GC(2));
    }
    if (hi / kRotateEvery > prev / kRotateEvery) s->RequestRotation();
    next = hi + 1;
  }
  rs->phase = "other";
  if (c.pipelined) SEALWAL_RETURN_IF_ERROR(s->Flush());
  return absl::OkStatus();
}

// The whole workload on a new store: create, `entries` entries, close.
// *storage keeps the store open after an error (for the sticky check).
absl::Status Workload(env::FileSystem* fs, const Config& c, RunState* rs, uint64_t entries,
                      std::unique_ptr<RaftStorage>* storage) {
  rs->phase = "other";
  SEALWAL_ASSIGN_OR_RETURN(*storage, RaftStorage::Open(Options(fs, c, rs, FixedUnlockKey(0))));
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState b, (*storage)->Bootstrap());
  const uint64_t start = b.log->LastIndex();
  b.log.reset();
  SEALWAL_RETURN_IF_ERROR(Drive(storage->get(), c, rs, start, entries, false));
  rs->phase = "other";
  return (*storage)->Close();
}

// Every entry the log holds has data_gen's bytes, and the snapshot too.
// Returns the number of entries checked, or the problem.
absl::StatusOr<uint64_t> CheckContents(storage::BootstrapState& b, uint64_t seed) {
  if (b.snapshot.has_value()) {
    SEALWAL_ASSIGN_OR_RETURN(std::string data, storage::ReadSnapshotData(*b.snapshot));
    const uint64_t i = b.snapshot->metadata.index();
    if (data != SnapshotData(seed, i)) {
      return absl::DataLossError(absl::StrCat("snapshot ", i, " has the wrong bytes"));
    }
  }
  const uint64_t first = b.log->FirstIndex();
  const uint64_t last = b.log->LastIndex();
  for (uint64_t lo = first; lo <= last; lo += 64) {
    const uint64_t hi = std::min(last + 1, lo + 64);
    SEALWAL_ASSIGN_OR_RETURN(std::vector<raftpb::Entry> es, b.log->Entries(lo, hi));
    if (es.size() != hi - lo) return absl::DataLossError("short read of the log");
    for (const raftpb::Entry& e : es) {
      if (e.data() != EntryData(seed, e.index())) {
        return absl::DataLossError(absl::StrCat("entry ", e.index(), " has the wrong bytes"));
      }
    }
  }
  return last >= first ? last - first + 1 : 0;
}

// After a fault: the store opens (with one of the unlock keys `keys`:
// FixedUnlockKey(k), -1 for none), holds every entry
// up to `acked` with the right bytes, takes 60 more entries with a DEK
// rotation (encrypted: one promotion at least), and opens again with all of
// them. Returns the entries checked, or what went wrong.
absl::StatusOr<uint64_t> Recover(env::FileSystem* fs, const Config& c, uint64_t acked,
                                 const std::vector<int>& keys) {
  RunState rs;
  std::unique_ptr<RaftStorage> s;
  absl::Status open_error = absl::InternalError("no key to try");
  std::optional<pem::UnlockKey> used;
  for (int k : keys) {
    auto key = [k]() -> std::optional<pem::UnlockKey> {
      if (k < 0) return std::nullopt;
      return FixedUnlockKey(k);
    };
    absl::StatusOr<std::unique_ptr<RaftStorage>> o = RaftStorage::Open(Options(fs, c, &rs, key()));
    if (o.ok()) {
      s = std::move(*o);
      used = key();
      break;
    }
    open_error = o.status();
  }
  if (s == nullptr) return absl::Status(open_error.code(), absl::StrCat("open: ", open_error.message()));
  absl::StatusOr<storage::BootstrapState> b = s->Bootstrap();
  if (!b.ok()) return absl::Status(b.status().code(), absl::StrCat("bootstrap: ", b.status().message()));
  const uint64_t last = b->log->LastIndex();
  if (last < acked) {
    return absl::DataLossError(absl::StrCat("acknowledged up to ", acked, " but recovered only up to ", last));
  }
  SEALWAL_ASSIGN_OR_RETURN(uint64_t checked, CheckContents(*b, c.seed));
  b->log.reset();
  if (s->encrypted()) {
    SEALWAL_ASSIGN_OR_RETURN(storage::StoreInventory inv, s->Inventory());
    if (!inv.all_keys_present) return absl::DataLossError("a retained file needs a missing DEK");
  }
  // Keeps working: writes and a rotation.
  Config cont = c;
  cont.pipelined = false;
  if (absl::Status d = Drive(s.get(), cont, &rs, last, 60, /*rotate_now=*/true); !d.ok()) {
    return absl::Status(d.code(), absl::StrCat("writing after recovery: ", d.message()));
  }
  if (s->encrypted() && rs.promotions == 0) {
    return absl::InternalError("no DEK rotation completed after recovery");
  }
  SEALWAL_RETURN_IF_ERROR(s->Close());
  s.reset();
  RunState rs2;
  SEALWAL_ASSIGN_OR_RETURN(auto again, RaftStorage::Open(Options(fs, c, &rs2, std::move(used))));
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState b2, again->Bootstrap());
  if (b2.log->LastIndex() != last + 60) {
    return absl::DataLossError(absl::StrCat("after the writes: last index ", b2.log->LastIndex(),
                                            ", want ", last + 60));
  }
  SEALWAL_ASSIGN_OR_RETURN(uint64_t checked2, CheckContents(b2, c.seed));
  b2.log.reset();
  SEALWAL_RETURN_IF_ERROR(again->Close());
  return checked + checked2;
}

std::vector<int> Keys(std::initializer_list<int> which) { return std::vector<int>(which); }

// What a crash stopped, from the operation and the facade call under way.
std::string Classify(const std::optional<FaultInjectionFileSystem::CrashPoint>& p,
                     const std::string& phase) {
  if (!p.has_value()) return phase == "append" || phase == "snapshot" || phase == "gc" ? phase : "other";
  const std::string& path = p->path;
  if (absl::StrContains(path, "node.key")) return "rotation";
  // DATADIR itself is synced after a key file's rename.
  if (p->op == "syncdir" && path == kDataDir) return phase == "other" ? "other" : "rotation";
  if (absl::StrContains(path, "/snap-v3")) {
    if (p->op == "remove" || p->op == "syncdir") return phase == "snapshot" ? "snapshot" : "gc";
    return "snapshot";
  }
  if (absl::StrContains(path, "/wal-v3")) {
    if (phase == "other") return "other";  // Create, Close
    if (absl::EndsWith(path, ".tmp")) return "cut";  // a prepared segment
    if (p->op == "remove") return "gc";
    if (p->op == "append" || p->op == "sync") return "append";
    return "cut";  // the old tail's truncate and close, the directory sync
  }
  return "other";
}

// ---------------------------------------------------------------------------
// power: a crash at every mutating step.

struct Env {
  std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
  std::unique_ptr<FaultInjectionFileSystem> fault =
      std::make_unique<FaultInjectionFileSystem>(mem.get());
  Env() {
    (void)env::CreateDirAll(fault.get(), "/data");
    (void)fault->SyncDir("/");
  }
};

constexpr uint64_t kWorkloadEntries = 400;

std::vector<Config> Configs(uint64_t seed) {
  std::vector<Config> v;
  for (bool enc : {true, false}) {
    for (bool pipe : {false, true}) {
      Config c;
      c.encrypted = enc;
      c.pipelined = pipe;
      c.segment_size = 16 * 1024;
      c.seed = seed + v.size();
      v.push_back(c);
    }
  }
  return v;
}

void PowerPart(Tally* t, int64_t steps, uint64_t seed) {
  const std::vector<Config> configs = Configs(seed);
  struct Mode {
    const char* name;
    bool power_loss;
    std::optional<double> tear;
    TornWrite torn;
  };
  const Mode modes[] = {{"process crash", false, std::nullopt, TornWrite::kDropped},
                        {"power loss", true, std::nullopt, TornWrite::kDropped},
                        {"power loss, torn prefix kept", true, 0.5, TornWrite::kPrefixKept},
                        {"power loss, last sector zeroed", true, 1.0, TornWrite::kLastSectorsZeroed}};
  int64_t done = 0;
  const int64_t total = steps * static_cast<int64_t>(configs.size());
  for (const Config& c : configs) {
    for (int64_t k = 0; k < steps; ++k, ++done) {
      if (done % std::max<int64_t>(1, total / 10) == 0) Progress(*t, done, total);
      bool completed = false;
      bool append = false;
      for (const Mode& m : modes) {
        if (m.tear.has_value() && !append) continue;  // torn variants only for an Append
        Env e;
        RunState rs;
        std::unique_ptr<RaftStorage> s;
        if (m.tear.has_value()) {
          e.fault->CrashAfterOps(k, *m.tear);
        } else {
          e.fault->CrashAfterOps(k);
        }
        absl::Status st = Workload(e.fault.get(), c, &rs, kWorkloadEntries, &s);
        if (s != nullptr && c.pipelined) s->Flush().IgnoreError();  // every completion has fired
        const std::string where = absl::StrCat(c.Name(), " step ", k, " (", m.name, ")");
        if (!e.fault->crashed()) {
          if (!st.ok()) Failure(t, absl::StrCat(where, ": failed without a fault: ", st.ToString()));
          completed = true;
          break;
        }
        const std::optional<FaultInjectionFileSystem::CrashPoint> point = e.fault->crash_point();
        if (!m.power_loss && point.has_value()) append = point->op == "append";
        s.reset();
        ++t->trials;
        const std::string during = Classify(point, rs.phase);
        ++t->during[during];
        if (g_verbose) {
          std::fprintf(stderr, "trial %s: %s %s in %s -> %s\n", where.c_str(),
                       point ? point->op.c_str() : "?", point ? point->path.c_str() : "?",
                       rs.phase.c_str(), during.c_str());
        }
        if (e.fault->sync_retries() != 0) Failure(t, absl::StrCat(where, ": an fsync was retried"));
        if (m.power_loss) {
          if (absl::Status d = e.fault->DropUnsyncedData(m.torn, 1); !d.ok()) {
            Failure(t, absl::StrCat(where, ": the model failed: ", d.ToString()));
            continue;
          }
        }
        e.fault->Reactivate();
        absl::StatusOr<uint64_t> r = Recover(e.fault.get(), c, rs.acked.load(), Keys({0}));
        if (!r.ok()) {
          Failure(t, absl::StrCat(where, " at ", point ? point->op + " " + point->path : "?", ": ",
                                  r.status().ToString()));
        } else {
          t->entries_verified += *r;
        }
      }
      if (completed) break;
    }
  }
}

// ---------------------------------------------------------------------------
// eio / enospc.

// After the workload failed: the error was surfaced, a further save fails,
// no fsync was retried; then a restart (power loss when `power_loss`)
// loses nothing acknowledged.
void CheckAfterError(Tally* t, Env& e, const Config& c, RunState& rs,
                     std::unique_ptr<RaftStorage>& s, absl::Status st, bool fault_fired,
                     bool power_loss, const std::string& where) {
  if (!fault_fired) {
    if (!st.ok()) Failure(t, absl::StrCat(where, ": failed without a fault: ", st.ToString()));
    return;
  }
  ++t->trials;
  ++t->during[rs.phase == "append" || rs.phase == "snapshot" || rs.phase == "gc" ? rs.phase
                                                                                   : "other"];
  const std::string injected = e.fault->last_injected_error();
  const std::string what = absl::StrCat(where, " (", injected, ", during ", rs.phase, ")");
  // The next segment prepared in the background (wal-v3*/N.tmp) that no
  // cut took: no data depended on it (recovery below checks that).
  const bool unused_preparation =
      absl::StrContains(injected, "/wal-v3") && absl::EndsWith(injected, ".tmp");
  if (st.ok()) {
    if (unused_preparation) {
      ++t->notes["error in a prepared segment no cut used (nothing to report)"];
    } else {
      Failure(t, absl::StrCat(what, ": the injected error was not reported to the caller"));
    }
  } else if (s != nullptr) {
    // Sticky: any failed write or fsync fails the storage for good.
    const uint64_t next = std::max<uint64_t>(s->last_index(), rs.acked.load()) + 1;
    absl::Status again = s->SaveEntries(HS(next), Batch(c.seed, next, next));
    if (again.ok()) {
      Failure(t, absl::StrCat(what, ": a save after the error (", st.ToString(), ") succeeded"));
    }
    if (c.pipelined) s->Flush().IgnoreError();
  }
  if (e.fault->sync_retries() != 0) {
    Failure(t, absl::StrCat(where, ": an fsync was retried after it failed (",
                            e.fault->sync_retries(), ")"));
  }
  s.reset();
  e.fault->ClearWriteLimit();
  if (power_loss) {
    if (absl::Status d = e.fault->DropUnsyncedData(); !d.ok()) {
      Failure(t, absl::StrCat(where, ": the model failed: ", d.ToString()));
      return;
    }
  } else {
    e.fault->InvalidateOpenFiles();
  }
  e.fault->Reactivate();
  absl::StatusOr<uint64_t> r = Recover(e.fault.get(), c, rs.acked.load(), Keys({0}));
  if (!r.ok()) {
    Failure(t, absl::StrCat(where, ": ", r.status().ToString()));
  } else {
    t->entries_verified += *r;
  }
}

const absl::Status kEio = absl::DataLossError("fsync: Input/output error (injected EIO)");

void EioPart(Tally* t, int64_t steps, uint64_t seed) {
  const std::vector<Config> configs = Configs(seed + 100);
  int64_t done = 0;
  const int64_t total = steps * static_cast<int64_t>(configs.size());
  for (const Config& c : configs) {
    for (int64_t k = 0; k < steps; ++k, ++done) {
      if (done % std::max<int64_t>(1, total / 10) == 0) Progress(*t, done, total);
      Env e;
      RunState rs;
      std::unique_ptr<RaftStorage> s;
      e.fault->FailSyncAfter(k, kEio);
      absl::Status st = Workload(e.fault.get(), c, &rs, kWorkloadEntries, &s);
      if (s != nullptr && c.pipelined) s->Flush().IgnoreError();
      const bool fired = e.fault->injected_errors() > 0;
      CheckAfterError(t, e, c, rs, s, st, fired, /*power_loss=*/true,
                      absl::StrCat(c.Name(), " EIO at fsync ", k));
      if (!fired) break;
    }
  }
}

void EnospcPart(Tally* t, int64_t steps, uint64_t seed) {
  const std::vector<Config> configs = Configs(seed + 200);
  int64_t done = 0;
  const int64_t total = steps * static_cast<int64_t>(configs.size());
  for (const Config& c : configs) {
    uint64_t volume = 0;
    {
      Env e;
      RunState rs;
      std::unique_ptr<RaftStorage> s;
      absl::Status st = Workload(e.fault.get(), c, &rs, kWorkloadEntries, &s);
      if (!st.ok()) Failure(t, absl::StrCat(c.Name(), ": failed without a fault: ", st.ToString()));
      volume = e.fault->bytes_written();
    }
    for (int64_t k = 0; k < steps; ++k, ++done) {
      if (done % std::max<int64_t>(1, total / 10) == 0) Progress(*t, done, total);
      const uint64_t budget = volume * static_cast<uint64_t>(k) / static_cast<uint64_t>(steps);
      Env e;
      RunState rs;
      std::unique_ptr<RaftStorage> s;
      e.fault->SetWriteLimit(budget);
      absl::Status st = Workload(e.fault.get(), c, &rs, kWorkloadEntries, &s);
      if (s != nullptr && c.pipelined) s->Flush().IgnoreError();
      const bool fired = e.fault->injected_errors() > 0;
      CheckAfterError(t, e, c, rs, s, st, fired, /*power_loss=*/k % 2 == 1,
                      absl::StrCat(c.Name(), " ENOSPC after ", budget, " bytes"));
    }
  }
}

// ---------------------------------------------------------------------------
// keyfile: crash at every step of the key commands and of a rotation.

// An encrypted store with 40 entries and a snapshot at 30, its key file
// locked under FixedUnlockKey(0) (or unlocked).
absl::Status BaseStore(env::FileSystem* fs, const Config& c, bool locked) {
  RunState rs;
  storage::StorageOptions o = Options(fs, c, &rs, locked ? std::optional(FixedUnlockKey(0)) : std::nullopt);
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(std::move(o)));
  SEALWAL_RETURN_IF_ERROR(s->Bootstrap().status());
  SEALWAL_RETURN_IF_ERROR(Drive(s.get(), c, &rs, 0, 40, false));
  return s->Close();
}

absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> Krw(env::FileSystem* fs,
                                                        std::optional<pem::UnlockKey> k) {
  pem::KeyReadWriterOptions o;
  o.fs = fs;
  o.path = env::JoinPath(kDataDir, storage::kKeyFileName);
  o.unlock_key = std::move(k);
  return pem::KeyReadWriter::Create(std::move(o));
}

// The KEK change `key rotate-kek` / `lock` / `unlock` makes (tools/key_commands.cc).
absl::Status KekChange(env::FileSystem* fs, std::optional<pem::UnlockKey> from,
                       std::optional<pem::UnlockKey> to) {
  SEALWAL_ASSIGN_OR_RETURN(auto krw, Krw(fs, std::move(from)));
  return krw->ViewAndRotateKEK([&](const pem::KekState& st, const pem::DekHeaders& h)
                                   -> absl::StatusOr<pem::KekUpdate> {
    pem::KekUpdate u;
    if (to.has_value()) u.unlock_key = to->Clone();
    u.version = st.version + 1;
    u.headers = h.Clone();
    if (to.has_value() && h.current.has_value()) u.headers.needs_rotation = true;
    return u;
  });
}

// `key rotate-dek`: a new raft-dek-pending (or a queued request).
absl::Status RotateDek(env::FileSystem* fs, std::optional<pem::UnlockKey> k) {
  SEALWAL_ASSIGN_OR_RETURN(auto krw, Krw(fs, std::move(k)));
  return krw->ViewAndUpdateHeaders([](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
    pem::DekHeaders out = h.Clone();
    if (h.pending.has_value()) {
      out.needs_rotation = true;
      return out;
    }
    SEALWAL_ASSIGN_OR_RETURN(encryption::Dek dek, encryption::Dek::Generate(h.current->dek.algorithm));
    if (dek.id == h.current->dek.id) return absl::InternalError("drew the current key id");
    out.pending = pem::StoredDek{std::move(dek), 0, pem::DekCreatedAt(absl::Now())};
    out.needs_rotation = false;
    return out;
  });
}

// A whole rotation by the facade's rotator: request, saves, the snapshot
// it asks for, GC.
absl::Status Rotation(env::FileSystem* fs, const Config& c) {
  RunState rs;
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(Options(fs, c, &rs, FixedUnlockKey(0))));
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState b, s->Bootstrap());
  const uint64_t last = b.log->LastIndex();
  b.log.reset();
  SEALWAL_RETURN_IF_ERROR(Drive(s.get(), c, &rs, last, 45, /*rotate_now=*/true));
  SEALWAL_RETURN_IF_ERROR(s->GC(1));
  if (rs.promotions == 0) return absl::InternalError("the rotation did not finish");
  return s->Close();
}

void KeyFilePart(Tally* t, int64_t steps, uint64_t seed) {
  Config c;
  c.encrypted = true;
  c.seed = seed + 300;
  struct Op {
    const char* name;
    bool locked;  // the base store's key file
    std::function<absl::Status(env::FileSystem*)> run;
    std::vector<int> keys;  // the unlock keys that may open it afterwards (Recover)
  };
  const std::vector<Op> ops = {
      {"key rotate-dek", true, [](env::FileSystem* fs) { return RotateDek(fs, FixedUnlockKey(0)); },
       Keys({0})},
      {"key rotate-kek", true,
       [](env::FileSystem* fs) { return KekChange(fs, FixedUnlockKey(0), FixedUnlockKey(1)); },
       Keys({0, 1})},
      {"key unlock", true,
       [](env::FileSystem* fs) { return KekChange(fs, FixedUnlockKey(0), std::nullopt); },
       Keys({0, -1})},
      {"key lock", false,
       [](env::FileSystem* fs) { return KekChange(fs, std::nullopt, FixedUnlockKey(1)); },
       Keys({-1, 1})},
      {"rotator", true, [c](env::FileSystem* fs) { return Rotation(fs, c); }, Keys({0})},
  };
  for (const Op& op : ops) {
    Progress(*t, t->trials, -1);
    for (int64_t k = 0;; ++k) {
      if (k >= steps) break;  // the first `steps` steps only
      bool completed = false;
      for (bool power_loss : {false, true}) {
        Env e;
        if (absl::Status b = BaseStore(e.fault.get(), c, op.locked); !b.ok()) {
          Failure(t, absl::StrCat(op.name, ": setting up the store: ", b.ToString()));
          return;
        }
        e.fault->CrashAfterOps(k);
        absl::Status st = op.run(e.fault.get());
        const std::string where = absl::StrCat(op.name, " crash at step ", k,
                                               power_loss ? " (power loss)" : " (process crash)");
        if (!e.fault->crashed()) {
          if (!st.ok()) Failure(t, absl::StrCat(where, ": failed without a fault: ", st.ToString()));
          completed = true;
          break;
        }
        ++t->trials;
        // The key commands write only the key file; the rotator's crash is
        // classified by the operation it stopped.
        ++t->during[absl::StartsWith(op.name, "key ")
                        ? std::string("rotation")
                        : Classify(e.fault->crash_point(), "append")];
        if (power_loss) {
          if (absl::Status d = e.fault->DropUnsyncedData(); !d.ok()) {
            Failure(t, absl::StrCat(where, ": the model failed: ", d.ToString()));
            continue;
          }
        }
        e.fault->Reactivate();
        absl::StatusOr<uint64_t> r = Recover(e.fault.get(), c, 40, op.keys);
        if (!r.ok()) {
          Failure(t, absl::StrCat(where, ": ", r.status().ToString()));
        } else {
          t->entries_verified += *r;
        }
      }
      if (completed) break;
    }
  }
}

// ---------------------------------------------------------------------------
// sigkill: the real binary.

struct Proc {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs argv with `env_add` added to the environment; stdout and stderr
// captured. With `kill_after_lines` >= 0, SIGKILLs the child once it has
// printed that many lines and `delay_us` more microseconds have passed.
Proc Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_add,
           int kill_after_lines = -1, int delay_us = 0, int timeout_s = 120) {
  Proc p;
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) {
    p.err = "pipe failed";
    return p;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    for (const std::string& kv : env_add) {
      if (absl::EndsWith(kv, "=")) {
        unsetenv(kv.substr(0, kv.size() - 1).c_str());  // "NAME=": unset
      } else {
        putenv(const_cast<char*>(kv.c_str()));
      }
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  bool killed = false;
  bool out_open = true, err_open = true;
  int lines = 0;
  while (out_open || err_open) {
    const auto now = std::chrono::steady_clock::now();
    if (!killed && kill_after_lines >= 0 && lines >= kill_after_lines && !kill_at) {
      kill_at = now + std::chrono::microseconds(delay_us);
    }
    if (!killed && ((kill_at && now >= *kill_at) || now - start > std::chrono::seconds(timeout_s))) {
      kill(pid, SIGKILL);
      killed = true;
    }
    int wait_ms = 100;
    if (kill_at && !killed) {
      wait_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - now).count()));
    }
    pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_pipe[0] : -1, POLLIN, 0}};
    if (poll(fds, 2, wait_ms) < 0) continue;
    char buf[4096];
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      const ssize_t n = read(out_pipe[0], buf, sizeof buf);
      if (n <= 0) {
        out_open = false;
      } else {
        for (ssize_t i = 0; i < n; ++i) lines += buf[i] == '\n';
        p.out.append(buf, n);
      }
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t n = read(err_pipe[0], buf, sizeof buf);
      if (n <= 0) {
        err_open = false;
      } else {
        p.err.append(buf, n);
      }
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  p.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  return p;
}

uint64_t LastNumberAfter(const std::string& out, absl::string_view prefix) {
  uint64_t v = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    uint64_t n = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtoi(line, &n)) v = n;
  }
  return v;
}

std::string LineValue(const std::string& out, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::ConsumePrefix(&line, name) && absl::ConsumePrefix(&line, " ")) return std::string(line);
  }
  return "";
}

// The last index `store verify` saw (the snapshot's when the log is empty)
// and how many entries it checked.
bool VerifiedRange(const std::string& out, uint64_t* last, uint64_t* count) {
  const std::string entries = LineValue(out, "entries");
  if (entries == "none") {
    *count = 0;
    std::vector<std::string> parts = absl::StrSplit(LineValue(out, "snapshot"), ' ');
    return absl::SimpleAtoi(parts[0], last) || (parts[0] == "none" && (*last = 0, true));
  }
  std::vector<std::string> parts = absl::StrSplit(entries, "..");
  uint64_t first = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &first) || !absl::SimpleAtoi(parts[1], last)) {
    return false;
  }
  *count = *last - first + 1;
  return true;
}

namespace fs = std::filesystem;

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(dir, ec)) v.push_back(d.path().filename().string());
  return v;
}

// What the store shows right after a SIGKILL (docs/reliability.md).
std::string ClassifyKill(const fs::path& dir, uint64_t max_synced) {
  const bool enc = fs::exists(dir / "wal-v3-encrypted");
  const fs::path wal = dir / (enc ? "wal-v3-encrypted" : "wal-v3");
  const fs::path snap = dir / (enc ? "snap-v3-encrypted" : "snap-v3");
  int snaps = 0;
  for (const std::string& n : Names(snap)) {
    if (absl::EndsWith(n, ".tmp")) return "snapshot";
    if (absl::EndsWith(n, ".snap")) ++snaps;
  }
  if (fs::exists(dir / "node.key.tmp")) return "rotation";
  if (snaps > 2) return "gc";
  uint64_t newest_first = 0;
  for (const std::string& n : Names(wal)) {
    std::vector<std::string> parts = absl::StrSplit(n, absl::ByAnyChar("-."));
    uint64_t seq = 0, index = 0;
    if (parts.size() == 3 && parts[2] == "wal" && absl::SimpleHexAtoi(parts[0], &seq) &&
        absl::SimpleHexAtoi(parts[1], &index)) {
      newest_first = std::max(newest_first, index);
    }
  }
  if (newest_first > max_synced + 1) return "cut";
  return "append";
}

void SigkillPart(Tally* t, const std::string& sealwal, const std::string& workdir, int64_t trials,
                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&rng](std::initializer_list<uint64_t> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
  };
  struct Slot {
    std::string dir;
    std::vector<std::string> env;  // SEALWAL_UNLOCK_KEY for a locked store
    uint64_t seed = 0;
    int uses = 0;
  };
  Slot slots[2];
  int64_t in_rotation = 0;
  fs::create_directories(workdir);
  for (int64_t trial = 0; trial < trials; ++trial) {
    if (trial % std::max<int64_t>(1, trials / 10) == 0) Progress(*t, trial, trials);
    const bool encrypted = trial % 2 == 0;
    Slot& slot = slots[trial % 2];
    if (slot.uses % 25 == 0) {
      // A fresh store every 25 trials; in between, kills pile up on one.
      slot.dir = absl::StrCat(workdir, "/store-", trial);
      slot.seed = seed * 1000 + trial;
      slot.env.clear();
      fs::remove_all(slot.dir);
      Proc init = encrypted ? Spawn({sealwal, "store", "init", slot.dir, "--autolock"}, {"SEALWAL_UNLOCK_KEY="})
                            : Spawn({sealwal, "store", "init", slot.dir, "--plaintext"}, {});
      if (init.exit_code != 0) {
        Failure(t, absl::StrCat("trial ", trial, ": store init failed: ", init.err));
        return;
      }
      if (encrypted) slot.env = {"SEALWAL_UNLOCK_KEY=" + LineValue(init.out, "unlock-key")};
    }
    ++slot.uses;
    const uint64_t size = pick({100, 300, 1000, 3000});
    std::vector<std::string> gen = {sealwal, "store", "gen", slot.dir, "--entries", "1000000",
                                    "--size", absl::StrCat(size), "--batch", absl::StrCat(pick({1, 3, 8})),
                                    "--seed", absl::StrCat(slot.seed),
                                    "--segment-size", absl::StrCat(pick({65536, 131072, 262144, 1048576})),
                                    "--snapshot-every", absl::StrCat(pick({50, 200, 500}))};
    if (encrypted) {
      gen.push_back("--rotate-every");
      gen.push_back(absl::StrCat(pick({150, 400})));
    }
    if (rng() % 2 == 0) {
      gen.push_back("--pipeline");
      gen.push_back(absl::StrCat(pick({2, 4, 16})));
    }
    const int lines = static_cast<int>(std::uniform_int_distribution<int>(1, 300)(rng));
    const int delay_us = static_cast<int>(std::uniform_int_distribution<int>(0, 20000)(rng));
    std::string cmd = absl::StrJoin(gen, " ");
    const std::string where = absl::StrCat("trial ", trial, " (seed ", seed, ", after ", lines,
                                           " lines + ", delay_us, " us: ", cmd, ")");
    Proc run = Spawn(gen, slot.env, lines, delay_us);
    ++t->trials;
    if (run.exit_code != 128 + SIGKILL) {
      Failure(t, absl::StrCat(where, ": gen ended on its own (", run.exit_code, "): ", run.err));
      continue;
    }
    const uint64_t synced = LastNumberAfter(run.out, "synced ");
    ++t->during[ClassifyKill(slot.dir, synced)];
    Proc inspect = Spawn({sealwal, "store", "inspect", slot.dir}, slot.env);
    if (encrypted && LineValue(inspect.out, "raft-dek-pending") != "none") ++in_rotation;
    Proc v = Spawn({sealwal, "store", "verify", slot.dir, "--expect-seed", absl::StrCat(slot.seed)},
                   slot.env);
    uint64_t last = 0, count = 0;
    if (v.exit_code != 0 || !VerifiedRange(v.out, &last, &count)) {
      Failure(t, absl::StrCat(where, ": verify failed (", v.exit_code, "): ", v.err));
      continue;
    }
    if (last < synced) {
      Failure(t, absl::StrCat(where, ": synced ", synced, " but the store ends at ", last));
      continue;
    }
    t->entries_verified += count;
    // The recovered store keeps working: 300 more entries with snapshots
    // and (encrypted) a rotation, then verify again.
    std::vector<std::string> more = {sealwal, "store", "gen", slot.dir, "--entries", "300",
                                     "--size", absl::StrCat(size), "--batch", "5",
                                     "--seed", absl::StrCat(slot.seed), "--snapshot-every", "100"};
    if (encrypted) {
      more.push_back("--rotate-every");
      more.push_back("150");
    }
    Proc cont = Spawn(more, slot.env);
    if (cont.exit_code != 0 || LastNumberAfter(cont.out, "synced ") != last + 300 ||
        (encrypted && !absl::StrContains(cont.out, "rotated 0x"))) {
      Failure(t, absl::StrCat(where, ": gen after recovery (", cont.exit_code, "): ", cont.err));
      continue;
    }
    Proc v2 = Spawn({sealwal, "store", "verify", slot.dir, "--expect-seed", absl::StrCat(slot.seed)},
                    slot.env);
    uint64_t last2 = 0, count2 = 0;
    if (v2.exit_code != 0 || !VerifiedRange(v2.out, &last2, &count2) || last2 != last + 300) {
      Failure(t, absl::StrCat(where, ": verify after recovery (", v2.exit_code, "): ", v2.err));
      continue;
    }
    t->entries_verified += count2;
  }
  std::fprintf(stderr, "crash-campaign: sigkill: %lld of %lld kills came while a DEK rotation was "
               "under way (raft-dek-pending set)\n", static_cast<long long>(in_rotation),
               static_cast<long long>(t->trials));
}

// ---------------------------------------------------------------------------

constexpr char kUsage[] =
    "usage: sealwal_crash_campaign [--parts sigkill,power,eio,enospc,keyfile] [--trials N]\n"
    "         [--steps K] [--seed S] [--sealwal BIN] [--workdir DIR] [--verbose]\n"
    "Runs the reliability campaign (docs/reliability.md) and prints its summary table;\n"
    "exits 1 when any trial lost data or failed a check.\n"
    "  --trials N   SIGKILL trials (default 500)\n"
    "  --steps K    crash steps / fsync steps / ENOSPC budgets per configuration (default 3000)\n"
    "  --seed S     the campaign seed (default 1); printed so a run can be repeated\n"
    "  --sealwal    the sealwal binary (sigkill part)\n"
    "  --workdir    where the sigkill part makes its stores (default $TMPDIR)\n"
    "  --verbose    one stderr line per in-process trial: the operation it stopped\n";

int Main(int argc, char** argv) {
  std::string parts = "sigkill,power,eio,enospc,keyfile";
  int64_t trials = 500, steps = 3000;
  uint64_t seed = 1;
  std::string sealwal, workdir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--verbose") {
      g_verbose = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "sealwal: crash-campaign: %s needs a value (see --help)\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--parts") {
      parts = v;
    } else if (a == "--trials") {
      ok = absl::SimpleAtoi(v, &trials) && trials >= 0;
    } else if (a == "--steps") {
      ok = absl::SimpleAtoi(v, &steps) && steps >= 0;
    } else if (a == "--seed") {
      ok = absl::SimpleAtoi(v, &seed);
    } else if (a == "--sealwal") {
      sealwal = v;
    } else if (a == "--workdir") {
      workdir = v;
    } else {
      std::fprintf(stderr, "sealwal: crash-campaign: unknown flag %s (see --help)\n", a.c_str());
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "sealwal: crash-campaign: bad value for %s: %s\n", a.c_str(), v.c_str());
      return 2;
    }
  }
  const std::vector<std::string> want = absl::StrSplit(parts, ',', absl::SkipEmpty());
  for (const std::string& p : want) {
    if (p != "sigkill" && p != "power" && p != "eio" && p != "enospc" && p != "keyfile") {
      std::fprintf(stderr, "sealwal: crash-campaign: unknown part %s (see --help)\n", p.c_str());
      return 2;
    }
  }
  auto has = [&want](absl::string_view p) { return std::find(want.begin(), want.end(), p) != want.end(); };
  if (has("sigkill") && sealwal.empty()) {
    std::fprintf(stderr, "sealwal: crash-campaign: the sigkill part needs --sealwal BIN\n");
    return 2;
  }
  std::unique_ptr<char, void (*)(char*)> made_dir(nullptr, [](char* p) {
    std::error_code ec;
    fs::remove_all(p, ec);
    std::free(p);
  });
  if (has("sigkill") && workdir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "sealwal_campaign_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "sealwal: crash-campaign: cannot make a temporary directory\n");
      return 1;
    }
    workdir = tmpl;
    made_dir.reset(strdup(tmpl.c_str()));
  }
  std::printf("crash-campaign seed %llu trials %lld steps %lld parts %s\n",
              static_cast<unsigned long long>(seed), static_cast<long long>(trials),
              static_cast<long long>(steps), parts.c_str());
  std::fflush(stdout);
  std::vector<Tally> tallies;
  auto run = [&](const char* name, const std::function<void(Tally*)>& fn) {
    if (!has(name)) return;
    Tally t;
    t.part = name;
    const auto start = std::chrono::steady_clock::now();
    fn(&t);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "crash-campaign: %s done in %.1f s\n", name, secs);
    tallies.push_back(std::move(t));
  };
  run("sigkill", [&](Tally* t) { SigkillPart(t, sealwal, workdir, trials, seed); });
  run("power", [&](Tally* t) { PowerPart(t, steps, seed); });
  run("eio", [&](Tally* t) { EioPart(t, steps, seed); });
  run("enospc", [&](Tally* t) { EnospcPart(t, steps, seed); });
  run("keyfile", [&](Tally* t) { KeyFilePart(t, steps, seed); });
  PrintTable(tallies);
  int64_t failures = 0;
  for (const Tally& t : tallies) failures += t.failures;
  std::printf("result %s\n", failures == 0 ? "pass" : "FAIL");
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sealwal::campaign

int main(int argc, char** argv) { return sealwal::campaign::Main(argc, argv); }
