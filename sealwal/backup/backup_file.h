// sealwal/backup/backup_file.h: the bytes of a `sealwal store backup` file
// (every byte is documented in docs/format.md §14).
//
//   header    16 bytes: "SWBACKUP" | version (4, LE) = 1 | reserved (4) = 0
//   members   the files' bytes back to back, in manifest order, no headers
//   manifest  backuppb.Manifest (sealwal/proto/backup.proto): every member's
//             name, offset, size and XXH3-128, and the consistency point
//   footer    28 bytes: manifest size (4, LE) | XXH3-128 of the manifest
//             (16, canonical) | "SWBAKEND"
//
// The index sits at the end (as in zip or an SST) so that the writer can
// stream members of sizes it learns as it copies; a reader finds it from
// the file's size. A truncated file loses its footer and is refused.
//
// The checksums find damage (a flipped bit, a cut copy); they do not
// authenticate: the AEAD on every sealed payload does that, and restore
// decrypts everything before it declares success (sealwal/backup/backup.h).
//
// Ownership: both classes borrow their FileSystem (must outlive them).
// Thread-safety: none; one thread per object.
// Errors: a file that is not a backup, truncated, damaged or of a newer
// version is kDataLoss (kFailedPrecondition for a newer version) naming
// the file; I/O errors are the file system's.
#ifndef SEALWAL_BACKUP_BACKUP_FILE_H_
#define SEALWAL_BACKUP_BACKUP_FILE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/env/file_system.h"
#include "sealwal/proto/backup.pb.h"

namespace sealwal::backup {

inline constexpr absl::string_view kHeaderMagic = "SWBACKUP";
inline constexpr absl::string_view kFooterMagic = "SWBAKEND";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kFooterSize = 4 + 16 + 8;
// A manifest lists a few hundred members; anything near this is not ours.
inline constexpr size_t kMaxManifestSize = size_t{16} << 20;
// node.key is a few KiB; restore reads it whole, so it is bounded.
inline constexpr uint64_t kMaxKeyFileSize = uint64_t{1} << 20;
inline constexpr absl::string_view kKeyFileMember = "node.key";

// True when `name` may be a member of a backup of a store of that kind:
// "node.key" (encrypted only), "<wal dir>/<seq>-<index>.wal",
// "<snap dir>/<term>-<index>.snap" or ".snap.stream", with the directory
// names of that kind. Nothing else (no "..", no other directory) is ever
// written by restore.
bool IsValidMemberName(absl::string_view name, bool encrypted);

// Checks what the manifest says about itself (also done by Open): version,
// member names (valid, unique, wal segments and snapshots of one kind),
// offsets contiguous from the header to `members_end`, checksum sizes, the
// key-material fields consistent with the members, the consistency point
// naming members that exist. kDataLoss naming the first problem.
absl::Status CheckManifest(const backuppb::Manifest& manifest, uint64_t members_end);

// Writes a backup file atomically: `<path>.tmp` (created 0600 with
// O_EXCL|O_NOFOLLOW), then on Commit: manifest, footer, fsync, rename,
// directory fsync. Destroyed before Commit (or after a failed one) it
// removes the temp file, so `path` is either absent, as before, or whole.
class BackupFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<BackupFileWriter>> Create(env::FileSystem* fs,
                                                                  std::string path);
  ~BackupFileWriter();
  BackupFileWriter(const BackupFileWriter&) = delete;
  BackupFileWriter& operator=(const BackupFileWriter&) = delete;

  // One member at a time: Begin, Append*, End.
  absl::Status BeginMember(absl::string_view name);
  absl::Status Append(absl::string_view data);
  absl::Status EndMember();
  // Bytes written so far (header and members).
  uint64_t offset() const { return offset_; }

  // Fills manifest->members and version from what was written and commits.
  // Every other field is the caller's. kFailedPrecondition inside a member.
  absl::Status Commit(backuppb::Manifest* manifest);

 private:
  BackupFileWriter(env::FileSystem* fs, std::string path);
  struct Hasher;

  env::FileSystem* const fs_;
  const std::string path_;
  const std::string tmp_path_;
  std::unique_ptr<env::WritableFile> file_;
  std::unique_ptr<Hasher> hasher_;  // of the open member; null between members
  backuppb::Manifest manifest_;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

// Reads a backup file: Open checks the header, the footer and the manifest
// (CheckManifest), not the members; ReadMember checks one member's bytes
// against its checksum as it streams them.
class BackupFileReader {
 public:
  static absl::StatusOr<std::unique_ptr<BackupFileReader>> Open(env::FileSystem* fs,
                                                                std::string path);
  ~BackupFileReader();

  const backuppb::Manifest& manifest() const { return manifest_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  // The index of member `name`, or -1.
  int FindMember(absl::string_view name) const;

  // Streams member i to `sink` in chunks of at most 1 MiB. kDataLoss when
  // the bytes do not match the checksum: the sink has then seen bytes that
  // must be thrown away. A sink error stops the read and is returned.
  absl::Status ReadMember(int i, const std::function<absl::Status(absl::string_view)>& sink) const;
  // Member i whole (bounded by `max_size`: kDataLoss beyond it). For
  // node.key the caller wipes the result.
  absl::StatusOr<std::string> ReadSmallMember(int i, uint64_t max_size) const;

 private:
  BackupFileReader() = default;

  std::string path_;
  std::unique_ptr<env::RandomAccessFile> file_;
  uint64_t file_size_ = 0;
  backuppb::Manifest manifest_;
};

}  // namespace sealwal::backup

#endif  // SEALWAL_BACKUP_BACKUP_FILE_H_
