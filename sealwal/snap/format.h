// sealwal/snap/format.h: every on-disk constant and byte layout of a snapshot
// directory, and the pure encode/decode functions for them. The reference
// for each byte is docs/format.md §12; this header mirrors it.
//
// A snapshot directory (etcd's `member/snap`, sealwal's `snap-v3` or
// `snap-v3-encrypted`) holds:
//
//   %016x-%016x.snap          term, index: etcd's snapshot file (below)
//   %016x-%016x.snap.stream   the data of a streamed snapshot (below); only
//                             valid together with the .snap naming it
//   *.tmp                     a file being written; ignored by readers
//   *.broken                  a .snap that failed its CRC, renamed by Load
//
// .snap (etcd 3.4 byte-compatible):
//
//   snappb.Snapshot{ 1: crc uint32 varint, 2: data bytes }
//     data = raftpb.Snapshot{ 1: data bytes, 2: metadata{conf_state, index, term} }
//     crc  = CRC-32C (Castagnoli) of `data` (the marshalled raftpb.Snapshot)
//
// raftpb.Snapshot.data holds, by directory kind and snapshot kind:
//
//                 inline snapshot            streamed snapshot
//   plaintext     the application's bytes    StreamRef (72 bytes, below)
//   encrypted     EncryptedRecord(bytes)     EncryptedRecord(StreamRef)
//
// EncryptedRecord: sealwal/proto/encryption.proto, sealed under the DEK with the
// associated data of sealwal/encryption/associated_data.h, purpose "snapshot",
// index and term of the snapshot, the key id, and extra = the serialized
// ConfState (so membership cannot be swapped either).
//
// StreamRef (all integers little-endian):
//
//   off size field
//   0   16   magic  00 "sealwal-stream" 00
//   16  1    version (1)
//   17  1    algorithm of the stream (EncryptedRecord.Algorithm value)
//   18  2    reserved, 0
//   20  4    key_id (0 when plaintext)
//   24  4    chunk_size
//   28  4    reserved, 0
//   32  8    plaintext size in bytes
//   40  32   salt of the stream (its identity: must equal the header's)
//
// .snap.stream:
//
//   +-------------------+---------+---------+-----+-------------------+
//   | header (80 bytes) | chunk 0 | chunk 1 | ... | chunk n-1 (last)  |
//   +-------------------+---------+---------+-----+-------------------+
//
//   header:
//   off size field
//   0   8    magic "SEALSTRM"
//   8   1    version (1)
//   9   1    algorithm: 0 plaintext, 3 AES-256-GCM, 4 ChaCha20-Poly1305
//   10  2    reserved, 0
//   12  4    key_id u32 (0 when plaintext)
//   16  8    index u64
//   24  8    term u64
//   32  4    chunk_size u32: plaintext bytes per chunk (4 KiB .. 64 MiB)
//   36  32   salt: random, the file's identity and the HKDF salt
//   68  7    nonce prefix: random
//   75  1    reserved, 0
//   76  4    CRC-32C of bytes 0..75
//
//   chunk i: payload_i || trailer_i, where payload_i is chunk_size bytes
//   for i < n-1 and 1..chunk_size bytes for the last one (0 only when the
//   whole stream is empty, n = 1). Encrypted: payload = AEAD ciphertext and
//   trailer = the 16-byte tag, under
//     key   = HKDF-SHA256(ikm = DEK, salt = salt,
//                         info = AAD{purpose "stream-chunk", key_id, index,
//                                    term, extra = header bytes 0..75})
//     nonce = nonce_prefix(7) || i (u32 big-endian) || last (0x00 / 0x01)
//     aad   = empty
//   Plaintext: payload = the data, trailer = XXH3-64 (u64 LE) of the data
//   with seed XXH3-64(header bytes 0..75 || i (u32 BE) || last).
//
// Thread-safety: pure functions and constants.
#ifndef SEALWAL_SNAP_FORMAT_H_
#define SEALWAL_SNAP_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/proto/raftpb.pb.h"

namespace sealwal::snap {

// ---- file names ------------------------------------------------------------

inline constexpr absl::string_view kSnapSuffix = ".snap";
inline constexpr absl::string_view kStreamSuffix = ".snap.stream";
inline constexpr absl::string_view kBrokenSuffix = ".broken";
inline constexpr absl::string_view kTmpSuffix = ".tmp";

// "%016x-%016x.snap" (term, index), as etcd names them.
std::string SnapFileName(uint64_t term, uint64_t index);
// "%016x-%016x.snap.stream".
std::string StreamFileName(uint64_t term, uint64_t index);
// Parses a name made by SnapFileName (exactly: 16 + 1 + 16 lower- or
// upper-case hex digits and ".snap"). False for anything else.
bool ParseSnapFileName(absl::string_view name, uint64_t* term, uint64_t* index);
// The same for StreamFileName.
bool ParseStreamFileName(absl::string_view name, uint64_t* term, uint64_t* index);

// ---- .snap -----------------------------------------------------------------

// The two fields of a snappb.Snapshot, viewed inside the file's bytes.
struct SnapFileView {
  uint32_t crc = 0;
  absl::string_view raft_snapshot;  // marshalled raftpb.Snapshot
};

// How a .snap failed to decode; the names etcd's manifests use.
enum class SnapError {
  kNone,
  kEmpty,        // empty file, or empty data / crc 0 (etcd ErrEmptySnapshot)
  kCrcMismatch,  // etcd ErrCRCMismatch
  kUnmarshal,    // not a snappb.Snapshot / raftpb.Snapshot
};

// Decodes snappb.Snapshot and checks its CRC, as etcd's snap.Read does.
// Errors: kDataLoss, with a message starting "snap: " and GetSnapError()
// giving the class. Never kInternal: any byte string is handled.
absl::StatusOr<SnapFileView> DecodeSnapFile(absl::string_view file);

// raftpb.Snapshot's fields; `data` is a view into the input.
struct RaftSnapshotView {
  absl::string_view data;
  raftpb::SnapshotMetadata metadata;
};
// Decodes a marshalled raftpb.Snapshot with protobuf's rules (the last
// `data` wins, `metadata` occurrences merge). kDataLoss (kUnmarshal) when it
// does not parse.
absl::StatusOr<RaftSnapshotView> DecodeRaftSnapshot(absl::string_view bytes);

// The class of a status returned by DecodeSnapFile / DecodeRaftSnapshot
// (kNone for any other status).
SnapError GetSnapError(const absl::Status& s);
// "crc_mismatch", "empty_snapshot", "other" (etcd manifest class names).
absl::string_view SnapErrorClassName(SnapError e);

// Appends the bytes of snappb.Snapshot{crc, data = raftpb.Snapshot{data,
// metadata}} as three pieces so that a large `data` is never copied: the
// caller writes prefix, data, suffix in order. crc is computed here.
struct SnapFilePieces {
  std::string prefix;  // snappb tags + raftpb data tag and length
  std::string suffix;  // raftpb metadata field
  uint32_t crc = 0;
};
SnapFilePieces EncodeSnapFilePieces(absl::string_view data,
                                    const raftpb::SnapshotMetadata& metadata);

// ---- StreamRef -------------------------------------------------------------

inline constexpr size_t kSaltSize = 32;
inline constexpr size_t kNoncePrefixSize = 7;
inline constexpr absl::string_view kStreamRefMagic{"\0sealwal-stream\0", 16};
inline constexpr uint8_t kStreamRefVersion = 1;
inline constexpr size_t kStreamRefSize = 16 + 1 + 1 + 2 + 4 + 4 + 4 + 8 + kSaltSize;  // 72

struct StreamRef {
  encryption::Algorithm algorithm = encryption::Algorithm::kNotEncrypted;
  encryption::KeyId key_id;
  uint32_t chunk_size = 0;
  uint64_t size = 0;  // plaintext bytes
  std::array<uint8_t, kSaltSize> salt{};
  bool operator==(const StreamRef&) const = default;
};

// True when `data` starts with kStreamRefMagic: raftpb.Snapshot.data (after
// decryption) names a stream. Inline data starting so is refused on save.
bool IsStreamRef(absl::string_view data);
std::string EncodeStreamRef(const StreamRef& ref);
// kDataLoss when the bytes are not a version-1 StreamRef of exactly 72 bytes.
absl::StatusOr<StreamRef> DecodeStreamRef(absl::string_view data);

// ---- stream header and chunks ----------------------------------------------

inline constexpr absl::string_view kStreamMagic = "SEALSTRM";
inline constexpr uint8_t kStreamVersion = 1;
// magic, version, algorithm, reserved, key_id, index, term, chunk_size,
// salt, nonce prefix, reserved, crc.
inline constexpr size_t kStreamHeaderSize =
    8 + 1 + 1 + 2 + 4 + 8 + 8 + 4 + kSaltSize + kNoncePrefixSize + 1 + 4;  // 80
inline constexpr size_t kStreamHeaderCrcOffset = kStreamHeaderSize - 4;  // 76
inline constexpr uint32_t kMinChunkSize = 4096;
inline constexpr uint32_t kMaxChunkSize = 64u << 20;
inline constexpr uint32_t kDefaultChunkSize = 1u << 20;
// The chunk counter is 32 bits: a stream has at most 2^32 chunks.
inline constexpr uint64_t kMaxChunks = uint64_t{1} << 32;
inline constexpr size_t kPlainTrailerSize = 8;  // XXH3-64

struct StreamHeader {
  encryption::Algorithm algorithm = encryption::Algorithm::kNotEncrypted;
  encryption::KeyId key_id;
  uint64_t index = 0;
  uint64_t term = 0;
  uint32_t chunk_size = kDefaultChunkSize;
  std::array<uint8_t, kSaltSize> salt{};
  std::array<uint8_t, kNoncePrefixSize> nonce_prefix{};
};

// 80 bytes, CRC included.
std::string EncodeStreamHeader(const StreamHeader& h);
// kDataLoss for a short input, wrong magic, CRC, version, algorithm,
// reserved bytes, chunk size out of range, or key id 0 with an algorithm
// (or non-zero without one).
absl::StatusOr<StreamHeader> DecodeStreamHeader(absl::string_view bytes);

// Bytes after the payload of every chunk: 16 (AEAD tag) or 8 (XXH3-64).
size_t ChunkTrailerSize(encryption::Algorithm algorithm);

// Where the chunks of a stream are, from its header and file size.
struct StreamLayout {
  uint64_t chunk_size = 0;   // plaintext bytes per full chunk
  uint64_t trailer = 0;      // per-chunk trailer
  uint64_t chunks = 0;       // n >= 1
  uint64_t size = 0;         // plaintext bytes in total
  uint64_t stored_chunk() const { return chunk_size + trailer; }
  uint64_t offset(uint64_t i) const { return kStreamHeaderSize + i * stored_chunk(); }
  uint64_t payload_size(uint64_t i) const {
    return i + 1 < chunks ? chunk_size : size - (chunks - 1) * chunk_size;
  }
};
// kDataLoss when no stream of this chunk size has `file_size` bytes (the
// last chunk would be empty or short of its trailer).
absl::StatusOr<StreamLayout> LayoutFromFileSize(const StreamHeader& h, uint64_t file_size);
// The layout a stream of `size` plaintext bytes has. kInvalidArgument when
// it would need more than 2^32 chunks.
absl::StatusOr<StreamLayout> LayoutFromPlainSize(const StreamHeader& h, uint64_t size);

// The 12-byte AEAD nonce of chunk i.
std::array<char, encryption::kAeadNonceSize> ChunkNonce(
    const std::array<uint8_t, kNoncePrefixSize>& prefix, uint32_t i, bool last);
// The HKDF info of a stream: the associated data (purpose stream-chunk,
// key id, index, term, extra = header bytes 0..75).
absl::StatusOr<std::string> StreamKeyInfo(absl::string_view header_bytes,
                                          const StreamHeader& h);
// The plaintext trailer of chunk i.
uint64_t PlainChunkChecksum(absl::string_view header_bytes, uint32_t i, bool last,
                            absl::string_view payload);

}  // namespace sealwal::snap

#endif  // SEALWAL_SNAP_FORMAT_H_
