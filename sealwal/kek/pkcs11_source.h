// sealwal/kek/pkcs11_source.h: a KekSource whose key never leaves a PKCS#11
// token (docs/kek-providers.md).
#ifndef SEALWAL_KEK_PKCS11_SOURCE_H_
#define SEALWAL_KEK_PKCS11_SOURCE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/kek/kek_source.h"

namespace sealwal::kek {

// `spec` starts with "pkcs11:" (sealwal/kek/kek_source.h).
absl::StatusOr<std::unique_ptr<KekSource>> OpenPkcs11Source(absl::string_view spec,
                                                            const KekSourceOptions& options);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_PKCS11_SOURCE_H_
