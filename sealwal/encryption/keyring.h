// sealwal/encryption/keyring.h: the DEKs a node writes and reads with, in one
// place, shared by the WAL codec (sealwal/walcrypt/wal_codec.h), .snap files
// and .snap.stream files (sealwal/snap/).
//
// A Keyring holds any number of DEKs by key id. One of them is the write
// key: everything new is sealed under it. Every key held opens records that
// name its id, so a store written across a rotation stays readable while
// both keys are held. Switching the write key is one call, SetWriteKey; a
// WAL codec built on the keyring seals under the new key from its next
// Encode on (it compares write_generation(), one atomic load per call).
//
// Key usage: each DEK has one KeyUsage (sealwal/encryption/key_usage.h), the
// counter of the messages sealed under it in this process, shared by every
// sealer: NewEncrypter's Encrypters count one per record they seal (a WAL
// entry or the metadata, a .snap), and DeriveStreamKeyForWriting counts one
// per stream (the DEK's one use for a stream is deriving the per-file key;
// the stream's chunks are sealed under that derived key, whose nonces are
// the chunk counter, and do not count against the DEK). A keyring made by
// pem::LoadKeyring (sealwal/pem/keyring_loader.h) installs a Reserver that
// raises the key file's stored count before a DEK seals past it.
//
// The DEK bytes never leave: callers get Encrypters, the Decrypter, or
// derived keys (SecretKey, wiped on destruction).
//
// Errors, the same everywhere keys are looked up (docs/format.md §12):
//   kNotFound          a key id the keyring does not hold, naming it ("no DEK
//                      with key id 0x1a2b3c4d (is the key file the right
//                      one?)"); IsMissingKeyError (decrypter.h) tells it from other
//                      kNotFound statuses (a missing file)
//   kDataLoss          authentication failed under a key that is held
//                      (from the Decrypter)
//   kFailedPrecondition sealing with an empty keyring
//   kResourceExhausted the write key has sealed 2^32 messages
//   kInvalidArgument   a key that is not a usable DEK; kAlreadyExists
//                      another key under a held id
//
// Ownership: AddKey clones the Dek; the keyring wipes its copies when it is
// destroyed. Keyrings are shared (std::shared_ptr) by WAL codecs,
// Snapshotters and stream readers and writers.
// Thread-safety: every method is thread-safe.
#ifndef SEALWAL_ENCRYPTION_KEYRING_H_
#define SEALWAL_ENCRYPTION_KEYRING_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::encryption {

// HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF "HKDF": `out_len`
// bytes from input key material `ikm`, `salt` and `info`. kInvalidArgument
// for out_len 0 or above 255*32; kInternal when OpenSSL fails.
absl::StatusOr<SecretKey> HkdfSha256(const SecretKey& ikm, absl::string_view salt,
                                     absl::string_view info, size_t out_len);

struct KeyringOptions {
  // rotation_required() once the write key's count reaches this; 1..2^32.
  uint64_t rotation_threshold = kDefaultRotationThreshold;
  // With a reserver: how far each reservation raises the stored count.
  uint64_t reservation_block = kDefaultReservationBlock;
  // Called before any DEK of this keyring seals past its stored count
  // (key_usage.h). Null: counts live in memory only.
  Reserver reserver;
  // Encrypters' threads for large WAL batches (EncrypterOptions).
  int seal_threads = 0;
};

class Keyring {
 public:
  explicit Keyring(KeyringOptions options = {});
  ~Keyring();
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // A keyring holding `dek` (count `encryptions`) as its write key.
  static absl::StatusOr<std::shared_ptr<Keyring>> ForDek(const Dek& dek,
                                                         uint64_t encryptions = 0,
                                                         KeyringOptions options = {});

  // Adds a DEK (cloned) that has sealed (at most) `encryptions` messages
  // so far. Adding the same id again with the same key is a no-op (the
  // count is kept); another key under a held id is kAlreadyExists. The first
  // key added becomes the write key.
  absl::Status AddKey(const Dek& dek, uint64_t encryptions = 0);
  // Makes a held key the write key: every sealer of this keyring (new
  // Encrypters, WAL codecs at their next Encode, new streams) uses it from
  // now on. kNotFound (MissingKeyError) when not held.
  absl::Status SetWriteKey(KeyId id);
  // Forgets a held key that is not the write key (a rotation's last step,
  // once no retained file names it): its DEK is wiped, records naming it no
  // longer open. kNotFound (MissingKeyError) when not held;
  // kFailedPrecondition for the write key.
  absl::Status RemoveKey(KeyId id);
  // The write key's id; nullopt when the keyring is empty.
  std::optional<KeyId> write_key_id() const;
  // Grows by one at every SetWriteKey that changes the write key (and when
  // the first key is added): a cheap "did the write key change" check.
  uint64_t write_generation() const { return write_generation_.load(std::memory_order_acquire); }
  bool HasKey(KeyId id) const;
  // The ids held, in increasing order.
  std::vector<KeyId> KeyIds() const;

  // Opens records under any key held (thread-safe, shared).
  const Decrypter& decrypter() const { return *decrypter_; }
  std::shared_ptr<const Decrypter> shared_decrypter() const { return decrypter_; }

  // A new Encrypter on the write key, counting on that key's KeyUsage.
  // `options.algorithm`, `usage`, `initial_encryptions` and
  // `rotation_threshold` are the keyring's. kFailedPrecondition when the
  // keyring is empty.
  absl::StatusOr<std::unique_ptr<Encrypter>> NewEncrypter(EncrypterOptions options = {}) const;

  // The algorithm of a held key; kNotFound (MissingKeyError) when not held.
  absl::StatusOr<Algorithm> AlgorithmOf(KeyId id) const;

  // The per-file key of a stream being read: HKDF-SHA256(DEK `id`, salt,
  // info), 32 bytes. Counts nothing. kNotFound when `id` is not held.
  absl::StatusOr<SecretKey> DeriveStreamKey(KeyId id, absl::string_view salt,
                                            absl::string_view info) const;
  // The same for a stream being written: counts one message on `id`'s
  // usage first (reserving if needed); the counter's error refuses it.
  absl::StatusOr<SecretKey> DeriveStreamKeyForWriting(KeyId id, absl::string_view salt,
                                                      absl::string_view info) const;

  // The write key's counter: messages counted so far (see key_usage.h) and
  // whether it reached the rotation threshold. 0 / false when empty.
  uint64_t encryptions() const;
  bool rotation_required() const;
  uint64_t rotation_threshold() const { return options_.rotation_threshold; }
  // The counter of a held key (shared with its sealers); null when not held.
  std::shared_ptr<KeyUsage> UsageOf(KeyId id) const;

 private:
  struct Entry {
    Dek dek;
    std::shared_ptr<KeyUsage> usage;
  };
  // Locked: the entry of `id`, or null.
  const Entry* FindLocked(KeyId id) const;

  const KeyringOptions options_;
  mutable std::mutex mu_;
  absl::flat_hash_map<KeyId, Entry> keys_;  // guarded by mu_
  std::optional<KeyId> write_key_;          // guarded by mu_
  std::atomic<uint64_t> write_generation_{0};
  const std::shared_ptr<MultiDecrypter> decrypter_;
};

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_KEYRING_H_
