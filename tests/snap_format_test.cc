// sealwal/snap/format.h: names, the .snap encoding against protobuf's, the stream
// header and reference bytes, layouts, nonces, and HKDF against RFC 5869.
#include "sealwal/snap/format.h"

#include <string>

#include "absl/strings/escaping.h"
#include "sealwal/base/crc32c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/proto/snappb.pb.h"
#include "sealwal/encryption/keyring.h"
#include "testing/status_matchers.h"

namespace sealwal::snap {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;

TEST(SnapFormatTest, FileNames) {
  EXPECT_EQ(SnapFileName(2, 500), "0000000000000002-00000000000001f4.snap");
  EXPECT_EQ(StreamFileName(3, 900), "0000000000000003-0000000000000384.snap.stream");
  uint64_t t = 0, i = 0;
  EXPECT_TRUE(ParseSnapFileName("0000000000000003-0000000000000384.snap", &t, &i));
  EXPECT_EQ(t, 3u);
  EXPECT_EQ(i, 900u);
  EXPECT_TRUE(ParseStreamFileName("0000000000000003-0000000000000384.snap.stream", &t, &i));
  for (const char* bad : {"0000000000000003-0000000000000384.snap.broken",
                          "0000000000000003-0000000000000384.snap.tmp", "3-384.snap",
                          "000000000000000g-0000000000000384.snap",
                          "0000000000000003_0000000000000384.snap", "db.tmp"}) {
    EXPECT_FALSE(ParseSnapFileName(bad, &t, &i)) << bad;
  }
}

TEST(SnapFormatTest, SnapPiecesEqualProtobufSerialization) {
  raftpb::SnapshotMetadata md;
  md.set_index(900);
  md.set_term(3);
  for (int v : {1, 2, 3, 4}) md.mutable_conf_state()->add_voters(v);
  for (size_t n : {1u, 127u, 128u, 20000u, 300000u}) {
    const std::string data(n, 'x');
    SnapFilePieces p = EncodeSnapFilePieces(data, md);
    raftpb::Snapshot rs;
    rs.set_data(data);
    *rs.mutable_metadata() = md;
    snappb::Snapshot ss;
    ss.set_data(rs.SerializeAsString());
    ss.set_crc(crc32c::Value(ss.data()));
    EXPECT_EQ(p.prefix + data + p.suffix, ss.SerializeAsString()) << n;
    const std::string file = p.prefix + data + p.suffix;  // the view points into it
    ASSERT_OK_AND_ASSIGN(SnapFileView v, DecodeSnapFile(file));
    ASSERT_OK_AND_ASSIGN(RaftSnapshotView r, DecodeRaftSnapshot(v.raft_snapshot));
    EXPECT_EQ(r.data, data);
    EXPECT_EQ(r.metadata.SerializeAsString(), md.SerializeAsString());
  }
}

TEST(SnapFormatTest, DecodeErrorsHaveEtcdClasses) {
  EXPECT_EQ(GetSnapError(DecodeSnapFile("").status()), SnapError::kEmpty);
  EXPECT_EQ(GetSnapError(DecodeSnapFile(std::string("\x08\x00\x12\x00", 4)).status()),
            SnapError::kEmpty);
  EXPECT_EQ(GetSnapError(DecodeSnapFile("\xff\xff").status()), SnapError::kUnmarshal);
  raftpb::SnapshotMetadata md;
  md.set_index(1);
  SnapFilePieces p = EncodeSnapFilePieces("abc", md);
  std::string f = p.prefix + "abd" + p.suffix;
  auto s = DecodeSnapFile(f).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(GetSnapError(s), SnapError::kCrcMismatch);
  EXPECT_EQ(SnapErrorClassName(SnapError::kCrcMismatch), "crc_mismatch");
}

TEST(SnapFormatTest, StreamHeaderRoundTripAndEveryByteChecked) {
  StreamHeader h;
  h.algorithm = encryption::Algorithm::kAes256Gcm;
  h.key_id = encryption::KeyId(0x1a2b3c4d);
  h.index = 900;
  h.term = 3;
  h.chunk_size = 65536;
  for (size_t i = 0; i < h.salt.size(); ++i) h.salt[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < h.nonce_prefix.size(); ++i) h.nonce_prefix[i] = static_cast<uint8_t>(0xa0 + i);
  const std::string b = EncodeStreamHeader(h);
  ASSERT_EQ(b.size(), kStreamHeaderSize);
  EXPECT_EQ(b.substr(0, 8), "SEALSTRM");
  EXPECT_EQ(static_cast<uint8_t>(b[8]), 1);
  EXPECT_EQ(static_cast<uint8_t>(b[9]), 3);
  EXPECT_EQ(absl::BytesToHexString(b.substr(12, 4)), "4d3c2b1a");
  EXPECT_EQ(absl::BytesToHexString(b.substr(16, 8)), "8403000000000000");
  EXPECT_EQ(absl::BytesToHexString(b.substr(32, 4)), "00000100");
  ASSERT_OK_AND_ASSIGN(StreamHeader d, DecodeStreamHeader(b));
  EXPECT_EQ(d.index, 900u);
  EXPECT_EQ(d.key_id, h.key_id);
  EXPECT_EQ(d.salt, h.salt);
  EXPECT_EQ(d.nonce_prefix, h.nonce_prefix);
  for (size_t i = 0; i < b.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string c = b;
      c[i] = static_cast<char>(c[i] ^ (1 << bit));
      EXPECT_THAT(DecodeStreamHeader(c), StatusIs(absl::StatusCode::kDataLoss)) << i << ":" << bit;
    }
  }
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_THAT(DecodeStreamHeader(b.substr(0, n)), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(SnapFormatTest, StreamRefRoundTrip) {
  StreamRef r;
  r.algorithm = encryption::Algorithm::kChaCha20Poly1305;
  r.key_id = encryption::KeyId(7);
  r.chunk_size = 4096;
  r.size = (uint64_t{5} << 32) + 3;
  r.salt[0] = 9;
  const std::string b = EncodeStreamRef(r);
  ASSERT_EQ(b.size(), kStreamRefSize);
  EXPECT_TRUE(IsStreamRef(b));
  EXPECT_FALSE(IsStreamRef("plain data"));
  ASSERT_OK_AND_ASSIGN(StreamRef d, DecodeStreamRef(b));
  EXPECT_EQ(d, r);
  EXPECT_THAT(DecodeStreamRef(b + "x"), StatusIs(absl::StatusCode::kDataLoss));
  std::string v = b;
  v[16] = 2;
  EXPECT_THAT(DecodeStreamRef(v), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SnapFormatTest, LayoutsAgreeBothWays) {
  for (auto alg : {encryption::Algorithm::kNotEncrypted, encryption::Algorithm::kAes256Gcm}) {
    StreamHeader h;
    h.algorithm = alg;
    h.chunk_size = 4096;
    for (uint64_t size : {0ull, 1ull, 4095ull, 4096ull, 4097ull, 8192ull, 100000ull}) {
      ASSERT_OK_AND_ASSIGN(StreamLayout a, LayoutFromPlainSize(h, size));
      const uint64_t file = a.offset(a.chunks - 1) + a.payload_size(a.chunks - 1) + a.trailer;
      ASSERT_OK_AND_ASSIGN(StreamLayout b, LayoutFromFileSize(h, file));
      EXPECT_EQ(b.size, size);
      EXPECT_EQ(b.chunks, a.chunks);
      // One byte less or a bare trailer more is no stream of this chunk size.
      if (size > 0) {
        auto shorter = LayoutFromFileSize(h, file - 1);
        if (shorter.ok()) {
          EXPECT_NE(shorter->size, size);
        }
      }
    }
  }
}

TEST(SnapFormatTest, ChunkNonceIsPrefixCounterBigEndianAndLastFlag) {
  std::array<uint8_t, kNoncePrefixSize> p{1, 2, 3, 4, 5, 6, 7};
  auto n = ChunkNonce(p, 0x01020304, true);
  EXPECT_EQ(absl::BytesToHexString(absl::string_view(n.data(), n.size())),
            "01020304050607010203040" "1");
  auto m = ChunkNonce(p, 0x01020304, false);
  EXPECT_NE(std::string(n.data(), 12), std::string(m.data(), 12));
}

// RFC 5869 appendix A, test cases 1 and 3.
TEST(SnapFormatTest, HkdfSha256MatchesRfc5869) {
  ASSERT_OK_AND_ASSIGN(auto ikm, encryption::SecretKey::FromBytes(std::string(22, '\x0b')));
  ASSERT_OK_AND_ASSIGN(
      auto okm, encryption::HkdfSha256(ikm, absl::HexStringToBytes("000102030405060708090a0b0c"),
                           absl::HexStringToBytes("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(absl::BytesToHexString(okm.bytes()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  ASSERT_OK_AND_ASSIGN(auto okm3, encryption::HkdfSha256(ikm, "", "", 42));
  EXPECT_EQ(absl::BytesToHexString(okm3.bytes()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  EXPECT_THAT(encryption::HkdfSha256(ikm, "", "", 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sealwal::snap
