// sealwal/encryption/decrypter.h: opens EncryptedRecords sealed under any of
// several DEKs.
//
// During a key rotation (docs/security.md, "Keys") a store holds records under
// the old DEK, the pending one and, after promotion, the new one; a crash
// at any step must leave a store that opens with the keys on disk. So the
// reading side holds every DEK it has been given and picks one per record
// by EncryptedRecord.key_id, as rocksdb's EncryptionProvider and Vault's
// keyring do. (The writing side, Encrypter, uses exactly one DEK.)
//
// Decrypter is the interface readers take (the WAL codec, snapshots);
// MultiDecrypter is its implementation. With allow_not_encrypted it is also
// the pass-through for NOT_ENCRYPTED records (unlocked key files).
//
// Verdicts, for each record:
//   - a malformed record (not an EncryptedRecord, a nonce that is not
//     12 bytes, key id 0 on an encrypted record, an algorithm sealwal does
//     not implement such as swarmkit's secretbox/fernet or an unknown
//     value, an algorithm other than the one its DEK was added with)
//                                            kDataLoss
//   - a key id this decrypter does not hold  kNotFound "no DEK with key id
//                                            0x1a2b3c4d (is the key file the
//                                            right one?)": a key problem, not
//                                            corruption (docs/format.md §12)
//   - authentication failure (ciphertext, tag, nonce, key id or the AAD
//     context altered; a payload moved elsewhere; the wrong key under a
//     known id)                              kDataLoss naming the purpose,
//                                            index, term and key id
//   - NOT_ENCRYPTED                          kDataLoss unless
//                                            allow_not_encrypted: in an
//                                            encrypted store a plaintext
//                                            record can only be a downgrade
//                                            attack (anyone who can write
//                                            the disk could replace data)
//                                            or a misconfiguration
// On any error *out holds no plaintext.
//
// Thread-safety: all methods are thread-safe, including AddKey/RemoveKey
// concurrently with Decrypt (the WAL decodes entries on two threads while
// the key rotator may add a pending key). A Decrypt that already found its
// key completes with it even if RemoveKey runs meanwhile.
//
// Performance: an Aead (one EVP_CIPHER_CTX, key schedule done) serves one
// thread at a time, so each key keeps a small mutex-protected free list of
// them. A Decrypt borrows one and returns it; a new context is made only
// when more threads decrypt under one key at once than ever before, so the
// steady state allocates no context per record. DecryptSerialized reads a
// canonically serialized record (as Encrypter writes it) in place, without
// copying the ciphertext into a message; other encodings go through the
// protobuf parser and get the same verdicts.
#ifndef SEALWAL_ENCRYPTION_DECRYPTER_H_
#define SEALWAL_ENCRYPTION_DECRYPTER_H_

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/proto/encryption.pb.h"

namespace sealwal::encryption {

namespace internal {
struct EncryptedRecordView;  // the fields of a record, viewed in place
}  // namespace internal

// kNotFound "no DEK with key id 0x1a2b3c4d (is the key file the right one?)"
// followed by `context` when it is not empty, carrying a payload that
// IsMissingKeyError recognises (wrappers that keep the payload keep the
// classification).
absl::Status MissingKeyError(KeyId id, absl::string_view context = "");
// True for a kNotFound status made by MissingKeyError.
bool IsMissingKeyError(const absl::Status& status);
// The status payload's type URL (copy it when re-wrapping a status).
inline constexpr absl::string_view kMissingKeyPayload = "sealwal.dev/missing-key";

// The opening side, as an interface: the WAL codec and the snapshot reader
// take a `const Decrypter&` and do not care how keys are found.
// Implementations must be thread-safe for all const methods.
class Decrypter {
 public:
  virtual ~Decrypter() = default;

  // Verifies and decrypts `record`, which must have been sealed for the
  // place `ctx` names, and replaces *out with the plaintext. Errors as in
  // the table at the top of this file; on error *out is empty.
  virtual absl::Status Decrypt(const encryptionpb::EncryptedRecord& record, const AadContext& ctx,
                               std::string* out) const = 0;

  // As Decrypt, for a serialized EncryptedRecord in its canonical encoding
  // (what Encrypter writes: fields in order, each once); kDataLoss for any
  // other encoding, also a valid protobuf one, so that a stored record has
  // exactly one byte form. `out` must not alias `serialized_record`.
  virtual absl::Status DecryptSerialized(absl::string_view serialized_record,
                                         const AadContext& ctx, std::string* out) const = 0;

  // As DecryptSerialized, but decrypts in place, so that a record as large
  // as a snapshot needs no second buffer: on success *plaintext views the
  // plaintext inside `serialized_record` (whose ciphertext it overwrote).
  // `scratch` (may be null) is used only by Session implementations that
  // cannot decrypt in place. Whatever the outcome, the bytes of
  // serialized_record are unspecified afterwards (never unauthenticated
  // plaintext).
  virtual absl::Status DecryptSerializedInPlace(absl::Span<char> serialized_record,
                                                const AadContext& ctx, std::string* scratch,
                                                absl::string_view* plaintext) const = 0;

  // Decrypts many records on one thread, as DecryptSerialized does, but
  // keeps the cipher context of the key it used last instead of taking it
  // from the key's shared pool for every record (two threads decrypting a
  // WAL spent a sixth of their time on that pool's lock). Not thread-safe:
  // one per thread. A key it holds stays usable by it until it moves to
  // another key or is destroyed, even if RemoveKey runs meanwhile. Must not
  // outlive its Decrypter.
  class Session {
   public:
    virtual ~Session() = default;
    virtual absl::Status DecryptSerialized(absl::string_view serialized_record,
                                           const AadContext& ctx, std::string* out) = 0;
    // As Decrypter::DecryptSerializedInPlace, on the session's context. The
    // default decrypts into *scratch.
    virtual absl::Status DecryptSerializedInPlace(absl::Span<char> serialized_record,
                                                  const AadContext& ctx, std::string* scratch,
                                                  absl::string_view* plaintext) {
      absl::Status s = DecryptSerialized(
          absl::string_view(serialized_record.data(), serialized_record.size()), ctx, scratch);
      if (s.ok()) *plaintext = *scratch;
      return s;
    }
  };
  virtual std::unique_ptr<Session> NewSession() const = 0;

  // Whether a record naming `key_id` can be opened.
  virtual bool HasKey(KeyId key_id) const = 0;

 protected:
  Decrypter() = default;
};

struct MultiDecrypterOptions {
  // Return NOT_ENCRYPTED records' data as is instead of refusing them.
  // Only for readers of unlocked key files (docs/format.md §11) and
  // migration tools that know the data is plaintext; never for a store.
  bool allow_not_encrypted = false;
  // Idle contexts kept per key. Concurrent decrypts beyond this still work;
  // their extra contexts are freed when returned.
  size_t max_idle_contexts_per_key = 8;
};

class MultiDecrypter final : public Decrypter {
 public:
  // Cannot fail: there is nothing to validate until keys are added.
  static std::unique_ptr<MultiDecrypter> Create(const MultiDecrypterOptions& options = {});
  ~MultiDecrypter() override;
  MultiDecrypter(const MultiDecrypter&) = delete;
  MultiDecrypter& operator=(const MultiDecrypter&) = delete;

  // Adds a DEK. The decrypter owns `key` from now on and wipes it when the
  // key is removed or the decrypter destroyed. Adding the same id again with
  // the same algorithm and key is a no-op. Errors (nothing is added):
  //   kInvalidArgument   key id 0, kNotEncrypted, a key that is not 32 bytes
  //   kAlreadyExists     the id is held with another key or algorithm (two
  //                      DEKs with one id would make records ambiguous)
  //   kInternal          OpenSSL failed to set up the cipher
  absl::Status AddKey(KeyId key_id, Algorithm algorithm, SecretKey key);

  // Forgets a DEK (after garbage collection proved no file uses it).
  // kNotFound when the id is not held.
  absl::Status RemoveKey(KeyId key_id);

  bool HasKey(KeyId key_id) const override;
  // The ids held, in increasing order.
  std::vector<KeyId> KeyIds() const;

  // Decrypter. Thread-safe.
  absl::Status Decrypt(const encryptionpb::EncryptedRecord& record, const AadContext& ctx,
                       std::string* out) const override;
  absl::Status DecryptSerialized(absl::string_view serialized_record, const AadContext& ctx,
                                 std::string* out) const override;
  absl::Status DecryptSerializedInPlace(absl::Span<char> serialized_record,
                                        const AadContext& ctx, std::string* scratch,
                                        absl::string_view* plaintext) const override;
  std::unique_ptr<Session> NewSession() const override;

  // The key id a serialized record names (0 for NOT_ENCRYPTED records),
  // without decrypting: for the in-use check before a DEK is forgotten
  // (docs/security.md, "Keys", step 5). kDataLoss when it does not parse.
  static absl::StatusOr<KeyId> KeyIdOf(absl::string_view serialized_record);

 private:
  struct KeyEntry;

  explicit MultiDecrypter(const MultiDecrypterOptions& options);

  class MultiSession;
  // A key's entry and one of its cipher contexts, held across records by a
  // session.
  struct Borrowed;

  std::shared_ptr<KeyEntry> Find(KeyId key_id) const;
  absl::Status DecryptSerializedWith(absl::string_view serialized_record, const AadContext& ctx,
                                     std::string* out, Borrowed* borrowed) const;
  absl::Status DecryptSerializedInPlaceWith(absl::Span<char> serialized_record,
                                            const AadContext& ctx, std::string* scratch,
                                            absl::string_view* plaintext,
                                            Borrowed* borrowed) const;
  // Decrypts into *out, or, when `out` is null, in place into the bytes of
  // record.data, which `in_place` points at (writable; it may be null only
  // when record.data is empty). With `borrowed`, the context is kept there
  // for the next record instead of going back to the key's pool.
  absl::Status DecryptView(const internal::EncryptedRecordView& record, const AadContext& ctx,
                           std::string* out, char* in_place = nullptr,
                           Borrowed* borrowed = nullptr) const;

  const MultiDecrypterOptions options_;
  // std::shared_mutex rather than absl::Mutex: Find() runs once per record
  // on every decoding thread, and Debian's Abseil builds Mutex with
  // deadlock detection, which cost more than the AEAD on small records.
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<KeyId, std::shared_ptr<KeyEntry>> keys_;  // guarded by mu_
};

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_DECRYPTER_H_
