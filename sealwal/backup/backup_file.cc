#include "sealwal/backup/backup_file.h"

#include <openssl/crypto.h>
#include <xxhash.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/snap/format.h"
#include "sealwal/storage/raft_storage.h"
#include "sealwal/wal/format.h"
#include "sealwal/walcrypt/wal_codec.h"

namespace sealwal::backup {
namespace backup_internal {

// A streaming XXH3-128.
struct Xxh3 {
  Xxh3() : state(XXH3_createState()) { XXH3_128bits_reset(state); }
  ~Xxh3() { XXH3_freeState(state); }
  Xxh3(const Xxh3&) = delete;
  Xxh3& operator=(const Xxh3&) = delete;
  XXH3_state_t* state;
};

}  // namespace backup_internal
using backup_internal::Xxh3;

namespace {

constexpr size_t kChunk = size_t{1} << 20;

std::string Canonical(const XXH128_hash_t& h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  return std::string(reinterpret_cast<const char*>(c.digest), sizeof(c.digest));
}

std::string WalDir(bool encrypted) {
  return std::string(encrypted ? walcrypt::kEncryptedWalDirName : walcrypt::kPlaintextWalDirName);
}
std::string SnapDir(bool encrypted) {
  return std::string(encrypted ? storage::kEncryptedSnapDirName : storage::kPlaintextSnapDirName);
}

// "dir/file" split at the only slash.
bool SplitName(absl::string_view name, absl::string_view* dir, absl::string_view* file) {
  const size_t slash = name.find('/');
  if (slash == absl::string_view::npos || name.find('/', slash + 1) != absl::string_view::npos) {
    return false;
  }
  *dir = name.substr(0, slash);
  *file = name.substr(slash + 1);
  return true;
}

bool IsSegmentName(absl::string_view file) {
  uint64_t seq = 0, index = 0;
  // ParseSegmentFileName takes a std::string; names are short.
  return wal::ParseSegmentFileName(std::string(file), &seq, &index) &&
         wal::SegmentFileName(seq, index) == file;
}

}  // namespace

bool IsValidMemberName(absl::string_view name, bool encrypted) {
  if (name == kKeyFileMember) return encrypted;
  absl::string_view dir, file;
  if (!SplitName(name, &dir, &file)) return false;
  uint64_t term = 0, index = 0;
  if (dir == WalDir(encrypted)) return IsSegmentName(file);
  if (dir == SnapDir(encrypted)) {
    return snap::ParseSnapFileName(file, &term, &index) ||
           snap::ParseStreamFileName(file, &term, &index);
  }
  return false;
}

absl::Status CheckManifest(const backuppb::Manifest& m, uint64_t members_end) {
  auto bad = [](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("backup manifest: ", what));
  };
  if (m.version() != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("backup manifest: version ", m.version(), " (this build reads ",
                     kFormatVersion, ")"));
  }
  uint64_t at = kHeaderSize;
  std::set<std::string> names;
  bool key_file = false;
  std::string last_segment;
  uint64_t last_segment_size = 0;
  for (const backuppb::Member& mem : m.members()) {
    if (!IsValidMemberName(mem.name(), m.encrypted())) {
      return bad(absl::StrCat("member name \"", absl::CHexEscape(mem.name()),
                              "\" is not a file of a ", m.encrypted() ? "encrypted" : "plaintext",
                              " store"));
    }
    if (!names.insert(mem.name()).second) return bad(absl::StrCat(mem.name(), " appears twice"));
    if (mem.offset() != at) return bad(absl::StrCat(mem.name(), " is not where the last ended"));
    if (mem.size() > members_end - at) return bad(absl::StrCat(mem.name(), " runs past the end"));
    if (mem.xxh3_128().size() != 16) return bad(absl::StrCat(mem.name(), " has no checksum"));
    at += mem.size();
    if (mem.name() == kKeyFileMember) {
      key_file = true;
      if (mem.size() > kMaxKeyFileSize) return bad("node.key is too large");
    }
    if (absl::StartsWith(mem.name(), WalDir(m.encrypted()) + "/")) {
      // Segments come in order (their names sort as their sequence numbers).
      if (!last_segment.empty() && mem.name() <= last_segment) {
        return bad("WAL segments are out of order");
      }
      last_segment = mem.name();
      last_segment_size = mem.size();
    }
  }
  if (at != members_end) return bad("members do not end where the manifest starts");
  if (last_segment.empty()) return bad("no WAL segment");
  if (m.wal_last_segment() != last_segment || m.wal_end_offset() != last_segment_size) {
    return bad("the consistency point does not name the last WAL segment's end");
  }
  switch (m.key_material()) {
    case backuppb::KEY_MATERIAL_NONE:
      if (key_file) return bad("key material NONE with a node.key member");
      if (m.encrypted() && !m.redacted()) return bad("an encrypted store's backup lacks node.key");
      break;
    case backuppb::KEY_MATERIAL_WRAPPED:
    case backuppb::KEY_MATERIAL_CLEAR:
    case backuppb::KEY_MATERIAL_KEK_SOURCE:
      if (!key_file || m.redacted()) return bad("key material without a node.key member");
      break;
    default:
      return bad(absl::StrCat("unknown key material ", static_cast<int>(m.key_material())));
  }
  if (m.snapshot_index() != 0) {
    const std::string snap =
        absl::StrCat(SnapDir(m.encrypted()), "/", snap::SnapFileName(m.snapshot_term(),
                                                                     m.snapshot_index()));
    if (names.count(snap) == 0) return bad("the consistency point's snapshot is not a member");
  }
  return absl::OkStatus();
}

// ---- writer -----------------------------------------------------------------

struct BackupFileWriter::Hasher : Xxh3 {};

BackupFileWriter::BackupFileWriter(env::FileSystem* fs, std::string path)
    : fs_(fs), path_(std::move(path)), tmp_path_(path_ + ".tmp") {}

BackupFileWriter::~BackupFileWriter() {
  if (!committed_ && file_ != nullptr) {
    (void)file_->Close();
    file_.reset();
    (void)fs_->RemoveFile(tmp_path_);
  }
}

absl::StatusOr<std::unique_ptr<BackupFileWriter>> BackupFileWriter::Create(env::FileSystem* fs,
                                                                           std::string path) {
  std::unique_ptr<BackupFileWriter> w(new BackupFileWriter(fs, std::move(path)));
  SEALWAL_ASSIGN_OR_RETURN(w->file_, env::NewTempFile(fs, w->tmp_path_, 0600));
  std::string header(kHeaderMagic);
  AppendLE32(kFormatVersion, &header);
  AppendLE32(0, &header);
  SEALWAL_RETURN_IF_ERROR(w->file_->Append(header));
  w->offset_ = header.size();
  return w;
}

absl::Status BackupFileWriter::BeginMember(absl::string_view name) {
  if (hasher_ != nullptr) return absl::FailedPreconditionError("backup: member still open");
  backuppb::Member* m = manifest_.add_members();
  m->set_name(std::string(name));
  m->set_offset(offset_);
  hasher_ = std::make_unique<Hasher>();
  return absl::OkStatus();
}

absl::Status BackupFileWriter::Append(absl::string_view data) {
  if (hasher_ == nullptr) return absl::FailedPreconditionError("backup: no member open");
  SEALWAL_RETURN_IF_ERROR(file_->Append(data));
  XXH3_128bits_update(hasher_->state, data.data(), data.size());
  offset_ += data.size();
  return absl::OkStatus();
}

absl::Status BackupFileWriter::EndMember() {
  if (hasher_ == nullptr) return absl::FailedPreconditionError("backup: no member open");
  backuppb::Member* m = manifest_.mutable_members(manifest_.members_size() - 1);
  m->set_size(offset_ - m->offset());
  m->set_xxh3_128(Canonical(XXH3_128bits_digest(hasher_->state)));
  hasher_.reset();
  return absl::OkStatus();
}

absl::Status BackupFileWriter::Commit(backuppb::Manifest* manifest_out) {
  backuppb::Manifest& manifest = *manifest_out;
  if (hasher_ != nullptr) return absl::FailedPreconditionError("backup: member still open");
  if (committed_ || file_ == nullptr) return absl::FailedPreconditionError("backup: committed");
  *manifest.mutable_members() = manifest_.members();
  manifest.set_version(kFormatVersion);
  // The writer checks what the reader will, so a bad backup is never made.
  SEALWAL_RETURN_IF_ERROR(CheckManifest(manifest, offset_));
  std::string tail;
  if (!manifest.SerializeToString(&tail)) return absl::InternalError("backup: manifest");
  if (tail.size() > kMaxManifestSize) return absl::InternalError("backup: manifest too large");
  const std::string sum = Canonical(XXH3_128bits(tail.data(), tail.size()));
  AppendLE32(static_cast<uint32_t>(tail.size()), &tail);
  tail += sum;
  tail.append(kFooterMagic.data(), kFooterMagic.size());
  SEALWAL_RETURN_IF_ERROR(file_->Append(tail));
  SEALWAL_RETURN_IF_ERROR(file_->Sync());
  SEALWAL_RETURN_IF_ERROR(file_->Close());
  file_.reset();
  if (absl::Status s = fs_->Rename(tmp_path_, path_); !s.ok()) {
    (void)fs_->RemoveFile(tmp_path_);
    return s;
  }
  committed_ = true;
  return fs_->SyncDir(env::Dirname(path_));
}

// ---- reader -----------------------------------------------------------------

BackupFileReader::~BackupFileReader() = default;

absl::StatusOr<std::unique_ptr<BackupFileReader>> BackupFileReader::Open(env::FileSystem* fs,
                                                                         std::string path) {
  std::unique_ptr<BackupFileReader> r(new BackupFileReader());
  r->path_ = std::move(path);
  SEALWAL_ASSIGN_OR_RETURN(r->file_, fs->NewRandomAccessFile(r->path_));
  SEALWAL_ASSIGN_OR_RETURN(r->file_size_, r->file_->Size());
  auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("backup ", r->path_, ": ", what));
  };
  auto read_exact = [&](uint64_t offset, size_t n, std::string* out) -> absl::Status {
    out->assign(n, '\0');
    size_t got = 0;
    while (got < n) {
      SEALWAL_ASSIGN_OR_RETURN(size_t k,
                               r->file_->ReadAt(offset + got, absl::MakeSpan(*out).subspan(got)));
      if (k == 0) return bad("ends early (truncated)");
      got += k;
    }
    return absl::OkStatus();
  };
  if (r->file_size_ < kHeaderSize + kFooterSize) {
    return bad("too short to be a sealwal backup (truncated, or not a backup)");
  }
  std::string header, footer;
  SEALWAL_RETURN_IF_ERROR(read_exact(0, kHeaderSize, &header));
  if (!absl::StartsWith(header, kHeaderMagic)) return bad("not a sealwal backup (no SWBACKUP)");
  const uint32_t version = LoadLE32(header.data() + 8);
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("backup ", r->path_, ": version ", version,
                                                      " (this build reads ", kFormatVersion, ")"));
  }
  if (LoadLE32(header.data() + 12) != 0) return bad("reserved header bytes are not zero");
  SEALWAL_RETURN_IF_ERROR(read_exact(r->file_size_ - kFooterSize, kFooterSize, &footer));
  if (footer.substr(20) != kFooterMagic) {
    return bad("no footer: the file is truncated or damaged at its end");
  }
  const uint32_t manifest_size = LoadLE32(footer.data());
  if (manifest_size > kMaxManifestSize ||
      manifest_size > r->file_size_ - kHeaderSize - kFooterSize) {
    return bad("the footer's manifest size does not fit the file");
  }
  const uint64_t manifest_at = r->file_size_ - kFooterSize - manifest_size;
  std::string manifest;
  SEALWAL_RETURN_IF_ERROR(read_exact(manifest_at, manifest_size, &manifest));
  if (Canonical(XXH3_128bits(manifest.data(), manifest.size())) != footer.substr(4, 16)) {
    return bad("the manifest does not match its checksum");
  }
  if (!r->manifest_.ParseFromString(manifest)) return bad("the manifest does not parse");
  if (absl::Status s = CheckManifest(r->manifest_, manifest_at); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("backup ", r->path_, ": ", s.message()));
  }
  return r;
}

int BackupFileReader::FindMember(absl::string_view name) const {
  for (int i = 0; i < manifest_.members_size(); ++i) {
    if (manifest_.members(i).name() == name) return i;
  }
  return -1;
}

absl::Status BackupFileReader::ReadMember(
    int i, const std::function<absl::Status(absl::string_view)>& sink) const {
  if (i < 0 || i >= manifest_.members_size()) return absl::OutOfRangeError("backup: no member");
  const backuppb::Member& m = manifest_.members(i);
  Xxh3 h;
  std::string buf(static_cast<size_t>(std::min<uint64_t>(kChunk, std::max<uint64_t>(m.size(), 1))),
                  '\0');
  // node.key passes through this buffer: nothing of it stays in freed memory.
  absl::Cleanup wipe = [&buf] { OPENSSL_cleanse(buf.data(), buf.size()); };
  uint64_t done = 0;
  while (done < m.size()) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), m.size() - done));
    SEALWAL_ASSIGN_OR_RETURN(size_t k,
                             file_->ReadAt(m.offset() + done, absl::MakeSpan(buf).first(want)));
    if (k == 0) {
      return absl::DataLossError(absl::StrCat("backup ", path_, ": ", m.name(), " ends early"));
    }
    XXH3_128bits_update(h.state, buf.data(), k);
    SEALWAL_RETURN_IF_ERROR(sink(absl::string_view(buf.data(), k)));
    done += k;
  }
  if (Canonical(XXH3_128bits_digest(h.state)) != m.xxh3_128()) {
    return absl::DataLossError(absl::StrCat("backup ", path_, ": ", m.name(),
                                            " does not match its checksum (the backup is damaged)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BackupFileReader::ReadSmallMember(int i, uint64_t max_size) const {
  if (i < 0 || i >= manifest_.members_size()) return absl::OutOfRangeError("backup: no member");
  const backuppb::Member& m = manifest_.members(i);
  if (m.size() > max_size) {
    return absl::DataLossError(absl::StrCat("backup ", path_, ": ", m.name(), " is too large"));
  }
  std::string out;
  out.reserve(static_cast<size_t>(m.size()));  // no reallocation: nothing left behind
  SEALWAL_RETURN_IF_ERROR(ReadMember(i, [&](absl::string_view d) {
    out.append(d.data(), d.size());
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace sealwal::backup
