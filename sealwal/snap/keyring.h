// sealwal/snap/keyring.h: the DEKs a snapshot directory is written and read with.
//
// Snapshots need more from a key than the WAL does: besides sealing one
// EncryptedRecord per .snap (through encryption::Encrypter / Decrypter),
// a streamed snapshot derives a per-file key from the DEK with
// HKDF-SHA256 (docs/format.md §12). The Keyring is the one place that
// holds DEK bytes for snap/, so that derivation happens here and the DEK
// itself never leaves: callers get derived keys (SecretKey, wiped on
// destruction) or Encrypter/Decrypter objects, never a DEK's bytes.
//
// One key is the write key (new snapshots are sealed under it); every key
// held can open snapshots that name its key id, so a directory written
// across a rotation stays readable while both keys are held.
//
// Key usage: a .snap seals exactly one message under the DEK (with a
// fresh random-start AeadEncrypter, sealwal/encryption/encrypter.h); stream chunks
// are sealed under per-file derived keys, so a streamed snapshot of any
// size costs the DEK one message. The key rotator's usage count therefore
// grows by one per snapshot.
//
// Ownership: AddKey clones the Dek; the Keyring wipes its copies when keys
// are removed or it is destroyed. Keyrings are shared as
// std::shared_ptr<const Keyring> by Snapshotters and stream readers.
// Thread-safety: every method is thread-safe (one internal mutex; the
// decrypter is itself thread-safe).
// Errors: kInvalidArgument for bad keys, kNotFound for an id not held
// ("no DEK with key id 0x..."), kInternal when OpenSSL fails.
#ifndef SEALWAL_SNAP_KEYRING_H_
#define SEALWAL_SNAP_KEYRING_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::snap {

// HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF "HKDF": `out_len`
// bytes from input key material `ikm`, `salt` and `info`. kInvalidArgument
// for out_len 0 or above 255*32; kInternal when OpenSSL fails.
absl::StatusOr<encryption::SecretKey> HkdfSha256(const encryption::SecretKey& ikm,
                                                 absl::string_view salt,
                                                 absl::string_view info, size_t out_len);

class Keyring {
 public:
  Keyring();
  ~Keyring();
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // A keyring holding `dek` as its write key (the common case).
  static absl::StatusOr<std::shared_ptr<Keyring>> ForDek(const encryption::Dek& dek);

  // Adds a DEK (cloned). Adding the same id again with the same key is a
  // no-op; another key under a held id is kAlreadyExists. The first key
  // added becomes the write key.
  absl::Status AddKey(const encryption::Dek& dek);
  // Makes a held key the write key. kNotFound when not held.
  absl::Status SetWriteKey(encryption::KeyId id);
  // The write key's id; nullopt when the keyring is empty.
  std::optional<encryption::KeyId> write_key_id() const;
  bool HasKey(encryption::KeyId id) const;

  // Opens .snap EncryptedRecords under any key held.
  const encryption::Decrypter& decrypter() const { return *decrypter_; }

  // A new Encrypter on the write key (one per snapshot). kFailedPrecondition
  // when the keyring is empty.
  absl::StatusOr<std::unique_ptr<encryption::Encrypter>> NewEncrypter() const;

  // The algorithm of a held key; kNotFound when not held.
  absl::StatusOr<encryption::Algorithm> AlgorithmOf(encryption::KeyId id) const;

  // The per-file key of a stream: HKDF-SHA256(DEK `id`, salt, info), 32
  // bytes. kNotFound when `id` is not held.
  absl::StatusOr<encryption::SecretKey> DeriveStreamKey(encryption::KeyId id,
                                                        absl::string_view salt,
                                                        absl::string_view info) const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<encryption::KeyId, encryption::Dek> keys_;  // guarded by mu_
  std::optional<encryption::KeyId> write_key_;                    // guarded by mu_
  std::unique_ptr<encryption::MultiDecrypter> decrypter_;
};

}  // namespace sealwal::snap

#endif  // SEALWAL_SNAP_KEYRING_H_
