// pem::KeyReadWriter: read/write, header updates, KEK rotation, stale KEK
// updates refused, a wrong unlock key leaves every byte as it was, callers
// serialised within a process and across KeyReadWriters (the F.lock file),
// and a crash (power loss or process death) at every write step of
// lock -> unlock -> lock -> rotate-kek -> header update leaves a file that
// opens with the old or the new unlock key and has lost no DEK.
#include <openssl/bio.h>
#include <openssl/pem.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "testing/fault_injection_file_system.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"
#include "testing/key_file_tamper.h"
#include "testing/status_matchers.h"

namespace sealwal::pem {
namespace {

using encryption::Algorithm;
using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kPath[] = "/keys/node.key";

UnlockKey Key(int seed) {
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(static_cast<char>(seed * 7 + i));
  return *UnlockKey::FromBytes(s);
}

StoredDek Dek(uint32_t id, uint64_t encryptions = 0) {
  std::string s(32, static_cast<char>(id));
  return StoredDek{*encryption::Dek::FromParts(encryption::KeyId(id), Algorithm::kAes256Gcm,
                                               *encryption::SecretKey::FromBytes(s)),
                   encryptions};
}

DekHeaders Headers(uint64_t encryptions, bool pending, bool needs_rotation = false) {
  DekHeaders h;
  h.current = Dek(0x11, encryptions);
  if (pending) h.pending = Dek(0x22);
  h.needs_rotation = needs_rotation;
  return h;
}

bool Same(const DekHeaders& a, const DekHeaders& b) {
  auto same = [](const std::optional<StoredDek>& x, const std::optional<StoredDek>& y) {
    if (x.has_value() != y.has_value()) return false;
    return !x.has_value() || (x->dek.id == y->dek.id && x->dek.algorithm == y->dek.algorithm &&
                              x->dek.key == y->dek.key && x->encryptions == y->encryptions);
  };
  return same(a.current, b.current) && same(a.pending, b.pending) &&
         a.needs_rotation == b.needs_rotation;
}

std::unique_ptr<KeyReadWriter> Krw(env::FileSystem* fs, std::optional<UnlockKey> key,
                                   absl::Duration timeout = absl::Seconds(10)) {
  KeyReadWriterOptions o;
  o.fs = fs;
  o.path = kPath;
  o.unlock_key = std::move(key);
  o.lock_timeout = timeout;
  return *KeyReadWriter::Create(std::move(o));
}

class KeyReadWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = env::NewMemFileSystem();
    ASSERT_OK(fs_->CreateDir("/keys"));
    ASSERT_OK_AND_ASSIGN(PrivateKey k, PrivateKey::GenerateEcP256());
    key_ = std::make_unique<PrivateKey>(std::move(k));
  }
  std::string Bytes() { return *env::ReadFileToString(fs_.get(), kPath); }
  std::unique_ptr<env::FileSystem> fs_;
  std::unique_ptr<PrivateKey> key_;
};

TEST_F(KeyReadWriterTest, WriteThenRead) {
  auto krw = Krw(fs_.get(), Key(1));
  EXPECT_THAT(krw->Read(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(krw->Write(*key_, Headers(5, true)));
  ASSERT_OK_AND_ASSIGN(KeyFile f, krw->Read());
  EXPECT_TRUE(f.locked);
  EXPECT_EQ(f.kek_version, 0u);
  EXPECT_TRUE(f.key.Equals(*key_));
  EXPECT_TRUE(Same(f.headers, Headers(5, true)));
  // Another reader without the key is refused; with it, reads.
  EXPECT_THAT(Krw(fs_.get(), std::nullopt)->Read(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Krw(fs_.get(), Key(1))->Read(), IsOk());
  // The headers alone, as Read gives them.
  ASSERT_OK_AND_ASSIGN(KeyReadWriter::Headers h, krw->ReadHeaders());
  EXPECT_TRUE(h.locked);
  EXPECT_TRUE(Same(h.headers, Headers(5, true)));
  EXPECT_THAT(Krw(fs_.get(), std::nullopt)->ReadHeaders(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Owner-only.
  EXPECT_THAT(fs_->FileExists(std::string(kPath) + ".lock"), IsOk());
}

TEST_F(KeyReadWriterTest, UpdateHeadersKeepsKeyLockAndVersion) {
  auto krw = Krw(fs_.get(), Key(1));
  ASSERT_OK(krw->Write(*key_, Headers(0, false)));
  ASSERT_OK(krw->ViewAndRotateKEK([&](const KekState& st, const DekHeaders& h) {
    EXPECT_EQ(st.version, 0u);
    EXPECT_TRUE(st.locked);
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(2), 9, h.Clone(), std::nullopt});
  }));
  ASSERT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
    DekHeaders out = h.Clone();
    out.pending = Dek(0x33);
    return out;
  }));
  ASSERT_OK_AND_ASSIGN(KeyFile f, Krw(fs_.get(), Key(2))->Read());
  EXPECT_EQ(f.kek_version, 9u);
  EXPECT_TRUE(f.locked);
  EXPECT_TRUE(f.key.Equals(*key_));
  ASSERT_TRUE(f.headers.pending.has_value());
  EXPECT_EQ(f.headers.pending->dek.id, encryption::KeyId(0x33));
  // A callback error writes nothing.
  const std::string before = Bytes();
  EXPECT_THAT(krw->ViewAndUpdateHeaders([](const DekHeaders&) -> absl::StatusOr<DekHeaders> {
    return absl::AbortedError("no");
  }),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(Bytes(), before);
}

TEST_F(KeyReadWriterTest, StaleKekUpdateIsRefused) {
  auto krw = Krw(fs_.get(), std::nullopt);
  ASSERT_OK(krw->Write(*key_, Headers(0, false)));
  ASSERT_OK(krw->ViewAndRotateKEK([](const KekState&, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(1), 5, h.Clone(), std::nullopt});
  }));
  const std::string before = Bytes();
  for (uint64_t v : {0, 4, 5}) {
    EXPECT_THAT(krw->ViewAndRotateKEK([&](const KekState&, const DekHeaders& h) {
      return absl::StatusOr<KekUpdate>(KekUpdate{Key(2), v, h.Clone(), std::nullopt});
    }),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
    EXPECT_EQ(Bytes(), before);
  }
  // The object still holds the key it rotated to.
  EXPECT_THAT(krw->Read(), IsOk());
  // Write keeps the file's kek-version, so the stale update stays refused.
  ASSERT_OK(krw->Write(*key_, Headers(1, false)));
  EXPECT_EQ(krw->Read()->kek_version, 5u);
}

TEST_F(KeyReadWriterTest, WrongUnlockKeyChangesNoByte) {
  ASSERT_OK(Krw(fs_.get(), Key(1))->Write(*key_, Headers(3, true)));
  const std::string before = Bytes();
  for (bool with_key : {true, false}) {
    auto krw = Krw(fs_.get(), with_key ? std::optional<UnlockKey>(Key(2)) : std::nullopt);
    EXPECT_THAT(krw->Read(), StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(krw->ReadHeaders(), StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(krw->ViewAndUpdateHeaders([](const DekHeaders& h) {
      return absl::StatusOr<DekHeaders>(h.Clone());
    }),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
      return absl::StatusOr<KekUpdate>(
          KekUpdate{std::nullopt, st.version + 1, h.Clone(), std::nullopt});
    }),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_EQ(Bytes(), before);
  }
}

// Issue 16 item 1: with disk access, an attacker replaces a locked node.key
// by an unlocked one holding a DEK they know. A reader/writer that holds the
// unlock key must refuse it, never read it and never write a header update
// (such as a fresh DEK) back in the clear.
TEST_F(KeyReadWriterTest, SwappedUnlockedFileIsRefusedWhenAnUnlockKeyIsHeld) {
  ASSERT_OK(Krw(fs_.get(), std::nullopt)->Write(*key_, Headers(7, false)));  // the planted file
  const std::string planted = Bytes();
  auto krw = Krw(fs_.get(), Key(1));
  EXPECT_THAT(krw->Read(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not locked")));
  EXPECT_THAT(krw->ReadHeaders(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not locked")));
  EXPECT_THAT(krw->ViewAndUpdateHeaders([](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
    DekHeaders out = h.Clone();
    out.pending = Dek(0x44);  // what `key rotate-dek` would store
    return out;
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(3), st.version + 1, h.Clone(), std::nullopt});
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(Bytes(), planted);
  // Without an unlock key the same file is usable on purpose, and stays
  // unlocked; a writer holding a key always writes a locked file.
  auto plain = Krw(fs_.get(), std::nullopt);
  ASSERT_OK(plain->ViewAndUpdateHeaders([](const DekHeaders& h) {
    return absl::StatusOr<DekHeaders>(h.Clone());
  }));
  EXPECT_FALSE(plain->Read()->locked);
  ASSERT_OK(krw->Write(*key_, Headers(7, false)));
  EXPECT_TRUE(krw->Read()->locked);
}

// ------------------------------------------------- file MAC (issue 16 item 3)

TEST_F(KeyReadWriterTest, FileIdIsKeptAcrossDekAndKekRotations) {
  auto krw = Krw(fs_.get(), Key(1));
  ASSERT_OK(krw->Write(*key_, Headers(0, false)));
  ASSERT_OK_AND_ASSIGN(KeyFile f0, krw->Read());
  ASSERT_EQ(f0.file_id.size(), kFileIdSize);
  // rotate-dek: a pending DEK, then the rotation finished.
  ASSERT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
    DekHeaders out = h.Clone();
    out.pending = Dek(0x22);
    return out;
  }));
  EXPECT_EQ(krw->Read()->file_id, f0.file_id);
  ASSERT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
    DekHeaders out;
    out.current = h.pending->Clone();
    return out;
  }));
  EXPECT_EQ(krw->Read()->file_id, f0.file_id);
  // rotate-kek: a new unlock key, the same file.
  ASSERT_OK(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(2), st.version + 1, h.Clone(), std::nullopt});
  }));
  ASSERT_OK_AND_ASSIGN(KeyFile f1, Krw(fs_.get(), Key(2))->Read());
  EXPECT_EQ(f1.file_id, f0.file_id);
  ASSERT_OK_AND_ASSIGN(KeyReadWriter::Headers h1, Krw(fs_.get(), Key(2))->ReadHeaders());
  EXPECT_TRUE(h1.headers.needs_rotation);
  // Unlocked: no id; locked again: a new one. Write replaces the file: new.
  ASSERT_OK(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{std::nullopt, st.version + 1, h.Clone(),
                                               std::nullopt});
  }));
  EXPECT_TRUE(krw->Read()->file_id.empty());
  ASSERT_OK(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(3), st.version + 1, h.Clone(), std::nullopt});
  }));
  const std::string relocked = krw->Read()->file_id;
  EXPECT_EQ(relocked.size(), kFileIdSize);
  EXPECT_NE(relocked, f0.file_id);
  ASSERT_OK(krw->Write(*key_, Headers(0, false)));
  EXPECT_NE(krw->Read()->file_id, relocked);
}

TEST_F(KeyReadWriterTest, LockedVersion1FileOpensAndIsUpgradedOnItsNextWrite) {
  ASSERT_OK(Krw(fs_.get(), Key(1))->Write(*key_, Headers(4, true, true)));
  const std::string v1 = testing::AsLockedVersion1(Bytes(), Key(1));
  ASSERT_FALSE(v1.empty());
  ASSERT_OK(env::WriteFileAtomically(fs_.get(), kPath, v1, 0600));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile p, ParseKeyFile(Bytes()));
  EXPECT_EQ(p.info_version, kFileInfoVersion1);
  auto krw = Krw(fs_.get(), Key(1));
  ASSERT_OK_AND_ASSIGN(KeyFile f, krw->Read());
  EXPECT_TRUE(f.file_id.empty());
  EXPECT_TRUE(Same(f.headers, Headers(4, true, true)));
  EXPECT_THAT(krw->ReadHeaders(), IsOk());
  ASSERT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) {
    return absl::StatusOr<DekHeaders>(h.Clone());
  }));
  ASSERT_OK_AND_ASSIGN(ParsedKeyFile q, ParseKeyFile(Bytes()));
  EXPECT_EQ(q.info_version, kFileInfoVersion2);
  EXPECT_EQ(q.file_id.size(), kFileIdSize);
  ASSERT_OK_AND_ASSIGN(KeyFile g, krw->Read());
  EXPECT_EQ(g.file_id, q.file_id);
  EXPECT_TRUE(Same(g.headers, Headers(4, true, true)));
}

// Every reader and writer refuses `tampered` with `code` (and a message
// holding `what`), and the file keeps every byte.
void ExpectRefusedEverywhere(env::FileSystem* fs, const std::string& tampered,
                             absl::StatusCode code, absl::string_view what) {
  ASSERT_OK(env::WriteFileAtomically(fs, kPath, tampered, 0600));
  auto krw = Krw(fs, Key(1));
  EXPECT_THAT(krw->Read(), StatusIs(code, HasSubstr(what)));
  EXPECT_THAT(krw->ReadHeaders(), StatusIs(code, HasSubstr(what)));
  // What `key rotate-dek` and `key rotate-kek` do.
  EXPECT_THAT(krw->ViewAndUpdateHeaders([](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
    DekHeaders out = h.Clone();
    out.pending = Dek(0x44);
    return out;
  }),
              StatusIs(code, HasSubstr(what)));
  EXPECT_THAT(krw->ViewAndRotateKEK([](const KekState& st, const DekHeaders& h) {
    return absl::StatusOr<KekUpdate>(KekUpdate{Key(3), st.version + 1, h.Clone(), std::nullopt});
  }),
              StatusIs(code, HasSubstr(what)));
  EXPECT_EQ(*env::ReadFileToString(fs, kPath), tampered);
}

class KeyReadWriterAttackTest : public KeyReadWriterTest {
 protected:
  void SetUp() override {
    KeyReadWriterTest::SetUp();
    // Locked, raft-dek + raft-dek-pending, needs rotation (as after `key lock`).
    ASSERT_OK(Krw(fs_.get(), Key(1))->Write(*key_, Headers(9, true, true)));
    original_ = Bytes();
  }
  std::string original_;
};

TEST_F(KeyReadWriterAttackTest, StrippedNeedsRotationIsRefused) {
  testing::KeyFileParts p = testing::SplitKeyFile(original_);
  ASSERT_TRUE(p.Remove(kNeedsRotationHeader));
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion2),
                          absl::StatusCode::kDataLoss, "MAC mismatch");
}

TEST_F(KeyReadWriterAttackTest, DeletedPendingDekIsRefused) {
  testing::KeyFileParts p = testing::SplitKeyFile(original_);
  ASSERT_TRUE(p.Remove(kRaftDekPendingHeader));
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion2),
                          absl::StatusCode::kDataLoss, "MAC mismatch");
}

TEST_F(KeyReadWriterAttackTest, DowngradeToVersion1IsRefused) {
  testing::KeyFileParts p = testing::SplitKeyFile(original_);
  ASSERT_TRUE(p.Remove(kNeedsRotationHeader));
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion1),
                          absl::StatusCode::kDataLoss, "does not authenticate");
  // With every record removed as well nothing fails to open: refused as a
  // locked file with no DEK headers and no MAC.
  ASSERT_TRUE(p.Remove(kRaftDekPendingHeader));
  ASSERT_TRUE(p.Remove(kRaftDekHeader));
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion1),
                          absl::StatusCode::kFailedPrecondition, "no DEK headers and no file MAC");
}

TEST_F(KeyReadWriterAttackTest, DroppedDekBlockIsRefused) {
  ExpectRefusedEverywhere(fs_.get(), testing::KeyBlockOf(original_),
                          absl::StatusCode::kFailedPrecondition, "no DEK headers and no file MAC");
  // Without an unlock key it is what it looks like: locked, refused.
  EXPECT_THAT(Krw(fs_.get(), std::nullopt)->Read(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(KeyReadWriterAttackTest, OlderKeyBlockIsRefused) {
  // The private key was replaced; the old PKCS#8 block (same unlock key)
  // is put back into the current file.
  auto krw = Krw(fs_.get(), Key(1));
  ASSERT_OK_AND_ASSIGN(PrivateKey newer, PrivateKey::GenerateEcP256());
  const std::string old_der = testing::SplitKeyFile(original_).key_der;
  ASSERT_OK(krw->Write(newer, Headers(9, true, true)));  // the key is replaced
  testing::KeyFileParts p = testing::SplitKeyFile(Bytes());
  p.key_der = old_der;
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion2),
                          absl::StatusCode::kDataLoss, "MAC mismatch");
}

TEST_F(KeyReadWriterAttackTest, TransplantedDekRecordIsRefused) {
  // Another node's file, locked with the same unlock key.
  auto other_fs = env::NewMemFileSystem();
  ASSERT_OK(other_fs->CreateDir("/keys"));
  DekHeaders theirs;
  theirs.current = Dek(0x55);
  ASSERT_OK(Krw(other_fs.get(), Key(1))->Write(*key_, theirs));
  const std::string record =
      testing::SplitKeyFile(*env::ReadFileToString(other_fs.get(), kPath)).Get(kRaftDekHeader);
  testing::KeyFileParts p = testing::SplitKeyFile(original_);
  p.Set(kRaftDekHeader, record);
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion2),
                          absl::StatusCode::kDataLoss, "MAC mismatch");
  // Transplanted into a version-1 rewrite instead: the file id in its
  // associated data still refuses it.
  ExpectRefusedEverywhere(fs_.get(), testing::JoinKeyFile(p, kFileInfoVersion1),
                          absl::StatusCode::kDataLoss, "does not authenticate");
}

TEST_F(KeyReadWriterAttackTest, WrongUnlockKeyIsStillPermissionDenied) {
  auto krw = Krw(fs_.get(), Key(2));
  EXPECT_THAT(krw->Read(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  EXPECT_THAT(krw->ReadHeaders(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  // A locked file without DEKs: the same.
  ASSERT_OK(Krw(fs_.get(), Key(1))->Write(*key_, DekHeaders{}));
  EXPECT_THAT(krw->Read(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(krw->ReadHeaders(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong unlock key")));
  EXPECT_THAT(Krw(fs_.get(), Key(1))->ReadHeaders(), IsOk());
}

TEST_F(KeyReadWriterTest, OpenSslReadsTheWholeFile) {
  // What a TLS stack does (SSL_CTX_use_PrivateKey_file): PEM_read_bio_PrivateKey
  // on the whole file skips the DEK block and loads the key.
  for (bool locked : {false, true}) {
    auto krw = Krw(fs_.get(), locked ? std::optional<UnlockKey>(Key(4)) : std::nullopt);
    fs_->RemoveFile(kPath).IgnoreError();
    ASSERT_OK(krw->Write(*key_, Headers(0, true)));
    const std::string text = Bytes();
    BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
    std::string pass(Key(4).text());
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr,
                                             locked ? pass.data() : nullptr);
    BIO_free(bio);
    ASSERT_NE(pkey, nullptr) << "locked=" << locked;
    EXPECT_EQ(EVP_PKEY_eq(pkey, key_->get()), 1);
    EVP_PKEY_free(pkey);
  }
}

TEST_F(KeyReadWriterTest, CallersInOneProcessAreSerialised) {
  ASSERT_OK(Krw(fs_.get(), std::nullopt)->Write(*key_, Headers(0, false)));
  // Two objects on one file (so the F.lock file is what serialises them)
  // and two threads on each: 4 x 10 increments, none lost.
  auto a = Krw(fs_.get(), std::nullopt);
  auto b = Krw(fs_.get(), std::nullopt);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    KeyReadWriter* krw = t % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([krw] {
      for (int i = 0; i < 10; ++i) {
        EXPECT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) {
          DekHeaders out = h.Clone();
          out.current->encryptions += 1;
          return absl::StatusOr<DekHeaders>(std::move(out));
        }));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(a->Read()->headers.current->encryptions, 40u);
}

TEST_F(KeyReadWriterTest, LockHeldElsewhereTimesOut) {
  ASSERT_OK(Krw(fs_.get(), std::nullopt)->Write(*key_, Headers(0, false)));
  ASSERT_OK_AND_ASSIGN(auto held, fs_->LockFile(std::string(kPath) + ".lock"));
  const std::string before = Bytes();
  auto krw = Krw(fs_.get(), std::nullopt, absl::Milliseconds(50));
  EXPECT_THAT(krw->ViewAndUpdateHeaders([](const DekHeaders& h) {
    return absl::StatusOr<DekHeaders>(h.Clone());
  }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("another process")));
  EXPECT_EQ(Bytes(), before);
  EXPECT_THAT(krw->Read(), IsOk());  // readers take no lock
  held.reset();
  EXPECT_OK(krw->ViewAndUpdateHeaders([](const DekHeaders& h) {
    return absl::StatusOr<DekHeaders>(h.Clone());
  }));
}

// ------------------------------------------------------------------ crashes

// One state of the workload: which unlock key opens the file (none =
// unlocked), its kek-version and its headers.
struct State {
  std::optional<int> key;
  uint64_t version;
  DekHeaders headers;
};

std::vector<State> ExpectedStates() {
  std::vector<State> s;
  s.push_back({std::nullopt, 0, Headers(0, true)});        // initial
  s.push_back({1, 1, Headers(0, true, true)});             // lock (A): a new KEK marks the DEKs
  s.push_back({std::nullopt, 2, Headers(0, true)});        // unlock
  s.push_back({2, 3, Headers(0, true, true)});             // lock (B), needs rotation
  s.push_back({3, 4, Headers(0, true, true)});             // rotate-kek (C)
  s.push_back({3, 4, Headers(1000, true, false)});         // header update
  return s;
}

// Runs the workload's steps 1..5 on `fs`; stops at the first error.
absl::Status RunWorkload(env::FileSystem* fs) {
  auto krw = Krw(fs, std::nullopt);
  std::vector<State> st = ExpectedStates();
  for (size_t i = 1; i < st.size(); ++i) {
    const State& want = st[i];
    if (i == st.size() - 1) {
      absl::Status s = krw->ViewAndUpdateHeaders(
          [&](const DekHeaders&) { return absl::StatusOr<DekHeaders>(want.headers.Clone()); });
      if (!s.ok()) return s;
      continue;
    }
    absl::Status s = krw->ViewAndRotateKEK([&](const KekState&, const DekHeaders&) {
      KekUpdate u;
      if (want.key.has_value()) u.unlock_key = Key(*want.key);
      u.version = want.version;
      u.headers = want.headers.Clone();
      return absl::StatusOr<KekUpdate>(std::move(u));
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Which state the file on `fs` is in (-1: none of them).
int StateOf(env::FileSystem* fs, std::string* why) {
  absl::StatusOr<std::string> text = env::ReadFileToString(fs, kPath);
  if (!text.ok()) {
    *why = std::string(text.status().message());
    return -1;
  }
  std::vector<State> st = ExpectedStates();
  for (size_t i = 0; i < st.size(); ++i) {
    std::optional<UnlockKey> k;
    if (st[i].key.has_value()) k = Key(*st[i].key);
    absl::StatusOr<KeyFile> f = DecodeKeyFile(*text, k.has_value() ? &*k : nullptr);
    if (!f.ok()) {
      absl::StrAppend(why, "state ", i, ": ", f.status().message(), "; ");
      continue;
    }
    if (f->locked == st[i].key.has_value() && f->kek_version == st[i].version &&
        Same(f->headers, st[i].headers)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

TEST(KeyReadWriterCrashTest, EveryWriteStepLeavesOldOrNewFile) {
  for (bool power_loss : {true, false}) {
    int last_state = 0;
    bool completed = false;
    int crashes = 0;
    for (int n = 0; n < 500 && !completed; ++n) {
      SCOPED_TRACE(absl::StrCat(power_loss ? "power loss" : "process crash", " after ", n, " ops"));
      auto base = env::NewMemFileSystem();
      ASSERT_OK(base->CreateDir("/keys"));
      {
        ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::GenerateEcP256());
        ASSERT_OK(Krw(base.get(), std::nullopt)->Write(key, ExpectedStates()[0].headers));
      }
      env::FaultInjectionFileSystem fault(base.get());
      fault.CrashAfterOps(n);
      absl::Status s = RunWorkload(&fault);
      completed = s.ok();
      if (!completed) ++crashes;
      if (power_loss) {
        ASSERT_OK(fault.DropUnsyncedData());
      }
      fault.Reactivate();
      std::string why;
      const int state = StateOf(base.get(), &why);
      ASSERT_GE(state, 0) << why;
      // Never goes back, never skips a step.
      EXPECT_GE(state, last_state);
      EXPECT_LE(state, last_state + 1);
      last_state = state;
      if (completed) {
        EXPECT_EQ(state, 5);
      }
    }
    EXPECT_TRUE(completed);
    EXPECT_EQ(last_state, 5);
    // 5 operations, each at least tmp create/append/sync/close/rename/syncdir.
    EXPECT_GE(crashes, 30);
    std::printf("%s: crashed at %d write steps\n", power_loss ? "power loss" : "process crash",
                crashes);
  }
}

}  // namespace
}  // namespace sealwal::pem
