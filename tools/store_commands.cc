// `sealwal store init|gen|verify|inspect|rotate` (docs/cli-store.md): a Raft
// node's data directory through the storage facade (sealwal/storage/
// raft_storage.h) only; no WAL or snapshot logic lives here.
//
// Exit status: 0 ok; 1 the data is bad (corruption, a failed check, a
// needed key missing from the key file in `inspect`); 2 usage or key error.
#include <csignal>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/raft_storage.h"
#include "tools/cli.h"
#include "tools/content_digest.h"

namespace sealwal::cli {

// tools/store_migrate.cc
int StoreMigrateMain(const std::vector<std::string>& args);
// tools/store_backup.cc
int StoreBackupMain(const std::vector<std::string>& args);
int StoreRestoreMain(const std::vector<std::string>& args);
int InspectBackupFile(const std::string& path);

namespace {

constexpr char kStoreDescription[] =
    "A Raft node's data directory through the storage facade (docs/cli-store.md). DATADIR "
    "holds wal-v3[-encrypted]/, snap-v3[-encrypted]/ and node.key. The unlock key of a locked "
    "node.key comes from --unlock-key-file U or $SEALWAL_UNLOCK_KEY, never from the command "
    "line.";

// Declares DATADIR and --unlock-key-file, which every store command takes.
void CommonFlags(Command& a) {
  a.Positional("DATADIR", "the node's data directory");
  a.Option("unlock-key-file", "U", "a file holding the unlock key (else $SEALWAL_UNLOCK_KEY)");
}

// The size of a snapshot `store gen` saves; its data is
// data_gen(seed, index, 0, kSnapshotSize) (term 0: never an entry's).
constexpr size_t kSnapshotSize = 4096;
// Snapshots `store gen` keeps when it garbage-collects.
constexpr size_t kGenKeepSnapshots = 2;

absl::StatusOr<std::string> DataDirArg(const Command& a) {
  if (a.positional().size() != 1) {
    return absl::InvalidArgumentError("exactly one DATADIR is required");
  }
  return a.positional()[0];
}

// Options common to every command: DATADIR, the unlock key, and (tests
// only) $SEALWAL_RESERVATION_BLOCK, as for `wal gen`.
absl::StatusOr<storage::StorageOptions> CommonOptions(const Command& a) {
  storage::StorageOptions o;
  SEALWAL_ASSIGN_OR_RETURN(o.data_dir, DataDirArg(a));
  SEALWAL_ASSIGN_OR_RETURN(
      o.unlock_key, UnlockKeyFromArgs(a, env::JoinPath(o.data_dir, storage::kKeyFileName)));
  if (const char* b = std::getenv("SEALWAL_RESERVATION_BLOCK"); b != nullptr && *b != '\0') {
    uint64_t block = 0;
    if (!absl::SimpleAtoi(b, &block) || block == 0 ||
        block > encryption::kDefaultReservationBlock) {
      return absl::InvalidArgumentError(absl::StrCat("$SEALWAL_RESERVATION_BLOCK must be 1..",
                                                     encryption::kDefaultReservationBlock));
    }
    o.reservation_block = block;
  }
  return o;
}

// Opens DATADIR read-only (verify, inspect): no repair, no locks, no writes.
absl::StatusOr<std::unique_ptr<storage::RaftStorage>> OpenReadOnly(storage::StorageOptions o) {
  o.read_only = true;
  return storage::RaftStorage::Open(std::move(o));
}

std::string KeyIdText(encryption::KeyId id) { return absl::StrFormat("0x%08x", id.value()); }

int StoreInit(const std::vector<std::string>& args) {
  Command a("store init",
            "Makes a new store in DATADIR (created if missing; refused when it already holds a "
            "WAL or a node.key): the key file, then the snapshot directory, then the WAL. By "
            "default encrypted, node.key unlocked unless an unlock key is given. With --kek "
            "SOURCE node.key is locked under a new unlock key that a PKCS#11 token or a KMS "
            "plugin holds (docs/kek-providers.md). Prints `store DATADIR`, `kind "
            "encrypted|plaintext`, `autolock on|off` and `raft-dek 0x...`.");
  CommonFlags(a);
  a.Switch("autolock", "lock node.key (a new unlock key is printed once unless one is given)");
  a.Option("kek", "SOURCE",
           "lock node.key under a new unlock key held by this KEK source: "
           "pkcs11:token=T;object=K?module-path=/abs/module.so or command:/abs/plugin [ARGS]");
  a.Switch("plaintext", "wal-v3/ and snap-v3/, no key file");
  a.Option("metadata", "TEXT", "the WAL's metadata (default \"sealwal store\")");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<storage::StorageOptions> o = CommonOptions(a);
  if (!o.ok()) return Fail(kExitUsage, o.status().message());
  const bool plaintext = a.Has("plaintext");
  if (plaintext && (a.Has("autolock") || a.Has("unlock-key-file") || a.Has("kek"))) {
    return Fail(kExitUsage, "--plaintext stores have no key file to lock (drop --autolock, "
                            "--kek and --unlock-key-file)");
  }
  if (a.Has("kek") && a.Has("unlock-key-file")) {
    return Fail(kExitUsage, "give --kek or --unlock-key-file, not both");
  }
  if (plaintext) o->unlock_key.reset();  // $SEALWAL_UNLOCK_KEY is not for this store
  env::FileSystem* fs = env::DefaultFileSystem();
  for (absl::string_view d : {"wal-v3", "wal-v3-encrypted"}) {
    if (fs->FileExists(env::JoinPath(o->data_dir, d)).ok()) {
      return Fail(kExitUsage, absl::StrCat(o->data_dir, " already holds a store (", d, ")"));
    }
  }
  if (!plaintext && fs->FileExists(env::JoinPath(o->data_dir, storage::kKeyFileName)).ok()) {
    return Fail(kExitUsage, absl::StrCat(env::JoinPath(o->data_dir, storage::kKeyFileName),
                                         " already exists; refusing to overwrite a key file"));
  }
  bool generated = false;
  std::string source;
  if (a.Has("kek")) {
    // A fresh unlock key, wrapped by the source and checked to come back,
    // before anything is made.
    absl::StatusOr<kek::KekSourceOptions> ko = kek::KekSourceOptionsFromEnvironment(fs);
    if (!ko.ok()) return Fail(kExitUsage, ko.status().message());
    absl::StatusOr<std::unique_ptr<kek::KekSource>> src = kek::OpenKekSource(*a.Get("kek"), *ko);
    if (!src.ok()) return Fail(kExitUsage, src.status().message());
    absl::StatusOr<kek::SourcedUnlockKey> k = kek::NewSourcedUnlockKey(**src);
    if (!k.ok()) return Fail(kExitUsage, k.status().message());
    o->unlock_key = std::move(k->unlock_key);
    o->kek_binding = std::move(k->binding);
    source = o->kek_binding->source;
  } else if (a.Has("autolock") && !o->unlock_key.has_value()) {
    absl::StatusOr<pem::UnlockKey> u = pem::UnlockKey::Generate();
    if (!u.ok()) return StoreFail(u.status());
    // Printed before the key file exists: if stdout is gone, nothing is made.
    std::printf("unlock-key %.*s\n", static_cast<int>(u->text().size()), u->text().data());
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      return Fail(kExitUsage, "could not print the new unlock key to stdout; nothing was made");
    }
    std::fprintf(stderr, "sealwal: note: store the unlock key now; it is not shown again\n");
    o->unlock_key = std::move(*u);
    generated = true;
  }
  o->create_if_missing = true;
  o->encrypted = !plaintext;
  o->metadata = a.Get("metadata").value_or("sealwal store");
  const bool locked = o->unlock_key.has_value();
  absl::StatusOr<std::unique_ptr<storage::RaftStorage>> st =
      storage::RaftStorage::Open(std::move(*o));
  if (!st.ok()) return StoreFail(st.status());
  std::printf("store %s\n", a.positional()[0].c_str());
  std::printf("kind %s\n", plaintext ? "plaintext" : "encrypted");
  if (!plaintext) {
    std::printf("autolock %s%s\n", locked ? "on" : "off",
                !locked      ? ""
                : generated  ? " (new unlock key above)"
                : !source.empty() ? " (unlock key held by the KEK source)"
                                  : " (given unlock key)");
    if (!source.empty()) std::printf("kek-source %s\n", source.c_str());
    std::printf("raft-dek %s\n", KeyIdText(*(*st)->write_key()).c_str());
  }
  if (!plaintext && !locked) {
    std::fflush(stdout);
    std::fprintf(stderr, "sealwal: warning: autolock is off: the DEKs in node.key are stored "
                         "unencrypted (run `sealwal key lock --key-file DATADIR/node.key`)\n");
  }
  return kExitOk;
}

int StoreGen(const std::vector<std::string>& args) {
  Command a("store gen",
            "Simulates a Raft node on an existing store: continues after its last entry and "
            "saves batches of B entries of S bytes (entry I's data data_gen(seed, I, 1, S)), N "
            "entries in all, printing `synced <last index>` after each durable batch, `snapshot "
            "<index>` after each snapshot (then GC keeps the 2 newest) and `rotated 0x...` when "
            "a DEK rotation has ended.");
  CommonFlags(a);
  a.U64("entries", "entries to write", kRequired);
  a.U64("size", "data bytes per entry", kRequired);
  a.U64("batch", "entries per durable save (at least 1)", kRequired);
  a.U64("seed", "the data_gen seed", kRequired);
  a.U64("snapshot-every", "save a snapshot every K entries (default 0: never)");
  a.U64("rotate-every", "ask for a DEK rotation every K entries (default 0: never)");
  a.U64("segment-size", "WAL segment size in bytes (default 64000000)");
  a.U64("rotate-after", "rotate a DEK once it is older than SECONDS (default: never by age)");
  a.U64("pipeline",
        "pipelined saves: up to DEPTH batches in flight, sealed while earlier ones are "
        "written and fsynced, sharing fsyncs; `synced` lines still come only once durable, "
        "in order (default: synchronous saves)");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<storage::StorageOptions> o = CommonOptions(a);
  if (!o.ok()) return Fail(kExitUsage, o.status().message());
  absl::StatusOr<uint64_t> n = a.GetU64("entries", std::nullopt);
  absl::StatusOr<uint64_t> size = a.GetU64("size", std::nullopt);
  absl::StatusOr<uint64_t> batch = a.GetU64("batch", std::nullopt);
  absl::StatusOr<uint64_t> seed = a.GetU64("seed", std::nullopt);
  absl::StatusOr<uint64_t> snap_every = a.GetU64("snapshot-every", 0);
  absl::StatusOr<uint64_t> rotate_every = a.GetU64("rotate-every", 0);
  absl::StatusOr<uint64_t> seg = a.GetU64("segment-size", wal::kDefaultSegmentSize);
  absl::StatusOr<uint64_t> rotate_after = a.GetU64("rotate-after", 0);  // 0: not given
  absl::StatusOr<uint64_t> depth = a.GetU64("pipeline", 0);
  for (const auto* v :
       {&n, &size, &batch, &seed, &snap_every, &rotate_every, &seg, &rotate_after, &depth}) {
    if (!v->ok()) return Fail(kExitUsage, v->status().message());
  }
  if (*batch == 0) return Fail(kExitUsage, "--batch must be at least 1");
  if (a.Has("rotate-after") && *rotate_after == 0) {
    return Fail(kExitUsage, "--rotate-after must be at least 1 second");
  }
  if (a.Has("pipeline") && (*depth == 0 || *depth > kMaxPipelineDepth)) {
    return Fail(kExitUsage, absl::StrCat("--pipeline must be between 1 and ", kMaxPipelineDepth));
  }
  o->segment_size = *seg;
  if (*depth > 0) {
    o->pipeline_depth = *depth;
    // Every save is pipelined: segments are only reserved (cli-store.md).
    o->preallocation = wal::Preallocation::kFallocate;
  }
  if (*rotate_after > 0) {
    o->rotation.max_age =
        absl::Seconds(static_cast<int64_t>(std::min<uint64_t>(*rotate_after, INT64_MAX)));
  }
  std::optional<uint64_t> asked;
  o->request_snapshot = [&asked](uint64_t min_index) { asked = min_index; };
  // Rotation steps run inside SaveEntries/SaveSnapshot; their lines are
  // printed after that call's own line (synced/snapshot).
  std::vector<std::string> rotated;
  // Tests only: $SEALWAL_TEST_KILL_AFTER_STEP=<step name> (keyrotator::
  // StepKindName, or "rotation-snapshot") makes gen SIGKILL itself once that step is
  // durable, to prove a rotation killed at each step recovers.
  const char* kill_env = std::getenv("SEALWAL_TEST_KILL_AFTER_STEP");
  const std::string kill_after = kill_env != nullptr ? kill_env : "";
  auto maybe_kill = [&kill_after](absl::string_view point) {
    if (!kill_after.empty() && kill_after == point) {
      std::fflush(stdout);
      std::raise(SIGKILL);
    }
  };
  o->on_rotation_step = [&rotated, &maybe_kill](const keyrotator::Step& step) {
    if (step.kind == keyrotator::StepKind::kPromotePending) {
      rotated.push_back(absl::StrCat("rotated ", KeyIdText(step.key)));
    }
    maybe_kill(keyrotator::StepKindName(step.kind));
  };
  auto flush_rotated = [&rotated]() {
    for (const std::string& l : rotated) std::printf("%s\n", l.c_str());
    rotated.clear();
    std::fflush(stdout);
  };
  absl::StatusOr<std::unique_ptr<storage::RaftStorage>> st =
      storage::RaftStorage::Open(std::move(*o));
  if (!st.ok()) return StoreFail(st.status());
  storage::RaftStorage& s = **st;
  absl::StatusOr<storage::BootstrapState> boot = s.Bootstrap();
  if (!boot.ok()) return StoreFail(boot.status());
  const uint64_t start = boot->log->LastIndex();
  boot->log.reset();
  const uint64_t end = start + *n;
  auto snapshot = [&](uint64_t index) -> absl::Status {
    // Pipelined: the batches up to `index` print their lines first.
    if (*depth > 0) SEALWAL_RETURN_IF_ERROR(s.Flush());
    raftpb::SnapshotMetadata m;
    m.set_index(index);
    m.set_term(1);
    m.mutable_conf_state()->add_voters(1);
    SEALWAL_RETURN_IF_ERROR(s.SaveSnapshot(m, DataGen(*seed, index, 0, kSnapshotSize)));
    std::printf("snapshot %llu\n", static_cast<unsigned long long>(index));
    flush_rotated();
    absl::Status gc = s.GC(kGenKeepSnapshots);
    flush_rotated();
    return gc;
  };
  std::vector<raftpb::Entry> ents;
  for (uint64_t next = start + 1; next <= end;) {
    const uint64_t hi = end - next < *batch ? end : next + *batch - 1;  // no overflow
    const raftpb::HardState hs = FillGenBatch(*seed, next, hi, *size, &ents);
    if (*depth > 0) {
      // `synced` is printed by the completion, once durable, in order.
      absl::Status r = s.SubmitEntries(hs, ents, [hi](absl::Status done) {
        if (done.ok()) PrintSynced(hi);
      });
      if (!r.ok()) {
        s.Flush().IgnoreError();  // the batches before it print their lines
        return StoreFail(r);
      }
      if (!rotated.empty()) {
        // A rotation line follows the line of the batch that ran it.
        if (absl::Status f = s.Flush(); !f.ok()) return StoreFail(f);
      }
    } else {
      if (absl::Status r = s.SaveEntries(hs, ents); !r.ok()) return StoreFail(r);
      PrintSynced(hi);
    }
    flush_rotated();
    const uint64_t prev = next - 1;
    bool snapped = false;
    if (*snap_every > 0 && hi / *snap_every > prev / *snap_every) {
      if (absl::Status r = snapshot(hi); !r.ok()) return StoreFail(r);
      snapped = true;
    }
    if (asked.has_value() && hi >= *asked) {
      asked.reset();
      if (!snapped) {
        if (absl::Status r = snapshot(hi); !r.ok()) return StoreFail(r);
      }
      maybe_kill("rotation-snapshot");  // the snapshot a rotation asked for is saved
    }
    if (*rotate_every > 0 && hi / *rotate_every > prev / *rotate_every) s.RequestRotation();
    next = hi + 1;
  }
  if (*depth > 0) {
    if (absl::Status r = s.Flush(); !r.ok()) return StoreFail(r);
  }
  if (absl::Status r = s.Close(); !r.ok()) return StoreFail(r);
  return kExitOk;
}

int StoreVerify(const std::vector<std::string>& args) {
  Command a("store verify",
            "Opens the store read-only, loads the newest usable snapshot and reads every entry "
            "the retained WAL holds, decrypting and authenticating each; with --expect-seed also "
            "checks the data against data_gen (a mismatch: exit 1). Ends with hardstate, "
            "entries, snapshot and digest lines.");
  CommonFlags(a);
  a.U64("expect-seed", "check every entry and the snapshot against data_gen with this seed");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<storage::StorageOptions> o = CommonOptions(a);
  if (!o.ok()) return Fail(kExitUsage, o.status().message());
  std::optional<uint64_t> seed;
  if (a.Has("expect-seed")) {
    absl::StatusOr<uint64_t> v = a.GetU64("expect-seed", std::nullopt);
    if (!v.ok()) return Fail(kExitUsage, v.status().message());
    seed = *v;
  }
  absl::StatusOr<std::unique_ptr<storage::RaftStorage>> st = OpenReadOnly(std::move(*o));
  if (!st.ok()) return StoreFail(st.status());
  // One pass over the retained WAL (RaftStorage::Verify): the checker sees
  // every entry's plaintext as the scan decodes it; nothing is read twice
  // unless a tail was overwritten.
  EntryChecker checker(seed, /*normal_only=*/false);
  absl::StatusOr<storage::VerifyState> v = (*st)->Verify(&checker);
  if (!v.ok()) return StoreFail(v.status());
  for (const snap::SkippedSnapshot& k : v->skipped) {
    std::fprintf(stderr, "sealwal: warning: snapshot %s skipped%s: %s\n", k.file.c_str(),
                 k.renamed_broken ? " (renamed .broken)" : "",
                 std::string(k.reason.message()).c_str());
  }
  if (v->log->torn_tail()) {
    std::fprintf(stderr, "sealwal: warning: torn tail ends the log (a writer's open repairs it): %s\n",
                 v->log->torn_detail().c_str());
  }
  if (checker.truncated()) {
    if (absl::Status s = checker.Recheck(*v->log); !s.ok()) return StoreFail(s);
  }
  if (!checker.mismatch().empty()) return Fail(kExitDataError, checker.mismatch());
  ContentDigest digest;
  digest.AddMetadata(v->metadata);
  digest.AddHardState(v->hardstate);
  std::string snap_line = "snapshot none";
  if (v->snapshot.has_value()) {
    snap::LoadedSnapshot& ls = *v->snapshot;
    absl::StatusOr<std::string> read = storage::ReadSnapshotData(ls);
    if (!read.ok()) return StoreFail(read.status());
    const std::string data = std::move(*read);
    const uint64_t index = ls.metadata.index();
    if (seed.has_value() && data != DataGen(*seed, index, 0, data.size())) {
      return Fail(kExitDataError, absl::StrCat("snapshot ", index, ": data does not match seed ",
                                               *seed));
    }
    digest.AddBytes(absl::StrCat("snapshot ", index, " ", ls.metadata.term()));
    digest.AddBytes(data);
    snap_line = absl::StrCat("snapshot ", index, " ", ls.metadata.term());
  }
  digest.AddBytes(checker.entries_digest().Canonical());
  const uint64_t first = v->log->FirstIndex();
  const uint64_t last = v->log->LastIndex();
  const raftpb::HardState& hs = v->hardstate;
  std::printf("store %s\n", a.positional()[0].c_str());
  std::printf("kind %s\n", (*st)->encrypted() ? "encrypted" : "plaintext");
  std::printf("hardstate term %llu vote %llu commit %llu\n",
              static_cast<unsigned long long>(hs.term()),
              static_cast<unsigned long long>(hs.vote()),
              static_cast<unsigned long long>(hs.commit()));
  if (last >= first) {
    std::printf("entries %llu..%llu\n", static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(last));
  } else {
    std::printf("entries none\n");
  }
  std::printf("%s\n", snap_line.c_str());
  std::printf("digest %s\n", digest.Hex().c_str());
  return kExitOk;
}

int StoreInspect(const std::vector<std::string>& args) {
  Command a("store inspect",
            "Lists, without modifying anything, the key file's DEK ids, whether its key material "
            "is wrapped or in the clear, and the retained files with the DEK each needs; "
            "`keys-present false` (a file needs a DEK the key file lacks) exits 1. Given a "
            "backup file instead of DATADIR, prints its manifest, checks every member's "
            "checksum and says what key material it holds (nothing is decrypted).");
  CommonFlags(a);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  if (struct stat sb; ::stat(a.positional()[0].c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
    return InspectBackupFile(a.positional()[0]);
  }
  absl::StatusOr<storage::StorageOptions> o = CommonOptions(a);
  if (!o.ok()) return Fail(kExitUsage, o.status().message());
  absl::StatusOr<std::unique_ptr<storage::RaftStorage>> st = OpenReadOnly(std::move(*o));
  if (!st.ok()) return StoreFail(st.status());
  absl::StatusOr<storage::StoreInventory> inv = (*st)->Inventory();
  if (!inv.ok()) return StoreFail(inv.status());
  std::printf("store %s\n", a.positional()[0].c_str());
  std::printf("kind %s\n", inv->encrypted ? "encrypted" : "plaintext");
  if (inv->encrypted) {
    std::printf("raft-dek %s encryptions %llu\n",
                inv->current_key.has_value() ? KeyIdText(*inv->current_key).c_str() : "none",
                static_cast<unsigned long long>(inv->current_encryptions));
    std::printf("raft-dek-pending %s\n",
                inv->pending_key.has_value() ? KeyIdText(*inv->pending_key).c_str() : "none");
    std::printf("raft-dek-needs-rotation %s\n", inv->needs_rotation ? "true" : "false");
    if (inv->kek_source.has_value()) {
      // The unlock key itself is wrapped by the token or KMS: neither the
      // store nor a backup of it holds anything that opens the data.
      std::printf("key-material none unwrapped (node.key's unlock key is wrapped by the KEK "
                  "source; a backup of this store holds no unwrapped key material)\n");
      std::printf("kek-source %s\n", inv->kek_source->c_str());
    } else {
      std::printf("key-material %s\n",
                  inv->key_file_locked
                      ? "wrapped (node.key is locked: its DEKs open only with the unlock key)"
                      : "in the clear (node.key is unlocked, autolock off)");
    }
  } else {
    std::printf("key-material none (a plaintext store)\n");
  }
  auto key_text = [&](const storage::RetainedFile& f) {
    if (!inv->encrypted) return std::string("plaintext");
    return absl::StrCat(KeyIdText(f.key), f.key_in_key_file ? "" : " missing");
  };
  for (const storage::RetainedFile& f : inv->segments) {
    std::printf("segment %s first-index %llu key %s\n", f.name.c_str(),
                static_cast<unsigned long long>(f.index), key_text(f).c_str());
  }
  for (const storage::RetainedFile& f : inv->snapshots) {
    std::printf("snapshot %s index %llu term %llu key %s\n", f.name.c_str(),
                static_cast<unsigned long long>(f.index), static_cast<unsigned long long>(f.term),
                key_text(f).c_str());
  }
  std::printf("keys-present %s\n", inv->all_keys_present ? "true" : "false");
  if (!inv->all_keys_present) {
    std::fflush(stdout);
    return Fail(kExitDataError, "a retained file needs a DEK the key file does not hold");
  }
  return kExitOk;
}

int StoreRotate(const std::vector<std::string>& args) {
  Command a("store rotate",
            "Sets raft-dek-needs-rotation: true in DATADIR/node.key and nothing else (one atomic "
            "rewrite under the key file's lock, safe while a writer runs); the writer carries "
            "out the rotation.");
  CommonFlags(a);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<storage::StorageOptions> o = CommonOptions(a);
  if (!o.ok()) return Fail(kExitUsage, o.status().message());
  if (absl::Status s = storage::RaftStorage::RequestRotationInKeyFile(o->data_dir, o->unlock_key);
      !s.ok()) {
    return StoreFail(s);
  }
  std::printf("raft-dek-needs-rotation true\n");
  return kExitOk;
}

}  // namespace

int StoreMain(const std::vector<std::string>& args) {
  std::signal(SIGPIPE, SIG_IGN);
  return RunGroup("store", kStoreDescription,
                  {{"init", "make a new store (encrypted unless --plaintext)", StoreInit},
                   {"gen", "write entries like a Raft node, with snapshots and rotations",
                    StoreGen},
                   {"verify", "read and check every retained entry; print the digest",
                    StoreVerify},
                   {"inspect", "list DEKs and the retained files that need them", StoreInspect},
                   {"rotate", "ask the writer for a DEK rotation", StoreRotate},
                   {"migrate", "move a plaintext store to an encrypted one, or back",
                    StoreMigrateMain},
                   {"backup", "write one backup file (while a writer runs; --redact: no keys)",
                    StoreBackupMain},
                   {"restore", "restore a backup file into a new data directory",
                    StoreRestoreMain}},
                  args);
}

}  // namespace sealwal::cli
