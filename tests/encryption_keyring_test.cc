// encryption::Keyring, its per-DEK usage counter (KeyUsage) and
// pem::LoadKeyring: one write key and read keys by id, SetWriteKey followed
// by a WAL codec at its next Encode, missing keys as kNotFound naming the id,
// reservations (a failed one refuses to seal; block boundaries; concurrent
// sealers; another process's reservation), the 2^32 limit, and counts
// persisted in a key file before use.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/keyring_loader.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "testing/status_matchers.h"

namespace sealwal::encryption {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

Dek MakeDek(uint32_t id, char fill) {
  return *Dek::FromParts(KeyId(id), Algorithm::kAes256Gcm,
                         *SecretKey::FromBytes(std::string(kAeadKeySize, fill)));
}

AadContext Ctx(uint64_t index) {
  AadContext c;
  c.purpose = Purpose::kWalEntry;
  c.index = index;
  c.term = 1;
  return c;
}

// A reserver that records its calls and can be made to fail; `stored` is
// what a key file would hold.
struct FakeStore {
  std::mutex mu;
  uint64_t stored = 0;
  int calls = 0;
  bool fail = false;
  Reserver reserver() {
    return [this](KeyId, uint64_t floor, uint64_t count) -> absl::StatusOr<uint64_t> {
      std::lock_guard<std::mutex> l(mu);
      ++calls;
      if (fail) return absl::UnavailableError("key file is locked");
      const uint64_t begin = std::max(stored, floor);
      stored = std::min(kMaxEncryptionsPerKey, begin + count);
      return begin;
    };
  }
};

TEST(KeyringTest, WriteKeyReadKeysAndMissingKeys) {
  auto keys = std::make_shared<Keyring>();
  EXPECT_FALSE(keys->write_key_id().has_value());
  EXPECT_THAT(keys->NewEncrypter().status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(keys->AddKey(MakeDek(1, 'a'), 7));
  ASSERT_OK(keys->AddKey(MakeDek(2, 'b')));
  ASSERT_OK(keys->AddKey(MakeDek(1, 'a')));  // the same key again: a no-op
  EXPECT_THAT(keys->AddKey(MakeDek(1, 'x')), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(keys->write_key_id(), KeyId(1));  // the first key added
  EXPECT_EQ(keys->encryptions(), 7u);
  EXPECT_EQ(keys->KeyIds(), (std::vector<KeyId>{KeyId(1), KeyId(2)}));

  ASSERT_OK_AND_ASSIGN(auto enc, keys->NewEncrypter());
  ASSERT_OK_AND_ASSIGN(auto rec, enc->Encrypt(Ctx(1), "hello"));
  EXPECT_EQ(rec.key_id(), 1u);
  EXPECT_EQ(keys->encryptions(), 8u);
  std::string out;
  ASSERT_OK(keys->decrypter().Decrypt(rec, Ctx(1), &out));
  EXPECT_EQ(out, "hello");

  // Missing keys: kNotFound naming the id, recognisable as such, everywhere.
  for (const absl::Status& s :
       {keys->SetWriteKey(KeyId(0x99)), keys->AlgorithmOf(KeyId(0x99)).status(),
        keys->DeriveStreamKey(KeyId(0x99), "salt", "info").status(),
        keys->DeriveStreamKeyForWriting(KeyId(0x99), "salt", "info").status()}) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("0x00000099")));
    EXPECT_TRUE(IsMissingKeyError(s)) << s;
  }
  rec.set_key_id(0x99);
  absl::Status missing = keys->decrypter().Decrypt(rec, Ctx(1), &out);
  EXPECT_TRUE(IsMissingKeyError(missing)) << missing;
  EXPECT_FALSE(IsMissingKeyError(absl::NotFoundError("no such file")));
  // The wrong key under a held id: an authentication failure, kDataLoss.
  rec.set_key_id(2);
  EXPECT_THAT(keys->decrypter().Decrypt(rec, Ctx(1), &out),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(KeyringTest, StreamKeysDeriveAlikeAndOnlyWritingCounts) {
  ASSERT_OK_AND_ASSIGN(auto keys, Keyring::ForDek(MakeDek(5, 'k')));
  ASSERT_OK_AND_ASSIGN(SecretKey w, keys->DeriveStreamKeyForWriting(KeyId(5), "salt", "info"));
  EXPECT_EQ(keys->encryptions(), 1u);
  ASSERT_OK_AND_ASSIGN(SecretKey r, keys->DeriveStreamKey(KeyId(5), "salt", "info"));
  EXPECT_EQ(keys->encryptions(), 1u);
  EXPECT_TRUE(w == r);
  ASSERT_OK_AND_ASSIGN(SecretKey direct,
                       HkdfSha256(*SecretKey::FromBytes(std::string(32, 'k')), "salt", "info", 32));
  EXPECT_TRUE(direct == r);
}

TEST(KeyringTest, WalCodecFollowsSetWriteKey) {
  auto keys = std::make_shared<Keyring>();
  ASSERT_OK(keys->AddKey(MakeDek(1, 'a')));
  ASSERT_OK(keys->AddKey(MakeDek(2, 'b')));
  ASSERT_OK_AND_ASSIGN(auto codec, walcrypt::WalCodec::ForKeyring(keys));
  wal::PayloadContext ctx;
  ctx.index = 1;
  ctx.term = 1;
  std::string sealed;
  ASSERT_OK(codec->Encode(ctx, "one", &sealed));
  EXPECT_EQ(*MultiDecrypter::KeyIdOf(sealed), KeyId(1));
  const uint64_t gen = keys->write_generation();
  ASSERT_OK(keys->SetWriteKey(KeyId(2)));
  EXPECT_EQ(keys->write_generation(), gen + 1);
  ctx.index = 2;
  ASSERT_OK(codec->Encode(ctx, "two", &sealed));
  EXPECT_EQ(*MultiDecrypter::KeyIdOf(sealed), KeyId(2));
  std::string plain;
  ASSERT_OK(codec->Decode(ctx, sealed, &plain));
  EXPECT_EQ(plain, "two");
  // Batches too.
  ASSERT_OK(keys->SetWriteKey(KeyId(1)));
  std::vector<wal::PayloadContext> ctxs(3, ctx);
  std::vector<absl::string_view> plains = {"a", "b", "c"};
  std::vector<std::string> outs(3);
  ASSERT_OK(codec->EncodeBatch(ctxs, plains, outs.data()));
  for (const auto& o : outs) EXPECT_EQ(*MultiDecrypter::KeyIdOf(o), KeyId(1));
  EXPECT_EQ(keys->UsageOf(KeyId(1))->used(), 4u);
  EXPECT_EQ(keys->UsageOf(KeyId(2))->used(), 1u);
}

TEST(KeyUsageTest, ReservesInBlocksBeforeUse) {
  FakeStore store;
  store.stored = 100;
  KeyringOptions o;
  o.reserver = store.reserver();
  o.reservation_block = 10;
  ASSERT_OK_AND_ASSIGN(auto keys, Keyring::ForDek(MakeDek(1, 'a'), 100, std::move(o)));
  std::shared_ptr<KeyUsage> u = keys->UsageOf(KeyId(1));
  EXPECT_EQ(u->limit(), 100u);  // nothing reserved yet
  EXPECT_EQ(store.calls, 0);
  ASSERT_OK_AND_ASSIGN(auto enc, keys->NewEncrypter());
  std::string out;
  ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(store.calls, 1);
  EXPECT_EQ(store.stored, 110u);
  EXPECT_EQ(u->used(), 101u);
  // The 10th message of the block needs no reservation, the 11th does.
  for (int i = 0; i < 9; ++i) ASSERT_OK(enc->EncryptTo(Ctx(2), "x", &out));
  EXPECT_EQ(store.calls, 1);
  EXPECT_EQ(u->used(), 110u);
  ASSERT_OK(enc->EncryptTo(Ctx(3), "x", &out));
  EXPECT_EQ(store.calls, 2);
  EXPECT_EQ(store.stored, 120u);
  // A batch larger than a block reserves at least the whole batch.
  std::vector<AadContext> ctxs(25, Ctx(4));
  std::vector<absl::string_view> plains(25, "y");
  std::vector<std::string> outs(25);
  ASSERT_OK(enc->EncryptBatchTo(ctxs, plains, outs.data()));
  EXPECT_EQ(u->used(), 136u);
  EXPECT_GE(store.stored, u->used());
  EXPECT_EQ(store.stored, 145u);  // 120 + max(25, 10)
}

TEST(KeyUsageTest, FailedReservationRefusesToSeal) {
  FakeStore store;
  store.fail = true;
  KeyringOptions o;
  o.reserver = store.reserver();
  ASSERT_OK_AND_ASSIGN(auto keys, Keyring::ForDek(MakeDek(1, 'a'), 0, std::move(o)));
  ASSERT_OK_AND_ASSIGN(auto enc, keys->NewEncrypter());
  std::string out = "previous";
  EXPECT_THAT(enc->EncryptTo(Ctx(1), "x", &out),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refusing to seal")));
  EXPECT_TRUE(out.empty());
  EXPECT_THAT(enc->Encrypt(Ctx(1), "x").status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(keys->DeriveStreamKeyForWriting(KeyId(1), "s", "i").status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(keys->encryptions(), 0u);  // nothing counted, nothing sealed
  store.fail = false;
  ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(keys->encryptions(), 1u);
}

TEST(KeyUsageTest, AnotherProcessesReservationIsSkipped) {
  FakeStore store;
  KeyringOptions o;
  o.reserver = store.reserver();
  o.reservation_block = 10;
  ASSERT_OK_AND_ASSIGN(auto keys, Keyring::ForDek(MakeDek(1, 'a'), 0, std::move(o)));
  ASSERT_OK_AND_ASSIGN(auto enc, keys->NewEncrypter());
  std::string out;
  for (int i = 0; i < 10; ++i) ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(store.stored, 10u);
  store.stored = 50;  // another process reserved [10, 50) meanwhile
  ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(keys->encryptions(), 51u);  // this process continues after it
  EXPECT_EQ(store.stored, 60u);
}

TEST(KeyUsageTest, ConcurrentSealersShareOneCounter) {
  FakeStore store;
  KeyringOptions o;
  o.reserver = store.reserver();
  o.reservation_block = 7;
  o.seal_threads = 1;
  ASSERT_OK_AND_ASSIGN(auto keys, Keyring::ForDek(MakeDek(1, 'a'), 3, std::move(o)));
  constexpr int kThreads = 4, kEach = 500;
  std::atomic<int> max_over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto enc = keys->NewEncrypter();
      ASSERT_TRUE(enc.ok());
      std::string out;
      for (int i = 0; i < kEach; ++i) {
        if (t == 0 && i % 10 == 0) {
          ASSERT_TRUE(keys->DeriveStreamKeyForWriting(KeyId(1), "s", "i").ok());
        } else {
          ASSERT_TRUE((*enc)->EncryptTo(Ctx(i), "x", &out).ok());
        }
        // The durable bound is never below what has been counted.
        std::lock_guard<std::mutex> l(store.mu);
        if (keys->encryptions() > store.stored) max_over.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(max_over.load(), 0);
  EXPECT_EQ(keys->encryptions(), 3u + kThreads * kEach);
  EXPECT_GE(store.stored, keys->encryptions());
  EXPECT_LT(store.stored, keys->encryptions() + 7);
}

TEST(KeyUsageTest, TheLimitHoldsAtTwoToThe32) {
  FakeStore store;
  store.stored = kMaxEncryptionsPerKey - 5;
  KeyringOptions o;
  o.reserver = store.reserver();
  ASSERT_OK_AND_ASSIGN(auto keys,
                       Keyring::ForDek(MakeDek(1, 'a'), kMaxEncryptionsPerKey - 5, std::move(o)));
  EXPECT_TRUE(keys->rotation_required());
  ASSERT_OK_AND_ASSIGN(auto enc, keys->NewEncrypter());
  std::string out;
  std::vector<AadContext> ctxs(6, Ctx(1));
  std::vector<absl::string_view> plains(6, "x");
  std::vector<std::string> outs(6);
  // A batch that would pass the limit seals nothing.
  EXPECT_THAT(enc->EncryptBatchTo(ctxs, plains, outs.data()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("DEK exhausted")));
  for (int i = 0; i < 5; ++i) ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(store.stored, kMaxEncryptionsPerKey);  // the reservation stops at 2^32
  EXPECT_THAT(enc->EncryptTo(Ctx(1), "x", &out),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("DEK exhausted, rotate")));
  EXPECT_EQ(keys->encryptions(), kMaxEncryptionsPerKey);
  // A second "process" starting from the stored count refuses at once.
  FakeStore again;
  again.stored = store.stored;
  KeyringOptions o2;
  o2.reserver = again.reserver();
  ASSERT_OK_AND_ASSIGN(auto keys2, Keyring::ForDek(MakeDek(1, 'a'), again.stored, std::move(o2)));
  ASSERT_OK_AND_ASSIGN(auto enc2, keys2->NewEncrypter());
  EXPECT_THAT(enc2->EncryptTo(Ctx(1), "x", &out),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(again.calls, 0);
}

TEST(KeyUsageTest, EncrypterRejectsAnotherKeysCounter) {
  EncrypterOptions eo;
  eo.usage = std::make_shared<KeyUsage>(KeyId(2), 0);
  EXPECT_THAT(AeadEncrypter::Create(MakeDek(1, 'a'), eo).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// pem::LoadKeyring on a key file: raft-dek writes, raft-dek-pending reads,
// and the stored count is raised before the DEK seals past it.
class LoadKeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = env::NewMemFileSystem();
    pem::KeyReadWriterOptions o;
    o.fs = fs_.get();
    o.path = "/node.key";
    ASSERT_OK_AND_ASSIGN(auto krw, pem::KeyReadWriter::Create(std::move(o)));
    krw_ = std::move(krw);
    ASSERT_OK_AND_ASSIGN(pem::PrivateKey k, pem::PrivateKey::GenerateEcP256());
    pem::DekHeaders h;
    h.current = pem::StoredDek{MakeDek(0x10, 'c'), 40};
    h.pending = pem::StoredDek{MakeDek(0x20, 'p'), 0};
    ASSERT_OK(krw_->Write(k, h));
  }
  uint64_t Stored() {
    auto f = krw_->Read();
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? f->headers.current->encryptions : 0;
  }
  std::unique_ptr<env::FileSystem> fs_;
  std::shared_ptr<pem::KeyReadWriter> krw_;
};

TEST_F(LoadKeyringTest, CurrentWritesPendingReadsCountsArePersistedFirst) {
  pem::LoadKeyringOptions lo;
  lo.reservation_block = 16;
  ASSERT_OK_AND_ASSIGN(pem::LoadedKeyring l, pem::LoadKeyring(krw_, lo));
  EXPECT_FALSE(l.locked);
  EXPECT_EQ(l.keyring->write_key_id(), KeyId(0x10));
  EXPECT_TRUE(l.keyring->HasKey(KeyId(0x20)));
  EXPECT_EQ(l.keyring->encryptions(), 40u);
  EXPECT_EQ(Stored(), 40u);  // loading writes nothing
  ASSERT_OK_AND_ASSIGN(auto enc, l.keyring->NewEncrypter());
  std::string out;
  ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(Stored(), 56u);
  for (int i = 0; i < 16; ++i) ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(l.keyring->encryptions(), 57u);
  EXPECT_EQ(Stored(), 72u);
  // The pending DEK opens what it sealed (a record from before promotion).
  ASSERT_OK_AND_ASSIGN(auto pending_keys, Keyring::ForDek(MakeDek(0x20, 'p')));
  ASSERT_OK_AND_ASSIGN(auto penc, pending_keys->NewEncrypter());
  ASSERT_OK(penc->EncryptTo(Ctx(9), "pending", &out));
  std::string plain;
  ASSERT_OK(l.keyring->decrypter().DecryptSerialized(out, Ctx(9), &plain));
  EXPECT_EQ(plain, "pending");
}

TEST_F(LoadKeyringTest, AReservationThatCannotBeWrittenRefusesAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(pem::LoadedKeyring l, pem::LoadKeyring(krw_, {}));
  ASSERT_OK_AND_ASSIGN(std::string before, env::ReadSecretFile(fs_.get(), "/node.key"));
  // The DEK disappears from the key file (rotated away by another process).
  ASSERT_OK(krw_->ViewAndUpdateHeaders([](const pem::DekHeaders& h) {
    pem::DekHeaders out = h.Clone();
    out.current = out.pending->Clone();
    out.pending.reset();
    return absl::StatusOr<pem::DekHeaders>(std::move(out));
  }));
  ASSERT_OK_AND_ASSIGN(before, env::ReadSecretFile(fs_.get(), "/node.key"));
  ASSERT_OK_AND_ASSIGN(auto enc, l.keyring->NewEncrypter());
  std::string out;
  EXPECT_THAT(enc->EncryptTo(Ctx(1), "x", &out),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no longer in key file")));
  EXPECT_TRUE(out.empty());
  ASSERT_OK_AND_ASSIGN(std::string after, env::ReadSecretFile(fs_.get(), "/node.key"));
  EXPECT_EQ(after, before);
}

TEST_F(LoadKeyringTest, ReadOnlyKeyringsAndRefusals) {
  pem::LoadKeyringOptions lo;
  lo.require_locked = true;
  EXPECT_THAT(pem::LoadKeyring(krw_, lo).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not locked")));
  lo.require_locked = false;
  lo.persist_counts = false;
  ASSERT_OK_AND_ASSIGN(pem::LoadedKeyring l, pem::LoadKeyring(krw_, lo));
  ASSERT_OK_AND_ASSIGN(auto enc, l.keyring->NewEncrypter());
  std::string out;
  ASSERT_OK(enc->EncryptTo(Ctx(1), "x", &out));
  EXPECT_EQ(Stored(), 40u);
  EXPECT_THAT(pem::LoadKeyring(nullptr).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sealwal::encryption
