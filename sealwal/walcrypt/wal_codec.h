// sealwal/walcrypt/wal_codec.h: the payload codec that makes a WAL encrypted
// (docs/format.md §9, docs/format.md "Encrypted WAL").
//
// An encrypted WAL is an etcd v3 WAL with the same framing, record types
// and CRC chain; only two kinds of payload change:
//
//   Entry.Data          -> serialized EncryptedRecord, AAD purpose
//                          "wal-entry" binding key_id, index, term and
//                          entry type (sealwal/encryption/associated_data.h)
//   metadata record     -> serialized EncryptedRecord, AAD purpose
//                          "wal-metadata" (index, term, type all 0)
//
// Everything else (the length words, walpb.Record type/crc, Entry index,
// term and type, HardState, crc and snapshot records) stays readable, so
// recovery and etcd's own reader can walk the log; docs/security.md states
// what that reveals. An entry's data moved to another index, term or type,
// or swapped with another entry's, fails authentication even after the CRC
// chain is recomputed, because the CRC is no integrity check against an
// attacker and the AAD is.
//
//   walpb.Record{type=2, crc, data = raftpb.Entry{
//       type, term, index,                          <- plaintext
//       data = EncryptedRecord{                     <- this codec
//         algorithm = 3|4, data = ciphertext || tag(16),
//         nonce = 12 bytes, key_id = fixed32}}}
//
// Metadata is encrypted once, by Wal::Create; every segment repeats those
// stored bytes, so etcd's reader (which insists on identical metadata in
// every segment) still walks the log.
//
// The directory says which kind a WAL is, as swarmkit's does:
// "<datadir>/wal-v3" (plaintext) and "<datadir>/wal-v3-encrypted". A reader
// must not guess from the payloads: an attacker could otherwise downgrade a
// WAL to plaintext. IsEncryptedWalDir() is the one check, and the WAL
// enforces it: Wal::Create/Open/OpenForRead/Verify refuse an "-encrypted"
// directory without a WalCodec, and every static entry point and Create/
// Open refuse a WalCodec on any other name (kFailedPrecondition; wal.h,
// "Directory names").
//
// Keys: a codec made by ForKeyring shares an encryption::Keyring
// (sealwal/encryption/keyring.h) with snapshots and the key rotator. It
// seals under the keyring's write key and opens under any key it holds; at
// each Encode/EncodeBatch it compares the keyring's write_generation() with
// the one its Encrypter was made for (one atomic load) and, after a
// SetWriteKey, makes a new Encrypter on the new write key. Every record
// counts on the DEK's shared usage counter (sealwal/encryption/key_usage.h),
// which a keyring loaded from a key file persists in blocks.
//
// Ownership: a WalCodec owns its Encrypter; it shares its Decrypter (the
// key rotator adds pending keys to the same MultiDecrypter) and keyring.
// The WAL borrows the codec (WalOptions::codec), which must outlive the
// Wal.
//
// Thread-safety: Encode is called from the WAL's writing thread only (it
// advances the encrypter's nonce and counter). Decode is const and
// thread-safe: Wal::ReadAll calls it on several threads at once
// (WalOptions::decode_threads); every Decode borrows a cipher context from
// the decrypter's per-key pool, so no context is allocated per record.
//
// Errors from Decode (the WAL reports them as kDecryptFailed):
//   kDataLoss   authentication failed, or the payload is not an
//               EncryptedRecord, or it is NOT_ENCRYPTED (a downgrade); the
//               message names the index, term and key id
//   kNotFound   the record names a key id the decrypter does not hold;
//               the message names the missing key id ("no DEK with key id
//               0x1a2b3c4d ...")
// Errors from Encode:
//   kFailedPrecondition  the codec was made without an encrypter (read-only)
//   kResourceExhausted   the DEK has sealed 2^32 records; rotate it
//   the key file's error a reservation of the DEK's count failed (nothing
//                        was sealed)
//   kInternal            OpenSSL failed
// Neither ever touches a file: a wrong or missing key is reported, never
// "repaired".
#ifndef SEALWAL_WALCRYPT_WAL_CODEC_H_
#define SEALWAL_WALCRYPT_WAL_CODEC_H_

#include <memory>
#include <vector>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/payload_codec.h"

namespace sealwal::walcrypt {

using encryption::AadContext;
using encryption::Decrypter;
using encryption::Dek;
using encryption::Encrypter;
using encryption::EncrypterOptions;
using encryption::Keyring;

// Directory names of the two kinds of WAL under a data directory.
inline constexpr absl::string_view kPlaintextWalDirName = "wal-v3";
inline constexpr absl::string_view kEncryptedWalDirName = "wal-v3-encrypted";
// The suffix that marks any encrypted directory (WAL or snapshots).
inline constexpr absl::string_view kEncryptedDirSuffix = wal::kEncryptedDirSuffix;

// True when `dir` (trailing slashes ignored) names an encrypted WAL or
// snapshot directory, i.e. its last component ends in "-encrypted" (or in
// "-encrypted.tmp", a directory being built): wal::IsEncryptedDirName.
bool IsEncryptedWalDir(absl::string_view dir);

struct WalCodecOptions {
  // Seals new payloads. Null makes a read-only codec (Encode fails with
  // kFailedPrecondition), for dump/verify tools and readers.
  std::unique_ptr<Encrypter> encrypter;
  // Opens payloads; required. Must hold the encrypter's key, so that what
  // is written can be read back.
  std::shared_ptr<const Decrypter> decrypter;
};

class WalCodec final : public wal::PayloadCodec {
 public:
  // kInvalidArgument when the decrypter is missing, the encrypter is the
  // NOT_ENCRYPTED pass-through (an encrypted WAL holds no plaintext), or
  // the decrypter lacks the encrypter's key id.
  static absl::StatusOr<std::unique_ptr<WalCodec>> Create(WalCodecOptions options);

  // Convenience: a codec that writes under `dek` and reads records sealed
  // under it (one key). The DEK is cloned; the caller keeps and wipes its
  // own copy.
  static absl::StatusOr<std::unique_ptr<WalCodec>> ForDek(const Dek& dek,
                                                          const EncrypterOptions& options = {});

  // A codec on `keys`: seals under its write key as it is at each Encode
  // (see the top of this file), opens under every key it holds. `options`
  // as for Keyring::NewEncrypter (e.g. seal_threads). kInvalidArgument for
  // a null keyring, kFailedPrecondition for an empty one.
  static absl::StatusOr<std::unique_ptr<WalCodec>> ForKeyring(std::shared_ptr<Keyring> keys,
                                                              const EncrypterOptions& options = {});

  // wal::PayloadCodec. Always true: a WalCodec (also a read-only one)
  // belongs to an "-encrypted" directory, and the WAL refuses any other.
  bool encrypts() const override { return true; }
  absl::Status Encode(const wal::PayloadContext& ctx, absl::string_view plain,
                      std::string* out) override;
  // Seals the batch with Encrypter::EncryptBatchTo (two threads for large
  // batches). Writer thread only, like Encode.
  absl::Status EncodeBatch(absl::Span<const wal::PayloadContext> ctxs,
                           absl::Span<const absl::string_view> plains,
                           std::string* outs) override;
  absl::Status Decode(const wal::PayloadContext& ctx, absl::string_view stored,
                      std::string* out) const override;
  // Decodes through one Decrypter::Session (one cipher context per thread).
  std::unique_ptr<DecodeSession> NewDecodeSession() const override;

  // The encrypter (null for a read-only codec) and decrypter in use.
  const Encrypter* encrypter() const { return encrypter_.get(); }
  const Decrypter& decrypter() const { return *decrypter_; }
  // The keyring of a ForKeyring codec; null otherwise.
  const std::shared_ptr<Keyring>& keyring() const { return keys_; }
  // True once the DEK should be rotated (false for a read-only codec). For
  // a keyring codec: the keyring's current write key.
  bool rotation_required() const {
    if (keys_ != nullptr) return keys_->rotation_required();
    return encrypter_ != nullptr && encrypter_->rotation_required();
  }

 private:
  WalCodec(std::unique_ptr<Encrypter> encrypter, std::shared_ptr<const Decrypter> decrypter);
  // For a keyring codec: a new Encrypter when the write key changed.
  absl::Status RefreshEncrypter();

  std::unique_ptr<Encrypter> encrypter_;
  const std::shared_ptr<const Decrypter> decrypter_;
  std::shared_ptr<Keyring> keys_;  // ForKeyring codecs only
  uint64_t generation_ = 0;        // keys_->write_generation() of encrypter_
  EncrypterOptions keyring_options_;
  std::vector<AadContext> batch_aad_;  // EncodeBatch's contexts, reused
};

// The AAD context a WAL payload is sealed with (purpose wal-entry or
// wal-metadata, and the entry's index, term and type).
AadContext WalAadContext(const wal::PayloadContext& ctx);

}  // namespace sealwal::walcrypt

#endif  // SEALWAL_WALCRYPT_WAL_CODEC_H_
