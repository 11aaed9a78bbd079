// sealwal/encryption/encrypter.h: seals payloads under one DEK into EncryptedRecords.
//
// An Encrypter is the only writer of ciphertext under a DEK. It owns what
// makes AES-GCM and ChaCha20-Poly1305 safe to use many times under one key:
//
// Nonces (96 bits, never repeated under a key):
//
//   +--------------------+-------------------------------------------+
//   | prefix: 4 bytes    | counter: 8 bytes, big-endian              |
//   | random, fixed for  | random start, +1 per message (mod 2^64)   |
//   | this Encrypter     |                                           |
//   +--------------------+-------------------------------------------+
//
//   Both the prefix and the counter's start come from RAND_bytes when the
//   Encrypter is created. Within one Encrypter the counter cannot come back
//   to a value it had before 2^64 messages, far beyond the 2^32 a DEK may
//   ever seal (below), so its nonces are distinct by construction. Two
//   Encrypters for the same DEK (a restart) start at independent random
//   96-bit points; their runs of at most 2^32 nonces overlap with
//   probability below 2^-63 per pair. Do not fork() a process that holds
//   an Encrypter and use it on both sides: both copies would repeat nonces.
//
// Usage limit (docs/format.md §9): every message sealed is counted on the
// DEK's KeyUsage (sealwal/encryption/key_usage.h), one counter per DEK shared
// by every sealer in the process (EncrypterOptions::usage; an Encrypter
// made without one gets a private counter starting at
// initial_encryptions). A KeyUsage from a Keyring loaded from a key file
// raises the stored count before the DEK seals past it, so the limits
// below hold across processes.
//   - rotation_required() turns true once the count reaches the rotation
//     threshold (default 2^30), as Vault's barrier does; sealing goes on,
//     the key rotator is expected to rotate soon.
//   - at 2^32 messages the DEK is exhausted: Encrypt returns
//     kResourceExhausted ("DEK exhausted, rotate") and seals nothing more.
//     2^32 is NIST SP 800-38D's bound for random 96-bit nonces.
//
// Output (sealwal/proto/encryption.proto, docs/format.md):
//   EncryptedRecord{algorithm, data = ciphertext || 16-byte tag,
//                   nonce = 12 bytes, key_id}
// with the AAD of sealwal/encryption/associated_data.h built from the caller's
// AadContext and this Encrypter's key id. EncryptTo writes the same record
// serialized, byte for byte what EncryptedRecord::SerializeAsString gives,
// without building the message: no heap allocation per record beyond the
// growth of the caller's output buffer.
//
// Thread-safety: AeadEncrypter is not thread-safe; one writer thread seals
// (the WAL calls PayloadCodec::Encode from its writing thread only).
// encryptions() and rotation_required() may be read from any thread at any
// time. The cipher context is set up once per Encrypter and reused for
// every record: no EVP context is allocated per record.
#ifndef SEALWAL_ENCRYPTION_ENCRYPTER_H_
#define SEALWAL_ENCRYPTION_ENCRYPTER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/proto/encryption.pb.h"

namespace sealwal::encryption {


// The sealing side, as an interface so that callers (the WAL codec, the
// snapshot writer, key wrapping) do not care whether records are really
// encrypted: AeadEncrypter seals, NewNotEncryptedEncrypter() passes through.
class Encrypter {
 public:
  virtual ~Encrypter() = default;

  // Seals `plaintext` at the place `ctx` names. Errors:
  //   kResourceExhausted  the DEK has sealed 2^32 messages; rotate it
  //   kInvalidArgument    ctx.extra of 4 GiB or more
  //   kInternal           OpenSSL failed (the nonce is spent regardless)
  virtual absl::StatusOr<encryptionpb::EncryptedRecord> Encrypt(const AadContext& ctx,
                                                             absl::string_view plaintext) = 0;

  // As Encrypt, but replaces *serialized_record with the serialized record
  // (byte for byte what EncryptedRecord::SerializeAsString would give).
  // `plaintext` and `ctx.extra` must not point into *serialized_record. On
  // error *serialized_record is cleared.
  virtual absl::Status EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                                 std::string* serialized_record) = 0;

  // The id written into every record (0 for the pass-through).
  // Called by EncryptBatchTo on the calling thread for consecutive
  // ranges [begin, end) of the batch, in order, each as soon as
  // outs[begin, end) hold their records, so that the caller uses them while
  // later ones are still being sealed. A non-OK return stops the batch
  // (records not yet reported may or may not be sealed) and is returned.
  using BatchReady = absl::FunctionRef<absl::Status(size_t begin, size_t end)>;

  // Seals plains[i] at ctxs[i] into outs[i] (serialized, as EncryptTo) for
  // every i, using the nonces n EncryptTo calls in order would use, and
  // reports finished ranges through `ready`. An implementation may seal on a
  // helper thread. On error, records already reported stay as they were
  // but the batch has failed (nonces already drawn stay spent, as with
  // EncryptTo); records not reported are unspecified.
  virtual absl::Status EncryptBatchTo(absl::Span<const AadContext> ctxs,
                                      absl::Span<const absl::string_view> plains,
                                      std::string* outs, BatchReady ready) {
    for (size_t i = 0; i < ctxs.size(); ++i) {
      absl::Status s = EncryptTo(ctxs[i], plains[i], &outs[i]);
      if (!s.ok()) return s;
    }
    return ctxs.empty() ? absl::OkStatus() : ready(0, ctxs.size());
  }
  // The same without progress reports: all of outs is valid on success.
  absl::Status EncryptBatchTo(absl::Span<const AadContext> ctxs,
                              absl::Span<const absl::string_view> plains, std::string* outs) {
    return EncryptBatchTo(ctxs, plains, outs, [](size_t, size_t) { return absl::OkStatus(); });
  }

  virtual KeyId key_id() const = 0;
  virtual Algorithm algorithm() const = 0;
  // Messages counted on this DEK's counter: those this object sealed,
  // those other sealers sharing its KeyUsage sealed, and what the DEK had
  // sealed before (the stored count, or EncrypterOptions::initial_encryptions).
  virtual uint64_t encryptions() const = 0;
  // True once the key rotator should replace this DEK.
  virtual bool rotation_required() const = 0;

 protected:
  Encrypter() = default;
};

struct EncrypterOptions {
  // kAes256Gcm or kChaCha20Poly1305.
  Algorithm algorithm = kDefaultAlgorithm;
  // How many messages this DEK has sealed before (persisted by the key
  // rotator). May exceed the limits: the Encrypter is then created, and
  // reports rotation_required() or refuses to seal. Ignored with `usage`.
  uint64_t initial_encryptions = 0;
  // The DEK's shared counter (a Keyring's); its id must be the Encrypter's
  // key id. Null: a private counter starting at initial_encryptions, with
  // nothing persisted.
  std::shared_ptr<KeyUsage> usage;
  // rotation_required() once encryptions() >= this; 1 .. 2^32.
  uint64_t rotation_threshold = kDefaultRotationThreshold;
  // Threads that seal a large batch (EncryptBatchTo), the caller's
  // included: 0 means one per core, at most kMaxSealThreads; 1 seals on
  // the caller's thread only.
  int seal_threads = 0;
};
inline constexpr int kMaxSealThreads = 4;

// Seals with AES-256-GCM or ChaCha20-Poly1305 under one DEK (see the top
// of this file for nonces and limits). Not thread-safe (one writer thread);
// encryptions() and rotation_required() may be read from any thread.
class AeadEncrypter final : public Encrypter {
 public:
  ~AeadEncrypter() override;
  AeadEncrypter(const AeadEncrypter&) = delete;
  AeadEncrypter& operator=(const AeadEncrypter&) = delete;

  // An Encrypter sealing under `key` (32 bytes, copied into OpenSSL's
  // context; the caller keeps and wipes its own copy), recorded as
  // `key_id`. options.algorithm is used. kInvalidArgument for key id 0, a
  // key of the wrong size, kNotEncrypted, a threshold outside 1 .. 2^32 or
  // seal_threads outside 0 .. kMaxSealThreads; kInternal when OpenSSL or
  // its CSPRNG fails.
  static absl::StatusOr<std::unique_ptr<AeadEncrypter>> Create(
      KeyId key_id, const SecretKey& key, const EncrypterOptions& options = {});
  // The same for a Dek; dek.algorithm overrides options.algorithm.
  static absl::StatusOr<std::unique_ptr<AeadEncrypter>> Create(
      const Dek& dek, EncrypterOptions options = {});

  absl::StatusOr<encryptionpb::EncryptedRecord> Encrypt(const AadContext& ctx,
                                                     absl::string_view plaintext) override;
  absl::Status EncryptTo(const AadContext& ctx, absl::string_view plaintext,
                         std::string* serialized_record) override;
  // Batches of at least kParallelMinBytes are cut into chunks that this
  // thread and options.seal_threads - 1 helper threads (started on first
  // use, owned by this object, each with its own cipher context) claim in
  // turn; this thread reports each chunk through `ready` as soon as it and
  // all before it are sealed, so the caller's work on them overlaps the
  // sealing of the rest.
  using Encrypter::EncryptBatchTo;
  absl::Status EncryptBatchTo(absl::Span<const AadContext> ctxs,
                              absl::Span<const absl::string_view> plains, std::string* outs,
                              BatchReady ready) override;
  static constexpr size_t kParallelMinBytes = 32 * 1024;

  KeyId key_id() const override { return key_id_; }
  Algorithm algorithm() const override { return aead_->algorithm(); }
  // Every call that consumed a nonce counts, successful or not; so do
  // other sealers sharing the DEK's KeyUsage.
  uint64_t encryptions() const override { return usage_->used(); }
  bool rotation_required() const override { return encryptions() >= rotation_threshold_; }
  uint64_t rotation_threshold() const { return rotation_threshold_; }

 private:
  // Only tests move the nonce counter (next to its 2^64 wrap): moving it
  // back would repeat nonces, so no public call can. The peer is defined
  // in tests/encryption_nonce_test.cc and nowhere in the library.
  friend class AeadEncrypterTestPeer;

  AeadEncrypter(KeyId key_id, std::unique_ptr<Aead> aead, const EncrypterOptions& options);

  // Claims the next nonce (into nonce_) and builds the AAD (into aad_).
  class Helper;  // the helper thread of EncryptBatchTo

  absl::Status Prepare(const AadContext& ctx);
  // Reserves `n` messages against the usage limit and returns the first
  // nonce counter of the run.
  absl::StatusOr<uint64_t> Reserve(uint64_t n);
  // Seals one record with the given context objects and nonce counter.
  absl::Status SealRecord(Aead* aead, std::string* aad, const AadContext& ctx, uint64_t counter,
                          absl::string_view plaintext, std::string* out) const;

  const KeyId key_id_;
  const std::unique_ptr<Aead> aead_;
  const uint64_t rotation_threshold_;
  const std::shared_ptr<KeyUsage> usage_;
  std::array<char, kAeadNonceSize> nonce_{};  // prefix || counter of the last message
  uint64_t nonce_counter_ = 0;                // the counter the next message uses
  std::string aad_;                           // reused across messages
  // EncryptBatchTo's helpers, each with its own cipher context and AAD
  // buffer; their threads start on the first batch large enough.
  struct Worker {
    std::unique_ptr<Aead> aead;
    std::string aad;
    std::unique_ptr<Helper> thread;
    absl::Status status;  // its error in the current batch, read once it is done
  };
  std::vector<Worker> workers_;
  // EncryptBatchTo's chunks, reused across batches: where each begins
  // (plus the batch size at the end) and whether it is sealed.
  std::vector<size_t> chunk_begin_;
  std::unique_ptr<std::atomic<uint8_t>[]> chunk_state_;
  size_t chunk_capacity_ = 0;
};

// The pass-through: records are EncryptedRecord{NOT_ENCRYPTED, data =
// plaintext}, no key id, no nonce, no protection, never a rotation. For
// unlocked key files (docs/format.md §11) and migration tools; a store
// reader refuses such records unless told otherwise (decrypter.h).
// Thread-safe (it has no state).
std::unique_ptr<Encrypter> NewNotEncryptedEncrypter();

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_ENCRYPTER_H_
