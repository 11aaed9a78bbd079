// The keyring both snap fuzzers decrypt with: the key the seed files were
// written with (--dek-file of 32 x 0x07), under whatever key id the input
// names (0 becomes 1, which a DEK cannot have as 0).
#ifndef SEALWAL_FUZZ_SNAP_FUZZ_KEYS_H_
#define SEALWAL_FUZZ_SNAP_FUZZ_KEYS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/keyring.h"

namespace sealwal::fuzz {

inline std::shared_ptr<encryption::Keyring> SeedKeyring(uint32_t id) {
  auto key = encryption::SecretKey::FromBytes(std::string(32, '\x07'));
  auto dek = encryption::Dek::FromParts(encryption::KeyId(id == 0 ? 1 : id),
                                        encryption::Algorithm::kAes256Gcm, std::move(*key));
  return *encryption::Keyring::ForDek(*dek);
}

}  // namespace sealwal::fuzz

#endif  // SEALWAL_FUZZ_SNAP_FUZZ_KEYS_H_
