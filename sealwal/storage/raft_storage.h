// sealwal/storage/raft_storage.h: the one surface a consensus implementation
// calls. RaftStorage keeps a Raft node's WAL, snapshots and (encrypted
// stores) node key file in one data directory, and carries out the key
// rotator's steps (sealwal/keyrotator/key_rotator.h) inside its own calls.
//
// Data directory (DATADIR):
//   wal-v3/ | wal-v3-encrypted/     the WAL (sealwal/wal/wal.h)
//   snap-v3/ | snap-v3-encrypted/   snapshots (sealwal/snap/snapshotter.h)
//   node.key                        the key file (encrypted stores only)
// The directory names say which kind a store is; a store holding both
// kinds is refused (kFailedPrecondition).
//
// Life cycle:
//   Open(options)        loads the key file (every DEK it holds: raft-dek is
//                        the write key, raft-dek-pending a read key) or, with
//                        create_if_missing, makes a new store: node.key
//                        first (a fresh DEK, locked under the unlock key when
//                        one is given), then the snapshot directory, then the
//                        WAL (Wal::Create, atomic): a store exists once its
//                        WAL exists, and a crash before that leaves a key
//                        file that the next Open reuses. A journal left by
//                        an interrupted `store migrate` (migrate.h) is
//                        honoured first: a writing Open finishes that move,
//                        a read-only one reads the new store where it is.
//   Bootstrap()          once, before any save: repairs a torn WAL tail
//                        (Wal::Repair), loads the newest snapshot that has a
//                        WAL snapshot record covered by the commit index
//                        (Snapshotter::LoadNewestAvailable: a .snap that
//                        fails its CRC is renamed .broken and the next older
//                        one is used; one that decodes but fails to
//                        authenticate under a held key, i.e. was tampered
//                        with, is left as it is, listed in `skipped`, and the
//                        next older one is used), opens the WAL at it and
//                        reads the HardState, metadata and entries after it.
//                        A snapshot that decodes but names a DEK the key file
//                        does not hold is an error (kNotFound,
//                        encryption::IsMissingKeyError), never a silent fall
//                        back to an older snapshot, even when one under a
//                        held key exists: a missing key means the wrong key
//                        file, and falling back would quietly roll the state
//                        machine back. Nothing is renamed in that case.
//   SaveEntries(hs, es)  Wal::Save (durable on return when raft needs it),
//                        then any due rotation step.
//   SubmitEntries(hs, es, done) / Flush()
//                        the pipelined form (Wal::Submit): returns once the
//                        batch is sealed and queued; `done` fires in order
//                        once it is durable. Every other call first waits
//                        for the submissions before it.
//   SaveSnapshot(m, d)   / SaveSnapshotStream(m) -> Append... Commit: see
//                        "Snapshot order" below.
//   GC(keep)             removes snapshots beyond the `keep` newest, then WAL
//                        segments wholly below the oldest snapshot kept (the
//                        segment holding it stays), then any rotation step.
//   RequestRotation()    asks for a DEK rotation (as the key file's
//                        raft-dek-needs-rotation does).
//   Close()              closes the WAL (sticky error of a failed WAL).
//
// Snapshot order (etcd 3.5's): 1. the .snap (and its stream) is written and
// made durable (tmp, fsync, rename, fsync dir); 2. the WAL snapshot record
// is appended and fsynced (Wal::SaveSnapshot); 3. Wal::ReleaseLockTo. Why it
// is crash-safe: recovery only uses a .snap whose (index, term) has a WAL
// snapshot record covered by the HardState's commit (Wal::
// ValidSnapshotEntries), so a crash after 1 leaves a .snap that recovery
// ignores (the WAL still holds everything from the previous snapshot on);
// after 2 the snapshot and the WAL agree. The opposite order (swarmkit's,
// WAL record first) would need recovery to tolerate a record whose .snap is
// missing. Nothing is deleted before the new snapshot is durable and
// recorded, and segments are deleted only below the oldest snapshot kept.
//
// Rotation (encrypted stores): the facade owns a keyrotator::KeyRotator.
// After each SaveEntries / SaveSnapshot / GC (never on another thread) it
// describes the store in a KeyStoreState and carries out each step the
// rotator returns as one durable action, until the rotator answers kNone:
//   kCreatePending   one atomic key-file update: raft-dek-pending = a new
//                    DEK, raft-dek-needs-rotation cleared; keyring AddKey.
//   kSwitchWriteKey  keyring SetWriteKey(pending) + Wal::SwitchWriteKey():
//                    a segment whose metadata is sealed under the new key;
//                    its first index (last index + 1) is the least index the
//                    rotation's snapshot may have.
//   kRequestSnapshot options.request_snapshot(min_index), once per rotation
//                    and process; the answer is a later SaveSnapshot. (No
//                    callback: the rotation waits until some SaveSnapshot
//                    at min_index or later comes.)
//   kReleaseOldFiles WAL segments wholly below the newest snapshot, and
//                    older snapshots that need the old key (or whose WAL
//                    segments went), are deleted; directories fsynced.
//   kPromotePending  one atomic key-file update: pending becomes raft-dek,
//                    the old DEK leaves the file; it leaves the keyring.
//   kForgetKey       a held key no file needs leaves the keyring.
// Every input is read back from disk after a restart: the key file's
// headers, the key id sealing each retained segment's metadata record
// (wal::RecordReader + MultiDecrypter::KeyIdOf; the tail segment's key
// becomes the keyring's write key before the WAL is opened for append) and
// the key id of each retained .snap (Snapshotter::Inspect). A crash between
// two steps leaves a state from which the rotator repeats or continues;
// every action is idempotent. docs/architecture.md has the reasoning.
//
// Operator requests in the key file (`sealwal store rotate` sets
// raft-dek-needs-rotation) are noticed cheaply: SaveEntries compares the
// key file's size with the last one seen (the header line changes it) and
// re-reads the file when it changed, and in any case every
// `key_file_check_interval` batches (64 by default).
//
// DEK age (options.rotation.max_age): every DEK the facade makes (a new
// store's, a rotation's pending one) records options.clock() as its
// creation time in the key file, and promotion keeps it. Each read of the
// key file remembers raft-dek's creation time; each SaveEntries compares it
// with options.clock() (no read, no decryption) and, once the DEK is older
// than max_age, takes the full look, where the rotator starts a rotation
// as it does for the counter threshold. Not while a rotation runs: the
// old DEK is current until the promotion, and the new one is then young.
// A DEK with no recorded creation time (an older key file) is not rotated
// for its age.
//
// Errors: absl::Status. A wrong unlock key is kPermissionDenied and
// modifies nothing; a missing DEK kNotFound (IsMissingKeyError); corruption
// kDataLoss; the WAL's errors keep their wal::WalErrorClass. After a failed
// write or fsync the WAL is failed for good and so is the storage, and so
// is it after a failed snapshot write (SaveSnapshot, Commit), rotation
// step, GC removal or DEK count reservation: their durability is unknown,
// and going on would build on them or fsync the same directory again.
// Every later save returns that first error; the caller restarts.
//
// Thread-safety: not thread-safe (as Wal): the consensus layer calls one
// RaftStorage from one thread. The request_snapshot callback runs on that
// thread inside SaveEntries/SaveSnapshot/GC and must not call back into the
// storage: it records the request and answers with a later SaveSnapshot.
#ifndef SEALWAL_STORAGE_RAFT_STORAGE_H_
#define SEALWAL_STORAGE_RAFT_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/env/file_system.h"
#include "sealwal/keyrotator/key_rotator.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/snap/snapshotter.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/log_reader.h"
#include "sealwal/wal/wal.h"

namespace sealwal::storage {

inline constexpr absl::string_view kKeyFileName = "node.key";
inline constexpr absl::string_view kPlaintextSnapDirName = "snap-v3";
inline constexpr absl::string_view kEncryptedSnapDirName = "snap-v3-encrypted";

struct StorageOptions {
  std::string data_dir;
  // Borrowed; must outlive the storage.
  env::FileSystem* fs = env::DefaultFileSystem();
  // The key file's unlock key (nullopt: the file is not locked). A new
  // store's key file is locked under it.
  std::optional<pem::UnlockKey> unlock_key;
  // When a KEK source holds unlock_key (sealwal/kek/key_file_kek.h): its
  // binding, written into a new store's key file. An existing key file
  // keeps its own.
  std::optional<pem::KekBinding> kek_binding;
  // Make a new store when DATADIR holds no WAL.
  bool create_if_missing = false;
  // For a new store: encrypted (default) or plaintext.
  bool encrypted = true;
  // For a new store: the WAL metadata.
  std::string metadata;
  // Read only (verify, inspect): no repair, no locks, no writes; the key
  // file's counts are not persisted and nothing may be saved.
  bool read_only = false;

  keyrotator::RotationPolicy rotation;
  uint64_t segment_size = wal::kDefaultSegmentSize;
  wal::Preallocation preallocation = wal::Preallocation::kZeroFill;
  // How far one reservation raises a DEK's stored count in the key file.
  uint64_t reservation_block = encryption::kDefaultReservationBlock;
  // SubmitEntries: batches in flight at most (WalOptions::pipeline_depth).
  size_t pipeline_depth = 16;
  // Re-read the key file at least every this many SaveEntries calls.
  uint64_t key_file_check_interval = 64;
  // The time: new DEKs' creation times and their age for rotation.max_age.
  // Tests move it; null means absl::Now.
  std::function<absl::Time()> clock = absl::Now;

  // The consensus layer's snapshot hook: "please save a snapshot at an
  // index >= min_index". Must not call into the storage (see above).
  std::function<void(uint64_t min_index)> request_snapshot;
  // Told after each rotation step is durable (logs, the CLI's lines).
  std::function<void(const keyrotator::Step& step)> on_rotation_step;
};

// The log after the snapshot, as Raft's Storage interface reads it. Served
// by the WAL's LogReader (sealwal/wal/log_reader.h): 16 bytes per entry in
// memory, entries read and decrypted from disk on demand; entries saved
// after Bootstrap appear once durable, and GC compacts it. Raft's
// ErrCompacted / ErrUnavailable are kOutOfRange with messages starting
// "compacted:" / "unavailable:". Valid until the RaftStorage is destroyed;
// the methods may be called from any thread.
class LogView {
 public:
  virtual ~LogView() = default;
  // The first index held (snapshot index + 1) and the last (FirstIndex - 1
  // when empty).
  virtual uint64_t FirstIndex() const = 0;
  virtual uint64_t LastIndex() const = 0;
  // The term of entry i (the snapshot's term for FirstIndex - 1);
  // kOutOfRange outside [FirstIndex - 1, LastIndex].
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;
  // Entries [lo, hi); kOutOfRange unless FirstIndex <= lo <= hi <= LastIndex + 1.
  virtual absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi) const = 0;
};

// What Bootstrap returns.
struct BootstrapState {
  // The snapshot recovery starts from (nullopt: none; the log starts at 1).
  std::optional<snap::LoadedSnapshot> snapshot;
  raftpb::HardState hardstate;
  std::string metadata;
  std::unique_ptr<LogView> log;
  // .snap files passed over (renamed .broken, or without a WAL record).
  std::vector<snap::SkippedSnapshot> skipped;
  // Wal::Repair truncated a torn tail.
  bool repaired_torn_tail = false;
};

// What Verify returns.
struct VerifyState {
  // The newest usable snapshot, as Bootstrap picks it (nullopt: none).
  std::optional<snap::LoadedSnapshot> snapshot;
  std::vector<snap::SkippedSnapshot> skipped;
  // Where the WAL was read from: its oldest readable position
  // (wal::Wal::OldestReadablePosition), at or below the snapshot's index.
  wal::SnapshotPosition wal_start;
  raftpb::HardState hardstate;
  std::string metadata;
  // Every entry the retained WAL holds after wal_start (no cache).
  std::unique_ptr<wal::LogReader> log;
};

// The whole data of a loaded snapshot: its inline data, or its stream read
// to the end (every chunk authenticated). Moves inline data out.
absl::StatusOr<std::string> ReadSnapshotData(snap::LoadedSnapshot& snapshot);

// A retained file and the DEK it needs (0 for a plaintext file).
struct RetainedFile {
  std::string name;       // relative to DATADIR ("wal-v3-encrypted/...wal")
  uint64_t index = 0;     // segment: first index; snapshot: its index
  uint64_t term = 0;      // snapshots
  encryption::KeyId key;  // the key its metadata / data is sealed under
  bool key_in_key_file = true;
};

// What DATADIR holds (`sealwal store inspect`, the rotation's inputs).
struct StoreInventory {
  bool encrypted = false;
  std::vector<RetainedFile> segments;   // oldest first
  std::vector<RetainedFile> snapshots;  // newest first
  std::optional<encryption::KeyId> current_key;  // raft-dek
  std::optional<encryption::KeyId> pending_key;  // raft-dek-pending
  bool needs_rotation = false;
  // node.key is locked (its DEKs wrapped under the KEK); false: they are in
  // the clear (autolock off).
  bool key_file_locked = false;
  // The KEK source holding node.key's unlock key (its kek-source header);
  // nullopt: none (an unlock key the operator holds, or unlocked).
  std::optional<std::string> kek_source;
  uint64_t current_encryptions = 0;  // stored count of raft-dek
  std::optional<absl::Time> current_created;  // raft-dek's creation (nullopt: unknown)
  // Every key a retained file needs is in the key file.
  bool all_keys_present = true;
};

class SnapshotWriter;

class RaftStorage {
 public:
  ~RaftStorage();
  RaftStorage(const RaftStorage&) = delete;
  RaftStorage& operator=(const RaftStorage&) = delete;

  // See the top of this file. kNotFound when DATADIR holds no store and
  // create_if_missing is off; kPermissionDenied for a missing or wrong
  // unlock key (nothing is modified).
  static absl::StatusOr<std::unique_ptr<RaftStorage>> Open(StorageOptions options);

  // Once (kFailedPrecondition after the first call).
  absl::StatusOr<BootstrapState> Bootstrap();

  // A read-only check of everything DATADIR retains (`sealwal store
  // verify`), instead of Bootstrap: the newest usable snapshot, and the WAL
  // scanned once from its oldest readable position, the CRC chain and
  // metadata checked and every payload authenticated. `visitor` (borrowed,
  // may be null) sees every entry's plaintext during that scan (see
  // wal::EntryVisitor), so the caller need not read the log again.
  // A torn tail ends the log there (log->torn_tail()), as the repair of a
  // writer's Open would. kFailedPrecondition unless opened read_only, or
  // after Bootstrap.
  absl::StatusOr<VerifyState> Verify(wal::EntryVisitor* visitor);

  // Appends entries and the HardState (Wal::Save), then runs due rotation
  // steps. kFailedPrecondition before Bootstrap or read-only.
  absl::Status SaveEntries(const raftpb::HardState& hardstate,
                           absl::Span<const raftpb::Entry> entries);
  // Pipelined SaveEntries (Wal::Submit, whose comment has the contract):
  // seals and queues the batch, runs due rotation steps, and returns;
  // `done` is called once, on the WAL's I/O thread, in submission order,
  // with OK once the batch is durable or the error that lost it (it must
  // not call into the storage). A refused batch (a gap, a payload the
  // codec refuses) returns its error, `done` is never called and the
  // storage stays usable, as with SaveEntries; a write or fsync error
  // fails the storage for good.
  absl::Status SubmitEntries(const raftpb::HardState& hardstate,
                             absl::Span<const raftpb::Entry> entries, wal::Wal::Completion done);
  // Waits for every submitted batch (also on a failed storage, so that
  // every completion has fired); returns the storage's first error.
  absl::Status Flush();
  // Saves an inline snapshot, records it in the WAL, releases the locks
  // below it (see "Snapshot order"), then runs due rotation steps.
  absl::Status SaveSnapshot(const raftpb::SnapshotMetadata& metadata, absl::string_view data);
  // The streamed variant: Append the data, then Commit (which records it
  // as SaveSnapshot does). Destroying it uncommitted aborts. The storage
  // must outlive the writer.
  absl::StatusOr<std::unique_ptr<SnapshotWriter>> SaveSnapshotStream(
      const raftpb::SnapshotMetadata& metadata);
  // Keeps the `keep_old_snapshots` newest snapshots (>= 1) and the WAL
  // segments they need; removes the rest. Then runs due rotation steps.
  absl::Status GC(size_t keep_old_snapshots);
  // Asks for a DEK rotation (no-op for a plaintext store).
  void RequestRotation();
  // What a save does for rotation, without saving: notices an operator's
  // request in the key file and runs any due step. For an idle node, whose
  // saves are rare (a stat of the key file when nothing is due).
  // kFailedPrecondition before Bootstrap or read-only.
  absl::Status Poll();
  absl::Status Close();

  // DATADIR's files and the key each needs (reads the key file).
  absl::StatusOr<StoreInventory> Inventory();
  // The rotator's input as it would be built now (tests).
  absl::StatusOr<keyrotator::KeyStoreState> KeyState();

  bool encrypted() const { return keyring_ != nullptr; }
  // The WAL's last index (after Bootstrap).
  uint64_t last_index() const;
  // The newest snapshot recorded (0: none).
  uint64_t snapshot_index() const { return snapshot_index_; }
  // The keyring's write key (nullopt for plaintext).
  std::optional<encryption::KeyId> write_key() const;
  const std::string& wal_dir() const { return wal_dir_; }
  const std::string& snap_dir() const { return snap_dir_; }

  // Sets raft-dek-needs-rotation: true in DATADIR's key file (one atomic
  // update under the key file's lock; safe while a writer runs).
  static absl::Status RequestRotationInKeyFile(const std::string& data_dir,
                                               const std::optional<pem::UnlockKey>& unlock_key,
                                               env::FileSystem* fs = env::DefaultFileSystem());

 private:
  friend class SnapshotWriter;
  explicit RaftStorage(StorageOptions options);

  absl::Status OpenStore();
  absl::StatusOr<std::optional<snap::LoadedSnapshot>> LoadNewestSnapshot(
      const wal::WalOptions& wo, std::vector<snap::SkippedSnapshot>* skipped);
  absl::Status CheckWritable();
  // error_, or the first failed count reservation (which then becomes error_).
  absl::Status StickyError();
  // After a snapshot's file is durable: the WAL record and the lock release.
  absl::Status RecordSnapshot(const raftpb::SnapshotMetadata& metadata);
  // Runs rotation steps until kNone (bounded).
  absl::Status AdvanceRotation(bool force_check);
  absl::Status DoStep(const keyrotator::Step& step);
  absl::StatusOr<keyrotator::KeyStoreState> BuildState(const StoreInventory& inv);
  // Segment and snapshot key ids, cached by file name.
  absl::StatusOr<encryption::KeyId> SegmentKey(const std::string& name);
  absl::StatusOr<encryption::KeyId> SnapshotKey(const std::string& name);
  // Deletes WAL segments before the one holding `index`.
  absl::Status RemoveSegmentsBelow(uint64_t index);
  absl::Status RemoveSnapshot(const std::string& name);
  // GC's removals (GC fails the storage when they fail).
  absl::Status CollectGarbage(size_t keep_old_snapshots);
  absl::Status Fail(absl::Status s);
  // Fail(s) when the WAL failed for good; s alone for a refused batch.
  absl::Status FailIfWalFailed(absl::Status s);
  absl::Time Now() const;
  // The current DEK is older than rotation.max_age, by the creation time
  // seen at the last read of the key file (no read here).
  bool AgeDue() const;

  StorageOptions options_;
  env::FileSystem* fs_;
  std::string wal_dir_;
  std::string snap_dir_;
  std::string key_path_;
  std::shared_ptr<pem::KeyReadWriter> krw_;
  std::shared_ptr<encryption::Keyring> keyring_;
  std::unique_ptr<wal::PayloadCodec> codec_;
  std::unique_ptr<snap::Snapshotter> snapshotter_;
  std::unique_ptr<wal::Wal> wal_;
  // What Bootstrap recovered, served from disk; shared with the LogView it
  // returned, and compacted before segments are removed.
  std::shared_ptr<wal::LogReader> log_;
  keyrotator::KeyRotator rotator_;
  bool bootstrapped_ = false;
  bool in_rotation_ = false;  // guards against re-entry
  uint64_t snapshot_index_ = 0;
  uint64_t write_key_first_index_ = 0;
  uint64_t saves_since_check_ = 0;
  std::optional<uint64_t> key_file_size_;
  bool rotation_active_ = false;  // the key file held a pending DEK when last read
  // The rotator had nothing to do but wait for a snapshot when last asked.
  bool waiting_for_snapshot_ = false;
  bool requested_ = false;
  // raft-dek's creation time at the last read of the key file, so that each
  // save can check its age without reading and decrypting the file.
  std::optional<absl::Time> current_created_;
  std::map<std::string, encryption::KeyId> segment_keys_;
  std::map<std::string, encryption::KeyId> snapshot_keys_;
  absl::Status error_;
  // Set by the keyring's reservation hook (any thread; shared because the
  // keyring may outlive this object).
  struct KeyWriteError {
    absl::Mutex mu;
    absl::Status status ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<KeyWriteError> key_write_error_ = std::make_shared<KeyWriteError>();
};

// A streamed snapshot being saved (RaftStorage::SaveSnapshotStream).
class SnapshotWriter {
 public:
  ~SnapshotWriter();
  absl::Status Append(absl::string_view data);
  // Makes the stream and its .snap durable, then records the snapshot as
  // RaftStorage::SaveSnapshot does.
  absl::Status Commit();

 private:
  friend class RaftStorage;
  SnapshotWriter(RaftStorage* owner, raftpb::SnapshotMetadata metadata,
                 std::unique_ptr<snap::SnapshotStreamSaver> saver)
      : owner_(owner), metadata_(std::move(metadata)), saver_(std::move(saver)) {}
  RaftStorage* owner_;
  raftpb::SnapshotMetadata metadata_;
  std::unique_ptr<snap::SnapshotStreamSaver> saver_;
};

}  // namespace sealwal::storage

#endif  // SEALWAL_STORAGE_RAFT_STORAGE_H_
