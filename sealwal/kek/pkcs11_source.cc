// Stand-in until the PKCS#11 source lands: every pkcs11: spec is refused.
#include "sealwal/kek/pkcs11_source.h"

namespace sealwal::kek {

absl::StatusOr<std::unique_ptr<KekSource>> OpenPkcs11Source(absl::string_view,
                                                            const KekSourceOptions&) {
  return absl::UnimplementedError("PKCS#11 KEK sources are not built into this sealwal yet");
}

}  // namespace sealwal::kek
