// sealwal/keyrotator/key_rotator.h: when to rotate the raft DEK, and the
// durable steps of a rotation, as a pure state machine.
//
// The rotator knows nothing of WALs, snapshots or files. Before each
// decision the storage facade describes the store in a `KeyStoreState`
// (what the key file holds, which key the WAL seals under, the newest
// snapshot, which keys retained files still need), and `Next` answers with
// one step. The facade carries the step out as one durable action, then
// asks again. A crash between two steps leaves a state from which `Next`
// picks up where the rotation stopped, because every input is read back
// from disk on restart.
//
// A rotation, in the order the steps come:
//
//   kCreatePending     write a fresh DEK as the key file's `raft-dek-pending`
//                      and clear `raft-dek-needs-rotation`, in one atomic
//                      rewrite of the key file; add the DEK to the keyring
//                      as a read key.
//   kSwitchWriteKey    make the pending DEK the keyring's write key and cut
//                      a WAL segment whose metadata is sealed under it
//                      (Wal::SwitchWriteKey). From this segment on, every
//                      WAL byte that recovery decodes is under the new key.
//   kRequestSnapshot   ask the consensus layer for a snapshot at an index of
//                      at least `min_snapshot_index`: the first index of the
//                      segment cut by the switch. Recovery from such a
//                      snapshot starts in a segment written under the new
//                      key, so nothing it reads needs the old one. Asked
//                      once per rotation and process; the answer may take a
//                      while (the state machine must get there).
//   kReleaseOldFiles   garbage-collect what lies wholly below the snapshot
//                      and still references `key` (the old DEK): WAL
//                      segments, and snapshots older than the newest, even
//                      ones a retention policy would keep.
//   kPromotePending    the pending DEK becomes `raft-dek` and the old DEK
//                      leaves the key file, in one atomic rewrite; the old
//                      key leaves the keyring.
//   kForgetKey         drop `key` from the keyring: held, but neither
//                      current, pending, nor needed by any retained file.
//
// Why the snapshot index is the segment's first index and not the last
// index sealed under the old key: swarmkit's PR #1766 fixed a rotation that
// finished on a snapshot below entries still sealed under the old key (they
// were written but not yet committed when the snapshot was taken); after the
// old key was forgotten those entries could not be read. Asking for the
// switch segment's first index covers every old-key entry, committed or not,
// and also the etcd rule that recovery from snapshot index I reads the
// segment holding I.
//
// When a rotation is due: the operator asked (`raft-dek-needs-rotation`, or
// RequestRotation()), the current DEK's encryption count reached
// `max_encryptions` (2^30 by default), or the DEK is older than `max_age`
// (off by default). The age is `now - current_created`: the storage facade
// takes `current_created` from the creation time the key file keeps inside
// each DEK record (docs/format.md §11) and `now` from its clock; a DEK with
// no recorded creation time (written before version 2 of the record) never
// rotates for its age. A promoted DEK keeps the time it was made pending,
// so after an age-triggered rotation the new DEK is young and no second
// rotation follows, unless the rotation itself took longer than `max_age`. A
// request that arrives while a rotation runs is queued and starts the next
// rotation once this one is promoted; it is never lost. (A request recorded
// in the key file survives on its own: the flag is cleared when a rotation
// starts, so one set during a rotation is still there when it ends.)
//
// Ownership: a plain value; it holds no file, key or pointer, only the
// policy, a queued request and the snapshot index it already asked for.
// Thread-safety: not thread-safe; the facade calls it from its own
// (single) calling thread. Errors: none; every input is valid, and the
// worst a stale input does is repeat a step whose action is idempotent.
#ifndef SEALWAL_KEYROTATOR_KEY_ROTATOR_H_
#define SEALWAL_KEYROTATOR_KEY_ROTATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::keyrotator {

struct RotationPolicy {
  // Rotate once the current DEK has sealed this many messages. The
  // encrypter's hard limit is 2^32; rotating at 2^30 leaves room for the
  // messages sealed while the rotation runs.
  uint64_t max_encryptions = uint64_t{1} << 30;
  // Rotate once the current DEK is older than this (now - its creation
  // time, both from KeyStoreState). Off when unset.
  std::optional<absl::Duration> max_age;
};

// The store as the facade sees it when it asks for the next step.
struct KeyStoreState {
  // The key file: `raft-dek`, `raft-dek-pending`, `raft-dek-needs-rotation`.
  encryption::KeyId current;
  std::optional<encryption::KeyId> pending;
  bool rotation_requested = false;
  // The current DEK's encryption count (an upper bound, as stored).
  uint64_t current_encryptions = 0;
  // When the current DEK was made (the key file's DekPlaintext `created`);
  // nullopt when unknown (a version-1 record), and then max_age is not
  // applied.
  std::optional<absl::Time> current_created;

  // The key the WAL seals new payloads under, and the first index of the
  // first segment written under it (0 when the WAL was created under it).
  encryption::KeyId wal_write_key;
  uint64_t write_key_first_index = 0;

  // The newest snapshot recovery would use: durable, recorded in the WAL,
  // at or below the HardState's commit (0: none).
  uint64_t snapshot_index = 0;

  // Key ids referenced by retained files (WAL segments, snapshots), and the
  // key ids the keyring holds.
  std::vector<encryption::KeyId> keys_in_use;
  std::vector<encryption::KeyId> keys_held;

  // The facade's clock (StorageOptions::clock) when the state was built.
  absl::Time now = absl::UnixEpoch();
};

enum class StepKind {
  kNone,
  kCreatePending,
  kSwitchWriteKey,
  kRequestSnapshot,
  kReleaseOldFiles,
  kPromotePending,
  kForgetKey,
};

// "none", "create-pending", ... for logs and tests.
const char* StepKindName(StepKind kind);

struct Step {
  StepKind kind = StepKind::kNone;
  // kSwitchWriteKey, kPromotePending: the pending key.
  // kReleaseOldFiles, kForgetKey: the key that is going away.
  encryption::KeyId key;
  // kRequestSnapshot: the least acceptable snapshot index.
  // kReleaseOldFiles: files wholly below this index may go.
  uint64_t index = 0;

  std::string DebugString() const;
};

class KeyRotator {
 public:
  explicit KeyRotator(RotationPolicy policy = {}) : policy_(policy) {}

  // Asks for a rotation (an operator's request that did not come through
  // the key file). Queued when one is already running.
  void RequestRotation() { requested_ = true; }

  // True when a rotation should start from `state` (whether or not one is
  // running).
  bool RotationDue(const KeyStoreState& state) const;

  // The next step from `state`. Call again after the step's action is
  // durable; kNone when nothing is to be done now (including "waiting for
  // the snapshot that was already requested").
  Step Next(const KeyStoreState& state);

  const RotationPolicy& policy() const { return policy_; }

 private:
  RotationPolicy policy_;
  bool requested_ = false;
  // The (pending key, index) of the snapshot already asked for, so that a
  // rotation asks once per process.
  std::optional<std::pair<uint32_t, uint64_t>> snapshot_asked_;
};

}  // namespace sealwal::keyrotator

#endif  // SEALWAL_KEYROTATOR_KEY_ROTATOR_H_
