#include "sealwal/wal/format.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "sealwal/base/hex.h"

namespace sealwal::wal {

std::string SegmentFileName(uint64_t seq, uint64_t index) {
  return absl::StrFormat("%016x-%016x.wal", seq, index);
}

bool IsEncryptedDirName(const std::string& dir_in) {
  absl::string_view dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  const size_t slash = dir.rfind('/');
  absl::string_view base = slash == absl::string_view::npos ? dir : dir.substr(slash + 1);
  // "<name>.tmp" is <name> being built (Wal::Create, store migrate).
  absl::ConsumeSuffix(&base, ".tmp");
  return absl::EndsWith(base, kEncryptedDirSuffix);
}

bool ParseSegmentFileName(const std::string& name, uint64_t* seq, uint64_t* index) {
  // Exactly etcd's pattern: 16 hex, '-', 16 hex, ".wal".
  if (name.size() != 16 + 1 + 16 + 4 || name.compare(33, 4, ".wal") != 0 || name[16] != '-') {
    return false;
  }
  absl::string_view n(name);
  return ParseHex16(n.substr(0, 16), seq) && ParseHex16(n.substr(17, 16), index);
}

std::optional<SegmentPosition> SegmentHolding(const std::vector<std::string>& names,
                                              uint64_t index) {
  for (size_t i = names.size(); i-- > 0;) {
    uint64_t seq = 0, first = 0;
    if (ParseSegmentFileName(names[i], &seq, &first) && first <= index) {
      return SegmentPosition{i, first};
    }
  }
  return std::nullopt;
}

}  // namespace sealwal::wal
