// Nonce uniqueness under one key and the per-DEK usage counter: the
// rotation threshold (configurable) and the hard 2^32 limit.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/proto/encryption.pb.h"
#include "testing/status_matchers.h"

namespace sealwal::encryption {

// The one way to move an encrypter's nonce counter (a friend of
// AeadEncrypter; not part of the library).
class AeadEncrypterTestPeer {
 public:
  static void SetNonceCounter(AeadEncrypter& e, uint64_t counter) { e.nonce_counter_ = counter; }
};

namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

using Nonce = std::array<unsigned char, kAeadNonceSize>;

// The nonce sits at a fixed place in EncryptTo's canonical encoding of a
// record with an empty plaintext: 08 03 | 12 10 <16-byte tag> | 1a 0c <nonce>.
Nonce NonceOf(const std::string& ser) {
  Nonce n;
  EXPECT_EQ(static_cast<unsigned char>(ser[20]), 0x1a);
  std::memcpy(n.data(), ser.data() + 22, kAeadNonceSize);
  return n;
}

TEST(NonceTest, TenMillionEncryptionsUnderOneKeyRepeatNoNonce) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate(Algorithm::kAes256Gcm));
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek));
  constexpr size_t kN = 10'000'000;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Nonce> nonces(kN);
  std::string ser;
  AadContext ctx;
  for (size_t i = 0; i < kN; ++i) {
    ctx.index = i;
    ASSERT_OK(enc->EncryptTo(ctx, "", &ser));
    ASSERT_EQ(ser.size(), 2 + 2 + kAeadTagSize + 2 + kAeadNonceSize + 5);
    nonces[i] = NonceOf(ser);
  }
  EXPECT_EQ(enc->encryptions(), kN);
  std::sort(nonces.begin(), nonces.end());
  EXPECT_EQ(std::adjacent_find(nonces.begin(), nonces.end()), nonces.end())
      << "a nonce repeated under one key";
  // And the records still open (spot check the last one).
  auto dec = MultiDecrypter::Create();
  ASSERT_OK(dec->AddKey(dek.id, dek.algorithm, dek.key.Clone()));
  std::string out = "x";
  ASSERT_OK(dec->DecryptSerialized(ser, ctx, &out));
  EXPECT_TRUE(out.empty());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("seconds", std::to_string(secs));  // a figure, not a pass/fail bound
}

TEST(NonceTest, TwoEncryptersUnderOneKeyStartApart) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto e1, AeadEncrypter::Create(dek));
  ASSERT_OK_AND_ASSIGN(auto e2, AeadEncrypter::Create(dek));
  std::vector<Nonce> nonces;
  std::string ser;
  for (auto* e : {e1.get(), e2.get()}) {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_OK(e->EncryptTo({}, "", &ser));
      nonces.push_back(NonceOf(ser));
    }
  }
  std::sort(nonces.begin(), nonces.end());
  EXPECT_EQ(std::adjacent_find(nonces.begin(), nonces.end()), nonces.end());
}

TEST(NonceTest, CounterWrapsWithoutRepeating) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek));
  AeadEncrypterTestPeer::SetNonceCounter(*enc, ~uint64_t{0} - 2);
  std::vector<Nonce> nonces;
  std::string ser;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(enc->EncryptTo({}, "", &ser));
    nonces.push_back(NonceOf(ser));
  }
  // The prefix stays, the counter runs ...fd fe ff 00 01 02.
  for (const Nonce& n : nonces)
    EXPECT_TRUE(std::equal(n.begin(), n.begin() + 4, nonces[0].begin()));
  EXPECT_EQ(nonces[2][11], 0xff);
  EXPECT_EQ(nonces[3][11], 0x00);
  std::sort(nonces.begin(), nonces.end());
  EXPECT_EQ(std::adjacent_find(nonces.begin(), nonces.end()), nonces.end());
}

// The nonce of any serialized record (NonceOf assumes an empty payload).
Nonce NonceOfRecord(const std::string& ser) {
  encryptionpb::EncryptedRecord r;
  EXPECT_TRUE(r.ParseFromString(ser));
  Nonce n{};
  EXPECT_EQ(r.nonce().size(), kAeadNonceSize);
  std::memcpy(n.data(), r.nonce().data(), std::min(r.nonce().size(), n.size()));
  return n;
}

// A batch (split over two threads when large) uses exactly the nonces the
// same number of EncryptTo calls would, in order, and every record opens at
// its own place.
// A DEK, an encrypter sealing on `threads` threads, a decrypter for it.
void MakeSealer(int threads, Dek* dek, std::unique_ptr<AeadEncrypter>* enc,
                std::unique_ptr<MultiDecrypter>* dec) {
  ASSERT_OK_AND_ASSIGN(*dek, Dek::Generate());
  EncrypterOptions options;
  options.seal_threads = threads;
  ASSERT_OK_AND_ASSIGN(*enc, AeadEncrypter::Create(*dek, options));
  *dec = MultiDecrypter::Create();
  ASSERT_OK((*dec)->AddKey(dek->id, dek->algorithm, dek->key.Clone()));
}

TEST(NonceTest, BatchesUseConsecutiveNoncesOnEveryThread) {
  for (int threads : {1, 2, 4}) {
    for (size_t size : {10, 1024}) {  // below and above the parallel threshold
      SCOPED_TRACE(absl::StrCat(threads, " threads, ", size, " bytes"));
      Dek dek;
      std::unique_ptr<AeadEncrypter> enc;
      std::unique_ptr<MultiDecrypter> dec;
      ASSERT_NO_FATAL_FAILURE(MakeSealer(threads, &dek, &enc, &dec));
      std::string before;
      ASSERT_OK(enc->EncryptTo({}, "", &before));
      constexpr size_t kN = 200;
      std::vector<AadContext> ctxs(kN);
      std::vector<std::string> plains(kN);
      std::vector<absl::string_view> views(kN);
      for (size_t i = 0; i < kN; ++i) {
        ctxs[i].index = 1000 + i;
        ctxs[i].term = 7;
        plains[i] = std::string(size, static_cast<char>('a' + i % 26));
        views[i] = plains[i];
      }
      std::vector<std::string> outs(kN);
      ASSERT_OK(enc->EncryptBatchTo(ctxs, views, outs.data()));
      EXPECT_EQ(enc->encryptions(), kN + 1);
      Nonce prev = NonceOf(before);
      for (size_t i = 0; i < kN; ++i) {
        const Nonce n = NonceOfRecord(outs[i]);
        // Same prefix, counter one more than the previous record's.
        EXPECT_TRUE(std::equal(n.begin(), n.begin() + 4, prev.begin()));
        uint64_t a = 0, b = 0;
        for (int k = 4; k < 12; ++k) {
          a = a << 8 | prev[k];
          b = b << 8 | n[k];
        }
        EXPECT_EQ(b, a + 1) << i;
        prev = n;
        std::string out;
        ASSERT_OK(dec->DecryptSerialized(outs[i], ctxs[i], &out));
        EXPECT_EQ(out, plains[i]);
        AadContext elsewhere = ctxs[i];
        ++elsewhere.index;
        EXPECT_FALSE(dec->DecryptSerialized(outs[i], elsewhere, &out).ok());
      }
    }
  }
}

TEST(EncrypterOptionsTest, SealThreadsOutsideTheRangeAreRefused) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  for (int bad : {-1, kMaxSealThreads + 1}) {
    EncrypterOptions options;
    options.seal_threads = bad;
    EXPECT_THAT(AeadEncrypter::Create(dek, options).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seal_threads")));
  }
}

// Progress reports come on the calling thread, in order, as consecutive
// ranges covering the batch, and each reported record is already final; a
// report that fails stops the batch with its error, and the encrypter
// (and its helper thread) carries on with the next batch.
TEST(NonceTest, BatchReportsRangesInOrderAndStopsOnError) {
  for (int threads : {2, 3}) {
    SCOPED_TRACE(absl::StrCat(threads, " threads"));
    Dek dek;
    std::unique_ptr<AeadEncrypter> enc;
    std::unique_ptr<MultiDecrypter> dec;
    ASSERT_NO_FATAL_FAILURE(MakeSealer(threads, &dek, &enc, &dec));
    for (size_t n : {1, 3, 40, 500}) {
      for (size_t size : {0, 10, 1024, 4000}) {
        SCOPED_TRACE(absl::StrCat(n, " records of ", size, " bytes"));
        std::vector<AadContext> ctxs(n);
        std::vector<std::string> plains(n);
        std::vector<absl::string_view> views(n);
        for (size_t i = 0; i < n; ++i) {
          ctxs[i].index = i + 1;
          plains[i] = std::string(size, static_cast<char>('a' + i % 26));
          views[i] = plains[i];
        }
        std::vector<std::string> outs(n);
        const std::thread::id caller = std::this_thread::get_id();
        size_t next = 0;
        int reports = 0;
        ASSERT_OK(enc->EncryptBatchTo(ctxs, views, outs.data(), [&](size_t b, size_t e) {
          ++reports;
          EXPECT_EQ(std::this_thread::get_id(), caller);
          EXPECT_EQ(b, next);
          EXPECT_LT(b, e);
          for (size_t i = b; i < e; ++i) {
            std::string out;
            EXPECT_OK(dec->DecryptSerialized(outs[i], ctxs[i], &out));
            EXPECT_EQ(out, plains[i]);
          }
          next = e;
          return absl::OkStatus();
        }));
        EXPECT_EQ(next, n);
        // Large batches go in several pieces; small ones in one.
        if (n * size >= AeadEncrypter::kParallelMinBytes && n > 1) {
          EXPECT_GT(reports, 1);
        }

        // Stop at the first report, then at the second if there is one.
        for (int stop_at : {0, 1}) {
          int calls = 0;
          const absl::Status st =
              enc->EncryptBatchTo(ctxs, views, outs.data(), [&](size_t, size_t) {
                return calls++ == stop_at ? absl::AbortedError("caller stops") : absl::OkStatus();
              });
          if (stop_at < reports) {
            EXPECT_THAT(st, StatusIs(absl::StatusCode::kAborted, HasSubstr("caller stops")));
          } else {
            EXPECT_OK(st);
          }
          EXPECT_LE(calls, stop_at + 1);
        }
      }
    }
  }
}

TEST(EncrypterCounterTest, BatchPastTwoToThe32IsRefusedWhole) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  EncrypterOptions o;
  o.initial_encryptions = kMaxEncryptionsPerKey - 5;
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek, o));
  std::vector<AadContext> ctxs(6);
  std::vector<absl::string_view> views(6, "p");
  std::vector<std::string> outs(6);
  EXPECT_THAT(enc->EncryptBatchTo(ctxs, views, outs.data()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("DEK exhausted")));
  EXPECT_EQ(enc->encryptions(), kMaxEncryptionsPerKey - 5);
  ctxs.resize(5);
  views.resize(5);
  ASSERT_OK(enc->EncryptBatchTo(ctxs, views, outs.data()));
  EXPECT_EQ(enc->encryptions(), kMaxEncryptionsPerKey);
  EXPECT_THAT(enc->EncryptTo({}, "p", &outs[0]), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(EncrypterCounterTest, RotationThresholdTriggers) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate(Algorithm::kChaCha20Poly1305));
  EncrypterOptions o;
  o.rotation_threshold = 100;
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek, o));
  EXPECT_EQ(enc->rotation_threshold(), 100u);
  std::string ser;
  for (int i = 0; i < 99; ++i) ASSERT_OK(enc->EncryptTo({}, "p", &ser));
  EXPECT_FALSE(enc->rotation_required());
  ASSERT_OK(enc->EncryptTo({}, "p", &ser));
  EXPECT_TRUE(enc->rotation_required());
  EXPECT_EQ(enc->encryptions(), 100u);
  // Past the threshold sealing goes on: rotation is the key rotator's job.
  ASSERT_OK(enc->EncryptTo({}, "p", &ser));
}

TEST(EncrypterCounterTest, DefaultThresholdIsTwoToThe30AndCountsResume) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  EncrypterOptions o;
  o.initial_encryptions = (uint64_t{1} << 30) - 1;
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek, o));
  EXPECT_EQ(enc->rotation_threshold(), uint64_t{1} << 30);
  EXPECT_FALSE(enc->rotation_required());
  std::string ser;
  ASSERT_OK(enc->EncryptTo({}, "p", &ser));
  EXPECT_TRUE(enc->rotation_required());
}

TEST(EncrypterCounterTest, RefusesPastTwoToThe32) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  EncrypterOptions o;
  o.initial_encryptions = kMaxEncryptionsPerKey - 2;
  ASSERT_OK_AND_ASSIGN(auto enc, AeadEncrypter::Create(dek, o));
  EXPECT_TRUE(enc->rotation_required());
  std::string ser;
  ASSERT_OK(enc->EncryptTo({}, "p", &ser));
  ASSERT_OK_AND_ASSIGN(auto rec, enc->Encrypt({}, "p"));
  EXPECT_EQ(enc->encryptions(), kMaxEncryptionsPerKey);
  EXPECT_THAT(enc->EncryptTo({}, "p", &ser),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("DEK exhausted")));
  EXPECT_TRUE(ser.empty());
  EXPECT_THAT(enc->Encrypt({}, "p"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(enc->encryptions(), kMaxEncryptionsPerKey);
  // A DEK already past the limit can still be loaded (to read), not used.
  o.initial_encryptions = kMaxEncryptionsPerKey + 5;
  ASSERT_OK_AND_ASSIGN(auto spent, AeadEncrypter::Create(dek, o));
  EXPECT_THAT(spent->EncryptTo({}, "p", &ser), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(EncrypterCounterTest, ValidatesOptions) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  EncrypterOptions o;
  o.rotation_threshold = 0;
  EXPECT_THAT(AeadEncrypter::Create(dek, o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.rotation_threshold = kMaxEncryptionsPerKey + 1;
  EXPECT_THAT(AeadEncrypter::Create(dek, o), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AeadEncrypter::Create(KeyId(), dek.key),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o = {};
  o.algorithm = Algorithm::kNotEncrypted;
  EXPECT_THAT(AeadEncrypter::Create(dek.id, dek.key, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sealwal::encryption
