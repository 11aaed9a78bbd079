#include "sealwal/encryption/associated_data.h"

#include <bit>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace sealwal::encryption {
namespace {

// Explicit byte order: the AAD must be identical on every host. (This
// runs once per record on the read path, hence the memcpy fast path.)
void PutLe(uint64_t v, int bytes, std::string* out) {
  char buf[8];
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(buf, &v, sizeof(buf));
  } else {
    for (int i = 0; i < bytes; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
  out->append(buf, static_cast<size_t>(bytes));
}

}  // namespace

absl::string_view PurposeName(Purpose purpose) {
  switch (purpose) {
    case Purpose::kWalEntry:
      return "wal-entry";
    case Purpose::kWalMetadata:
      return "wal-metadata";
    case Purpose::kSnapshot:
      return "snapshot";
    case Purpose::kDek:
      return "dek";
    case Purpose::kStreamChunk:
      return "stream-chunk";
  }
  return "invalid-purpose";
}

absl::Status AppendAssociatedData(const AadContext& ctx, KeyId key_id, std::string* out) {
  if (ctx.extra.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AAD extra of ", ctx.extra.size(), " bytes does not fit a u32 length"));
  }
  const absl::string_view name = PurposeName(ctx.purpose);
  out->reserve(out->size() + kMaxAadSizeWithoutExtra +
               (ctx.extra.empty() ? 0 : 4 + ctx.extra.size()));
  out->append(kAadPrefix.data(), kAadPrefix.size());
  out->append(name.data(), name.size());
  out->push_back('\0');
  PutLe(key_id.value(), 4, out);
  PutLe(ctx.index, 8, out);
  PutLe(ctx.term, 8, out);
  PutLe(static_cast<uint32_t>(ctx.entry_type), 4, out);
  // Length-prefixed so that extra bytes can never be confused with fields
  // a later version might add after them.
  if (!ctx.extra.empty()) {
    PutLe(ctx.extra.size(), 4, out);
    out->append(ctx.extra.data(), ctx.extra.size());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AssociatedData(const AadContext& ctx, KeyId key_id) {
  std::string out;
  absl::Status s = AppendAssociatedData(ctx, key_id, &out);
  if (!s.ok()) return s;
  return out;
}

std::string DescribeAadContext(const AadContext& ctx) {
  std::string s = absl::StrCat(PurposeName(ctx.purpose), " index ", ctx.index, " term ",
                               ctx.term, " type ", ctx.entry_type);
  if (!ctx.extra.empty()) absl::StrAppend(&s, " extra ", ctx.extra.size(), " bytes");
  return s;
}

}  // namespace sealwal::encryption
