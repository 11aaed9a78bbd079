// Encrypter / MultiDecrypter: EncryptedRecords, the associated data that
// binds them to their place, key selection by key_id, and tampering with
// every bit of a record and of every field bound in the AAD.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace sealwal::encryption {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

AadContext EntryCtx(uint64_t index, uint64_t term, int32_t type = 0) {
  AadContext c;
  c.purpose = Purpose::kWalEntry;
  c.index = index;
  c.term = term;
  c.entry_type = type;
  return c;
}

class EncryptedRecordTest : public ::testing::TestWithParam<Algorithm> {
 protected:
  void SetUp() override {
    auto dek = Dek::Generate(GetParam());
    ASSERT_TRUE(dek.ok());
    dek_ = std::move(*dek);
    auto enc = AeadEncrypter::Create(dek_);
    ASSERT_TRUE(enc.ok());
    enc_ = std::move(*enc);
    dec_ = MultiDecrypter::Create();
    ASSERT_OK(dec_->AddKey(dek_.id, dek_.algorithm, dek_.key.Clone()));
  }

  Dek dek_;
  std::unique_ptr<AeadEncrypter> enc_;
  std::unique_ptr<MultiDecrypter> dec_;
};

TEST_P(EncryptedRecordTest, RoundTripAndRecordShape) {
  for (const std::string& pt : {std::string(), std::string("a"), std::string(1 << 20, 'z')}) {
    ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, enc_->Encrypt(EntryCtx(5, 2), pt));
    EXPECT_EQ(rec.algorithm(), ToProto(GetParam()));
    EXPECT_EQ(rec.key_id(), dek_.id.value());
    EXPECT_EQ(rec.nonce().size(), kAeadNonceSize);
    EXPECT_EQ(rec.data().size(), pt.size() + kAeadTagSize);
    std::string out = "junk";
    ASSERT_OK(dec_->Decrypt(rec, EntryCtx(5, 2), &out));
    EXPECT_TRUE(out == pt);
    std::string ser;
    ASSERT_OK(enc_->EncryptTo(EntryCtx(6, 2), pt, &ser));
    encryptionpb::EncryptedRecord parsed;
    ASSERT_TRUE(parsed.ParseFromString(ser));
    EXPECT_EQ(parsed.SerializeAsString(), ser) << "EncryptTo must write protobuf's encoding";
    ASSERT_OK(dec_->DecryptSerialized(ser, EntryCtx(6, 2), &out));
    EXPECT_TRUE(out == pt);
    ASSERT_OK_AND_ASSIGN(KeyId id, MultiDecrypter::KeyIdOf(ser));
    EXPECT_EQ(id, dek_.id);
  }
  EXPECT_EQ(enc_->encryptions(), 6u);
}

TEST_P(EncryptedRecordTest, EveryBitOfTheSerializedRecordMatters) {
  // Covers ciphertext, tag, nonce, key_id, algorithm and the protobuf
  // framing around them.
  for (const std::string& pt : {std::string(), std::string("x"), std::string("hello, world")}) {
    std::string ser;
    ASSERT_OK(enc_->EncryptTo(EntryCtx(9, 3), pt, &ser));
    std::string out;
    for (size_t bit = 0; bit < ser.size() * 8; ++bit) {
      std::string t = ser;
      t[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      absl::Status s = dec_->DecryptSerialized(t, EntryCtx(9, 3), &out);
      EXPECT_FALSE(s.ok()) << "bit " << bit << " of " << ser.size() << " bytes";
      EXPECT_TRUE(out.empty());
    }
    // Truncation at every length.
    for (size_t n = 0; n < ser.size(); ++n) {
      EXPECT_FALSE(dec_->DecryptSerialized(ser.substr(0, n), EntryCtx(9, 3), &out).ok()) << n;
    }
    ASSERT_OK(dec_->DecryptSerialized(ser, EntryCtx(9, 3), &out));
    EXPECT_EQ(out, pt);
  }
}

// In-place decryption gives what DecryptSerialized gives: the plaintext
// inside the record's own bytes for canonical records, in scratch for
// other encodings; a tampered record fails the same way and leaves no
// unauthenticated plaintext behind.
TEST_P(EncryptedRecordTest, InPlaceMatchesCopyingDecryption) {
  for (const std::string& pt : {std::string(), std::string("x"), std::string(100000, 'q')}) {
    std::string ser;
    ASSERT_OK(enc_->EncryptTo(EntryCtx(4, 1), pt, &ser));
    std::string buf = ser, scratch;
    absl::string_view plain;
    ASSERT_OK(dec_->DecryptSerializedInPlace(absl::MakeSpan(buf), EntryCtx(4, 1), &scratch,
                                             &plain));
    EXPECT_TRUE(plain == pt);
    EXPECT_TRUE(scratch.empty());
    if (!pt.empty()) {
      EXPECT_GE(plain.data(), buf.data());  // in place: no copy
      EXPECT_LE(plain.data() + plain.size(), buf.data() + buf.size());
    }

    // Tampered ciphertext (the last byte before the tag): kDataLoss, and
    // the decrypted-but-unauthenticated bytes are wiped.
    if (!pt.empty()) {
      buf = ser;
      encryptionpb::EncryptedRecord rec;
      ASSERT_TRUE(rec.ParseFromString(ser));
      const size_t data_at = ser.find(rec.data());
      ASSERT_NE(data_at, std::string::npos);
      buf[data_at + pt.size() - 1] ^= 1;
      EXPECT_THAT(dec_->DecryptSerializedInPlace(absl::MakeSpan(buf), EntryCtx(4, 1), &scratch,
                                                 &plain),
                  StatusIs(absl::StatusCode::kDataLoss));
      EXPECT_EQ(buf.substr(data_at, pt.size()), std::string(pt.size(), '\0'));
      // The wrong place fails too.
      buf = ser;
      EXPECT_THAT(dec_->DecryptSerializedInPlace(absl::MakeSpan(buf), EntryCtx(5, 1), &scratch,
                                                 &plain),
                  StatusIs(absl::StatusCode::kDataLoss));
    }

    // A valid but non-canonical encoding (fields reversed) is refused, in
    // place (also without scratch) and copying: one record, one byte form.
    encryptionpb::EncryptedRecord rec;
    ASSERT_TRUE(rec.ParseFromString(ser));
    // Each field serialized alone, last field first: protobuf concatenates.
    std::string odd;
    for (int field = 4; field >= 1; --field) {
      encryptionpb::EncryptedRecord one;
      if (field == 4) one.set_key_id(rec.key_id());
      if (field == 3) one.set_nonce(rec.nonce());
      if (field == 2) one.set_data(rec.data());
      if (field == 1) one.set_algorithm(rec.algorithm());
      odd += one.SerializeAsString();
    }
    const std::string odd_copy = odd;
    EXPECT_THAT(dec_->DecryptSerializedInPlace(absl::MakeSpan(odd), EntryCtx(4, 1), &scratch,
                                               &plain),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("non-canonical")));
    std::string odd2 = odd_copy;
    EXPECT_THAT(dec_->DecryptSerializedInPlace(absl::MakeSpan(odd2), EntryCtx(4, 1), nullptr,
                                               &plain),
                StatusIs(absl::StatusCode::kDataLoss));
    std::string out;
    EXPECT_THAT(dec_->DecryptSerialized(odd_copy, EntryCtx(4, 1), &out),
                StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST_P(EncryptedRecordTest, EveryAadFieldIsBound) {
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec,
                       enc_->Encrypt(EntryCtx(0x0123456789abcdefULL, 0x55aa55aa55aa55aaULL, 1),
                                     "payload"));
  const AadContext good = EntryCtx(0x0123456789abcdefULL, 0x55aa55aa55aa55aaULL, 1);
  std::string out;
  ASSERT_OK(dec_->Decrypt(rec, good, &out));
  int tries = 0;
  auto expect_fail = [&](const AadContext& c, const std::string& what) {
    ++tries;
    absl::Status s = dec_->Decrypt(rec, c, &out);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss)) << what;
    EXPECT_TRUE(out.empty());
  };
  for (int bit = 0; bit < 64; ++bit) {
    AadContext c = good;
    c.index ^= uint64_t{1} << bit;
    expect_fail(c, absl::StrCat("index bit ", bit));
    c = good;
    c.term ^= uint64_t{1} << bit;
    expect_fail(c, absl::StrCat("term bit ", bit));
  }
  for (int bit = 0; bit < 32; ++bit) {
    AadContext c = good;
    c.entry_type ^= static_cast<int32_t>(uint32_t{1} << bit);
    expect_fail(c, absl::StrCat("type bit ", bit));
  }
  for (Purpose p : {Purpose::kWalMetadata, Purpose::kSnapshot, Purpose::kDek,
                    Purpose::kStreamChunk}) {
    AadContext c = good;
    c.purpose = p;
    expect_fail(c, std::string(PurposeName(p)));
  }
  AadContext extra = good;
  extra.extra = "x";
  expect_fail(extra, "extra");
  EXPECT_EQ(tries, 64 * 2 + 32 + 4 + 1);
}

TEST_P(EncryptedRecordTest, KeyIdIsBoundEvenWhenTheOtherIdHoldsTheSameKey) {
  // The same key bytes under a second id: only the AAD can tell them apart.
  const KeyId other(dek_.id.value() ^ 0x80000000u);
  ASSERT_OK(dec_->AddKey(other, dek_.algorithm, dek_.key.Clone()));
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, enc_->Encrypt(EntryCtx(1, 1), "p"));
  std::string out;
  ASSERT_OK(dec_->Decrypt(rec, EntryCtx(1, 1), &out));
  rec.set_key_id(other.value());
  EXPECT_THAT(dec_->Decrypt(rec, EntryCtx(1, 1), &out),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 1"), HasSubstr(FormatKeyId(other)))));
}

TEST_P(EncryptedRecordTest, UnknownKeyIdIsNotFoundNamingTheKey) {
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, enc_->Encrypt(EntryCtx(4, 1), "p"));
  auto empty = MultiDecrypter::Create();
  std::string out;
  EXPECT_THAT(empty->Decrypt(rec, EntryCtx(4, 1), &out),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no DEK with key id " + FormatKeyId(dek_.id)),
                             HasSubstr("index 4"))));
}

TEST_P(EncryptedRecordTest, AuthFailureNamesIndexAndKeyId) {
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, enc_->Encrypt(EntryCtx(42, 7), "p"));
  rec.mutable_data()->front() ^= 1;
  std::string out;
  EXPECT_THAT(dec_->Decrypt(rec, EntryCtx(42, 7), &out),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 42"), HasSubstr("term 7"),
                             HasSubstr(FormatKeyId(dek_.id)))));
}

TEST_P(EncryptedRecordTest, WrongKeyUnderTheRightIdFails) {
  ASSERT_OK_AND_ASSIGN(SecretKey wrong, SecretKey::Generate(kAeadKeySize));
  auto dec = MultiDecrypter::Create();
  ASSERT_OK(dec->AddKey(dek_.id, dek_.algorithm, std::move(wrong)));
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, enc_->Encrypt(EntryCtx(3, 1), "p"));
  std::string out;
  EXPECT_THAT(dec->Decrypt(rec, EntryCtx(3, 1), &out), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_P(EncryptedRecordTest, ConcurrentDecryptsShareThePool) {
  std::vector<std::string> sers(64);
  for (size_t i = 0; i < sers.size(); ++i) {
    ASSERT_OK(enc_->EncryptTo(EntryCtx(i + 1, 1), std::string(100 + i, 'a' + i % 26), &sers[i]));
  }
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string out;
      for (int round = 0; round < 200; ++round) {
        for (size_t i = 0; i < sers.size(); ++i) {
          if (!dec_->DecryptSerialized(sers[i], EntryCtx(i + 1, 1), &out).ok() ||
              out != std::string(100 + i, 'a' + i % 26)) {
            ++bad[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EncryptedRecordTest,
                         ::testing::Values(Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305),
                         [](const auto& info) {
                           return info.param == Algorithm::kAes256Gcm ? "AesGcm" : "ChaCha";
                         });

// Two DEKs (one per algorithm), an encrypter for each, one decrypter
// holding both.
struct TwoKeys {
  Dek a, b;
  std::unique_ptr<AeadEncrypter> ea, eb;
  std::unique_ptr<MultiDecrypter> dec;
};

void MakeTwoKeys(TwoKeys* k) {
  ASSERT_OK_AND_ASSIGN(k->a, Dek::Generate(Algorithm::kAes256Gcm));
  ASSERT_OK_AND_ASSIGN(k->b, Dek::Generate(Algorithm::kChaCha20Poly1305));
  ASSERT_OK_AND_ASSIGN(k->ea, AeadEncrypter::Create(k->a));
  ASSERT_OK_AND_ASSIGN(k->eb, AeadEncrypter::Create(k->b));
  k->dec = MultiDecrypter::Create();
  ASSERT_OK(k->dec->AddKey(k->a.id, k->a.algorithm, k->a.key.Clone()));
  ASSERT_OK(k->dec->AddKey(k->b.id, k->b.algorithm, k->b.key.Clone()));
}

TEST(MultiDecrypterTest, SelectsTheKeyByKeyId) {
  TwoKeys k;
  ASSERT_NO_FATAL_FAILURE(MakeTwoKeys(&k));
  const Dek& a = k.a;
  const Dek& b = k.b;
  AeadEncrypter* ea = k.ea.get();
  AeadEncrypter* eb = k.eb.get();
  MultiDecrypter* dec = k.dec.get();
  ASSERT_OK(dec->AddKey(a.id, a.algorithm, a.key.Clone()));  // same again: no-op
  EXPECT_THAT(dec->AddKey(a.id, b.algorithm, b.key.Clone()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(dec->AddKey(KeyId(), a.algorithm, a.key.Clone()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(dec->KeyIds().size(), 2u);
  std::string ra, rb, out;
  ASSERT_OK(ea->EncryptTo(EntryCtx(1, 1), "from a", &ra));
  ASSERT_OK(eb->EncryptTo(EntryCtx(2, 1), "from b", &rb));
  ASSERT_OK(dec->DecryptSerialized(ra, EntryCtx(1, 1), &out));
  EXPECT_EQ(out, "from a");
  ASSERT_OK(dec->DecryptSerialized(rb, EntryCtx(2, 1), &out));
  EXPECT_EQ(out, "from b");
  ASSERT_OK(dec->RemoveKey(a.id));
  EXPECT_FALSE(dec->HasKey(a.id));
  EXPECT_THAT(dec->DecryptSerialized(ra, EntryCtx(1, 1), &out),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(FormatKeyId(a.id))));
  EXPECT_THAT(dec->RemoveKey(a.id), StatusIs(absl::StatusCode::kNotFound));
}

// A session gives the verdicts DecryptSerialized gives, record after
// record, switching keys, after errors, and for a key removed while it
// holds it (which it may finish using, as a running Decrypt may).
TEST(MultiDecrypterTest, SessionsAgreeWithSingleCalls) {
  TwoKeys k;
  ASSERT_NO_FATAL_FAILURE(MakeTwoKeys(&k));
  const Dek& a = k.a;
  MultiDecrypter* dec = k.dec.get();
  std::vector<std::string> recs;
  for (int i = 0; i < 12; ++i) {
    std::string r;
    // Runs of one key, then alternation.
    AeadEncrypter* e = (i < 4 || i % 2 == 0) ? k.ea.get() : k.eb.get();
    ASSERT_OK(e->EncryptTo(EntryCtx(i + 1, 1), absl::StrCat("payload ", i), &r));
    recs.push_back(r);
  }
  recs[6][recs[6].size() / 2] ^= 1;  // one damaged record in the middle
  std::unique_ptr<Decrypter::Session> session = dec->NewSession();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 12; ++i) {
      std::string want, got;
      const absl::Status single = dec->DecryptSerialized(recs[i], EntryCtx(i + 1, 1), &want);
      const absl::Status viasession = session->DecryptSerialized(recs[i], EntryCtx(i + 1, 1), &got);
      EXPECT_EQ(single.code(), viasession.code()) << i;
      EXPECT_EQ(want, got) << i;
      if (i != 6) {
        EXPECT_OK(viasession) << i;
      }
      // Another place fails in the session too.
      EXPECT_FALSE(session->DecryptSerialized(recs[i], EntryCtx(i + 2, 1), &got).ok());
    }
  }
  // With key a held by the session (record 10), remove a: single calls
  // fail at once; the session may still finish with the key it holds, and
  // once it moves to another key, a is looked up afresh and is gone.
  std::string out;
  ASSERT_OK(session->DecryptSerialized(recs[10], EntryCtx(11, 1), &out));
  ASSERT_OK(dec->RemoveKey(a.id));
  EXPECT_THAT(dec->DecryptSerialized(recs[10], EntryCtx(11, 1), &out),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(session->DecryptSerialized(recs[10], EntryCtx(11, 1), &out));
  EXPECT_OK(session->DecryptSerialized(recs[11], EntryCtx(12, 1), &out));  // key b
  EXPECT_THAT(session->DecryptSerialized(recs[10], EntryCtx(11, 1), &out),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(MultiDecrypterTest, AlgorithmMustMatchTheKeysAlgorithm) {
  ASSERT_OK_AND_ASSIGN(Dek a, Dek::Generate(Algorithm::kAes256Gcm));
  ASSERT_OK_AND_ASSIGN(auto ea, AeadEncrypter::Create(a));
  auto dec = MultiDecrypter::Create();
  ASSERT_OK(dec->AddKey(a.id, a.algorithm, a.key.Clone()));
  ASSERT_OK_AND_ASSIGN(encryptionpb::EncryptedRecord rec, ea->Encrypt(EntryCtx(1, 1), "p"));
  rec.set_algorithm(encryptionpb::EncryptedRecord::CHACHA20_POLY1305);
  std::string out;
  EXPECT_THAT(dec->Decrypt(rec, EntryCtx(1, 1), &out), StatusIs(absl::StatusCode::kDataLoss));
  rec.set_algorithm(encryptionpb::EncryptedRecord::NACL_SECRETBOX_SALSA20_POLY1305);
  EXPECT_THAT(dec->Decrypt(rec, EntryCtx(1, 1), &out), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(MultiDecrypterTest, NotEncryptedIsRefusedUnlessAllowed) {
  auto pass = NewNotEncryptedEncrypter();
  EXPECT_EQ(pass->algorithm(), Algorithm::kNotEncrypted);
  EXPECT_EQ(pass->key_id(), KeyId());
  EXPECT_FALSE(pass->rotation_required());
  std::string ser;
  ASSERT_OK(pass->EncryptTo(EntryCtx(1, 1), "plain", &ser));
  std::string out;
  auto strict = MultiDecrypter::Create();
  EXPECT_THAT(strict->DecryptSerialized(ser, EntryCtx(1, 1), &out),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("NOT_ENCRYPTED")));
  MultiDecrypterOptions o;
  o.allow_not_encrypted = true;
  auto lenient = MultiDecrypter::Create(o);
  ASSERT_OK(lenient->DecryptSerialized(ser, EntryCtx(1, 1), &out));
  EXPECT_EQ(out, "plain");
}

TEST(MultiDecrypterTest, GarbageIsDataLossNotAKeyProblem) {
  auto dec = MultiDecrypter::Create();
  std::string out;
  EXPECT_THAT(dec->DecryptSerialized("\xff\xff\xff", EntryCtx(1, 1), &out),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("index 1")));
  // In place too, down to an empty record (no bytes, maybe no pointer):
  // found by encrypted_record_fuzzer, which crashed on it.
  for (std::string rec : {std::string(), std::string("\xff\xff\xff"), std::string("\x12\x00")}) {
    absl::string_view plain;
    EXPECT_THAT(dec->DecryptSerializedInPlace(absl::MakeSpan(rec), EntryCtx(1, 1), &out, &plain),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  absl::string_view plain;
  EXPECT_THAT(dec->DecryptSerializedInPlace(absl::Span<char>(), EntryCtx(1, 1), &out, &plain),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(AeadAssociatedDataTest, WorkedExampleFromTheHeader) {
  ASSERT_OK_AND_ASSIGN(std::string aad, AssociatedData(EntryCtx(5, 2, 0), KeyId(0x1a2b3c4d)));
  EXPECT_EQ(absl::BytesToHexString(aad),
            "7365616c77616c2f76312f"      // "sealwal/v1/"
            "77616c2d656e747279" "00"     // "wal-entry" NUL
            "4d3c2b1a"                    // key id
            "0500000000000000"            // index
            "0200000000000000"            // term
            "00000000");                  // type
  EXPECT_EQ(aad.size(), 45u);
}

}  // namespace
}  // namespace sealwal::encryption
