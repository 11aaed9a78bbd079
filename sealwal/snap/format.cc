#include "sealwal/snap/format.h"

#include <xxhash.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/hex.h"
#include "sealwal/encryption/associated_data.h"

namespace sealwal::snap {
namespace {

// Status payload key carrying the SnapError class, so callers can tell a
// CRC mismatch from an unparsable file without matching messages.
constexpr char kSnapErrorPayload[] = "type.sealwal/snap.error";

absl::Status SnapStatus(SnapError e, absl::string_view msg) {
  absl::Status s = absl::DataLossError(msg);
  s.SetPayload(kSnapErrorPayload, absl::Cord(std::string(1, static_cast<char>(e))));
  return s;
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A protobuf wire reader over a view. Errors are reported as false; the
// decoders turn them into kDataLoss. Groups (wire types 3, 4) are refused:
// neither etcd nor sealwal writes them.
class WireReader {
 public:
  explicit WireReader(absl::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}
  bool done() const { return p_ == end_; }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = static_cast<uint8_t>(*p_++);
      if (shift == 63 && b > 1) return false;  // overflows 64 bits
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Tag(uint32_t* field, int* wire) {
    uint64_t t;
    if (!Varint(&t) || t > 0xffffffffu) return false;
    *field = static_cast<uint32_t>(t >> 3);
    *wire = static_cast<int>(t & 7);
    return *field != 0;
  }
  bool Bytes(absl::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > static_cast<uint64_t>(end_ - p_)) return false;
    *out = absl::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool Skip(int wire) {
    uint64_t v;
    absl::string_view b;
    switch (wire) {
      case 0:
        return Varint(&v);
      case 1:
        if (end_ - p_ < 8) return false;
        p_ += 8;
        return true;
      case 2:
        return Bytes(&b);
      case 5:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:
        return false;
    }
  }

 private:
  const char* p_;
  const char* end_;
};

bool ParseName(absl::string_view name, absl::string_view suffix, uint64_t* term,
               uint64_t* index) {
  if (name.size() != 33 + suffix.size() || !absl::EndsWith(name, suffix) || name[16] != '-') {
    return false;
  }
  return ParseHex16(name.substr(0, 16), term) && ParseHex16(name.substr(17, 16), index);
}

bool ValidAlgorithm(int v) {
  return v == static_cast<int>(encryption::Algorithm::kNotEncrypted) ||
         v == static_cast<int>(encryption::Algorithm::kAes256Gcm) ||
         v == static_cast<int>(encryption::Algorithm::kChaCha20Poly1305);
}

}  // namespace

std::string SnapFileName(uint64_t term, uint64_t index) {
  return absl::StrFormat("%016x-%016x%s", term, index, kSnapSuffix);
}

std::string StreamFileName(uint64_t term, uint64_t index) {
  return absl::StrFormat("%016x-%016x%s", term, index, kStreamSuffix);
}

bool ParseSnapFileName(absl::string_view name, uint64_t* term, uint64_t* index) {
  return ParseName(name, kSnapSuffix, term, index);
}

bool ParseStreamFileName(absl::string_view name, uint64_t* term, uint64_t* index) {
  return ParseName(name, kStreamSuffix, term, index);
}

absl::StatusOr<SnapFileView> DecodeSnapFile(absl::string_view file) {
  if (file.empty()) return SnapStatus(SnapError::kEmpty, "snap: empty snapshot");
  WireReader r(file);
  SnapFileView v;
  bool have_data = false;
  while (!r.done()) {
    uint32_t field;
    int wire;
    if (!r.Tag(&field, &wire)) return SnapStatus(SnapError::kUnmarshal, "snap: bad snappb tag");
    if (field == 1 && wire == 0) {
      uint64_t crc;
      if (!r.Varint(&crc)) return SnapStatus(SnapError::kUnmarshal, "snap: bad snappb crc");
      v.crc = static_cast<uint32_t>(crc);  // proto uint32: truncated, as both parsers do
    } else if (field == 2 && wire == 2) {
      if (!r.Bytes(&v.raft_snapshot)) {
        return SnapStatus(SnapError::kUnmarshal, "snap: snappb data runs past the end");
      }
      have_data = true;
    } else if (field == 1 || field == 2) {
      return SnapStatus(SnapError::kUnmarshal, "snap: snappb field with the wrong wire type");
    } else if (!r.Skip(wire)) {
      return SnapStatus(SnapError::kUnmarshal, "snap: bad snappb field");
    }
  }
  // etcd: len(Data) == 0 || Crc == 0 is ErrEmptySnapshot.
  if (!have_data || v.raft_snapshot.empty() || v.crc == 0) {
    return SnapStatus(SnapError::kEmpty, "snap: empty snapshot");
  }
  if (crc32c::Value(v.raft_snapshot) != v.crc) {
    return SnapStatus(SnapError::kCrcMismatch, "snap: crc mismatch");
  }
  return v;
}

absl::StatusOr<RaftSnapshotView> DecodeRaftSnapshot(absl::string_view bytes) {
  WireReader r(bytes);
  RaftSnapshotView v;
  std::string metadata;  // occurrences concatenated = merged, as protobuf does
  while (!r.done()) {
    uint32_t field;
    int wire;
    absl::string_view b;
    if (!r.Tag(&field, &wire)) {
      return SnapStatus(SnapError::kUnmarshal, "snap: bad raftpb.Snapshot tag");
    }
    if ((field == 1 || field == 2) && wire != 2) {
      return SnapStatus(SnapError::kUnmarshal, "snap: raftpb.Snapshot field with the wrong wire type");
    }
    if (field == 1 || field == 2) {
      if (!r.Bytes(&b)) return SnapStatus(SnapError::kUnmarshal, "snap: raftpb.Snapshot truncated");
      if (field == 1) v.data = b;
      else metadata.append(b.data(), b.size());
    } else if (!r.Skip(wire)) {
      return SnapStatus(SnapError::kUnmarshal, "snap: bad raftpb.Snapshot field");
    }
  }
  if (!v.metadata.ParseFromString(metadata)) {
    return SnapStatus(SnapError::kUnmarshal, "snap: bad raftpb.SnapshotMetadata");
  }
  return v;
}

SnapError GetSnapError(const absl::Status& s) {
  auto p = s.GetPayload(kSnapErrorPayload);
  if (!p.has_value() || p->size() != 1) return SnapError::kNone;
  return static_cast<SnapError>(std::string(*p)[0]);
}

absl::string_view SnapErrorClassName(SnapError e) {
  switch (e) {
    case SnapError::kNone:
      return "none";
    case SnapError::kEmpty:
      return "empty_snapshot";
    case SnapError::kCrcMismatch:
      return "crc_mismatch";
    case SnapError::kUnmarshal:
      return "other";
  }
  return "other";
}

SnapFilePieces EncodeSnapFilePieces(absl::string_view data,
                                    const raftpb::SnapshotMetadata& metadata) {
  // raftpb.Snapshot = 0a len(data) data 12 len(md) md, fields in number
  // order as gogoproto writes them.
  std::string head;  // raftpb: data tag + length
  head.push_back(0x0a);
  PutVarint(data.size(), &head);
  std::string md = metadata.SerializeAsString();
  std::string tail;
  tail.push_back(0x12);
  PutVarint(md.size(), &tail);
  tail.append(md);

  SnapFilePieces p;
  p.crc = crc32c::Extend(crc32c::Extend(crc32c::Value(head), data), tail);
  const uint64_t raft_len = head.size() + data.size() + tail.size();
  p.prefix.push_back(0x08);
  PutVarint(p.crc, &p.prefix);
  p.prefix.push_back(0x12);
  PutVarint(raft_len, &p.prefix);
  p.prefix.append(head);
  p.suffix = std::move(tail);
  return p;
}

bool IsStreamRef(absl::string_view data) { return absl::StartsWith(data, kStreamRefMagic); }

std::string EncodeStreamRef(const StreamRef& ref) {
  std::string out(kStreamRefMagic);
  out.push_back(static_cast<char>(kStreamRefVersion));
  out.push_back(static_cast<char>(ref.algorithm));
  AppendLE16(0, &out);
  AppendLE32(static_cast<uint32_t>(ref.key_id.value()), &out);
  AppendLE32(static_cast<uint32_t>(ref.chunk_size), &out);
  AppendLE32(0, &out);
  AppendLE64(static_cast<uint64_t>(ref.size), &out);
  out.append(reinterpret_cast<const char*>(ref.salt.data()), ref.salt.size());
  return out;
}

absl::StatusOr<StreamRef> DecodeStreamRef(absl::string_view d) {
  if (d.size() != kStreamRefSize || !IsStreamRef(d)) {
    return absl::DataLossError(
        absl::StrCat("snap: stream reference of ", d.size(), " bytes, want ", kStreamRefSize));
  }
  if (static_cast<uint8_t>(d[16]) != kStreamRefVersion) {
    return absl::DataLossError(
        absl::StrCat("snap: stream reference version ", static_cast<int>(d[16]), " unknown"));
  }
  if (!ValidAlgorithm(static_cast<uint8_t>(d[17])) || LoadLE16(d.data() + 18) != 0 ||
      LoadLE32(d.data() + 28) != 0) {
    return absl::DataLossError("snap: stream reference with a bad algorithm or reserved field");
  }
  StreamRef ref;
  ref.algorithm = static_cast<encryption::Algorithm>(static_cast<uint8_t>(d[17]));
  ref.key_id = encryption::KeyId(static_cast<uint32_t>(LoadLE32(d.data() + 20)));
  ref.chunk_size = static_cast<uint32_t>(LoadLE32(d.data() + 24));
  ref.size = LoadLE64(d.data() + 32);
  std::memcpy(ref.salt.data(), d.data() + 40, kSaltSize);
  return ref;
}

std::string EncodeStreamHeader(const StreamHeader& h) {
  std::string out(kStreamMagic);
  out.push_back(static_cast<char>(kStreamVersion));
  out.push_back(static_cast<char>(h.algorithm));
  AppendLE16(0, &out);
  AppendLE32(static_cast<uint32_t>(h.key_id.value()), &out);
  AppendLE64(static_cast<uint64_t>(h.index), &out);
  AppendLE64(static_cast<uint64_t>(h.term), &out);
  AppendLE32(static_cast<uint32_t>(h.chunk_size), &out);
  out.append(reinterpret_cast<const char*>(h.salt.data()), h.salt.size());
  out.append(reinterpret_cast<const char*>(h.nonce_prefix.data()), h.nonce_prefix.size());
  out.push_back(0);
  AppendLE32(static_cast<uint32_t>(crc32c::Value(out)), &out);
  return out;
}

absl::StatusOr<StreamHeader> DecodeStreamHeader(absl::string_view b) {
  if (b.size() < kStreamHeaderSize) {
    return absl::DataLossError(absl::StrCat("snap stream: header of ", b.size(),
                                            " bytes, want ", kStreamHeaderSize));
  }
  b = b.substr(0, kStreamHeaderSize);
  if (!absl::StartsWith(b, kStreamMagic)) return absl::DataLossError("snap stream: bad magic");
  if (crc32c::Value(b.substr(0, kStreamHeaderCrcOffset)) !=
      LoadLE32(b.data() + kStreamHeaderCrcOffset)) {
    return absl::DataLossError("snap stream: header crc mismatch");
  }
  if (static_cast<uint8_t>(b[8]) != kStreamVersion) {
    return absl::DataLossError(
        absl::StrCat("snap stream: version ", static_cast<int>(b[8]), " unknown"));
  }
  const int alg = static_cast<uint8_t>(b[9]);
  if (!ValidAlgorithm(alg) || LoadLE16(b.data() + 10) != 0 || b[75] != 0) {
    return absl::DataLossError("snap stream: bad algorithm or reserved field in header");
  }
  StreamHeader h;
  h.algorithm = static_cast<encryption::Algorithm>(alg);
  h.key_id = encryption::KeyId(static_cast<uint32_t>(LoadLE32(b.data() + 12)));
  h.index = LoadLE64(b.data() + 16);
  h.term = LoadLE64(b.data() + 24);
  h.chunk_size = static_cast<uint32_t>(LoadLE32(b.data() + 32));
  std::memcpy(h.salt.data(), b.data() + 36, kSaltSize);
  std::memcpy(h.nonce_prefix.data(), b.data() + 68, kNoncePrefixSize);
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize) {
    return absl::DataLossError(absl::StrCat("snap stream: chunk size ", h.chunk_size,
                                            " outside ", kMinChunkSize, "..", kMaxChunkSize));
  }
  if ((h.algorithm == encryption::Algorithm::kNotEncrypted) != (h.key_id.value() == 0)) {
    return absl::DataLossError("snap stream: key id does not match the algorithm");
  }
  return h;
}

size_t ChunkTrailerSize(encryption::Algorithm algorithm) {
  return algorithm == encryption::Algorithm::kNotEncrypted ? kPlainTrailerSize
                                                           : encryption::kAeadTagSize;
}

absl::StatusOr<StreamLayout> LayoutFromFileSize(const StreamHeader& h, uint64_t file_size) {
  StreamLayout l;
  l.chunk_size = h.chunk_size;
  l.trailer = ChunkTrailerSize(h.algorithm);
  if (file_size < kStreamHeaderSize + l.trailer) {
    return absl::DataLossError(
        absl::StrCat("snap stream: ", file_size, " bytes cannot hold a header and a chunk"));
  }
  const uint64_t body = file_size - kStreamHeaderSize;
  l.chunks = (body + l.stored_chunk() - 1) / l.stored_chunk();
  const uint64_t last = body - (l.chunks - 1) * l.stored_chunk();  // 1 .. stored_chunk
  if (last < l.trailer || (last == l.trailer && l.chunks > 1)) {
    // A last chunk without payload exists only in an empty stream.
    return absl::DataLossError(
        absl::StrCat("snap stream: ", file_size, " bytes end inside a chunk trailer (truncated?)"));
  }
  if (l.chunks > kMaxChunks) return absl::DataLossError("snap stream: more than 2^32 chunks");
  l.size = (l.chunks - 1) * l.chunk_size + (last - l.trailer);
  return l;
}

absl::StatusOr<StreamLayout> LayoutFromPlainSize(const StreamHeader& h, uint64_t size) {
  StreamLayout l;
  l.chunk_size = h.chunk_size;
  l.trailer = ChunkTrailerSize(h.algorithm);
  l.size = size;
  l.chunks = size == 0 ? 1 : (size + l.chunk_size - 1) / l.chunk_size;
  if (l.chunks > kMaxChunks) {
    return absl::InvalidArgumentError("snap stream: more than 2^32 chunks; use larger chunks");
  }
  return l;
}

std::array<char, encryption::kAeadNonceSize> ChunkNonce(
    const std::array<uint8_t, kNoncePrefixSize>& prefix, uint32_t i, bool last) {
  std::array<char, encryption::kAeadNonceSize> n{};
  std::memcpy(n.data(), prefix.data(), kNoncePrefixSize);
  n[7] = static_cast<char>(i >> 24);
  n[8] = static_cast<char>(i >> 16);
  n[9] = static_cast<char>(i >> 8);
  n[10] = static_cast<char>(i);
  n[11] = last ? 1 : 0;
  return n;
}

absl::StatusOr<std::string> StreamKeyInfo(absl::string_view header_bytes,
                                          const StreamHeader& h) {
  encryption::AadContext ctx;
  ctx.purpose = encryption::Purpose::kStreamChunk;
  ctx.index = h.index;
  ctx.term = h.term;
  ctx.extra = header_bytes.substr(0, kStreamHeaderCrcOffset);
  return encryption::AssociatedData(ctx, h.key_id);
}

uint64_t PlainChunkChecksum(absl::string_view header_bytes, uint32_t i, bool last,
                            absl::string_view payload) {
  char buf[kStreamHeaderCrcOffset + 5];
  std::memcpy(buf, header_bytes.data(), kStreamHeaderCrcOffset);
  buf[kStreamHeaderCrcOffset] = static_cast<char>(i >> 24);
  buf[kStreamHeaderCrcOffset + 1] = static_cast<char>(i >> 16);
  buf[kStreamHeaderCrcOffset + 2] = static_cast<char>(i >> 8);
  buf[kStreamHeaderCrcOffset + 3] = static_cast<char>(i);
  buf[kStreamHeaderCrcOffset + 4] = last ? 1 : 0;
  const XXH64_hash_t seed = XXH3_64bits(buf, sizeof(buf));
  return XXH3_64bits_withSeed(payload.data(), payload.size(), seed);
}

}  // namespace sealwal::snap
