// sealwal/encryption/associated_data.h: the associated data (AAD) that binds every
// ciphertext sealwal writes to its place (docs/format.md §9,
// docs/format.md "Associated data").
//
// swarmkit encrypts each WAL entry on its own, so an attacker who can write
// the disk can swap two entries' payloads, replay an old one at a new
// index, or move a snapshot's data into the WAL, and every payload still
// decrypts. sealwal authenticates, along with each ciphertext, what the
// payload is (purpose), which key sealed it (key id) and where it belongs
// (index, term, entry type, plus purpose-specific extra bytes); a payload
// moved anywhere else fails authentication (kDataLoss).
//
// Byte layout (all integers little-endian, fixed width; P = purpose length):
//
//   offset   size    field
//   0        11      "sealwal/v1/"                     ASCII, no terminator
//   11       P       purpose name                      ASCII, see Purpose
//   11+P     1       0x00                              separator
//   12+P     4       key_id                            u32 LE
//   16+P     8       index                             u64 LE
//   24+P     8       term                              u64 LE
//   32+P     4       entry type                        i32 LE, two's complement
//   --- only when `extra` is non-empty: ---
//   36+P     4       len(extra)                        u32 LE
//   40+P     len     extra                             raw bytes
//
//   +-------------+---------+----+--------+---------+---------+--------+ - - - - - - - - - - +
//   | sealwal/v1/ | purpose | 00 | key_id |  index  |  term   |  type  | len(extra) | extra  |
//   |  11 bytes   | P bytes | 1  |   4    |    8    |    8    |   4    |     4      | len    |
//   +-------------+---------+----+--------+---------+---------+--------+ - - - - - - - - - - +
//
// So an AAD is 36 + P bytes without extra, 40 + P + len(extra) with it.
// Purpose names contain no 0x00 and every later field has a fixed width,
// so the encoding is injective: two different contexts never produce the
// same bytes (a shorter name cannot be extended into a longer one, and
// "no extra" and "empty extra" are the same context by definition).
//
// Purposes and the fields each sets (unused fields are 0):
//   wal-entry     Entry.Data: index, term, entry type (raftpb.EntryType)
//   wal-metadata  the WAL metadata record: all zero
//   snapshot      raftpb.Snapshot.data: index, term of the snapshot
//   dek           a DEK wrapped under the KEK: extra = PEM header name
//                 ("raft-dek" or "raft-dek-pending"), so the current and
//                 pending DEKs cannot be swapped
//   stream-chunk  the key derivation input of a streaming snapshot: index,
//                 term; extra = stream header fields (snap/ defines them)
//
// Worked example: wal-entry, key id 0x1a2b3c4d, index 5, term 2, type 0
// gives these 45 bytes (hex):
//   73 65 61 6c 77 61 6c 2f 76 31 2f                  "sealwal/v1/"
//   77 61 6c 2d 65 6e 74 72 79                        "wal-entry"
//   00                                                separator
//   4d 3c 2b 1a                                       key id
//   05 00 00 00 00 00 00 00                           index
//   02 00 00 00 00 00 00 00                           term
//   00 00 00 00                                       entry type
//
// Changing this layout changes every ciphertext's AAD: bump "v1" and keep
// the old builder for reading.
//
// Thread-safety: pure functions.
#ifndef SEALWAL_ENCRYPTION_ASSOCIATED_DATA_H_
#define SEALWAL_ENCRYPTION_ASSOCIATED_DATA_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::encryption {

enum class Purpose {
  kWalEntry,     // "wal-entry"
  kWalMetadata,  // "wal-metadata"
  kSnapshot,     // "snapshot"
  kDek,          // "dek"
  kStreamChunk,  // "stream-chunk"
};

// The ASCII name written into the AAD, as in the table above.
absl::string_view PurposeName(Purpose purpose);

// The AAD's first bytes, shared by every purpose.
inline constexpr absl::string_view kAadPrefix = "sealwal/v1/";
// The size of an AAD without extra bytes for the longest purpose name
// (12 bytes: "wal-metadata", "stream-chunk"); builders reserve this much.
inline constexpr size_t kMaxAadSizeWithoutExtra = 11 + 12 + 1 + 4 + 8 + 8 + 4;

// Where a ciphertext belongs: everything in the AAD except the key id,
// which comes from the key that seals or opens the record.
struct AadContext {
  Purpose purpose = Purpose::kWalEntry;
  uint64_t index = 0;
  uint64_t term = 0;
  int32_t entry_type = 0;
  // Purpose-specific context, borrowed: must stay valid while the context
  // is in use. At most 2^32 - 1 bytes.
  absl::string_view extra;
};

// Appends the AAD for (`ctx`, `key_id`) to *out, so that callers can reuse
// one buffer (clear() keeps its capacity). kInvalidArgument, with nothing
// appended, when ctx.extra is 4 GiB or longer.
absl::Status AppendAssociatedData(const AadContext& ctx, KeyId key_id, std::string* out);

// The same, as a new string.
absl::StatusOr<std::string> AssociatedData(const AadContext& ctx, KeyId key_id);

// "wal-entry index 5 term 2 type 0" (and " extra N bytes"), for error
// messages. Extra bytes are not printed: they may be long.
std::string DescribeAadContext(const AadContext& ctx);

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_ASSOCIATED_DATA_H_
