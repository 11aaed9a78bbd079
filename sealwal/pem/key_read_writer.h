// sealwal/pem/key_read_writer.h: reads and atomically rewrites the node key file
// (docs/format.md §11; bytes in docs/format.md §11, text form in
// sealwal/pem/key_file.h).
//
// Files, for a key file F:
//   F        the key file (mode 0600)
//   F.tmp    the next version while it is being written (WriteFileAtomically)
//   F.lock   an empty file that writers lock (never removed)
//
// Every write is one WriteFileAtomically: F.tmp is created 0600, written,
// fsynced and closed, renamed over F, and F's directory is fsynced. A crash
// at any point leaves F either entirely old or entirely new (a leftover
// F.tmp is overwritten by the next write and ignored by readers). So a KEK
// rotation (new unlock key, every DEK header re-wrapped, the private key
// re-encrypted) and a header update either happen completely or not at all:
// no DEK is ever lost, and the file opens with the old or the new unlock
// key.
//
// Concurrency: every read-modify-write (Write, ViewAndUpdateHeaders,
// ViewAndRotateKEK) holds this object's mutex, so callers in one process
// are serialised, and an exclusive lock on F.lock (env::FileSystem::
// LockFile, OFD/flock on POSIX), so another process, or another
// KeyReadWriter on the same file, waits up to `lock_timeout` and then gets
// kUnavailable. Read takes no lock: the rename makes every read see one
// whole version.
//
// Stale KEK updates: the file's kek-version only grows. ViewAndRotateKEK
// refuses (kFailedPrecondition, nothing written) an update whose version
// is not greater than the file's, so a delayed or replayed KEK change
// cannot undo a newer one.
//
// A KeyReadWriter that holds an unlock key refuses an unlocked F
// (kFailedPrecondition, nothing written): someone who can write F could
// have swapped a locked file for an unlocked one holding DEKs of their
// choosing, and a header update would then write a fresh DEK back in the
// clear. Writes always use this object's lock state, never the file's.
// For the same reason it refuses (kFailedPrecondition, nothing written) a
// locked F that has neither a DEK record nor a file MAC (a bare private
// key, or a version-1 file info without DEK headers): what remains when an
// attacker removes the DEK block or every DEK record of a version-2 file
// and rewrites the file info as version 1, which would hide a pending DEK
// or a needs-rotation mark. A locked version-1 file with its DEK records
// is read (their AEAD proves the unlock key wrote them).
//
// File id (key_file.h): ViewAndUpdateHeaders and ViewAndRotateKEK keep F's
// file id when the result is locked (a version-1 F gets a new one, and so
// becomes version 2); Write, which replaces F as a whole, makes a new one.
//
// Errors: those of sealwal/pem/key_file.h (kDataLoss damage, kPermissionDenied no
// or wrong unlock key) and of the FileSystem; a failed read or decode, a
// callback error or a refused update writes nothing, so a wrong unlock key
// leaves the file's bytes unchanged.
//
// Thread-safety: all methods are thread-safe.
#ifndef SEALWAL_PEM_KEY_READ_WRITER_H_
#define SEALWAL_PEM_KEY_READ_WRITER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"

namespace sealwal::pem {

struct KeyReadWriterOptions {
  // Borrowed; must outlive the KeyReadWriter.
  env::FileSystem* fs = env::DefaultFileSystem();
  std::string path;
  // The unlock key of a locked file (and what Write locks a new file
  // with); nullopt for autolock off.
  std::optional<UnlockKey> unlock_key;
  // When a KEK source holds unlock_key (sealwal/kek/kek_source.h): how, as
  // Write records it in a new file. Header updates keep the file's own.
  std::optional<KekBinding> kek_binding;
  // How long a writer waits for another holder of F.lock.
  absl::Duration lock_timeout = absl::Seconds(10);
};

// What ViewAndRotateKEK shows its callback about the current KEK.
struct KekState {
  uint64_t version = 0;
  bool locked = false;
};

// What a ViewAndRotateKEK callback returns.
struct KekUpdate {
  std::optional<UnlockKey> unlock_key;  // the new unlock key; nullopt = unlocked
  uint64_t version = 0;                 // must exceed the file's kek-version
  DekHeaders headers;                   // the headers to write (re-wrapped)
  std::optional<KekBinding> kek_binding;  // a KEK source holds unlock_key
};

class KeyReadWriter {
 public:
  // kInvalidArgument for an empty path or a null fs. No I/O.
  static absl::StatusOr<std::unique_ptr<KeyReadWriter>> Create(KeyReadWriterOptions options);

  KeyReadWriter(const KeyReadWriter&) = delete;
  KeyReadWriter& operator=(const KeyReadWriter&) = delete;

  // The whole file, decrypted with this object's unlock key.
  // kNotFound when F does not exist; kFailedPrecondition when this object
  // holds an unlock key and F is not locked.
  absl::StatusOr<KeyFile> Read();

  // The DEK headers alone, without decrypting the private key: its PKCS#8
  // PBKDF2 costs milliseconds, and the storage's periodic rotation check
  // needs only the headers. The headers are authenticated as Read's are;
  // the same errors, and the same refusal of an unlocked file when this
  // object holds an unlock key.
  struct Headers {
    DekHeaders headers;
    uint64_t kek_version = 0;
    bool locked = false;
    std::optional<KekBinding> kek_binding;
  };
  absl::StatusOr<Headers> ReadHeaders();

  // Replaces F with (key, headers), locked iff this object holds an unlock
  // key, with the options' kek_binding. kek-version is kept from an existing F whose structure parses
  // (else 0), so that a later stale KEK update is still refused.
  absl::Status Write(const PrivateKey& key, const DekHeaders& headers);

  // Reads the headers, lets `fn` compute new ones and writes them, under
  // the lock, keeping the key, kek-version and KEK binding, locked iff this
  // object holds an unlock key. An error
  // from `fn` is returned and nothing is written.
  absl::Status ViewAndUpdateHeaders(
      absl::FunctionRef<absl::StatusOr<DekHeaders>(const DekHeaders&)> fn);

  // Reads the file, lets `fn` choose a new KEK (or none) and headers, and
  // writes the key re-encrypted and every DEK header re-wrapped under it,
  // in one atomic write. kFailedPrecondition when update.version is not
  // greater than the file's kek-version. With a new unlock key (lock,
  // rotate-kek) the written headers always have needs_rotation set when a
  // current DEK exists: a copy of the file from before still opens with the
  // old unlock key (or none). On success this object holds the new unlock
  // key.
  absl::Status ViewAndRotateKEK(
      absl::FunctionRef<absl::StatusOr<KekUpdate>(const KekState&, const DekHeaders&)> fn);

  const std::string& path() const { return options_.path; }

 private:
  explicit KeyReadWriter(KeyReadWriterOptions options);
  absl::StatusOr<std::unique_ptr<env::FileLock>> LockFileLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<KeyFile> ReadLocked() ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // What every read returns for a decode status `s` of F: s with F's path
  // in front when it failed, else the refusal of an unlocked F, or of a
  // locked F with no DEK record and no MAC (`unauthenticated_without_deks`),
  // when this object holds an unlock key, else OK.
  absl::Status CheckReadLocked(absl::Status s, bool locked,
                               bool unauthenticated_without_deks) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // `file_id`: the id to keep; empty = make a new one.
  absl::Status WriteLocked(const PrivateKey& key, const DekHeaders& headers, uint64_t version,
                           const UnlockKey* unlock_key, const std::optional<KekBinding>& binding,
                           const std::string& file_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  KeyReadWriterOptions options_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_KEY_READ_WRITER_H_
