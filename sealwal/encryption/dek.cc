#include "sealwal/encryption/dek.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::encryption {

absl::StatusOr<Dek> Dek::Generate(Algorithm algorithm) {
  if (algorithm == Algorithm::kNotEncrypted) {
    return absl::InvalidArgumentError("a DEK needs a real algorithm, not not-encrypted");
  }
  SEALWAL_ASSIGN_OR_RETURN(SecretKey key, SecretKey::Generate(kAeadKeySize));
  SEALWAL_ASSIGN_OR_RETURN(KeyId id, KeyId::Random());
  return Dek{id, algorithm, std::move(key)};
}

absl::StatusOr<Dek> Dek::FromParts(KeyId id, Algorithm algorithm, SecretKey key) {
  if (id == KeyId()) return absl::InvalidArgumentError("a DEK needs a key id other than 0");
  if (algorithm == Algorithm::kNotEncrypted) {
    return absl::InvalidArgumentError("a DEK needs a real algorithm, not not-encrypted");
  }
  if (key.size() != kAeadKeySize) {
    // The length is not secret; the bytes are never mentioned.
    return absl::InvalidArgumentError(
        absl::StrCat("a DEK is ", kAeadKeySize, " bytes, got ", key.size()));
  }
  return Dek{id, algorithm, std::move(key)};
}

std::string Dek::DebugString() const {
  return absl::StrCat("DEK ", FormatKeyId(id), " ", AlgorithmName(algorithm), " (", key.size(),
                      " bytes)");
}

}  // namespace sealwal::encryption
