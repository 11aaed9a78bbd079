// Fuzzes the reader of `store backup` files (sealwal/backup/backup_file.h,
// docs/format.md §14), the bytes `store restore` and `store inspect` trust.
//
// Even first byte: the rest is a backup file. Open either refuses it or
// gives a manifest whose every member name is a store file (restore writes
// nowhere else) and whose members tile the file; each member then reads
// with its checksum OK or kDataLoss, never past the file.
//
// Odd first byte: the rest becomes the members of a valid backup written by
// BackupFileWriter; it must read back byte for byte. Then one byte of the
// file is changed (position and mask from the input): the change must be
// caught, by Open or by a member's checksum. Nothing in the file is
// unchecked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sealwal/backup/backup_file.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"

namespace {

using sealwal::backup::BackupFileReader;
using sealwal::backup::BackupFileWriter;

// Reads every member; true when all checksums match. Aborts on anything a
// reader must never do.
bool ReadAll(const BackupFileReader& r, std::vector<std::string>* out) {
  bool all_ok = true;
  for (int i = 0; i < r.manifest().members_size(); ++i) {
    std::string bytes;
    absl::Status s = r.ReadMember(i, [&](absl::string_view d) {
      bytes.append(d.data(), d.size());
      return absl::OkStatus();
    });
    if (!s.ok()) {
      if (s.code() != absl::StatusCode::kDataLoss) std::abort();
      all_ok = false;
      continue;
    }
    if (bytes.size() != r.manifest().members(i).size()) std::abort();
    if (out != nullptr) out->push_back(std::move(bytes));
  }
  return all_ok;
}

void CheckOpened(const BackupFileReader& r) {
  const auto& m = r.manifest();
  uint64_t at = sealwal::backup::kHeaderSize;
  for (const auto& mem : m.members()) {
    if (!sealwal::backup::IsValidMemberName(mem.name(), m.encrypted())) std::abort();
    if (mem.offset() != at) std::abort();
    at += mem.size();
  }
  if (at > r.file_size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sealwal;
  if (size == 0) return 0;
  auto fs = env::NewMemFileSystem();
  if (!fs->CreateDir("/d").ok()) std::abort();
  const std::string path = "/d/b";
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);

  if ((data[0] & 1) == 0) {
    if (!env::WriteFileAtomically(fs.get(), path, in).ok()) std::abort();
    auto r = BackupFileReader::Open(fs.get(), path);
    if (!r.ok()) {
      const auto c = r.status().code();
      if (c != absl::StatusCode::kDataLoss && c != absl::StatusCode::kFailedPrecondition) {
        std::abort();
      }
      return 0;
    }
    CheckOpened(**r);
    ReadAll(**r, nullptr);
    return 0;
  }

  // A valid backup of a plaintext or encrypted store from the input.
  const bool encrypted = (data[0] & 2) != 0;
  const size_t cut1 = in.size() / 3, cut2 = 2 * in.size() / 3;
  const std::string wal_dir = encrypted ? "wal-v3-encrypted/" : "wal-v3/";
  const std::string snap_dir = encrypted ? "snap-v3-encrypted/" : "snap-v3/";
  std::vector<std::pair<std::string, std::string>> members = {
      {snap_dir + "0000000000000001-0000000000000005.snap", in.substr(0, cut1)},
      {wal_dir + "0000000000000000-0000000000000000.wal", in.substr(cut1, cut2 - cut1)},
  };
  if (encrypted) members.emplace_back("node.key", in.substr(cut2).substr(0, 4096));
  {
    auto w = BackupFileWriter::Create(fs.get(), path);
    if (!w.ok()) std::abort();
    for (const auto& [name, bytes] : members) {
      if (!(*w)->BeginMember(name).ok() || !(*w)->Append(bytes).ok() || !(*w)->EndMember().ok()) {
        std::abort();
      }
    }
    backuppb::Manifest m;
    m.set_encrypted(encrypted);
    m.set_key_material(encrypted ? backuppb::KEY_MATERIAL_WRAPPED : backuppb::KEY_MATERIAL_NONE);
    m.set_snapshot_index(5);
    m.set_snapshot_term(1);
    m.set_wal_last_segment(members[1].first);
    m.set_wal_end_offset(members[1].second.size());
    if (!(*w)->Commit(&m).ok()) std::abort();
  }
  {
    auto r = BackupFileReader::Open(fs.get(), path);
    if (!r.ok()) std::abort();
    CheckOpened(**r);
    std::vector<std::string> got;
    if (!ReadAll(**r, &got) || got.size() != members.size()) std::abort();
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != members[i].second) std::abort();
    }
  }
  // One changed byte is always caught.
  auto text = env::ReadFileToString(fs.get(), path);
  if (!text.ok() || text->size() < 2) std::abort();
  uint64_t pick = 0;
  for (size_t i = 0; i < in.size() && i < 8; ++i) pick = pick << 8 | static_cast<uint8_t>(in[i]);
  const size_t pos = static_cast<size_t>(pick % text->size());
  const uint8_t mask = static_cast<uint8_t>(pick >> 56) | 1;
  (*text)[pos] = static_cast<char>((*text)[pos] ^ mask);
  if (!env::WriteFileAtomically(fs.get(), path, *text).ok()) std::abort();
  auto r = BackupFileReader::Open(fs.get(), path);
  if (r.ok() && ReadAll(**r, nullptr)) std::abort();  // the change went unnoticed
  return 0;
}
