// Known-answer tests for both AEADs (RFC 8439 section 2.8.2 for
// ChaCha20-Poly1305; the GCM specification's AES-256 test cases 13-16, as
// reprinted in NIST's GCM validation material, for AES-256-GCM), round
// trips of empty, 1-byte and 1 MiB payloads, raw tamper checks, and the
// key types (SecretKey, KeyId, Dek).
#include "sealwal/encryption/aead.h"

#include <memory>
#include <string>
#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/secret_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace sealwal::encryption {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

SecretKey KeyFromHex(absl::string_view hex) {
  auto k = SecretKey::FromBytes(Hex(hex));
  EXPECT_TRUE(k.ok());
  return std::move(*k);
}

struct Kat {
  const char* name;
  Algorithm algorithm;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* plaintext;  // hex
  const char* ciphertext;
  const char* tag;
};

// RFC 8439 section 2.8.2: "Ladies and Gentlemen of the class of '99: If I
// could offer you only one tip for the future, sunscreen would be it."
const char kRfc8439Plaintext[] =
    "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
    "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
    "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
    "637265656e20776f756c642062652069742e";

const Kat kKats[] = {
    {"rfc8439_2_8_2", Algorithm::kChaCha20Poly1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", kRfc8439Plaintext,
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
    {"gcm_tc13", Algorithm::kAes256Gcm,
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"gcm_tc14", Algorithm::kAes256Gcm,
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"gcm_tc15", Algorithm::kAes256Gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"gcm_tc16", Algorithm::kAes256Gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AeadTest, KnownAnswers) {
  for (const Kat& k : kKats) {
    SCOPED_TRACE(k.name);
    SecretKey key = KeyFromHex(k.key);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::Create(k.algorithm, key));
    const std::string nonce = Hex(k.nonce), aad = Hex(k.aad), pt = Hex(k.plaintext);
    const std::string want = Hex(k.ciphertext) + Hex(k.tag);
    std::string sealed = "prefix";  // Seal appends
    ASSERT_OK(aead->Seal(nonce, aad, pt, &sealed));
    EXPECT_EQ(absl::BytesToHexString(sealed.substr(6)), absl::BytesToHexString(want));
    EXPECT_EQ(sealed.substr(0, 6), "prefix");
    std::string opened;
    ASSERT_OK(aead->Open(nonce, aad, want, &opened));
    EXPECT_EQ(opened, pt);
    // The same context keeps working after a failure (context reuse).
    std::string bad = want;
    bad.back() ^= 1;
    EXPECT_THAT(aead->Open(nonce, aad, bad, &opened), StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(opened, pt) << "a failed Open must leave *out as it was";
    opened.clear();
    ASSERT_OK(aead->Open(nonce, aad, want, &opened));
    EXPECT_EQ(opened, pt);
  }
}

TEST(AeadTest, RoundTripsEmptyOneByteAndOneMiB) {
  for (Algorithm alg : {Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305}) {
    SCOPED_TRACE(AlgorithmName(alg));
    ASSERT_OK_AND_ASSIGN(SecretKey key, SecretKey::Generate(kAeadKeySize));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::Create(alg, key));
    const std::string nonce(kAeadNonceSize, '\x07');
    std::string big(1 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
    for (const std::string& pt : {std::string(), std::string("x"), big}) {
      SCOPED_TRACE(pt.size());
      std::string sealed;
      ASSERT_OK(aead->Seal(nonce, "aad", pt, &sealed));
      ASSERT_EQ(sealed.size(), pt.size() + kAeadTagSize);
      if (pt.size() > 16) {
        EXPECT_NE(sealed.substr(0, 16), pt.substr(0, 16));
      }
      std::string opened;
      ASSERT_OK(aead->Open(nonce, "aad", sealed, &opened));
      EXPECT_TRUE(opened == pt);
      opened.clear();
      EXPECT_THAT(aead->Open(nonce, "aae", sealed, &opened),
                  StatusIs(absl::StatusCode::kDataLoss, HasSubstr("authentication failed")));
      EXPECT_TRUE(opened.empty());
    }
  }
}

TEST(AeadTest, EveryBitOfCiphertextTagNonceAndAadMatters) {
  for (Algorithm alg : {Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305}) {
    SCOPED_TRACE(AlgorithmName(alg));
    ASSERT_OK_AND_ASSIGN(SecretKey key, SecretKey::Generate(kAeadKeySize));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::Create(alg, key));
    const std::string nonce = Hex("0102030405060708090a0b0c");
    const std::string aad = "sealwal/v1/wal-entry";
    std::string sealed;
    ASSERT_OK(aead->Seal(nonce, aad, "twenty bytes of text", &sealed));
    std::string out;
    int failures = 0, tries = 0;
    auto flip_all = [&](std::string s, auto open) {
      for (size_t bit = 0; bit < s.size() * 8; ++bit) {
        s[bit / 8] ^= static_cast<char>(1 << (bit % 8));
        ++tries;
        if (open(s).code() == absl::StatusCode::kDataLoss) ++failures;
        s[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      }
    };
    flip_all(sealed, [&](const std::string& s) { return aead->Open(nonce, aad, s, &out); });
    flip_all(nonce, [&](const std::string& n) { return aead->Open(n, aad, sealed, &out); });
    flip_all(aad, [&](const std::string& a) { return aead->Open(nonce, a, sealed, &out); });
    EXPECT_EQ(failures, tries);
    // Truncation at every length fails too (short inputs: not even a tag).
    for (size_t n = 0; n < sealed.size(); ++n) {
      EXPECT_THAT(aead->Open(nonce, aad, sealed.substr(0, n), &out),
                  StatusIs(absl::StatusCode::kDataLoss));
    }
    // The wrong key under the same algorithm.
    ASSERT_OK_AND_ASSIGN(SecretKey other, SecretKey::Generate(kAeadKeySize));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> wrong, Aead::Create(alg, other));
    EXPECT_THAT(wrong->Open(nonce, aad, sealed, &out), StatusIs(absl::StatusCode::kDataLoss));
    ASSERT_OK(aead->Open(nonce, aad, sealed, &out));
    EXPECT_EQ(out, "twenty bytes of text");
  }
}

TEST(AeadTest, RejectsBadParameters) {
  ASSERT_OK_AND_ASSIGN(SecretKey short_key, SecretKey::Generate(16));
  EXPECT_THAT(Aead::Create(Algorithm::kAes256Gcm, short_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32-byte key")));
  ASSERT_OK_AND_ASSIGN(SecretKey key, SecretKey::Generate(kAeadKeySize));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::Create(Algorithm::kAes256Gcm, key));
  std::string out;
  EXPECT_THAT(aead->Seal("short", "", "x", &out), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(out.empty());
  EXPECT_THAT(Aead::Create(Algorithm::kNotEncrypted, key),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AeadTest, NotEncryptedPassesThrough) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead,
                       Aead::Create(Algorithm::kNotEncrypted, SecretKey()));
  std::string out;
  ASSERT_OK(aead->Seal("", "", "plain", &out));
  EXPECT_EQ(out, "plain");
  std::string back;
  ASSERT_OK(aead->Open("", "", out, &back));
  EXPECT_EQ(back, "plain");
}

TEST(AeadTest, AlgorithmNamesAndProtoValues) {
  EXPECT_EQ(kDefaultAlgorithm, Algorithm::kAes256Gcm);
  for (Algorithm a :
       {Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305, Algorithm::kNotEncrypted}) {
    ASSERT_OK_AND_ASSIGN(Algorithm parsed, ParseAlgorithmName(AlgorithmName(a)));
    EXPECT_EQ(parsed, a);
    ASSERT_OK_AND_ASSIGN(Algorithm from_proto, AlgorithmFromProto(ToProto(a)));
    EXPECT_EQ(from_proto, a);
  }
  EXPECT_EQ(ToProto(Algorithm::kAes256Gcm), 3);
  EXPECT_EQ(ToProto(Algorithm::kChaCha20Poly1305), 4);
  EXPECT_THAT(AlgorithmFromProto(1), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(AlgorithmFromProto(2), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(AlgorithmFromProto(99), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseAlgorithmName("aes-128-ctr"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- key types ---

// Detects operator<< for a type (SecretKey must have none).
template <typename T, typename = void>
struct Streamable : std::false_type {};
template <typename T>
struct Streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<T>())>>
    : std::true_type {};

TEST(SecretKeyTest, CannotBeCopiedOrPrinted) {
  static_assert(!std::is_copy_constructible_v<SecretKey>);
  static_assert(!std::is_copy_assignable_v<SecretKey>);
  static_assert(std::is_nothrow_move_constructible_v<SecretKey>);
  static_assert(!Streamable<SecretKey>::value);
  static_assert(!std::is_convertible_v<SecretKey, std::string>);
  static_assert(!std::is_convertible_v<SecretKey, absl::string_view>);
  ASSERT_OK_AND_ASSIGN(SecretKey key, SecretKey::FromBytes("0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(key.DebugString(), "SecretKey(32 bytes)");
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::FromParts(KeyId(0x1a2b3c4d), Algorithm::kAes256Gcm,
                                               std::move(key)));
  EXPECT_EQ(dek.DebugString(), "DEK 0x1a2b3c4d aes-256-gcm (32 bytes)");
  EXPECT_THAT(dek.DebugString(), ::testing::Not(HasSubstr("0123")));
}

TEST(SecretKeyTest, ComparesByContentAndMovesWithoutCopying) {
  ASSERT_OK_AND_ASSIGN(SecretKey a, SecretKey::FromBytes("same key bytes, thirty-two long!"));
  ASSERT_OK_AND_ASSIGN(SecretKey b, SecretKey::FromBytes("same key bytes, thirty-two long!"));
  ASSERT_OK_AND_ASSIGN(SecretKey c, SecretKey::FromBytes("same key bytes, thirty-two long?"));
  ASSERT_OK_AND_ASSIGN(SecretKey d, SecretKey::FromBytes("short"));
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(a != c);
  EXPECT_TRUE(a != d);
  EXPECT_TRUE(SecretKey() == SecretKey());
  SecretKey clone = a.Clone();
  EXPECT_TRUE(clone == a);
  EXPECT_NE(clone.bytes().data(), a.bytes().data());
  const char* buffer = a.bytes().data();
  SecretKey moved(std::move(a));
  EXPECT_EQ(moved.bytes().data(), buffer);  // the buffer moved, not the bytes
  EXPECT_TRUE(a.empty());                   // NOLINT(bugprone-use-after-move)
  moved = std::move(c);                     // the old bytes are wiped and freed
  EXPECT_TRUE(moved != b);
}

TEST(SecretKeyTest, GenerateRejectsSillySizes) {
  EXPECT_THAT(SecretKey::Generate(0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SecretKey::Generate(size_t{2} << 20), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(SecretKey k1, SecretKey::Generate(32));
  ASSERT_OK_AND_ASSIGN(SecretKey k2, SecretKey::Generate(32));
  EXPECT_EQ(k1.size(), 32u);
  EXPECT_TRUE(k1 != k2);
}

TEST(KeyIdTest, RandomIdsAreNonZeroAndVary) {
  absl::flat_hash_set<KeyId> seen;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK_AND_ASSIGN(KeyId id, KeyId::Random());
    EXPECT_NE(id, KeyId());
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 990u);
  EXPECT_EQ(FormatKeyId(KeyId(0x1a2b3c4d)), "0x1a2b3c4d");
  EXPECT_EQ(FormatKeyId(KeyId(7)), "0x00000007");
}

TEST(KeyIdTest, ZerosFromTheSourceAreSkippedAndAStuckSourceFails) {
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(KeyId id,
                       KeyId::RandomFromSourceForTesting([&](unsigned char* out, size_t n) {
                         for (size_t i = 0; i < n; ++i) out[i] = calls < 3 ? 0 : 0x11;
                         ++calls;
                         return absl::OkStatus();
                       }));
  EXPECT_EQ(id, KeyId(0x11111111));
  EXPECT_EQ(calls, 4);
  EXPECT_THAT(KeyId::RandomFromSourceForTesting([](unsigned char* out, size_t n) {
                for (size_t i = 0; i < n; ++i) out[i] = 0;
                return absl::OkStatus();
              }),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(KeyIdTest, DekGenerateDrawsKeyAndIdAtCreation) {
  ASSERT_OK_AND_ASSIGN(Dek a, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(Dek b, Dek::Generate(Algorithm::kChaCha20Poly1305));
  EXPECT_EQ(a.algorithm, Algorithm::kAes256Gcm);
  EXPECT_EQ(b.algorithm, Algorithm::kChaCha20Poly1305);
  EXPECT_EQ(a.key.size(), kAeadKeySize);
  EXPECT_NE(a.id, KeyId());
  EXPECT_NE(a.id, b.id);
  EXPECT_TRUE(a.key != b.key);
  Dek c = a.Clone();
  EXPECT_EQ(c.id, a.id);
  EXPECT_TRUE(c.key == a.key);
  EXPECT_THAT(Dek::Generate(Algorithm::kNotEncrypted),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Dek::FromParts(KeyId(), Algorithm::kAes256Gcm, a.key.Clone()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sealwal::encryption
