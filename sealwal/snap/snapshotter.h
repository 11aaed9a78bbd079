// sealwal/snap/snapshotter.h: etcd-compatible snapshot files, plaintext or
// encrypted, inline or streamed (docs/format.md §12,
// docs/format.md §12).
//
// Files (in one directory; sealwal/snap/format.h has every byte):
//
//   %016x-%016x.snap          (term, index) etcd's snappb.Snapshot{crc,
//                             data = raftpb.Snapshot}; etcd 3.4 reads ours
//                             and we read etcd's
//   %016x-%016x.snap.stream   the data of a streamed snapshot; its .snap
//                             holds a 72-byte StreamRef instead of the data
//   <name>.tmp                being written; ignored, removed by Purge
//   <name>.broken             a .snap that failed to decode, renamed by Load
//
// Kinds of directory: plaintext (`snap-v3`, etcd's `member/snap`) when no
// keyring (sealwal/encryption/keyring.h, the same one the WAL codec uses)
// is given; encrypted (`snap-v3-encrypted`) with one. The name decides
// (wal::IsEncryptedDirName) where it says "-encrypted": Open refuses such a
// directory without a keyring (kFailedPrecondition, before anything is
// created or read); a keyring on any other name makes it encrypted. With a
// keyring, Load accepts only encrypted .snap files and streams. Each .snap is sealed
// by a new Encrypter on the keyring's write key, counting one message on
// that DEK's shared usage counter (a streamed one counts two: its .snap
// record and the stream's key derivation). Encrypted,
// raftpb.Snapshot.data is an EncryptedRecord sealing the data (or the
// StreamRef) with associated data binding purpose "snapshot", index, term,
// key id and the ConfState, so data cannot be moved to another snapshot.
// Index, term and ConfState stay readable (etcd lists the files; docs/
// security.md). The directory's name, not the files, says which kind it is.
//
// Save (inline): the file is written as <name>.tmp, fsynced, renamed to
// <name>, and the directory fsynced (etcd fsyncs in place, so a crash can
// leave a torn .snap; ours cannot). Streamed: the stream is written and
// made durable under its final name first (stream.h), then the .snap
// naming it is written as above. A crash at any point leaves either no new
// .snap (an orphan stream or .tmp, ignored and later purged) or a complete
// snapshot. Saving a snapshot that exists replaces it atomically.
//
// Load (etcd's loadMatching): .snap files newest first (by name: term,
// then index). For each:
//   - it fails to read/decode (empty, not protobuf, CRC mismatch): renamed
//     to <name>.broken, the next one is tried (etcd's behaviour);
//   - it does not match (LoadNewestAvailable: not one of the WAL's
//     snapshot positions): skipped;
//   - it decodes (its CRC matches) but does not decrypt. Load stops,
//     names the file and key id, and renames or modifies nothing:
//       no DEK with its key id (also: it names a stream under a key not
//       held)              kNotFound, encryption::IsMissingKeyError true
//                          (a key problem: exit 2 in the CLI)
//       authentication fails under a held key, or a plaintext record in an
//       encrypted directory
//                          kDataLoss (tampering or a wrong key under the
//                          right id: exit 1 in the CLI), as the WAL reports
//                          the same failures;
//   - it names a stream that is missing, of another snapshot, or broken
//     (header, size, or its first or last chunk fails to authenticate; all
//     chunks with StreamCheck::kFull): the snapshot is invalid and the next
//     one is tried; nothing is renamed (the .snap itself is intact);
//   - otherwise it is returned.
// No valid snapshot: kNotFound "snap: no available snapshot" (etcd's
// ErrNoSnapshot). Every file skipped is listed in the optional LoadReport.
//
// Ownership: a Snapshotter borrows its FileSystem (must outlive it) and
// shares its Keyring. A LoadedSnapshot owns its data or its stream reader.
// Thread-safety: a Snapshotter is safe to use from several threads for
// different snapshots; saving and loading the same snapshot at once, or
// Purge concurrently with Load, is the caller's to avoid (as in etcd).
#ifndef SEALWAL_SNAP_SNAPSHOTTER_H_
#define SEALWAL_SNAP_SNAPSHOTTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/env/file_system.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/snap/format.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/snap/stream.h"
#include "sealwal/wal/snapshot_position.h"

namespace sealwal::snap {

// How much of a streamed snapshot Load checks before returning it. Every
// chunk is authenticated when it is read anyway; kFull only moves that
// check (and a fall back to an older snapshot) before Load returns, at the
// cost of reading the stream twice.
enum class StreamCheck {
  kEnds,  // header, size, first and last chunk (default)
  kFull,  // every chunk
};

struct SnapshotterOptions {
  env::FileSystem* fs = env::DefaultFileSystem();
  // Null: a plaintext directory. Otherwise every snapshot is sealed under
  // the write key, and only encrypted snapshots (and streams) are accepted
  // on load. Required for an "-encrypted" directory (see the top of this file).
  std::shared_ptr<const encryption::Keyring> keys;
  StreamOptions stream;          // streamed saves
  StreamReadOptions stream_read; // streamed loads
  StreamCheck stream_check = StreamCheck::kEnds;
  // Create the directory (0700, with parents) when missing.
  bool create_dir = false;
};

// One file Load passed over, and why.
struct SkippedSnapshot {
  std::string file;
  absl::Status reason;
  bool renamed_broken = false;  // renamed to <file>.broken
};
struct LoadReport {
  std::vector<SkippedSnapshot> skipped;
};

// A snapshot as Load returns it.
struct LoadedSnapshot {
  std::string file;  // the .snap name
  raftpb::SnapshotMetadata metadata;
  encryption::Algorithm algorithm = encryption::Algorithm::kNotEncrypted;
  encryption::KeyId key_id;
  // Inline snapshots: the data. Streamed: empty; read `stream`.
  std::string data;
  std::unique_ptr<StreamReader> stream;  // streamed snapshots only
  bool streamed() const { return stream != nullptr; }
  uint64_t size() const { return stream != nullptr ? stream->size() : data.size(); }
  // The whole snapshot as raftpb.Snapshot (inline only; a streamed one is
  // kFailedPrecondition: read it through `stream`). Moves the data out.
  absl::StatusOr<raftpb::Snapshot> TakeRaftSnapshot();
};

// What one .snap holds, read without decrypting or renaming anything
// (`sealwal snap inspect`).
struct SnapFileInfo {
  std::string file;
  uint64_t file_size = 0;
  absl::Status status;  // decode status (kDataLoss and GetSnapError class)
  raftpb::SnapshotMetadata metadata;
  bool encrypted_record = false;  // data parsed as an EncryptedRecord
  encryption::Algorithm algorithm = encryption::Algorithm::kNotEncrypted;
  int raw_algorithm = 0;          // EncryptedRecord.algorithm as stored
  encryption::KeyId key_id;
  uint64_t data_size = 0;         // plaintext bytes of raftpb.Snapshot.data
  std::optional<StreamRef> stream_ref;  // plaintext refs (or decrypted ones)
  // With a keyring and an encrypted record: the result of decrypting it
  // (kNotFound/IsMissingKeyError for a missing key, kDataLoss when it does
  // not authenticate); OK otherwise.
  absl::Status decrypt_status;
};

class Snapshotter;

// Writes a streamed snapshot: Append the data, then Commit. Destroying it
// uncommitted aborts (no .snap is written; the partial stream is removed).
class SnapshotStreamSaver {
 public:
  ~SnapshotStreamSaver();
  absl::Status Append(absl::string_view data) { return writer_->Append(data); }
  // Finishes the stream (durable, renamed) and then writes the .snap that
  // references it. The snapshot exists once this returns OK.
  absl::Status Commit();
  uint64_t bytes_appended() const { return writer_->bytes_appended(); }

 private:
  friend class Snapshotter;
  SnapshotStreamSaver(Snapshotter* owner, raftpb::SnapshotMetadata metadata,
                      std::unique_ptr<StreamWriter> writer)
      : owner_(owner), metadata_(std::move(metadata)), writer_(std::move(writer)) {}
  Snapshotter* owner_;
  raftpb::SnapshotMetadata metadata_;
  std::unique_ptr<StreamWriter> writer_;
  bool committed_ = false;
};

class Snapshotter {
 public:
  // kNotFound when `dir` does not exist (unless options.create_dir);
  // kFailedPrecondition for an "-encrypted" directory without a keyring.
  static absl::StatusOr<std::unique_ptr<Snapshotter>> Open(std::string dir,
                                                           SnapshotterOptions options = {});
  // Opens `dir` for List and Inspect only (`sealwal snap inspect`): an
  // "-encrypted" directory may be opened without its keyring, since
  // nothing is decrypted, written or renamed. A keyring on a plaintext name
  // is still kFailedPrecondition; options.create_dir is ignored. Save,
  // SaveSnap, SaveStream, Load, LoadNewestAvailable and Purge on the
  // result return kFailedPrecondition.
  static absl::StatusOr<std::unique_ptr<Snapshotter>> OpenForInspect(
      std::string dir, SnapshotterOptions options = {});

  const std::string& dir() const { return dir_; }
  bool encrypted() const { return options_.keys != nullptr; }

  // Saves an inline snapshot (etcd's SaveSnap; an empty snapshot, index 0,
  // is a no-op). kInvalidArgument for data that starts with the StreamRef
  // magic (it would read back as a stream reference). I/O errors; on error
  // the previous file of that name, if any, is intact.
  absl::Status SaveSnap(const raftpb::Snapshot& snapshot);
  // The same from parts, without copying `data` into a message.
  absl::Status Save(const raftpb::SnapshotMetadata& metadata, absl::string_view data);

  // Starts a streamed snapshot. kInvalidArgument for index 0.
  absl::StatusOr<std::unique_ptr<SnapshotStreamSaver>> SaveStream(
      const raftpb::SnapshotMetadata& metadata);

  // The newest valid snapshot (see the top of this file).
  absl::StatusOr<LoadedSnapshot> Load(LoadReport* report = nullptr);
  // The newest valid snapshot whose (index, term) is one of `positions`
  // (etcd's LoadNewestAvailable with walpb.Snapshot positions).
  absl::StatusOr<LoadedSnapshot> LoadNewestAvailable(
      absl::Span<const wal::SnapshotPosition> positions, LoadReport* report = nullptr);

  // The .snap file names, newest first (etcd's snapNames; *.tmp,
  // *.broken, streams and foreign files are left out).
  absl::StatusOr<std::vector<std::string>> List() const;

  // Removes every snapshot but the `keep` newest (keep >= 1): each .snap,
  // then its stream; plus orphan streams and .tmp files older than the
  // oldest snapshot kept. .broken files are kept for the operator. The
  // directory is fsynced. kInvalidArgument for keep 0.
  absl::Status Purge(size_t keep);

  // Reads one .snap without decrypting or modifying anything.
  absl::StatusOr<SnapFileInfo> Inspect(const std::string& file) const;

 private:
  friend class SnapshotStreamSaver;
  Snapshotter(std::string dir, SnapshotterOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {}
  static absl::StatusOr<std::unique_ptr<Snapshotter>> OpenImpl(std::string dir,
                                                               SnapshotterOptions options,
                                                               bool inspect_only);
  // kFailedPrecondition for a Snapshotter from OpenForInspect.
  absl::Status CheckNotInspectOnly() const;

  absl::StatusOr<LoadedSnapshot> LoadMatching(
      absl::Span<const wal::SnapshotPosition> positions, bool match_all, LoadReport* report);
  // Writes the .snap holding `data` (sealed when encrypted), atomically.
  absl::Status WriteSnapFile(const raftpb::SnapshotMetadata& metadata, absl::string_view data);
  // Reads one .snap: decode errors are kDataLoss with a SnapError class;
  // decrypt failures kNotFound (missing key) or kDataLoss; stream problems kDataLoss/kNotFound
  // with stream_problem set.
  absl::StatusOr<LoadedSnapshot> ReadOne(const std::string& name, bool* stream_problem);

  const std::string dir_;
  const SnapshotterOptions options_;
  bool inspect_only_ = false;  // set once by OpenImpl, before it is shared
};

}  // namespace sealwal::snap

#endif  // SEALWAL_SNAP_SNAPSHOTTER_H_
