// examples/raft_node.cc: the calls a consensus implementation makes on
// sealwal's storage facade (sealwal/storage/raft_storage.h), in their order,
// with a tiny key/value state machine standing in for the application.
//
//   Open       the data directory, with the unlock key, the rotation policy
//              and the request_snapshot callback
//   Bootstrap  restore the snapshot into the state machine; hand the
//              HardState and the log (FirstIndex/LastIndex/Term/Entries) to
//              Raft; re-apply the committed entries after the snapshot
//   loop       SaveEntries(HardState, entries) -> durable -> only then
//              acknowledge / send / vote; apply committed entries; answer a
//              snapshot request with SaveSnapshot at an index >= min_index,
//              then GC
//   Close      then Open + Bootstrap again: the state machine is rebuilt
//              from snapshot + log and must equal the one before the close
//
// One voter (node 1), so an entry is committed as soon as it is durable
// here. The loop is shaped like etcd's raft "Ready" handling: each round
// persists the new entries with a HardState whose commit covers the
// previous round's entries, then applies those. Exit 0 when the rebuilt
// state machine matches; 1 with a message on any error.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "sealwal/pem/unlock_key.h"
#include "sealwal/storage/raft_storage.h"

namespace {

using sealwal::raftpb::Entry;
using sealwal::raftpb::HardState;
using sealwal::storage::RaftStorage;

constexpr uint64_t kNodeId = 1;
constexpr uint64_t kTerm = 1;
constexpr uint64_t kRounds = 80;
constexpr uint64_t kEntriesPerRound = 25;
// etcd's --snapshot-count: a snapshot every this many applied entries.
constexpr uint64_t kSnapshotEvery = 600;
// Snapshots GC keeps (etcd's --max-snapshots, much smaller here).
constexpr size_t kKeepSnapshots = 2;

// The application: "put KEY VALUE" commands applied in log order.
struct KvStateMachine {
  std::map<std::string, std::string> kv;
  uint64_t applied = 0;  // the index of the last entry applied

  void Apply(const Entry& e) {
    std::istringstream in(e.data());
    std::string op, key, value;
    if (in >> op >> key >> value && op == "put") kv[key] = value;
    applied = e.index();
  }
  // The snapshot image: "applied N" then "key value" lines.
  std::string Serialize() const {
    std::string out = "applied " + std::to_string(applied) + "\n";
    for (const auto& [k, v] : kv) out += k + " " + v + "\n";
    return out;
  }
  static KvStateMachine Restore(const std::string& image) {
    KvStateMachine sm;
    std::istringstream in(image);
    std::string word, k, v;
    in >> word >> sm.applied;
    while (in >> k >> v) sm.kv[k] = v;
    return sm;
  }
  bool operator==(const KvStateMachine& o) const { return applied == o.applied && kv == o.kv; }
};

// Stops the example with a message (a real node would crash-restart too:
// after a failed write or fsync the storage is failed for good).
void Check(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "raft_node: %s: %s\n", what, std::string(s.message()).c_str());
  std::exit(1);
}
template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  Check(v.status(), what);
  return std::move(*v);
}

// Everything a node keeps between storage calls.
struct Node {
  std::unique_ptr<RaftStorage> storage;
  std::unique_ptr<sealwal::storage::LogView> log;  // Raft's Storage interface
  KvStateMachine sm;
  HardState hs;
  uint64_t last_index = 0;
  uint64_t last_snapshot = 0;
  // Set by the request_snapshot callback, answered by the main loop.
  std::optional<uint64_t> snapshot_wanted;
};

// Open + Bootstrap: the node's start, whether the directory is new or not.
void Start(Node& node, const std::string& dir, const sealwal::pem::UnlockKey& unlock) {
  sealwal::storage::StorageOptions o;
  o.data_dir = dir;
  // The unlock key wraps the data keys in node.key. A real node gets it
  // from its operator or a secret manager, never from its own disk.
  o.unlock_key = unlock.Clone();
  o.create_if_missing = true;
  o.metadata = "example cluster, node 1";  // written into every WAL segment
  // Rotate the data key after 2^30 seals (the default; the hard AES-GCM
  // limit is 2^32), and on request (RequestRotation, `sealwal store rotate`).
  o.rotation.max_encryptions = uint64_t{1} << 30;
  // Small segments so that this short run cuts, GCs and rotates visibly.
  o.segment_size = 64 * 1024;
  // The storage runs rotation steps inside our own calls and, once the WAL
  // has switched keys, needs a snapshot at or past the switch. It may not
  // call back into the storage from here, so it only records the wish; the
  // main loop answers once the state machine has got there.
  o.request_snapshot = [&node](uint64_t min_index) {
    std::printf("  storage asks for a snapshot at index >= %llu\n",
                static_cast<unsigned long long>(min_index));
    node.snapshot_wanted = min_index;
  };
  o.on_rotation_step = [](const sealwal::keyrotator::Step& step) {
    std::printf("  rotation step done: %s\n", step.DebugString().c_str());
  };
  node.storage = Check(RaftStorage::Open(std::move(o)), "open");
  std::printf("open: %s (encrypted, node.key locked), write key 0x%08x\n", dir.c_str(),
              node.storage->write_key()->value());

  // Bootstrap once, before any save. It repairs a torn tail, picks the
  // newest snapshot the WAL vouches for and serves the log after it.
  sealwal::storage::BootstrapState boot = Check(node.storage->Bootstrap(), "bootstrap");
  node.sm = KvStateMachine();
  if (boot.snapshot.has_value()) {
    // The state machine starts from the snapshot, not from an empty map.
    std::string image = Check(sealwal::storage::ReadSnapshotData(*boot.snapshot), "read snapshot");
    node.sm = KvStateMachine::Restore(image);
    node.last_snapshot = boot.snapshot->metadata.index();
  }
  node.hs = boot.hardstate;  // term, vote, commit: Raft must not forget its vote
  node.log = std::move(boot.log);
  node.last_index = node.log->LastIndex();
  // Raft asks Term(FirstIndex - 1) for the entry the snapshot replaced.
  const uint64_t boundary_term = Check(node.log->Term(node.log->FirstIndex() - 1), "term");
  std::printf("bootstrap: snapshot %llu (term %llu), hardstate term %llu vote %llu commit %llu, "
              "log %llu..%llu\n",
              static_cast<unsigned long long>(node.last_snapshot),
              static_cast<unsigned long long>(boundary_term),
              static_cast<unsigned long long>(node.hs.term()),
              static_cast<unsigned long long>(node.hs.vote()),
              static_cast<unsigned long long>(node.hs.commit()),
              static_cast<unsigned long long>(node.log->FirstIndex()),
              static_cast<unsigned long long>(node.last_index));

  // Committed entries after the snapshot are applied again (the state
  // machine is in memory only); entries past commit wait for Raft to commit
  // them. Read in bounded chunks: the log is on disk, not in memory.
  constexpr uint64_t kChunk = 256;
  const uint64_t commit = node.hs.commit();
  for (uint64_t lo = node.sm.applied + 1; lo <= commit; lo += kChunk) {
    const uint64_t hi = std::min(commit + 1, lo + kChunk);
    for (const Entry& e : Check(node.log->Entries(lo, hi), "entries")) node.sm.Apply(e);
  }
  if (commit > node.last_snapshot) {
    std::printf("bootstrap: replayed entries %llu..%llu into the state machine\n",
                static_cast<unsigned long long>(node.last_snapshot + 1),
                static_cast<unsigned long long>(commit));
  }
}

// A snapshot of the state machine as it is (index = applied), then GC.
void Snapshot(Node& node, const char* why) {
  const uint64_t index = node.sm.applied;
  sealwal::raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(Check(node.log->Term(index), "term"));  // the applied entry's term
  m.mutable_conf_state()->add_voters(kNodeId);
  // Durable .snap first, then its WAL record; only then may older files go.
  Check(node.storage->SaveSnapshot(m, node.sm.Serialize()), "save snapshot");
  // GC after the snapshot: keeps the newest kKeepSnapshots and the WAL
  // segments they need (and runs any rotation step that became due).
  Check(node.storage->GC(kKeepSnapshots), "gc");
  node.last_snapshot = index;
  std::printf("  snapshot at %llu saved (%s), GC kept %zu\n", static_cast<unsigned long long>(index),
              why, kKeepSnapshots);
}

// One "Ready": persist new entries with the HardState, then apply what that
// HardState commits, then snapshot if due.
void Round(Node& node, uint64_t round, uint64_t new_entries) {
  // Entries proposed by clients this round (the leader assigns indexes).
  std::vector<Entry> ents;
  for (uint64_t i = 0; i < new_entries; ++i) {
    Entry e;
    e.set_term(kTerm);
    e.set_index(node.last_index + 1 + i);
    e.set_data("put key-" + std::to_string((round * 7 + i) % 50) + " v" +
               std::to_string(e.index()));
    ents.push_back(std::move(e));
  }
  // Everything up to last_index is durable on our (only) voter: committed.
  const uint64_t old_commit = node.hs.commit();
  node.hs.set_term(kTerm);
  node.hs.set_vote(kNodeId);
  node.hs.set_commit(node.last_index);
  // Durable when it returns (fdatasync). Raft's rule: an entry is
  // acknowledged, sent to followers or counted in a vote only after this.
  Check(node.storage->SaveEntries(node.hs, ents), "save entries");
  if (!ents.empty()) node.last_index = ents.back().index();
  // (Here a real node sends its messages: the entries are safe on disk.)
  if (round == 1 || round % 20 == 0) {
    std::printf("round %llu: entries ..%llu durable, HardState commit %llu\n",
                static_cast<unsigned long long>(round),
                static_cast<unsigned long long>(node.last_index),
                static_cast<unsigned long long>(node.hs.commit()));
  }

  // Apply the entries the saved HardState committed. They come back from
  // the log view; a node usually still has them in memory.
  if (node.hs.commit() > old_commit) {
    for (const Entry& e : Check(node.log->Entries(old_commit + 1, node.hs.commit() + 1), "entries")) {
      node.sm.Apply(e);
    }
  }
  // A snapshot is only ever of applied state: answer the storage's request
  // once the state machine has reached the index it asked for.
  if (node.snapshot_wanted.has_value() && node.sm.applied >= *node.snapshot_wanted) {
    node.snapshot_wanted.reset();
    Snapshot(node, "asked for by the rotation");
  } else if (node.sm.applied - node.last_snapshot >= kSnapshotEvery) {
    Snapshot(node, "periodic");
  }
}

}  // namespace

int main() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                    "/sealwal-example-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("raft_node: mkdtemp");
    return 1;
  }
  const std::string data_dir = dir + "/node";
  const sealwal::pem::UnlockKey unlock = Check(sealwal::pem::UnlockKey::Generate(), "unlock key");

  Node node;
  Start(node, data_dir, unlock);
  const auto first_key = node.storage->write_key();
  for (uint64_t round = 1; round <= kRounds; ++round) {
    Round(node, round, kEntriesPerRound);
    if (round == kRounds / 2) {
      // An operator's (or a policy's) request; the storage carries it out
      // step by step inside the following calls, asking us for a snapshot.
      std::printf("round %llu: RequestRotation()\n", static_cast<unsigned long long>(round));
      node.storage->RequestRotation();
    }
  }
  Round(node, kRounds + 1, 0);  // commit and apply the last round's entries
  const KvStateMachine before = node.sm;
  const auto last_key = node.storage->write_key();
  std::printf("close: applied %llu, %zu keys, last snapshot %llu, write key 0x%08x\n",
              static_cast<unsigned long long>(before.applied), before.kv.size(),
              static_cast<unsigned long long>(node.last_snapshot), last_key->value());
  node.log.reset();  // the log view must not outlive its storage
  Check(node.storage->Close(), "close");
  node.storage.reset();

  // A restart: the same calls, on the directory the first run left.
  Node again;
  Start(again, data_dir, unlock);
  const bool rebuilt = again.sm == before;
  const bool rotated = first_key != last_key;
  again.log.reset();
  Check(again.storage->Close(), "close");
  std::filesystem::remove_all(dir);
  if (!rebuilt || !rotated) {
    std::fprintf(stderr, "raft_node: %s\n",
                 !rebuilt ? "the rebuilt state machine differs from the one before the close"
                          : "the data key did not rotate");
    return 1;
  }
  std::printf("ok: state machine rebuilt from snapshot + log (applied %llu, %zu keys); the data "
              "key rotated\n",
              static_cast<unsigned long long>(before.applied), before.kv.size());
  return 0;
}
