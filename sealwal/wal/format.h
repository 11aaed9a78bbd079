// sealwal/wal/format.h: every constant of etcd v3's WAL format, named where it is
// defined. docs/format.md describes the same bytes with a worked example.
//
// A WAL directory holds segment files named "%016x-%016x.wal" (sequence
// number, raft index of the first entry that may follow). Each segment is a
// run of frames:
//
//   +---------------------------+------------------------+-------------+
//   | length word (8 bytes, LE) | walpb.Record (N bytes) | pad (0..7)  |
//   +---------------------------+------------------------+-------------+
//
//   length word: low 56 bits = N; if N % 8 != 0 the top byte is
//   0x80 | pad, where pad = 8 - N % 8, so every frame is 8-byte aligned and
//   a length word never straddles a sector (it cannot be torn).
//
//   walpb.Record (protobuf): type = 1 (varint), crc = 2 (varint),
//   data = 3 (bytes, omitted when absent).
//
// crc is CRC32C over `data` only, chained: each record's crc is the running
// CRC of the data of every record before it (in this and earlier segments)
// and its own. A segment opens with a crc record (no data) carrying the
// running CRC of the previous segment, then a metadata record, then the last
// HardState (when there is one). A zero length word, or the end of the
// file, ends a segment; the tail segment is preallocated with zeros.
#ifndef SEALWAL_WAL_FORMAT_H_
#define SEALWAL_WAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sealwal::wal {

enum class RecordType : int64_t {
  kMetadata = 1,  // data: the WAL's metadata (opaque to the WAL)
  kEntry = 2,     // data: a marshalled raftpb.Entry
  kState = 3,     // data: a marshalled raftpb.HardState
  kCrc = 4,       // no data; crc = running CRC of everything before
  kSnapshot = 5,  // data: a marshalled walpb.Snapshot {index, term}
};

// The length word that precedes every record.
inline constexpr size_t kFrameSizeBytes = 8;
// Frames are padded to this alignment.
inline constexpr size_t kFrameAlignment = 8;
// Low 56 bits of the length word hold the record size.
inline constexpr uint64_t kFrameLengthMask = (uint64_t{1} << 56) - 1;
// Top-byte flag meaning "padded": the low 3 bits of the top byte hold the pad.
inline constexpr uint64_t kFramePaddedFlag = 0x80;

// etcd's torn-write detection works on 512-byte sectors.
inline constexpr size_t kSectorSize = 512;
// etcd's page writer aligns flushes to 8 sectors.
inline constexpr size_t kPageBytes = 8 * kSectorSize;
// etcd's page writer buffers this much before flushing (pkg/ioutil).
inline constexpr size_t kEtcdPageWriterBufferBytes = 128 * 1024;

// Default segment size: a segment is cut once it has grown past this.
inline constexpr uint64_t kDefaultSegmentSize = 64 * 1000 * 1000;

// etcd 3.4's decoder refuses records of this size or more (less padding);
// our writer refuses to write them so that etcd can read every WAL we write.
inline constexpr uint64_t kMaxRecordBytes = 10 * 1024 * 1024;

// Encodes the length word for a record of `record_bytes`; *pad gets the
// number of zero bytes that must follow the record.
inline uint64_t EncodeFrameLength(uint64_t record_bytes, size_t* pad) {
  *pad = (kFrameAlignment - record_bytes % kFrameAlignment) % kFrameAlignment;
  uint64_t word = record_bytes;
  if (*pad != 0) word |= (kFramePaddedFlag | *pad) << 56;
  return word;
}

// Splits a length word into the record size and the pad that follows it.
inline void DecodeFrameLength(uint64_t word, uint64_t* record_bytes, uint64_t* pad) {
  *record_bytes = word & kFrameLengthMask;
  // etcd treats the word as signed: only a set top bit means "padded".
  *pad = (word >> 63) != 0 ? (word >> 56) & 0x7 : 0;
}

// "%016x-%016x.wal"
std::string SegmentFileName(uint64_t seq, uint64_t index);
// Parses a segment file name; false when it is not one.
bool ParseSegmentFileName(const std::string& name, uint64_t* seq, uint64_t* index);

// The directory's name says whether a WAL (or snapshot directory) is
// encrypted: its last component ends in "-encrypted" ("wal-v3-encrypted",
// "snap-v3-encrypted"); any other name is plaintext (etcd's "member/wal",
// "wal-v3"). Wal::Create/Open/OpenForRead/Verify and snap::Snapshotter::Open
// refuse a directory whose name disagrees with the codec or keyring they
// are given (kFailedPrecondition); the payloads are never used to guess.
inline constexpr char kEncryptedDirSuffix[] = "-encrypted";

// True when `dir` (trailing slashes ignored) names an encrypted directory,
// i.e. its last component ends in kEncryptedDirSuffix, or in it followed by
// ".tmp" (the temporary name a directory is built under before it is
// renamed into place: Wal::Create, `store migrate`).
bool IsEncryptedDirName(const std::string& dir);

// The segment that holds entry `index` (where a reader starting at a
// snapshot at `index` begins; etcd's searchIndex): the position in `names`
// (segment names in order, as Wal::SegmentNames lists them) of the last
// one whose first index is <= index, and that first index. nullopt when no
// segment does (names that do not parse are skipped).
struct SegmentPosition {
  size_t position = 0;
  uint64_t first_index = 0;
};
std::optional<SegmentPosition> SegmentHolding(const std::vector<std::string>& names,
                                              uint64_t index);

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_FORMAT_H_
