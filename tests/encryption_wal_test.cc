// The encrypted WAL: wal::Wal with walcrypt::WalCodec. Round trips,
// tampering with a recomputed CRC chain (swapped entries, altered term,
// type, nonce, key id, truncated records, metadata), wrong and missing keys
// (reported, nothing on disk modified), key rotation inside one WAL, and
// etcd's own reader (the etcdwal-peer driver) walking the framing.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/proto/encryption.pb.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/proto/walpb.pb.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/transcode.h"
#include "sealwal/wal/wal.h"

namespace sealwal::encryption {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::walcrypt::IsEncryptedWalDir;
using ::sealwal::walcrypt::kEncryptedWalDirName;
using ::sealwal::walcrypt::kPlaintextWalDirName;
using ::sealwal::walcrypt::WalCodec;
using ::sealwal::walcrypt::WalCodecOptions;
using ::sealwal::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 77;
constexpr char kMetadata[] = "node=1 cluster=abc";

// ---- writing ----

struct EntrySpec {
  uint64_t index, term;
  int type;
  size_t size;
  bool has_data = true;
};

std::string Plain(const EntrySpec& s) { return DataGen(kSeed, s.index, s.term, s.size); }

std::vector<EntrySpec> Specs(uint64_t n, size_t size, bool varied = false) {
  std::vector<EntrySpec> v;
  for (uint64_t i = 1; i <= n; ++i) {
    EntrySpec s{i, 1 + (i - 1) * 3 / n, 0, size};
    if (varied) {
      s.size = (i * 7919) % 3000;
      if (i % 97 == 0) s.type = raftpb::EntryConfChange;
      if (i % 50 == 0) s.has_data = false;  // a leader's empty entry
      if (i % 51 == 0) s.size = 0;          // present but empty
    }
    v.push_back(s);
  }
  return v;
}

raftpb::Entry MakeEntry(const EntrySpec& s) {
  raftpb::Entry e;
  e.set_index(s.index);
  e.set_term(s.term);
  e.set_type(static_cast<raftpb::EntryType>(s.type));
  if (s.has_data) e.set_data(Plain(s));
  return e;
}

wal::WalOptions Options(wal::PayloadCodec* codec, uint64_t segment_size = 64 * 1024) {
  wal::WalOptions o;
  o.codec = codec;
  o.segment_size = segment_size;
  o.preallocation = wal::Preallocation::kFallocate;
  return o;
}

void Append(wal::Wal* w, const std::vector<EntrySpec>& specs, size_t batch) {
  for (size_t i = 0; i < specs.size(); i += batch) {
    std::vector<raftpb::Entry> ents;
    for (size_t j = i; j < std::min(specs.size(), i + batch); ++j) ents.push_back(MakeEntry(specs[j]));
    raftpb::HardState hs;
    hs.set_term(ents.back().term());
    hs.set_vote(1);
    hs.set_commit(ents.back().index());
    ASSERT_OK(w->Save(hs, ents));
  }
}

void WriteWal(const std::string& dir, wal::PayloadCodec* codec, const std::vector<EntrySpec>& specs,
              size_t batch = 10, uint64_t segment_size = 64 * 1024) {
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir, kMetadata, Options(codec, segment_size)));
  Append(w.get(), specs, batch);
  ASSERT_OK(w->Close());
}

void ExpectEntries(const wal::WalContents& c, const std::vector<EntrySpec>& specs) {
  ASSERT_EQ(c.entries.size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const raftpb::Entry& e = c.entries[i];
    ASSERT_EQ(e.index(), specs[i].index);
    ASSERT_EQ(e.term(), specs[i].term);
    ASSERT_EQ(static_cast<int>(e.type()), specs[i].type);
    // An encrypted WAL stores a payload for every entry (so that none can be
    // stripped unnoticed); an entry saved without data reads back with
    // empty data, which Raft treats the same.
    ASSERT_TRUE(e.data() == (specs[i].has_data ? Plain(specs[i]) : "")) << e.index();
  }
}

// ---- files ----

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& n : testing::ListDirNames(dir)) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".wal") v.push_back(dir + "/" + n);
  }
  return v;
}

// The frames of one segment, up to the first zero length word.
std::vector<walpb::Record> ParseSegment(const std::string& bytes) {
  std::vector<walpb::Record> recs;
  size_t off = 0;
  while (off + 8 <= bytes.size()) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + off, 8);
    if (word == 0) break;
    uint64_t len, pad;
    wal::DecodeFrameLength(word, &len, &pad);
    walpb::Record r;
    EXPECT_TRUE(r.ParseFromArray(bytes.data() + off + 8, static_cast<int>(len)));
    recs.push_back(r);
    off += 8 + len + pad;
  }
  return recs;
}

std::string EncodeSegment(const std::vector<walpb::Record>& recs) {
  std::string out;
  for (const auto& r : recs) {
    const std::string body = r.SerializeAsString();
    size_t pad;
    const uint64_t word = wal::EncodeFrameLength(body.size(), &pad);
    out.append(reinterpret_cast<const char*>(&word), 8);
    out += body;
    out.append(pad, '\0');
  }
  return out;
}

// Rewrites every segment of `dir` after `mutate` changed its records, and
// recomputes the CRC32C chain over all of them, as an attacker who can
// write the disk would: the WAL's CRC then holds, only the AEAD can object.
void RewriteWithValidCrc(const std::string& dir,
                         const std::function<void(std::vector<walpb::Record>*)>& mutate) {
  uint32_t crc = 0;
  const auto segs = Segments(dir);
  for (size_t s = 0; s < segs.size(); ++s) {
    const std::string old = testing::ReadFileOrDie(segs[s]);
    std::vector<walpb::Record> recs = ParseSegment(old);
    mutate(&recs);
    for (auto& r : recs) {
      if (r.has_data()) crc = crc32c::Extend(crc, r.data());
      r.set_crc(crc);
    }
    std::string bytes = EncodeSegment(recs);
    if (bytes.size() < old.size()) bytes.resize(old.size(), '\0');  // keep the zero tail
    testing::WriteFileOrDie(segs[s], bytes);
  }
}

// Applies `f` to the raftpb.Entry with the given index (in every segment).
void MutateEntry(std::vector<walpb::Record>* recs, uint64_t index,
                 const std::function<void(raftpb::Entry*)>& f) {
  for (auto& r : *recs) {
    if (r.type() != static_cast<int64_t>(wal::RecordType::kEntry)) continue;
    raftpb::Entry e;
    ASSERT_TRUE(e.ParseFromString(r.data()));
    if (e.index() != index) continue;
    f(&e);
    r.set_data(e.SerializeAsString());
  }
}

// Applies `f` to the EncryptedRecord in entry `index`'s data.
void MutateRecord(std::vector<walpb::Record>* recs, uint64_t index,
                  const std::function<void(encryptionpb::EncryptedRecord*)>& f) {
  MutateEntry(recs, index, [&](raftpb::Entry* e) {
    encryptionpb::EncryptedRecord er;
    ASSERT_TRUE(er.ParseFromString(e->data()));
    f(&er);
    e->set_data(er.SerializeAsString());
  });
}

absl::Status ReadAllStatus(const std::string& dir, wal::PayloadCodec* codec, bool write_mode,
                           wal::WalContents* c, int threads = 2) {
  wal::WalOptions o = Options(codec);
  o.decode_threads = threads;
  auto w = write_mode ? wal::Wal::Open(dir, {}, o) : wal::Wal::OpenForRead(dir, {}, o);
  if (!w.ok()) return w.status();
  absl::Status s = (*w)->ReadAll(c);
  if (s.ok() && write_mode) s = (*w)->Close();
  return s;
}

class EncryptedWalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub(std::string(kEncryptedWalDirName));
    auto dek = Dek::Generate();
    ASSERT_TRUE(dek.ok());
    dek_ = std::move(*dek);
    auto codec = WalCodec::ForDek(dek_);
    ASSERT_TRUE(codec.ok());
    codec_ = std::move(*codec);
  }

  // Reading must fail in read mode and in write mode alike, with kDataLoss
  // class kDecryptFailed naming `index` (entries before it are returned
  // in read mode), and the write-mode open must not modify any file.
  void ExpectDecryptFailure(uint64_t index, const std::vector<std::string>& also) {
    const auto before = testing::DirContents(dir_);
    for (bool write : {false, true}) {
      SCOPED_TRACE(write ? "write mode" : "read mode");
      wal::WalContents c;
      absl::Status s = ReadAllStatus(dir_, codec_.get(), write, &c);
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss,
                              AllOf(HasSubstr(absl::StrCat("entry ", index, ":")),
                                    HasSubstr(absl::StrCat("index ", index, " ")))));
      for (const auto& m : also) EXPECT_THAT(std::string(s.message()), HasSubstr(m));
      EXPECT_EQ(wal::GetWalErrorClass(s), wal::WalErrorClass::kDecryptFailed) << s;
      EXPECT_EQ(c.entries.size(), index - 1);
      EXPECT_TRUE(testing::DirContents(dir_) == before) << "a failed decrypt modified the WAL";
    }
  }

  testing::TempDir tmp_;
  std::string dir_;
  Dek dek_;
  std::unique_ptr<WalCodec> codec_;
};

// The WAL in `dir` reads back (read mode) as `first` followed by `then`.
void ExpectReadsBack(const std::string& dir, wal::PayloadCodec* codec,
                     std::vector<EntrySpec> first, const std::vector<EntrySpec>& then) {
  first.insert(first.end(), then.begin(), then.end());
  wal::WalContents c;
  ASSERT_OK(ReadAllStatus(dir, codec, false, &c));
  ExpectEntries(c, first);
}

TEST_F(EncryptedWalTest, RoundTripBothAlgorithmsAndThreadCounts) {
  for (Algorithm alg : {Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305}) {
    SCOPED_TRACE(AlgorithmName(alg));
    ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate(alg));
    ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForDek(dek));
    const std::string dir = tmp_.Sub(absl::StrCat(AlgorithmName(alg), "-wal-v3-encrypted"));
    const auto specs = Specs(1500, 0, /*varied=*/true);
    WriteWal(dir, codec.get(), specs, 7);
    ASSERT_GT(Segments(dir).size(), 3u);
    for (int threads : {1, 4}) {
      wal::WalContents c;
      ASSERT_OK(ReadAllStatus(dir, codec.get(), false, &c, threads));
      EXPECT_TRUE(c.has_metadata);
      EXPECT_EQ(c.metadata, kMetadata);
      EXPECT_EQ(c.hardstate.commit(), 1500u);
      ExpectEntries(c, specs);
    }
    // The plaintext is nowhere on disk; the metadata ciphertext is the
    // same in every segment (etcd's reader insists on it).
    std::string meta;
    for (const auto& seg : Segments(dir)) {
      const std::string bytes = testing::ReadFileOrDie(seg);
      EXPECT_EQ(bytes.find(kMetadata), std::string::npos);
      EXPECT_EQ(bytes.find(Plain(specs[10])), std::string::npos);
      for (const auto& r : ParseSegment(bytes)) {
        if (r.type() != static_cast<int64_t>(wal::RecordType::kMetadata)) continue;
        if (meta.empty()) meta = r.data();
        EXPECT_TRUE(r.data() == meta);
        encryptionpb::EncryptedRecord er;
        ASSERT_TRUE(er.ParseFromString(r.data()));
        EXPECT_EQ(er.key_id(), dek.id.value());
        EXPECT_EQ(er.algorithm(), ToProto(alg));
      }
    }
    EXPECT_FALSE(meta.empty());
    // Reopen for writing, append, read everything back.
    {
      ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Open(dir, {}, Options(codec.get())));
      ASSERT_OK(w->ReadAll().status());
      std::vector<EntrySpec> more;
      for (uint64_t i = 1501; i <= 1600; ++i) more.push_back({i, 3, 0, 500});
      Append(w.get(), more, 9);
      ASSERT_OK(w->Close());
      ExpectReadsBack(dir, codec.get(), specs, more);
    }
  }
}

// Large batches are sealed on every sealing thread and framed while the
// rest is sealed. They read back in order; a batch refused part way (an entry over
// etcd's record limit, found while earlier chunks are framed and later
// ones still sealing) leaves nothing of itself behind, and the WAL goes on.
TEST_F(EncryptedWalTest, LargeBatchesFrameInOrderAndARefusedOneLeavesNothing) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForDek(dek));
  const std::string dir = tmp_.Sub("big-wal-v3-encrypted");
  const auto specs = Specs(3000, 0, /*varied=*/true);  // about 4.5 MB
  {
    ASSERT_OK_AND_ASSIGN(auto w,
                         wal::Wal::Create(dir, kMetadata, Options(codec.get(), 1 << 20)));
    Append(w.get(), specs, 1000);
    std::vector<raftpb::Entry> refused;
    for (uint64_t i = 3001; i <= 3400; ++i) refused.push_back(MakeEntry({i, 5, 0, 1024}));
    refused[300].set_data(std::string(wal::kMaxRecordBytes, 'x'));
    EXPECT_THAT(w->Save({}, refused), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("exceeds etcd's limit")));
    std::vector<EntrySpec> after;
    for (uint64_t i = 3001; i <= 3100; ++i) after.push_back({i, 6, 0, 700});
    Append(w.get(), after, 100);
    ASSERT_OK(w->Close());
    ExpectReadsBack(dir, codec.get(), specs, after);
  }
}

TEST_F(EncryptedWalTest, SwappedEntryDataFailsAtTheLowerIndex) {
  WriteWal(dir_, codec_.get(), Specs(50, 100), 5, 1 << 20);
  ASSERT_EQ(Segments(dir_).size(), 1u);
  // Swap the payloads of entries 20 and 30 and fix the CRC chain.
  RewriteWithValidCrc(dir_, [](std::vector<walpb::Record>* recs) {
    std::string d20, d30;
    MutateEntry(recs, 20, [&](raftpb::Entry* e) { d20 = e->data(); });
    MutateEntry(recs, 30, [&](raftpb::Entry* e) { d30 = e->data(); });
    ASSERT_EQ(d20.size(), d30.size());
    MutateEntry(recs, 20, [&](raftpb::Entry* e) { e->set_data(d30); });
    MutateEntry(recs, 30, [&](raftpb::Entry* e) { e->set_data(d20); });
  });
  ExpectDecryptFailure(20, {FormatKeyId(dek_.id), "cannot authenticate"});
}

// Removing an entry's payload (and fixing the CRC chain) must not read
// back as an empty entry; an entry saved empty still reads back empty.
TEST_F(EncryptedWalTest, StrippedPayloadFailsEmptyEntryRoundTrips) {
  std::vector<EntrySpec> specs = Specs(40, 100);
  specs[9].size = 0;  // entry 10 is empty (a new leader's first entry)
  WriteWal(dir_, codec_.get(), specs, 5, 1 << 20);
  wal::WalContents c;
  ASSERT_OK(ReadAllStatus(dir_, codec_.get(), false, &c));
  ExpectEntries(c, specs);
  RewriteWithValidCrc(dir_, [](std::vector<walpb::Record>* recs) {
    MutateEntry(recs, 10, [](raftpb::Entry* e) { e->clear_data(); });
  });
  ExpectDecryptFailure(10, {"no encrypted payload at index 10"});
  // The same for a non-empty entry.
  WriteWal(tmp_.Sub("second-encrypted"), codec_.get(), specs, 5, 1 << 20);
  dir_ = tmp_.Sub("second-encrypted");
  RewriteWithValidCrc(dir_, [](std::vector<walpb::Record>* recs) {
    MutateEntry(recs, 20, [](raftpb::Entry* e) { e->clear_data(); });
  });
  ExpectDecryptFailure(20, {"no encrypted payload at index 20"});
}

TEST_F(EncryptedWalTest, SwapWithoutFixingTheCrcIsACrcMismatch) {
  WriteWal(dir_, codec_.get(), Specs(50, 100), 5, 1 << 20);
  const std::string seg = Segments(dir_)[0];
  std::string bytes = testing::ReadFileOrDie(seg);
  std::vector<walpb::Record> recs = ParseSegment(bytes);
  std::string d20, d30;
  MutateEntry(&recs, 20, [&](raftpb::Entry* e) { d20 = e->data(); });
  MutateEntry(&recs, 30, [&](raftpb::Entry* e) { d30 = e->data(); });
  const size_t p20 = bytes.find(d20), p30 = bytes.find(d30);
  ASSERT_NE(p20, std::string::npos);
  bytes.replace(p20, d20.size(), d30);
  bytes.replace(p30, d30.size(), d20);
  testing::WriteFileOrDie(seg, bytes);
  wal::WalContents c;
  EXPECT_EQ(wal::GetWalErrorClass(ReadAllStatus(dir_, codec_.get(), false, &c)),
            wal::WalErrorClass::kCrcMismatch);
}

TEST_F(EncryptedWalTest, EveryBoundFieldAndRecordPartIsChecked) {
  struct Case {
    const char* name;
    std::function<void(std::vector<walpb::Record>*)> mutate;
  };
  const uint64_t k = 10;
  const std::vector<Case> cases = {
      {"term", [&](auto* r) { MutateEntry(r, k, [](raftpb::Entry* e) { e->set_term(e->term() + 1); }); }},
      {"type", [&](auto* r) {
         MutateEntry(r, k, [](raftpb::Entry* e) { e->set_type(raftpb::EntryConfChange); });
       }},
      {"truncated ciphertext", [&](auto* r) {
         MutateRecord(r, k, [](encryptionpb::EncryptedRecord* er) { er->mutable_data()->pop_back(); });
       }},
      {"truncated record", [&](auto* r) {
         MutateEntry(r, k, [](raftpb::Entry* e) { e->mutable_data()->resize(e->data().size() - 3); });
       }},
      {"ciphertext bit", [&](auto* r) {
         MutateRecord(r, k, [](encryptionpb::EncryptedRecord* er) { (*er->mutable_data())[0] ^= 4; });
       }},
      {"tag bit", [&](auto* r) {
         MutateRecord(r, k, [](encryptionpb::EncryptedRecord* er) { er->mutable_data()->back() ^= 1; });
       }},
      {"nonce bit", [&](auto* r) {
         MutateRecord(r, k, [](encryptionpb::EncryptedRecord* er) { (*er->mutable_nonce())[5] ^= 0x20; });
       }},
      {"algorithm", [&](auto* r) {
         MutateRecord(r, k, [](encryptionpb::EncryptedRecord* er) {
           er->set_algorithm(encryptionpb::EncryptedRecord::CHACHA20_POLY1305);
         });
       }},
      {"downgrade to NOT_ENCRYPTED", [&](auto* r) {
         MutateEntry(r, k, [](raftpb::Entry* e) {
           encryptionpb::EncryptedRecord er;
           er.set_data("attacker's plaintext");
           e->set_data(er.SerializeAsString());
         });
       }},
      {"data from another entry's place", [&](auto* r) {
         std::string d;
         MutateEntry(r, k + 5, [&](raftpb::Entry* e) { d = e->data(); });
         MutateEntry(r, k, [&](raftpb::Entry* e) { e->set_data(d); });
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testing::RemoveTree(dir_);
    WriteWal(dir_, codec_.get(), Specs(30, 64), 3, 1 << 20);
    RewriteWithValidCrc(dir_, c.mutate);
    ExpectDecryptFailure(k, {});
  }
}

TEST_F(EncryptedWalTest, TamperedMetadataFails) {
  WriteWal(dir_, codec_.get(), Specs(20, 64), 5, 1 << 20);
  RewriteWithValidCrc(dir_, [](std::vector<walpb::Record>* recs) {
    for (auto& r : *recs) {
      if (r.type() == static_cast<int64_t>(wal::RecordType::kMetadata)) {
        (*r.mutable_data())[r.data().size() / 2] ^= 1;
      }
    }
  });
  const auto before = testing::DirContents(dir_);
  for (bool write : {false, true}) {
    wal::WalContents c;
    absl::Status s = ReadAllStatus(dir_, codec_.get(), write, &c);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss,
                            AllOf(HasSubstr("metadata"), HasSubstr("wal-metadata"))));
    EXPECT_EQ(wal::GetWalErrorClass(s), wal::WalErrorClass::kDecryptFailed);
  }
  EXPECT_TRUE(testing::DirContents(dir_) == before);
}

TEST_F(EncryptedWalTest, WrongKeyIsReportedAndModifiesNothing) {
  WriteWal(dir_, codec_.get(), Specs(200, 300), 10, 16 * 1024);
  const auto before = testing::DirContents(dir_);
  ASSERT_GT(before.size(), 2u);
  // The wrong key under the right id: authentication fails at entry 1.
  ASSERT_OK_AND_ASSIGN(SecretKey wrong_bytes, SecretKey::Generate(kAeadKeySize));
  ASSERT_OK_AND_ASSIGN(Dek wrong, Dek::FromParts(dek_.id, dek_.algorithm, std::move(wrong_bytes)));
  ASSERT_OK_AND_ASSIGN(auto wrong_codec, WalCodec::ForDek(wrong));
  // Another DEK altogether: the key id is unknown, and the error says which.
  ASSERT_OK_AND_ASSIGN(Dek other, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto other_codec, WalCodec::ForDek(other));
  for (bool write : {false, true}) {
    SCOPED_TRACE(write ? "write mode" : "read mode");
    wal::WalContents c;
    absl::Status s = ReadAllStatus(dir_, wrong_codec.get(), write, &c);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss,
                            AllOf(HasSubstr("index 1 "), HasSubstr(FormatKeyId(dek_.id)))));
    EXPECT_TRUE(c.entries.empty());
    s = ReadAllStatus(dir_, other_codec.get(), write, &c);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound,
                            HasSubstr("no DEK with key id " + FormatKeyId(dek_.id))));
    EXPECT_EQ(wal::GetWalErrorClass(s), wal::WalErrorClass::kDecryptFailed);
    EXPECT_TRUE(testing::DirContents(dir_) == before) << "a wrong key modified the WAL";
  }
  // A write-mode open with the wrong key refuses to append.
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Open(dir_, {}, Options(other_codec.get())));
  EXPECT_FALSE(w->ReadAll().ok());
  EXPECT_FALSE(w->Save({}, {MakeEntry({201, 1, 0, 10})}).ok());
  w.reset();
  EXPECT_TRUE(testing::DirContents(dir_) == before);
  // The right key still reads everything.
  wal::WalContents c;
  ASSERT_OK(ReadAllStatus(dir_, codec_.get(), false, &c));
  ExpectEntries(c, Specs(200, 300));
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Stores payloads as they are but is not a WalCodec: to the WAL a
// plaintext codec (encrypts() is false).
class PassThroughCodec final : public wal::PayloadCodec {
 public:
  absl::Status Encode(const wal::PayloadContext&, absl::string_view plain,
                      std::string* out) override {
    out->assign(plain.data(), plain.size());
    return absl::OkStatus();
  }
  absl::Status Decode(const wal::PayloadContext&, absl::string_view stored,
                      std::string* out) const override {
    out->assign(stored.data(), stored.size());
    return absl::OkStatus();
  }
};

// Every entry point that opens a WAL directory refuses a codec that does
// not fit the directory's name, before touching a file: an "-encrypted"
// directory without a codec that encrypts (it would read ciphertext as
// entry data and append plaintext), and an encrypting codec on any other
// name. The files stay byte-identical.
TEST_F(EncryptedWalTest, EncryptedDirectoryNeedsItsCodec) {
  WriteWal(dir_, codec_.get(), Specs(200, 300), 10, 16 * 1024);
  const std::string plain_dir = tmp_.Sub(std::string(kPlaintextWalDirName));
  WriteWal(plain_dir, nullptr, Specs(200, 300), 10, 16 * 1024);
  const auto sealed_before = testing::DirContents(dir_);
  const auto plain_before = testing::DirContents(plain_dir);
  ASSERT_GT(sealed_before.size(), 2u);
  ASSERT_GT(plain_before.size(), 2u);
  PassThroughCodec pass;
  const auto key_needed = StatusIs(absl::StatusCode::kFailedPrecondition,
                                   AllOf(HasSubstr(dir_ + " is an encrypted WAL"),
                                         HasSubstr("open it with a key")));
  for (wal::PayloadCodec* codec : {static_cast<wal::PayloadCodec*>(nullptr),
                                   static_cast<wal::PayloadCodec*>(&pass)}) {
    SCOPED_TRACE(codec == nullptr ? "no codec" : "plaintext codec");
    const wal::WalOptions o = Options(codec);
    EXPECT_THAT(wal::Wal::Open(dir_, {}, o), key_needed);
    EXPECT_THAT(wal::Wal::OpenForRead(dir_, {}, o), key_needed);
    EXPECT_THAT(wal::Wal::Verify(dir_, {}, o), key_needed);
    EXPECT_THAT(wal::Wal::Create(tmp_.Sub("new-encrypted"), kMetadata, o),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_FALSE(Exists(tmp_.Sub("new-encrypted")));
    EXPECT_FALSE(Exists(tmp_.Sub("new-encrypted.tmp")));
    // Walks that never look inside a payload need no key (recovery).
    EXPECT_OK(wal::Wal::Repair(dir_, o).status());
    EXPECT_OK(wal::Wal::ValidSnapshotEntries(dir_, o).status());
    EXPECT_OK(wal::Wal::OldestReadablePosition(dir_, o).status());
    // A plaintext codec on a plaintext name is fine.
    wal::WalContents pc;
    EXPECT_OK(ReadAllStatus(plain_dir, codec, false, &pc));
    EXPECT_EQ(pc.entries.size(), 200u);
  }
  // An encrypting codec on any other name makes that WAL encrypted (the
  // CLI contract): a plaintext WAL's records are then refused by the codec
  // (payloads that are not sealed records), and nothing is modified.
  wal::WalContents refused;
  EXPECT_FALSE(ReadAllStatus(plain_dir, codec_.get(), false, &refused).ok());
  // A copy through codecs: a source named -encrypted needs its key.
  ASSERT_EQ(::mkdir(tmp_.Sub("copy").c_str(), 0700), 0);
  wal::TranscodeOptions to;
  to.decode = nullptr;  // would copy ciphertext as plaintext payloads
  EXPECT_THAT(wal::TranscodeWal(dir_, tmp_.Sub("copy"), to),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("open it with a key")));
  EXPECT_TRUE(testing::DirContents(tmp_.Sub("copy")).empty());
  EXPECT_TRUE(testing::DirContents(dir_) == sealed_before) << "a refused open modified the WAL";
  EXPECT_TRUE(testing::DirContents(plain_dir) == plain_before) << "a refused open modified the WAL";
  // The matching pairs still read everything.
  wal::WalContents c;
  ASSERT_OK(ReadAllStatus(dir_, codec_.get(), false, &c));
  ExpectEntries(c, Specs(200, 300));
  wal::WalContents p;
  ASSERT_OK(ReadAllStatus(plain_dir, nullptr, false, &p));
  EXPECT_EQ(p.entries.size(), 200u);
}

TEST_F(EncryptedWalTest, KeyRotationWithinOneWal) {
  const auto first = Specs(100, 200);
  WriteWal(dir_, codec_.get(), first, 10, 16 * 1024);
  ASSERT_OK_AND_ASSIGN(Dek next, Dek::Generate(Algorithm::kChaCha20Poly1305));
  auto both = std::shared_ptr<MultiDecrypter>(MultiDecrypter::Create());
  ASSERT_OK(both->AddKey(dek_.id, dek_.algorithm, dek_.key.Clone()));
  ASSERT_OK(both->AddKey(next.id, next.algorithm, next.key.Clone()));
  WalCodecOptions o;
  ASSERT_OK_AND_ASSIGN(o.encrypter, AeadEncrypter::Create(next));
  o.decrypter = both;
  ASSERT_OK_AND_ASSIGN(auto rotated, WalCodec::Create(std::move(o)));
  std::vector<EntrySpec> second;
  for (uint64_t i = 101; i <= 300; ++i) second.push_back({i, 2, 0, 200});
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Open(dir_, {}, Options(rotated.get(), 16 * 1024)));
    ASSERT_OK(w->ReadAll().status());
    Append(w.get(), second, 10);
    ASSERT_OK(w->Close());
  }
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  wal::WalContents c;
  ASSERT_OK(ReadAllStatus(dir_, rotated.get(), false, &c));
  ExpectEntries(c, all);
  // The old key alone reads up to the rotation and then names the new key.
  absl::Status s = ReadAllStatus(dir_, codec_.get(), false, &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no DEK with key id " + FormatKeyId(next.id)));
  EXPECT_EQ(c.entries.size(), 100u);
}

// ---- the codec on its own ----

TEST(WalCodecTest, EncodeDecodeAndErrors) {
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForDek(dek));
  wal::PayloadContext meta;
  meta.kind = wal::PayloadContext::Kind::kMetadata;
  wal::PayloadContext entry{wal::PayloadContext::Kind::kEntry, 7, 3, 0};
  std::string stored, out;
  ASSERT_OK(codec->Encode(meta, "m", &stored));
  ASSERT_OK(codec->Decode(meta, stored, &out));
  EXPECT_EQ(out, "m");
  EXPECT_THAT(codec->Decode(entry, stored, &out), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK(codec->Encode(entry, "e", &stored));
  ASSERT_OK(codec->Decode(entry, stored, &out));
  EXPECT_EQ(out, "e");
  wal::PayloadContext moved = entry;
  moved.index = 8;
  EXPECT_THAT(codec->Decode(moved, stored, &out),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 8"), HasSubstr(FormatKeyId(dek.id)))));
  EXPECT_EQ(codec->encrypter()->encryptions(), 2u);
  EXPECT_FALSE(codec->rotation_required());

  // A codec without the key: kNotFound naming the missing key.
  ASSERT_OK_AND_ASSIGN(Dek other, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto other_codec, WalCodec::ForDek(other));
  EXPECT_THAT(other_codec->Decode(entry, stored, &out),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(FormatKeyId(dek.id))));

  // Read-only codec.
  WalCodecOptions ro;
  auto dec = std::shared_ptr<MultiDecrypter>(MultiDecrypter::Create());
  ASSERT_OK(dec->AddKey(dek.id, dek.algorithm, dek.key.Clone()));
  ro.decrypter = dec;
  ASSERT_OK_AND_ASSIGN(auto reader, WalCodec::Create(std::move(ro)));
  ASSERT_OK(reader->Decode(entry, stored, &out));
  EXPECT_THAT(reader->Encode(entry, "x", &out), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(reader->rotation_required());

  // Validation.
  EXPECT_THAT(WalCodec::Create({}), StatusIs(absl::StatusCode::kInvalidArgument));
  WalCodecOptions mismatch;
  ASSERT_OK_AND_ASSIGN(mismatch.encrypter, AeadEncrypter::Create(other));
  mismatch.decrypter = dec;
  EXPECT_THAT(WalCodec::Create(std::move(mismatch)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(FormatKeyId(other.id))));
  WalCodecOptions plain;
  plain.encrypter = NewNotEncryptedEncrypter();
  plain.decrypter = dec;
  EXPECT_THAT(WalCodec::Create(std::move(plain)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WalCodecTest, ThresholdAndExhaustionReachTheWal) {
  testing::TempDir tmp;
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  EncrypterOptions eo;
  eo.rotation_threshold = 5;
  ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForDek(dek, eo));
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(tmp.Sub("w-encrypted"), "m", Options(codec.get())));
  EXPECT_FALSE(codec->rotation_required());  // metadata: 1
  Append(w.get(), Specs(4, 10), 1);
  EXPECT_TRUE(codec->rotation_required());
  ASSERT_OK(w->Close());

  eo = {};
  eo.initial_encryptions = kMaxEncryptionsPerKey - 2;
  ASSERT_OK_AND_ASSIGN(auto spent, WalCodec::ForDek(dek, eo));
  ASSERT_OK_AND_ASSIGN(auto w2, wal::Wal::Create(tmp.Sub("w2-encrypted"), "m", Options(spent.get())));
  ASSERT_OK(w2->Save({}, {MakeEntry({1, 1, 0, 10})}));
  absl::Status s = w2->Save({}, {MakeEntry({2, 1, 0, 10})});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("DEK exhausted")));
}

TEST(WalCodecTest, EncryptedDirectoryNames) {
  EXPECT_TRUE(IsEncryptedWalDir("/data/wal-v3-encrypted"));
  EXPECT_TRUE(IsEncryptedWalDir("/data/wal-v3-encrypted//"));
  EXPECT_TRUE(IsEncryptedWalDir("wal-v3-encrypted"));
  EXPECT_FALSE(IsEncryptedWalDir("/data/wal-v3"));
  EXPECT_FALSE(IsEncryptedWalDir("/data-encrypted/wal-v3"));
  // A directory being built under "<name>.tmp" has <name>'s kind.
  EXPECT_TRUE(IsEncryptedWalDir("/data/wal-v3-encrypted.tmp"));
  EXPECT_FALSE(IsEncryptedWalDir("/data/wal-v3.tmp"));
  EXPECT_FALSE(IsEncryptedWalDir("/data/wal-v3-encrypted.old"));
  EXPECT_EQ(kEncryptedWalDirName, "wal-v3-encrypted");
  EXPECT_EQ(kPlaintextWalDirName, "wal-v3");
}

// ---- etcd's reader ----

TEST(EncryptedWalInteropTest, EtcdWalksTheFramingWithOpaqueData) {
  const std::string peer = testing::PeerBinary();
  SEALWAL_SKIP_WITHOUT_PEER(peer);
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal-v3-encrypted");
  ASSERT_OK_AND_ASSIGN(Dek dek, Dek::Generate());
  ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForDek(dek));
  const auto specs = Specs(800, 0, /*varied=*/true);
  WriteWal(dir, codec.get(), specs, 9, 64 * 1024);
  ASSERT_GT(Segments(dir).size(), 5u);
  for (const char* mode : {"read", "write"}) {
    SCOPED_TRACE(mode);
    auto r = testing::RunCommand(absl::StrCat(testing::ShellQuote(peer), " dump-jsonl --dir ",
                                              testing::ShellQuote(dir), " --mode ", mode));
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out.substr(0, 500);
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 3 + specs.size());
    // Metadata: etcd returns the stored EncryptedRecord, which we open.
    auto md = testing::LoadJsonString(lines[0]);
    EXPECT_EQ(testing::Field(md, "record").string_value(), "metadata");
    std::string stored, plain;
    ASSERT_TRUE(absl::Base64Unescape(testing::Field(md, "data_b64").string_value(), &stored));
    wal::PayloadContext mctx;
    mctx.kind = wal::PayloadContext::Kind::kMetadata;
    ASSERT_OK(codec->Decode(mctx, stored, &plain));
    EXPECT_EQ(plain, kMetadata);
    auto hs = testing::LoadJsonString(lines[2]);
    EXPECT_EQ(testing::Field(hs, "commit").number_value(), 800);
    for (size_t i = 0; i < specs.size(); ++i) {
      auto e = testing::LoadJsonString(lines[3 + i]);
      ASSERT_EQ(testing::Field(e, "record").string_value(), "entry");
      ASSERT_EQ(testing::Field(e, "index").number_value(), specs[i].index);
      ASSERT_EQ(testing::Field(e, "term").number_value(), specs[i].term);
      ASSERT_EQ(testing::Field(e, "type").number_value(), specs[i].type);
      ASSERT_TRUE(absl::Base64Unescape(testing::Field(e, "data_b64").string_value(), &stored));
      // Opaque to etcd: an EncryptedRecord, not the plaintext (entries
      // saved without data carry one too, sealing the empty string) ...
      encryptionpb::EncryptedRecord er;
      ASSERT_TRUE(er.ParseFromString(stored));
      EXPECT_EQ(er.key_id(), dek.id.value());
      EXPECT_EQ(er.data().size(), (specs[i].has_data ? specs[i].size : 0) + kAeadTagSize);
      if (specs[i].size >= 16) {
        EXPECT_EQ(stored.find(Plain(specs[i])), std::string::npos);
      }
      // ... which opens to the entry's data at its own place.
      wal::PayloadContext ctx{wal::PayloadContext::Kind::kEntry, specs[i].index, specs[i].term,
                              specs[i].type};
      ASSERT_OK(codec->Decode(ctx, stored, &plain));
      ASSERT_TRUE(plain == (specs[i].has_data ? Plain(specs[i]) : "")) << specs[i].index;
    }
  }
}

}  // namespace
}  // namespace sealwal::encryption
