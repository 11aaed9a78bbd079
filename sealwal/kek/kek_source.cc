#include "sealwal/kek/kek_source.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/kek/command_source.h"
#include "sealwal/kek/pkcs11_source.h"

namespace sealwal::kek {

absl::StatusOr<std::unique_ptr<KekSource>> OpenKekSource(absl::string_view spec,
                                                         const KekSourceOptions& options) {
  if (absl::StartsWith(spec, "pkcs11:")) return OpenPkcs11Source(spec, options);
  if (absl::StartsWith(spec, kCommandScheme)) {
    absl::StatusOr<std::unique_ptr<CommandSource>> c = CommandSource::Open(spec, options);
    if (!c.ok()) return c.status();
    return std::unique_ptr<KekSource>(std::move(*c));
  }
  return absl::InvalidArgumentError(
      "a KEK source is \"pkcs11:token=T;object=K?module-path=/abs/module.so\" or "
      "\"command:/abs/path/to/plugin\"");
}

}  // namespace sealwal::kek
