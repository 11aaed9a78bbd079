// sealwal/encryption/dek.h: a data-encryption key (DEK) together with its identity.
//
// A DEK is three things that always travel together: the key bytes (a
// SecretKey, wiped on destruction), the algorithm it is used with, and its
// key id, the 32-bit value written into EncryptedRecord.key_id of every
// record it seals (docs/format.md §9). Generate() draws both the key and
// the id from OpenSSL's CSPRNG when the DEK is made: the id is random, never
// derived from the key bytes, so it reveals nothing about the key.
//
// (The CLI's test-only `--dek-file` is the one exception: a raw 32-byte file
// carries no id, so tools/codec_args.h derives one; see there.)
//
// Ownership: a Dek owns its key; copying is impossible, Clone() is the
// explicit way to hand the same DEK to an Encrypter and a MultiDecrypter.
// Printing: DebugString() shows id, algorithm and key length, never a key
// byte.
// Thread-safety: a value type; const methods may run concurrently.
#ifndef SEALWAL_ENCRYPTION_DEK_H_
#define SEALWAL_ENCRYPTION_DEK_H_

#include <string>

#include "absl/status/statusor.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::encryption {

struct Dek {
  KeyId id;
  Algorithm algorithm = kDefaultAlgorithm;
  SecretKey key;

  // A fresh DEK: 32 random key bytes and a random non-zero id.
  // kInvalidArgument for kNotEncrypted; kInternal when the CSPRNG fails.
  static absl::StatusOr<Dek> Generate(Algorithm algorithm = kDefaultAlgorithm);

  // A DEK from existing key bytes and id (a key file being loaded).
  // kInvalidArgument for id 0, kNotEncrypted, or a key that is not 32 bytes.
  static absl::StatusOr<Dek> FromParts(KeyId id, Algorithm algorithm, SecretKey key);

  Dek Clone() const { return Dek{id, algorithm, key.Clone()}; }

  // "DEK 0x1a2b3c4d aes-256-gcm (32 bytes)".
  std::string DebugString() const;
};

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_DEK_H_
