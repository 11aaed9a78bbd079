// Helpers shared by every FileSystem implementation (sealwal/env/file_system.h).
#include <string.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/file_system.h"

namespace sealwal::env {

absl::StatusOr<std::string> ReadFileToString(FileSystem* fs, const std::string& path) {
  SEALWAL_ASSIGN_OR_RETURN(auto file, fs->NewSequentialFile(path));
  std::string out;
  std::vector<char> buf(1 << 16);
  for (;;) {
    SEALWAL_ASSIGN_OR_RETURN(size_t n, file->Read(absl::MakeSpan(buf)));
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  return out;
}

namespace {

void WipeAndClear(std::string* s) {
  if (!s->empty()) ::explicit_bzero(s->data(), s->size());
  s->clear();
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(FileSystem* fs, const std::string& path) {
  SEALWAL_ASSIGN_OR_RETURN(uint64_t size, fs->GetFileSize(path));
  SEALWAL_ASSIGN_OR_RETURN(auto file, fs->NewSequentialFile(path));
  std::string out;
  // One spare byte tells whether the file grew past the size seen.
  out.resize(static_cast<size_t>(size) + 1);
  size_t used = 0;
  for (;;) {
    if (used == out.size()) {
      std::string bigger;
      bigger.resize(out.size() * 2);
      std::memcpy(bigger.data(), out.data(), used);
      WipeAndClear(&out);
      out.swap(bigger);
    }
    absl::StatusOr<size_t> n = file->Read(absl::MakeSpan(out.data() + used, out.size() - used));
    if (!n.ok()) {
      WipeAndClear(&out);
      return n.status();
    }
    if (*n == 0) break;
    used += *n;
  }
  out.resize(used);  // shrinking keeps the buffer: nothing is freed
  return out;
}

absl::StatusOr<std::unique_ptr<WritableFile>> NewTempFile(FileSystem* fs, const std::string& path,
                                                          mode_t mode) {
  // A stale temp file (a crash, a restored backup) or a symlink planted
  // there must not lend us its mode or its target: remove whatever is at
  // that name, then create a fresh file exclusively, so `mode` (0600 for
  // keys and data) is what the new file gets.
  if (absl::Status s = fs->RemoveFile(path); !s.ok() && !absl::IsNotFound(s)) return s;
  WritableFileOptions opts;
  opts.mode = mode;
  opts.disposition = WritableFileOptions::Disposition::kCreateExclusive;
  return fs->NewWritableFile(path, opts);
}

absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path,
                                 absl::string_view data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    SEALWAL_ASSIGN_OR_RETURN(auto file, NewTempFile(fs, tmp, mode));
    absl::Status s = file->Append(data);
    if (s.ok()) s = file->Sync();  // the data must be durable before the name is
    absl::Status c = file->Close();
    if (s.ok()) s = c;
    if (!s.ok()) {
      fs->RemoveFile(tmp).IgnoreError();  // best effort; the old file is intact
      return s;
    }
  }
  SEALWAL_RETURN_IF_ERROR(fs->Rename(tmp, path));
  return fs->SyncDir(Dirname(path));
}

absl::Status CreateDirAll(FileSystem* fs, const std::string& dir, mode_t mode) {
  if (dir.empty() || dir == "/" || dir == ".") return absl::OkStatus();
  if (fs->FileExists(dir).ok()) return absl::OkStatus();
  SEALWAL_RETURN_IF_ERROR(CreateDirAll(fs, Dirname(dir), mode));
  absl::Status s = fs->CreateDir(dir, mode);
  if (absl::IsAlreadyExists(s)) return absl::OkStatus();
  SEALWAL_RETURN_IF_ERROR(s);
  // A directory we made is only durable once its parent's entry is.
  return fs->SyncDir(Dirname(dir));
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string Dirname(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return std::string(path);
  return std::string(path.substr(slash + 1));
}

}  // namespace sealwal::env
