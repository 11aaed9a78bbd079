#include "sealwal/encryption/associated_data.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "sealwal/base/endian.h"

namespace sealwal::encryption {

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
  AppendLE32(key_id.value(), out);  // explicit byte order: the same AAD on every host
  AppendLE64(ctx.index, out);
  AppendLE64(ctx.term, out);
  AppendLE32(static_cast<uint32_t>(ctx.entry_type), out);
  // Length-prefixed so that extra bytes can never be confused with fields
  // a later version might add after them.
  if (!ctx.extra.empty()) {
    AppendLE32(static_cast<uint32_t>(ctx.extra.size()), out);
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
