// pem/: unlock keys, the PEM block reader, and the key file format
// (docs/format.md §11): round trips locked and unlocked, every bit flipped
// and every truncation reported as damage (never a crash, never a silently
// different key or DEK), wrong unlock keys are kPermissionDenied, and the
// swarmkit layout and bare keys are read.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "openssl/evp.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"
#include "testing/key_file_tamper.h"
#include "testing/status_matchers.h"

namespace sealwal::pem {
namespace {

using encryption::Algorithm;
using encryption::Dek;
using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

std::string Bytes32(int seed) {
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(static_cast<char>(seed + i));
  return s;
}

UnlockKey TestUnlockKey(int seed) { return *UnlockKey::FromBytes(Bytes32(seed)); }

// 2026-12-01T10:00:00Z, a DEK's creation time in the tests.
constexpr uint64_t kCreated = 1796119200;

StoredDek TestDek(uint32_t id, Algorithm alg = Algorithm::kAes256Gcm, uint64_t encryptions = 0,
                  uint64_t created = 0) {
  auto key = encryption::SecretKey::FromBytes(Bytes32(static_cast<int>(id)));
  return StoredDek{*Dek::FromParts(encryption::KeyId(id), alg, std::move(*key)), encryptions,
                   created};
}

DekHeaders TestHeaders(bool pending = true) {
  DekHeaders h;
  h.current = TestDek(0x1111, Algorithm::kAes256Gcm, 7, kCreated);
  if (pending) h.pending = TestDek(0x2222, Algorithm::kChaCha20Poly1305, 1ull << 40, kCreated + 1);
  h.needs_rotation = true;
  return h;
}

void ExpectSameDek(const std::optional<StoredDek>& a, const std::optional<StoredDek>& b) {
  ASSERT_EQ(a.has_value(), b.has_value());
  if (!a.has_value()) return;
  EXPECT_EQ(a->dek.id, b->dek.id);
  EXPECT_EQ(a->dek.algorithm, b->dek.algorithm);
  EXPECT_TRUE(a->dek.key == b->dek.key);
  EXPECT_EQ(a->encryptions, b->encryptions);
  EXPECT_EQ(a->created, b->created);
}

void ExpectSameHeaders(const DekHeaders& a, const DekHeaders& b) {
  ExpectSameDek(a.current, b.current);
  ExpectSameDek(a.pending, b.pending);
  EXPECT_EQ(a.needs_rotation, b.needs_rotation);
}

bool SameHeaders(const DekHeaders& a, const DekHeaders& b) {
  auto same = [](const std::optional<StoredDek>& x, const std::optional<StoredDek>& y) {
    if (x.has_value() != y.has_value()) return false;
    return !x.has_value() || (x->dek.id == y->dek.id && x->dek.algorithm == y->dek.algorithm &&
                              x->dek.key == y->dek.key && x->encryptions == y->encryptions &&
                              x->created == y->created);
  };
  return same(a.current, b.current) && same(a.pending, b.pending) &&
         a.needs_rotation == b.needs_rotation;
}

// ---------------------------------------------------------------- unlock keys

TEST(UnlockKeyTest, TextFormRoundTrips) {
  UnlockKey k = TestUnlockKey(0);
  EXPECT_EQ(k.text(), "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
  EXPECT_EQ(k.text().size(), kUnlockKeyTextSize);
  ASSERT_OK_AND_ASSIGN(UnlockKey back, UnlockKey::Parse(absl::StrCat("  ", k.text(), "\n")));
  EXPECT_TRUE(back == k);
  ASSERT_OK_AND_ASSIGN(UnlockKey g1, UnlockKey::Generate());
  ASSERT_OK_AND_ASSIGN(UnlockKey g2, UnlockKey::Generate());
  EXPECT_TRUE(g1 != g2);
  ASSERT_OK_AND_ASSIGN(UnlockKey g1b, UnlockKey::Parse(g1.text()));
  EXPECT_TRUE(g1 == g1b);
}

TEST(UnlockKeyTest, MalformedKeysSayWhatIsWrong) {
  const std::string good(TestUnlockKey(0).text());
  struct Case {
    std::string text;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"hello", "must start with"},
      {"SEALWAL-2-" + good.substr(10), "format version"},
      {"SWMKEY-1-" + good.substr(10), "docker swarm"},
      {good.substr(0, good.size() - 1), "42 characters"},
      {good + "A", "44 characters"},
      {good.substr(0, 20) + "+" + good.substr(21), "outside base64url"},
      {good.substr(0, 20) + "=" + good.substr(21), "outside base64url"},
      // Last character 'f' = 31: its low two bits are spare and must be 0.
      {good.substr(0, good.size() - 1) + "f", "not canonical"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<UnlockKey> k = UnlockKey::Parse(c.text);
    EXPECT_THAT(k, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.says)));
    // The message never echoes the key text.
    if (c.text.size() > 12) {
      EXPECT_THAT(std::string(k.status().message()),
                  ::testing::Not(HasSubstr(c.text.substr(12))));
    }
  }
}

TEST(UnlockKeyTest, KekIsDerivedAndDiffersPerKey) {
  ASSERT_OK_AND_ASSIGN(Kek a, TestUnlockKey(0).DeriveKek());
  ASSERT_OK_AND_ASSIGN(Kek a2, TestUnlockKey(0).DeriveKek());
  ASSERT_OK_AND_ASSIGN(Kek b, TestUnlockKey(1).DeriveKek());
  EXPECT_EQ(a.key.size(), 32u);
  EXPECT_TRUE(a.key == a2.key);
  EXPECT_EQ(a.id, a2.id);
  EXPECT_FALSE(a.key == b.key);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.id.value(), 0u);
  // The KEK is not the unlock key itself.
  EXPECT_NE(a.key.bytes(), TestUnlockKey(0).bytes().bytes());
}

// ---------------------------------------------------------------- PEM blocks

TEST(PemBlockTest, ParsesHeadersAndBodies) {
  const std::string text =
      "\n-----BEGIN A B-----\nx-y: 1\nz:  two words  \n\nAAEC\nAw==\n-----END A B-----\n"
      "-----BEGIN C-----\r\nAAAA\r\n-----END C-----";
  ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> b, ParsePemBlocks(text));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].label, "A B");
  ASSERT_EQ(b[0].headers.size(), 2u);
  EXPECT_EQ(b[0].headers[0].name, "x-y");
  EXPECT_EQ(b[0].headers[1].value, "two words");
  EXPECT_EQ(b[0].body_base64, "AAECAw==");
  EXPECT_EQ(b[1].label, "C");
  EXPECT_EQ(b[1].begin_line, 9);
}

TEST(PemBlockTest, RefusesWhatOpenSslWouldSkip) {
  for (const std::string& bad : {
           std::string("junk\n-----BEGIN A-----\nAAAA\n-----END A-----\n"),
           std::string("-----BEGIN A-----\nAAAA\n-----END B-----\n"),
           std::string("-----BEGIN A-----\nAAAA\n"),
           std::string("-----BEGIN a-----\nAAAA\n-----END a-----\n"),
           std::string("-----BEGIN A-----\nh: v\nAAAA\n-----END A-----\n"),
           std::string("-----BEGIN A-----\nh: v\n folded\n\nAAAA\n-----END A-----\n"),
           std::string("-----BEGIN A-----\nAA AA\n-----END A-----\n"),
           std::string("-----BEGIN A-----\nAAAA\n\nAAAA\n-----END A-----\n"),
           std::string("-----END A-----\n"),
           std::string("-----BEGIN A-----\nh: v\x01\n\nAAAA\n-----END A-----\n"),
       }) {
    SCOPED_TRACE(absl::CHexEscape(bad));
    EXPECT_THAT(ParsePemBlocks(bad), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(PemBlockTest, FormatThenParse) {
  std::string body(100, '\x5a');
  std::string text = FormatPemBlock("X", {{"a", "1"}, {"b", "two"}}, body);
  ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> b, ParsePemBlocks(text));
  ASSERT_EQ(b.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string raw, DecodeCanonicalBase64(b[0].body_base64, "body"));
  EXPECT_EQ(raw, body);
  EXPECT_THAT(DecodeCanonicalBase64("AAB=", "x"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeCanonicalBase64("AAA", "x"), StatusIs(absl::StatusCode::kDataLoss));
}

// ---------------------------------------------------------------- key files

class KeyFileTest : public ::testing::TestWithParam<bool /*locked*/> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(PrivateKey k, PrivateKey::GenerateEcP256());
    key_ = std::make_unique<PrivateKey>(std::move(k));
    unlock_ = TestUnlockKey(5);
  }
  const UnlockKey* unlock() const { return GetParam() ? &*unlock_ : nullptr; }
  std::string Encode(const DekHeaders& h, uint64_t version = 3) {
    absl::StatusOr<std::string> t = EncodeKeyFile(*key_, h, version, unlock());
    EXPECT_THAT(t, IsOk());
    return t.ok() ? *t : "";
  }
  std::unique_ptr<PrivateKey> key_;
  std::optional<UnlockKey> unlock_;
};

INSTANTIATE_TEST_SUITE_P(LockedAndUnlocked, KeyFileTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Locked" : "Unlocked"; });

TEST_P(KeyFileTest, RoundTrips) {
  for (bool pending : {false, true}) {
    const DekHeaders h = TestHeaders(pending);
    const std::string text = Encode(h);
    EXPECT_TRUE(absl::StartsWith(text, "-----BEGIN SEALWAL RAFT DEKS-----\nkek-version: 3\n"))
        << text;
    EXPECT_THAT(text, HasSubstr(GetParam() ? "-----BEGIN ENCRYPTED PRIVATE KEY-----"
                                           : "-----BEGIN PRIVATE KEY-----"));
    ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(text, unlock()));
    EXPECT_EQ(f.kek_version, 3u);
    EXPECT_EQ(f.locked, GetParam());
    EXPECT_EQ(f.layout, Layout::kSealwal);
    EXPECT_TRUE(f.key.Equals(*key_));
    ExpectSameHeaders(f.headers, h);
  }
  // No DEKs at all.
  ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(Encode(DekHeaders{}), unlock()));
  EXPECT_FALSE(f.headers.current.has_value());
}

// True when `text` holds `key` base64-encoded at any of the three byte
// alignments a base64 stream can give it, across line breaks: for each
// alignment, the 16 characters that encode key bytes only.
bool HoldsKeyInBase64(std::string text, absl::string_view key) {
  text.erase(std::remove(text.begin(), text.end(), '\n'), text.end());
  for (int skew = 0; skew < 3; ++skew) {
    const std::string b64 = absl::Base64Escape(std::string(skew, '\0') + std::string(key));
    if (absl::StrContains(text, b64.substr(4, 16))) return true;
  }
  return false;
}

TEST_P(KeyFileTest, NoKeyBytesInTheClearWhenLocked) {
  const DekHeaders h = TestHeaders();
  const std::string text = Encode(h);
  for (const auto* d : {&*h.current, &*h.pending}) {
    // An unlocked file stores DEKs inside a NOT_ENCRYPTED record, so the
    // search must find them there (which shows it works); a locked one must
    // not contain them in any alignment.
    EXPECT_EQ(HoldsKeyInBase64(text, d->dek.key.bytes()), !GetParam()) << text;
  }
}

TEST_P(KeyFileTest, WrongOrMissingUnlockKeyIsPermissionDenied) {
  const std::string text = Encode(TestHeaders());
  UnlockKey wrong = TestUnlockKey(6);
  if (GetParam()) {
    EXPECT_THAT(DecodeKeyFile(text, &wrong),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
    EXPECT_THAT(DecodeKeyFile(text, nullptr),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("locked")));
    // Without DEKs the private key alone tells a wrong key.
    const std::string bare = Encode(DekHeaders{});
    EXPECT_THAT(DecodeKeyFile(bare, &wrong), StatusIs(absl::StatusCode::kPermissionDenied));
  } else {
    // An unlocked file ignores any unlock key.
    EXPECT_THAT(DecodeKeyFile(text, &wrong), IsOk());
  }
}

// Every bit of the file flipped: an error, or (where a flip cannot
// matter) exactly the same contents. Never a crash, never other DEKs.
TEST_P(KeyFileTest, EveryBitFlipIsReported) {
  const DekHeaders h = TestHeaders();
  const std::string text = Encode(h);
  int harmless = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = text;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      absl::StatusOr<KeyFile> f = DecodeKeyFile(t, unlock());
      if (f.ok()) {
        ++harmless;
        EXPECT_TRUE(SameHeaders(f->headers, h)) << "byte " << i << " bit " << bit;
        EXPECT_TRUE(f->key.Equals(*key_)) << "byte " << i << " bit " << bit;
        continue;
      }
      // Damage is kDataLoss; a flip can never pass for a wrong unlock key,
      // because the digest is checked first.
      EXPECT_THAT(f, StatusIs(absl::StatusCode::kDataLoss)) << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_EQ(harmless, 0);
}

TEST_P(KeyFileTest, EveryTruncationIsReported) {
  const std::string text = Encode(TestHeaders());
  for (size_t n = 0; n + 1 < text.size(); ++n) {  // the final newline is optional
    EXPECT_THAT(DecodeKeyFile(text.substr(0, n), unlock()), StatusIs(absl::StatusCode::kDataLoss))
        << n;
  }
}

TEST_P(KeyFileTest, SwappedDekHeadersFailToOpen) {
  const std::string text = Encode(TestHeaders());
  if (!GetParam()) {
    // Unlocked DEK records are NOT_ENCRYPTED: the records themselves do
    // not stop a swap (they open, swapped); the file digest is what does.
    ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text));
    std::swap(p.current, p.pending);
    EXPECT_OK(OpenDekHeaders(p, nullptr).status());
    return;
  }
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text));
  std::swap(p.current, p.pending);
  EXPECT_THAT(OpenDekHeaders(p, &*unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
  // A record kept across a kek-version change fails too.
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(text));
  q.kek_version = 4;
  EXPECT_THAT(OpenDekHeaders(q, &*unlock_), StatusIs(absl::StatusCode::kDataLoss));
}

// Below the digest: every bit of each wrapped DEK record flipped (what a
// swarmkit-layout file, which has no digest, relies on) fails to open.
TEST(KeyFileRecordTest, EveryBitOfAWrappedRecordIsChecked) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  UnlockKey u = TestUnlockKey(3);
  ASSERT_OK_AND_ASSIGN(std::string text, EncodeKeyFile(key, TestHeaders(), 1, &u));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text));
  ASSERT_THAT(OpenDekHeaders(p, &u), IsOk());
  for (bool pending : {false, true}) {
    const std::string bytes = (pending ? p.pending : p.current)->SerializeAsString();
    for (size_t i = 0; i < bytes.size() * 8; ++i) {
      std::string b = bytes;
      b[i / 8] = static_cast<char>(b[i / 8] ^ (1 << (i % 8)));
      encryptionpb::EncryptedRecord rec;
      if (!rec.ParseFromString(b)) continue;  // the reader refuses it earlier
      ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(text));
      (pending ? q.pending : q.current) = rec;
      absl::StatusOr<DekHeaders> h = OpenDekHeaders(q, &u);
      EXPECT_FALSE(h.ok()) << "bit " << i << (pending ? " of raft-dek-pending" : " of raft-dek");
      if (!h.ok()) {
        EXPECT_TRUE(absl::IsDataLoss(h.status()) || absl::IsPermissionDenied(h.status()))
            << h.status();
      }
    }
  }
}

TEST(KeyFileLayoutTest, SwarmkitLayoutIsRead) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  UnlockKey u = TestUnlockKey(9);
  for (bool locked : {false, true}) {
    SCOPED_TRACE(locked);
    const DekHeaders h = TestHeaders();
    ASSERT_OK_AND_ASSIGN(std::string ours, EncodeKeyFile(key, h, 2, locked ? &u : nullptr));
    // swarmkit seals records with the header name alone, as version 1 does.
    if (locked) ours = testing::AsLockedVersion1(ours, u);
    ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> blocks, ParsePemBlocks(ours));
    ASSERT_EQ(blocks.size(), 2u);
    // swarmkit: the DEK headers on the key block itself, no digest.
    std::string raw = *DecodeCanonicalBase64(blocks[1].body_base64, "k");
    const std::string swarm = FormatPemBlock(blocks[1].label, blocks[0].headers, raw);
    ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(swarm, locked ? &u : nullptr));
    EXPECT_EQ(f.layout, Layout::kSwarmkit);
    EXPECT_EQ(f.kek_version, 2u);
    EXPECT_TRUE(f.key.Equals(key));
    ExpectSameHeaders(f.headers, h);
  }
}

TEST(KeyFileLayoutTest, BareKeysAndOddFilesAreClear) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  ASSERT_OK_AND_ASSIGN(std::string pem, key.ToPkcs8Pem(std::nullopt));
  ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(pem, nullptr));
  EXPECT_EQ(f.layout, Layout::kBareKey);
  EXPECT_FALSE(f.locked);
  EXPECT_FALSE(f.headers.current.has_value());
  EXPECT_THAT(DecodeKeyFile("", nullptr), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("empty")));
  EXPECT_THAT(DecodeKeyFile("\n\n", nullptr),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not a PEM key file")));
  EXPECT_THAT(DecodeKeyFile(std::string(32, 'k'), nullptr), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeKeyFile("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                            nullptr),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not a sealwal key file")));
}

TEST(KeyFileDekPlaintextTest, RoundTripAndRejects) {
  StoredDek d = TestDek(0xdeadbeef, Algorithm::kChaCha20Poly1305, 12345, kCreated);
  std::string b = EncodeDekPlaintext(d);
  ASSERT_EQ(b.size(), kDekPlaintextSize);
  ASSERT_EQ(b.size(), 54u);
  EXPECT_EQ(b[0], 2);  // version 2
  EXPECT_EQ(b.substr(46), std::string("\xa0\x9a\x0e\x6b\x00\x00\x00\x00", 8));  // created, LE
  ASSERT_OK_AND_ASSIGN(StoredDek back, DecodeDekPlaintext(b, "raft-dek"));
  EXPECT_EQ(back.created, kCreated);
  EXPECT_EQ(back.CreatedTime(), absl::FromUnixSeconds(kCreated));
  EXPECT_EQ(back.Clone().created, kCreated);
  ExpectSameDek(std::optional<StoredDek>(std::move(back)), std::optional<StoredDek>(d.Clone()));
  std::string bad = b;
  bad[0] = 3;
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  bad[0] = 0;
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  bad = b;
  bad[1] = 1;  // swarmkit secretbox
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  bad = b;
  bad[2] = bad[3] = bad[4] = bad[5] = 0;  // key id 0
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  bad = b;
  bad[53] = static_cast<char>(0x80);  // created past int64: never written
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeDekPlaintext(b.substr(1), "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeDekPlaintext("", "raft-dek"), StatusIs(absl::StatusCode::kDataLoss));
  // Each version has one size: version 2 cut to 46 bytes, and version 1
  // with 8 bytes appended, are damage, not the other version.
  EXPECT_THAT(DecodeDekPlaintext(b.substr(0, 46), "raft-dek"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("want 54")));
  bad = b;
  bad[0] = 1;
  EXPECT_THAT(DecodeDekPlaintext(bad, "raft-dek"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("want 46")));
  // Unknown creation time is written as version 2 with created 0.
  StoredDek unknown = TestDek(0x1234);
  EXPECT_FALSE(unknown.CreatedTime().has_value());
  std::string u = EncodeDekPlaintext(unknown);
  ASSERT_EQ(u.size(), 54u);
  ASSERT_OK_AND_ASSIGN(StoredDek uback, DecodeDekPlaintext(u, "raft-dek"));
  EXPECT_EQ(uback.created, 0u);
  // A creation time the reader would refuse is not written.
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  DekHeaders h;
  h.current = TestDek(0x1234, Algorithm::kAes256Gcm, 0, uint64_t{1} << 63);
  EXPECT_THAT(EncodeKeyFile(key, h, 0, nullptr).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KeyFileDekPlaintextTest, DekCreatedAtIsWholeSeconds) {
  EXPECT_EQ(DekCreatedAt(absl::FromUnixSeconds(kCreated) + absl::Milliseconds(999)), kCreated);
  EXPECT_EQ(DekCreatedAt(absl::UnixEpoch()), 0u);  // unknown, not 1970
  EXPECT_EQ(DekCreatedAt(absl::UnixEpoch() - absl::Hours(1)), 0u);
}

// A version-1 DekPlaintext (46 bytes, before creation times were kept).
std::string V1Plaintext(const StoredDek& d) {
  std::string v1 = EncodeDekPlaintext(d).substr(0, kDekPlaintextV1Size);
  v1[0] = 1;
  return v1;
}

// The sealwal layout with `block0`'s headers, the file digest recomputed
// (docs/format.md §11 "File info and digest"), as an older writer made it.
std::string WithDigest(const std::vector<PemHeader>& headers, const PemBlock& key_block,
                       uint8_t flags) {
  std::string der = *DecodeCanonicalBase64(key_block.body_base64, "key");
  std::string in("sealwal/v1/pem-digest\0", 22);
  in.push_back(1);
  in.push_back(static_cast<char>(flags));
  for (const PemHeader& h : headers) absl::StrAppend(&in, h.name, ": ", h.value, "\n");
  absl::StrAppend(&in, key_block.label, "\n", der);
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(in.data(), in.size(), md, &n, EVP_sha256(), nullptr);
  std::string info;
  info.push_back(1);
  info.push_back(static_cast<char>(flags));
  info.append(reinterpret_cast<const char*>(md), 32);
  return FormatPemBlock(kDekBlockLabel, headers, info) +
         FormatPemBlock(key_block.label, key_block.headers, der);
}

// A key file written before version 2 (its records hold version-1
// DekPlaintexts) is read, locked and unlocked, with the creation time
// unknown; the next write makes it version 2, still unknown.
TEST(KeyFileDekPlaintextTest, Version1RecordsAreRead) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  UnlockKey u = TestUnlockKey(4);
  for (bool locked : {false, true}) {
    SCOPED_TRACE(locked);
    const UnlockKey* uk = locked ? &u : nullptr;
    DekHeaders h = TestHeaders();
    ASSERT_OK_AND_ASSIGN(std::string text, EncodeKeyFile(key, h, 2, uk));
    ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> blocks, ParsePemBlocks(text));
    ASSERT_EQ(blocks.size(), 2u);
    std::optional<Kek> kek;
    std::unique_ptr<encryption::AeadEncrypter> wrapper;
    if (locked) {
      ASSERT_OK_AND_ASSIGN(kek, u.DeriveKek());
      encryption::EncrypterOptions opts;
      opts.algorithm = Algorithm::kAes256Gcm;
      ASSERT_OK_AND_ASSIGN(wrapper, encryption::AeadEncrypter::Create(kek->id, kek->key, opts));
    }
    std::vector<PemHeader> headers = blocks[0].headers;
    for (PemHeader& ph : headers) {
      const StoredDek* d = ph.name == kRaftDekHeader          ? &*h.current
                           : ph.name == kRaftDekPendingHeader ? &*h.pending
                                                              : nullptr;
      if (d == nullptr) continue;
      encryptionpb::EncryptedRecord rec;
      if (locked) {
        encryption::AadContext ctx;
        ctx.purpose = encryption::Purpose::kDek;
        ctx.index = 2;
        ctx.extra = ph.name;
        ASSERT_OK_AND_ASSIGN(rec, wrapper->Encrypt(ctx, V1Plaintext(*d)));
      } else {
        rec.set_algorithm(encryptionpb::EncryptedRecord::NOT_ENCRYPTED);
        rec.set_data(V1Plaintext(*d));
      }
      ph.value = absl::Base64Escape(rec.SerializeAsString());
    }
    const std::string old = WithDigest(headers, blocks[1], locked ? 1 : 0);
    ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(old, uk));
    ASSERT_TRUE(f.headers.current.has_value() && f.headers.pending.has_value());
    h.current->created = 0;
    h.pending->created = 0;
    ExpectSameHeaders(f.headers, h);
    EXPECT_FALSE(f.headers.current->CreatedTime().has_value());
    // Rewritten: version 2 records, creation time still unknown.
    ASSERT_OK_AND_ASSIGN(std::string again, EncodeKeyFile(key, f.headers, 2, uk));
    ASSERT_OK_AND_ASSIGN(KeyFile g, DecodeKeyFile(again, uk));
    ExpectSameHeaders(g.headers, h);
    if (!locked) {
      ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(again));
      EXPECT_EQ(p.current->data().size(), kDekPlaintextSize);
      EXPECT_EQ(p.current->data()[0], 2);
    }
  }
}

// ------------------------------------------------- file MAC (issue 16 item 3)

// Each attack is what someone with write access but without the unlock key
// can do: edit the file and recompute the unkeyed digest
// (tests/testing/key_file_tamper.h).
class KeyFileMacTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(PrivateKey k, PrivateKey::GenerateEcP256());
    key_ = std::make_unique<PrivateKey>(std::move(k));
    ASSERT_OK_AND_ASSIGN(text_, EncodeKeyFile(*key_, TestHeaders(), 3, &unlock_));
  }
  std::unique_ptr<PrivateKey> key_;
  UnlockKey unlock_ = TestUnlockKey(5);
  std::string text_;  // locked, raft-dek, raft-dek-pending, needs rotation
};

TEST_F(KeyFileMacTest, LockedFilesAreVersion2WithAFileId) {
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text_));
  EXPECT_EQ(p.info_version, kFileInfoVersion2);
  EXPECT_EQ(p.file_info.size(), kFileInfoV2Size);
  EXPECT_EQ(p.file_info.size(), 82u);
  ASSERT_EQ(p.file_id.size(), kFileIdSize);
  EXPECT_EQ(p.file_info.substr(34, 16), p.file_id);
  ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(text_, &unlock_));
  EXPECT_EQ(f.file_id, p.file_id);
  // A given id is kept; none (or an empty one) makes a fresh one.
  ASSERT_OK_AND_ASSIGN(std::string again,
                       EncodeKeyFile(*key_, TestHeaders(), 4, &unlock_, nullptr, &p.file_id));
  EXPECT_EQ(DecodeKeyFile(again, &unlock_)->file_id, p.file_id);
  ASSERT_OK_AND_ASSIGN(std::string fresh, EncodeKeyFile(*key_, TestHeaders(), 3, &unlock_));
  EXPECT_NE(DecodeKeyFile(fresh, &unlock_)->file_id, p.file_id);
  const std::string short_id(15, 'x');
  EXPECT_THAT(EncodeKeyFile(*key_, TestHeaders(), 3, &unlock_, nullptr, &short_id).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Unlocked: version 1, no id, no MAC (no key to make it with).
  ASSERT_OK_AND_ASSIGN(std::string plain,
                       EncodeKeyFile(*key_, TestHeaders(), 3, nullptr, nullptr, &p.file_id));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(plain));
  EXPECT_EQ(q.info_version, kFileInfoVersion1);
  EXPECT_EQ(q.file_info.size(), kFileInfoV1Size);
  EXPECT_TRUE(q.file_id.empty());
  // A version-2 info on an unlocked file is damage (nothing could check it).
  testing::KeyFileParts parts = testing::SplitKeyFile(plain);
  parts.info += std::string(48, '\0');
  EXPECT_THAT(ParseKeyFile(testing::JoinKeyFile(parts, kFileInfoVersion2)).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("unlocked")));
}

TEST_F(KeyFileMacTest, StrippedNeedsRotationIsRefused) {
  testing::KeyFileParts p = testing::SplitKeyFile(text_);
  ASSERT_TRUE(p.Remove(kNeedsRotationHeader));
  const std::string edited = testing::JoinKeyFile(p, kFileInfoVersion2);
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile parsed, ParseKeyFile(edited));  // the digest matches
  EXPECT_FALSE(parsed.needs_rotation);
  EXPECT_THAT(OpenDekHeaders(parsed, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
  EXPECT_THAT(DecodeKeyFile(edited, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
  // Set to false instead of removed: the same.
  p.Set(kNeedsRotationHeader, "false");
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion2), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
}

TEST_F(KeyFileMacTest, DeletedPendingDekIsRefused) {
  testing::KeyFileParts p = testing::SplitKeyFile(text_);
  ASSERT_TRUE(p.Remove(kRaftDekPendingHeader));
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion2), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
  // Every DEK record removed: the private key proves the unlock key right,
  // so the mismatch is an altered file.
  ASSERT_TRUE(p.Remove(kRaftDekHeader));
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion2), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
}

TEST_F(KeyFileMacTest, DowngradeToVersion1IsRefused) {
  // Rewritten as version 1 (no id, no MAC), digest recomputed: the records
  // were sealed with the file id, and no longer open.
  testing::KeyFileParts p = testing::SplitKeyFile(text_);
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion1), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
  ASSERT_TRUE(p.Remove(kNeedsRotationHeader));
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion1), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
  ASSERT_TRUE(p.Remove(kRaftDekPendingHeader));
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion1), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
  // As a swarmkit file (headers on the key block, no file info): the same.
  testing::KeyFileParts q = testing::SplitKeyFile(text_);
  const std::string swarm = FormatPemBlock(q.key_label, q.dek_headers, q.key_der);
  EXPECT_THAT(DecodeKeyFile(swarm, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
  // Only a file with no record left opens here (a legacy file without
  // DEKs); KeyReadWriter refuses it (pem_key_read_writer_test).
  ASSERT_TRUE(p.Remove(kRaftDekHeader));
  ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion1),
                                                &unlock_));
  EXPECT_TRUE(f.file_id.empty());
  EXPECT_FALSE(f.headers.current.has_value());
}

TEST_F(KeyFileMacTest, DroppedDekBlockReadsAsABareKeyWithoutDeks) {
  // DecodeKeyFile reads any key (`key init --import`); KeyReadWriter is
  // what refuses a bare key when it holds an unlock key.
  ASSERT_OK_AND_ASSIGN(KeyFile f, DecodeKeyFile(testing::KeyBlockOf(text_), &unlock_));
  EXPECT_EQ(f.layout, Layout::kBareKey);
  EXPECT_TRUE(f.file_id.empty());
  EXPECT_FALSE(f.headers.current.has_value());
}

TEST_F(KeyFileMacTest, OlderKeyBlockIsRefused) {
  // An earlier version of the same file (same id, same unlock key) held
  // another private key; its key block is swapped into the current file.
  ASSERT_OK_AND_ASSIGN(PrivateKey older, PrivateKey::GenerateEcP256());
  const std::string id = DecodeKeyFile(text_, &unlock_)->file_id;
  ASSERT_OK_AND_ASSIGN(std::string before,
                       EncodeKeyFile(older, TestHeaders(), 3, &unlock_, nullptr, &id));
  testing::KeyFileParts p = testing::SplitKeyFile(text_);
  const testing::KeyFileParts old = testing::SplitKeyFile(before);
  p.key_der = old.key_der;
  const std::string edited = testing::JoinKeyFile(p, kFileInfoVersion2);
  EXPECT_THAT(DecodeKeyFile(edited, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile parsed, ParseKeyFile(edited));
  EXPECT_THAT(OpenDekHeaders(parsed, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
}

TEST_F(KeyFileMacTest, TransplantedDekRecordIsRefused) {
  // Two nodes' files locked with the same unlock key: node B's raft-dek
  // moved into node A's file.
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::GenerateEcP256());
  DekHeaders hb;
  hb.current = TestDek(0x3333, Algorithm::kAes256Gcm, 0, kCreated);
  ASSERT_OK_AND_ASSIGN(std::string b, EncodeKeyFile(other, hb, 3, &unlock_));
  const std::string b_record = testing::SplitKeyFile(b).Get(kRaftDekHeader);
  testing::KeyFileParts p = testing::SplitKeyFile(text_);
  p.Set(kRaftDekHeader, b_record);
  EXPECT_THAT(DecodeKeyFile(testing::JoinKeyFile(p, kFileInfoVersion2), &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAC mismatch")));
  // Below the MAC, the file id in the associated data refuses it too: the
  // record swapped into A's parsed file, whose MAC still matches.
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile a, ParseKeyFile(text_));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile pb, ParseKeyFile(b));
  a.current = pb.current;
  EXPECT_THAT(OpenDekHeaders(a, &unlock_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not authenticate")));
}

TEST_F(KeyFileMacTest, WrongUnlockKeyIsStillPermissionDenied) {
  const UnlockKey wrong = TestUnlockKey(6);
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text_));
  EXPECT_THAT(OpenDekHeaders(p, &wrong),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  EXPECT_THAT(DecodeKeyFile(text_, &wrong),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  // Without DEK records: DecodeKeyFile tells by the private key; the headers
  // alone cannot tell a wrong key from an altered file, and say both.
  ASSERT_OK_AND_ASSIGN(std::string empty, EncodeKeyFile(*key_, DekHeaders{}, 3, &unlock_));
  EXPECT_THAT(DecodeKeyFile(empty, &wrong), StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(empty));
  EXPECT_THAT(OpenDekHeaders(q, &wrong),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  EXPECT_THAT(OpenDekHeaders(q, &unlock_), IsOk());
}

TEST_F(KeyFileMacTest, MacKeyIsIndependentOfTheKek) {
  ASSERT_OK_AND_ASSIGN(Kek kek, unlock_.DeriveKek());
  ASSERT_OK_AND_ASSIGN(encryption::SecretKey mac, unlock_.DeriveFileMacKey());
  EXPECT_EQ(mac.size(), 32u);
  EXPECT_NE(mac.bytes(), kek.key.bytes());
  // Every byte of the MAC and the file id is checked.
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(text_));
  for (size_t i = kFileInfoV1Size; i < kFileInfoV2Size; ++i) {
    ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(text_));
    q.file_info[i] = static_cast<char>(q.file_info[i] ^ 0x01);
    EXPECT_THAT(OpenDekHeaders(q, &unlock_), StatusIs(absl::StatusCode::kDataLoss)) << i;
  }
}

TEST(PrivateKeyTest, EncryptedPkcs8UsesPbes2Sha256Aes256) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
  EXPECT_EQ(key.Description(), "EC P-256");
  ASSERT_OK_AND_ASSIGN(std::string pem, key.ToPkcs8Pem(absl::string_view("pw")));
  EXPECT_TRUE(absl::StartsWith(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  ASSERT_OK_AND_ASSIGN(PrivateKey back, PrivateKey::FromPem(pem, absl::string_view("pw")));
  EXPECT_TRUE(back.Equals(key));
  EXPECT_THAT(PrivateKey::FromPem(pem, absl::string_view("px")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(PrivateKey::FromPem(pem, std::nullopt),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace sealwal::pem
