#include "sealwal/pem/key_read_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::pem {

KeyReadWriter::KeyReadWriter(KeyReadWriterOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<KeyReadWriter>> KeyReadWriter::Create(
    KeyReadWriterOptions options) {
  if (options.fs == nullptr) return absl::InvalidArgumentError("KeyReadWriter needs a FileSystem");
  if (options.path.empty()) return absl::InvalidArgumentError("KeyReadWriter needs a key file path");
  return std::unique_ptr<KeyReadWriter>(new KeyReadWriter(std::move(options)));
}

absl::StatusOr<std::unique_ptr<env::FileLock>> KeyReadWriter::LockFileLocked() {
  env::FileSystem* fs = options_.fs;
  const std::string lock_path = options_.path + ".lock";
  // The lock file is created once and never removed: removing it would let
  // two writers lock two different inodes under one name.
  if (!fs->FileExists(lock_path).ok()) {
    env::WritableFileOptions o;
    o.disposition = env::WritableFileOptions::Disposition::kCreateExclusive;
    absl::StatusOr<std::unique_ptr<env::WritableFile>> f = fs->NewWritableFile(lock_path, o);
    if (f.ok()) {
      SEALWAL_RETURN_IF_ERROR((*f)->Close());
    } else if (!absl::IsAlreadyExists(f.status())) {
      return f.status();
    }
  }
  const absl::Time deadline = absl::Now() + options_.lock_timeout;
  while (true) {
    absl::StatusOr<std::unique_ptr<env::FileLock>> lock = fs->LockFile(lock_path);
    if (lock.ok() || !absl::IsUnavailable(lock.status())) return lock;
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "key file ", options_.path, " is being changed by another process (", lock_path,
          " is locked)"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status KeyReadWriter::CheckReadLocked(absl::Status s, bool locked,
                                            bool unauthenticated_without_deks) const {
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(options_.path, ": ", s.message()));
  // Whoever can write F could swap a locked file for an unlocked one
  // holding DEKs (or a private key) of their choosing; a caller who brings
  // an unlock key expects a locked file, so it is never read, and so never
  // written back in the clear.
  if (options_.unlock_key.has_value() && !locked) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.path, " is not locked, but an unlock key was given: refusing to use it (the "
                       "file may have been replaced)"));
  }
  // Removing every DEK record (or the whole DEK block) from a locked file
  // leaves no record to fail under a rewritten file info: a file without
  // both DEK records and a MAC could be such a file, so it is not used.
  if (options_.unlock_key.has_value() && unauthenticated_without_deks) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.path, " has no DEK headers and no file MAC, but an unlock key was given: "
                       "refusing to use it (its DEK block may have been removed)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyFile> KeyReadWriter::ReadLocked() {
  absl::StatusOr<std::string> text = env::ReadSecretFile(options_.fs, options_.path);
  if (!text.ok()) return text.status();
  absl::StatusOr<KeyFile> file =
      DecodeKeyFile(*text, options_.unlock_key.has_value() ? &*options_.unlock_key : nullptr);
  WipeString(&*text);
  SEALWAL_RETURN_IF_ERROR(CheckReadLocked(
      file.status(), file.ok() && file->locked,
      file.ok() && file->file_id.empty() && !file->headers.current.has_value() &&
          !file->headers.pending.has_value()));
  return file;
}

absl::StatusOr<KeyFile> KeyReadWriter::Read() {
  absl::ReaderMutexLock l(&mu_);
  return ReadLocked();
}

absl::StatusOr<KeyReadWriter::Headers> KeyReadWriter::ReadHeaders() {
  absl::ReaderMutexLock l(&mu_);
  absl::StatusOr<std::string> text = env::ReadSecretFile(options_.fs, options_.path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ParsedKeyFile> parsed = ParseKeyFile(*text);
  WipeString(&*text);
  const UnlockKey* unlock_key = options_.unlock_key.has_value() ? &*options_.unlock_key : nullptr;
  // The checks DecodeKeyFile and ReadLocked make, in their order, without
  // opening the private key.
  absl::Status s = parsed.status();
  if (s.ok()) s = CheckUnlockKeyGiven(*parsed, unlock_key);
  SEALWAL_RETURN_IF_ERROR(CheckReadLocked(s, s.ok() && parsed->locked, false));
  absl::StatusOr<DekHeaders> headers = OpenDekHeaders(*parsed, unlock_key);
  SEALWAL_RETURN_IF_ERROR(CheckReadLocked(
      headers.status(), parsed->locked,
      headers.ok() && parsed->file_id.empty() && !headers->current.has_value() &&
          !headers->pending.has_value()));
  return Headers{std::move(*headers), parsed->kek_version, parsed->locked, parsed->kek_binding};
}

absl::Status KeyReadWriter::WriteLocked(const PrivateKey& key, const DekHeaders& headers,
                                        uint64_t version, const UnlockKey* unlock_key,
                                        const std::optional<KekBinding>& binding,
                                        const std::string& file_id) {
  SEALWAL_ASSIGN_OR_RETURN(
      std::string text, EncodeKeyFile(key, headers, version, unlock_key,
                                      binding.has_value() ? &*binding : nullptr, &file_id));
  absl::Status s = env::WriteFileAtomically(options_.fs, options_.path, text, 0600);
  WipeString(&text);
  return s;
}

absl::Status KeyReadWriter::Write(const PrivateKey& key, const DekHeaders& headers) {
  absl::MutexLock l(&mu_);
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::FileLock> lock, LockFileLocked());
  uint64_t version = 0;
  if (absl::StatusOr<std::string> old = env::ReadSecretFile(options_.fs, options_.path);
      old.ok()) {
    if (absl::StatusOr<ParsedKeyFile> p = ParseKeyFile(*old); p.ok()) version = p->kek_version;
    WipeString(&*old);
  }
  // A fresh file id: the old file is not authenticated here, and Write
  // replaces its contents (key and DEKs) as a whole anyway.
  return WriteLocked(key, headers, version,
                     options_.unlock_key.has_value() ? &*options_.unlock_key : nullptr,
                     options_.kek_binding, /*file_id=*/"");
}

absl::Status KeyReadWriter::ViewAndUpdateHeaders(
    absl::FunctionRef<absl::StatusOr<DekHeaders>(const DekHeaders&)> fn) {
  absl::MutexLock l(&mu_);
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::FileLock> lock, LockFileLocked());
  SEALWAL_ASSIGN_OR_RETURN(KeyFile file, ReadLocked());
  SEALWAL_ASSIGN_OR_RETURN(DekHeaders updated, fn(file.headers));
  // The lock state is this object's, never the file's (ReadLocked refused
  // a file that is not as locked as we are). The binding is the file's: it
  // wraps the unlock key that just opened the headers, and dropping it would
  // lose that key for good.
  // The file id is kept (a version-1 file gets one: upgraded to version 2).
  return WriteLocked(file.key, updated, file.kek_version,
                     options_.unlock_key.has_value() ? &*options_.unlock_key : nullptr,
                     options_.unlock_key.has_value() ? file.kek_binding : std::nullopt,
                     file.file_id);
}

absl::Status KeyReadWriter::ViewAndRotateKEK(
    absl::FunctionRef<absl::StatusOr<KekUpdate>(const KekState&, const DekHeaders&)> fn) {
  absl::MutexLock l(&mu_);
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<env::FileLock> lock, LockFileLocked());
  SEALWAL_ASSIGN_OR_RETURN(KeyFile file, ReadLocked());
  const KekState current{file.kek_version, file.locked};
  SEALWAL_ASSIGN_OR_RETURN(KekUpdate update, fn(current, file.headers));
  if (update.version <= current.version) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale KEK update refused: kek-version ", update.version,
        " is not newer than the key file's ", current.version));
  }
  // A new KEK does not make the DEKs secret again: a copy of the file from
  // before opens with the old unlock key (or none), so they must be
  // replaced. Enforced here, for every caller, not only `key rotate-kek`.
  if (update.unlock_key.has_value() && update.headers.current.has_value()) {
    update.headers.needs_rotation = true;
  }
  // The file id is kept under the new KEK; an unlocked file has none.
  SEALWAL_RETURN_IF_ERROR(WriteLocked(file.key, update.headers, update.version,
                              update.unlock_key.has_value() ? &*update.unlock_key : nullptr,
                              update.kek_binding, file.file_id));
  options_.unlock_key = std::move(update.unlock_key);
  options_.kek_binding = std::move(update.kek_binding);
  return absl::OkStatus();
}

}  // namespace sealwal::pem
