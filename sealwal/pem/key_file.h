// sealwal/pem/key_file.h: the node key file's bytes, as text (every byte is
// documented in docs/format.md §11).
//
//   -----BEGIN SEALWAL RAFT DEKS-----
//   kek-version: 7
//   kek-source: pkcs11:token=...;object=...?module-path=...   (optional)
//   kek-wrapped: <base64: the unlock key, wrapped by kek-source> (optional)
//   raft-dek: <base64 EncryptedRecord: the DEK, wrapped under the KEK>
//   raft-dek-pending: <same; present only during a rotation>
//   raft-dek-needs-rotation: true                  (present only when true)
//
//   <base64 of the file info: 82 bytes (version 2) locked, 34 (version 1) unlocked>
//   -----END SEALWAL RAFT DEKS-----
//   -----BEGIN ENCRYPTED PRIVATE KEY-----           ("PRIVATE KEY" unlocked)
//   <base64 PKCS#8, written and read by OpenSSL>
//   -----END ENCRYPTED PRIVATE KEY-----
//
// Two blocks, because OpenSSL refuses a key block carrying custom headers
// ("not proc type", what swarmkit's single-block layout gets from
// `openssl pkey`) but skips a block of another name: the file stays a key
// file for OpenSSL and every TLS stack.
//
// Header values (DEK records):
//   locked (autolock on): EncryptedRecord{AES_256_GCM, nonce (12 bytes),
//     data = AES-256-GCM(KEK, DekPlaintext) || tag, key_id = KEK id}, with
//     the associated data of sealwal/encryption/associated_data.h for purpose "dek",
//     index = kek-version, extra = the header name || the file id (version
//     2; the header name alone in a version-1 or swarmkit file); so a DEK
//     record moved to the other header, kept across a KEK rotation, or
//     moved from another key file (even one with the same unlock key), fails
//     to open, and so does every record of a version-2 file rewritten as
//     version 1.
//   unlocked: EncryptedRecord{NOT_ENCRYPTED, data = DekPlaintext} (no
//     nonce, key_id 0); `sealwal key inspect` warns.
//   DekPlaintext, version 2 (written), 54 bytes: version (1) = 2 |
//     algorithm (1) = 3 or 4 | key_id (4, LE) | encryptions (8, LE) |
//     key (32) | created (8, LE; unix seconds, 0 = unknown).
//   Version 1 (read only), 46 bytes: the same without `created` (unknown).
//   The creation time sits inside the record: in a locked file it is
//   authenticated by the KEK and hidden without the unlock key.
//
// File info (the DEK block's body):
//   version 1 (unlocked files; locked files of older sealwals, read only),
//     34 bytes: version (1) = 1 | flags (1): bit 0 = locked, others 0 |
//     digest (32).
//   version 2 (every locked file written), 82 bytes: version (1) = 2 |
//     flags (1) = 1 | digest (32) | file id (16) | MAC (32).
//   digest = SHA-256 over a domain string, version, flags, each DEK header
//     line and the key block's label and DER. Unkeyed, against accidents (a
//     bit flip in an unlocked key or a plaintext DEK would otherwise go
//     unnoticed); it also tells "damaged file" from "wrong unlock key"
//     before any decryption. Anyone who can write the file can recompute it.
//   file id = 16 random bytes, made when a locked file is written anew and
//     kept by KeyReadWriter's header updates and KEK rotations (the caller
//     passes it to EncodeKeyFile); bound into each DEK record's associated
//     data (above).
//   MAC = HMAC-SHA256(UnlockKey::DeriveFileMacKey(), "sealwal/v2/key-file-mac\0"
//     || version || flags || digest || file id): through the digest it
//     covers the whole file, so that without the unlock key no header can
//     be removed or changed (raft-dek-needs-rotation stripped,
//     raft-dek-pending deleted) and no older key block swapped in. Checked
//     by OpenDekHeaders (and so DecodeKeyFile) once the unlock key is known
//     to be the right one, before any DEK record is opened.
// A locked version-1 file still opens (with no MAC to check) and is written
// back as version 2. What keeps an attacker from stripping the MAC by
// rewriting a version-2 file as version 1 (or as a swarmkit file) is the
// file id in the records' associated data: they no longer open. Only a
// downgraded file without DEK records remains, which KeyReadWriter refuses
// when it holds an unlock key (key_read_writer.h).

// KEK binding (kek-source, kek-wrapped; both or neither, only in a locked
// file): the unlock key is not held by the operator but wrapped by a KEK
// source outside the file (sealwal/kek/kek_source.h); kek-source names it
// (at most kMaxKekSourceSize printable characters), kek-wrapped holds its
// output (canonical base64 of 1..kMaxKekWrappedSize bytes). Both are covered
// by the digest; whether the wrapped bytes are the right ones is proven as
// for any unlock key: the derived KEK must open the DEK headers.
//
// Read-compatibility: a swarmkit-style file (the same headers on the key
// block itself, no digest) and a bare private key (a key made by
// `openssl genpkey`, no DEKs) are read too; the next write produces the
// layout above. (A KeyReadWriter holding an unlock key refuses a locked
// bare key: key_read_writer.h.) Traditional ("EC PRIVATE KEY") keys are written back as
// PKCS#8.
//
// Errors:
//   kDataLoss          the file is damaged: malformed PEM, bad base64, an
//                      unknown/duplicate header, digest mismatch, a MAC
//                      mismatch under the right unlock key, a DEK record
//                      that does not authenticate under the right KEK, a
//                      key that does not parse
//   kPermissionDenied  locked and no unlock key, or the wrong unlock key
//                      (the KEK id in the records differs, or nothing in
//                      the file opens with it; in a file without DEK
//                      records, OpenDekHeaders alone cannot tell a wrong
//                      key from an altered file and says so)
//   kFailedPrecondition a newer format version, or absurd KDF parameters
// Nothing in this file does I/O; sealwal/pem/key_read_writer.h does.
//
// Secrets: DEKs are SecretKeys; intermediate strings that held key bytes
// are wiped. The text returned by EncodeKeyFile holds an unlocked key in
// the clear: the caller wipes it (WipeString) after writing it.
#ifndef SEALWAL_PEM_KEY_FILE_H_
#define SEALWAL_PEM_KEY_FILE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/proto/encryption.pb.h"

namespace sealwal::pem {

inline constexpr absl::string_view kDekBlockLabel = "SEALWAL RAFT DEKS";
inline constexpr absl::string_view kKekVersionHeader = "kek-version";
inline constexpr absl::string_view kRaftDekHeader = "raft-dek";
inline constexpr absl::string_view kRaftDekPendingHeader = "raft-dek-pending";
inline constexpr absl::string_view kNeedsRotationHeader = "raft-dek-needs-rotation";
inline constexpr absl::string_view kKekSourceHeader = "kek-source";
inline constexpr absl::string_view kKekWrappedHeader = "kek-wrapped";
inline constexpr size_t kMaxKekSourceSize = 1024;
inline constexpr size_t kMaxKekWrappedSize = 2048;
// The file info versions: 2 (locked files) and 1 (unlocked files).
inline constexpr uint8_t kFileInfoVersion2 = 2;
inline constexpr uint8_t kFileInfoVersion1 = 1;
inline constexpr size_t kFileIdSize = 16;
inline constexpr size_t kFileMacSize = 32;
inline constexpr size_t kFileInfoV1Size = 1 + 1 + 32;
inline constexpr size_t kFileInfoV2Size = kFileInfoV1Size + kFileIdSize + kFileMacSize;
// The DekPlaintext version written (2) and the older one still read (1).
inline constexpr uint8_t kDekPlaintextVersion = 2;
inline constexpr size_t kDekPlaintextSize = 1 + 1 + 4 + 8 + 32 + 8;
inline constexpr uint8_t kDekPlaintextVersion1 = 1;
inline constexpr size_t kDekPlaintextV1Size = 1 + 1 + 4 + 8 + 32;

// A DEK as the key file keeps it.
struct StoredDek {
  encryption::Dek dek;
  // An upper bound on the messages this DEK has sealed (docs/format.md §9):
  // whoever encrypts raises it before sealing past it, so that a crash
  // never undercounts. 0 for a fresh DEK.
  uint64_t encryptions = 0;
  // When the DEK was made, in unix seconds (DekCreatedAt); 0 = unknown (a
  // DEK read from a version-1 record). Drives RotationPolicy::max_age.
  uint64_t created = 0;
  StoredDek Clone() const { return StoredDek{dek.Clone(), encryptions, created}; }
  // `created` as a time; nullopt when unknown.
  std::optional<absl::Time> CreatedTime() const {
    if (created == 0) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(created));
  }
};

// `now` as a StoredDek::created value: whole unix seconds, 0 (unknown) for
// a clock at or before 1970.
inline uint64_t DekCreatedAt(absl::Time now) {
  const int64_t s = absl::ToUnixSeconds(now);
  return s > 0 ? static_cast<uint64_t>(s) : 0;
}

// The DEK headers, decrypted.
struct DekHeaders {
  std::optional<StoredDek> current;  // raft-dek
  std::optional<StoredDek> pending;  // raft-dek-pending
  bool needs_rotation = false;       // raft-dek-needs-rotation: true
  DekHeaders Clone() const;
};

// How a key file's unlock key is kept when a KEK source holds it.
struct KekBinding {
  std::string source;   // the kek-source spec
  std::string wrapped;  // the unlock key's 32 bytes as the source wrapped them
  friend bool operator==(const KekBinding&, const KekBinding&) = default;
};

enum class Layout {
  kSealwal,   // two blocks (above)
  kSwarmkit,  // headers on the key block (read only)
  kBareKey,   // just a private key (read only)
};
absl::string_view LayoutName(Layout layout);

// Stage 1: the structure, checked as far as possible without any key
// (PEM grammar, headers, base64, records parse, digest). Used by Peek and
// by `key inspect` on a locked file without its unlock key.
struct ParsedKeyFile {
  ParsedKeyFile() = default;
  ParsedKeyFile(ParsedKeyFile&&) = default;
  ParsedKeyFile& operator=(ParsedKeyFile&&) = default;
  ~ParsedKeyFile();  // wipes key_pem

  Layout layout = Layout::kSealwal;
  bool locked = false;
  uint64_t kek_version = 0;
  std::optional<encryptionpb::EncryptedRecord> current;  // raft-dek
  std::optional<encryptionpb::EncryptedRecord> pending;  // raft-dek-pending
  bool needs_rotation = false;
  std::optional<KekBinding> kek_binding;  // kek-source + kek-wrapped
  // The file info version (1 or 2; 0 outside the sealwal layout), and its
  // raw bytes. Not checked against the MAC yet: OpenDekHeaders does that.
  uint8_t info_version = 0;
  std::string file_info;
  std::string file_id;    // version 2: kFileIdSize bytes; else empty
  std::string key_label;  // "ENCRYPTED PRIVATE KEY", "PRIVATE KEY", ...
  std::string key_pem;    // the key block, as OpenSSL is to read it
};
absl::StatusOr<ParsedKeyFile> ParseKeyFile(absl::string_view text);

// A locked file needs an unlock key: kPermissionDenied when `unlock_key`
// is null for one, OK otherwise. Every full read checks it first.
absl::Status CheckUnlockKeyGiven(const ParsedKeyFile& parsed, const UnlockKey* unlock_key);

// Stage 2 for the headers: checks the file MAC of a version-2 file (when
// `unlock_key` is given), then opens the DEK records. `unlock_key` may be
// null for an unlocked file (and is ignored then); for a locked file
// without DEK records, null returns empty headers with nothing verified.
absl::StatusOr<DekHeaders> OpenDekHeaders(const ParsedKeyFile& parsed,
                                          const UnlockKey* unlock_key);

// Everything in a key file, decrypted.
struct KeyFile {
  PrivateKey key;
  DekHeaders headers;
  uint64_t kek_version = 0;
  bool locked = false;
  Layout layout = Layout::kSealwal;
  std::optional<KekBinding> kek_binding;
  std::string file_id;  // a version-2 file's id (MAC-checked); else empty
};
absl::StatusOr<KeyFile> DecodeKeyFile(absl::string_view text, const UnlockKey* unlock_key);

// The file text for (key, headers) at `kek_version`, locked under
// `unlock_key` when it is non-null, with the kek-source/kek-wrapped headers
// of `binding` when it is non-null (the binding of `unlock_key`). A locked
// file is written with file info version 2 and the file id `*file_id` (to
// keep a file's id across rewrites), or a fresh random one when `file_id`
// is null or empty; an unlocked file (version 1) has no id and ignores it.
// Both pointers are borrowed for the call.
// kInvalidArgument when the DEKs are malformed (current and pending share a
// key id, or a creation time is past 2^63 - 1 seconds), for a binding
// without an unlock key or out of the limits above, or for a file id that
// is not kFileIdSize bytes. The caller wipes the result.
absl::StatusOr<std::string> EncodeKeyFile(const PrivateKey& key, const DekHeaders& headers,
                                          uint64_t kek_version, const UnlockKey* unlock_key,
                                          const KekBinding* binding = nullptr,
                                          const std::string* file_id = nullptr);

// The DekPlaintext: always written as version 2 (54 bytes); version 1 (46
// bytes, created unknown) and version 2 are read, anything else is
// kDataLoss. Exposed for tests and the fuzzer.
std::string EncodeDekPlaintext(const StoredDek& dek);
absl::StatusOr<StoredDek> DecodeDekPlaintext(absl::string_view bytes, absl::string_view header);

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_KEY_FILE_H_
