// Wal::SwitchWriteKey: a WAL that changes the key it seals with while open.
// Three DEKs in turn; readers holding all of them, only the newest (after
// the older segments were garbage-collected) and only the oldest; metadata
// re-sealed at each switch and repeated byte for byte within one key; a
// plaintext WAL switching (nullptr); a failed switch is sticky; etcd's
// reader walks the segments from the last switch on.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::encryption {
namespace {

using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;
using walcrypt::WalCodec;
using walcrypt::WalCodecOptions;
using walcrypt::kEncryptedWalDirName;

constexpr char kMetadata[] = "node=1 cluster=rotation";
constexpr uint64_t kSeed = 91;

std::string Payload(uint64_t index) { return DataGen(kSeed, index, 1, 100 + index % 37); }

std::vector<raftpb::Entry> Entries(uint64_t first, uint64_t last) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = first; i <= last; ++i) {
    raftpb::Entry& e = v.emplace_back();
    e.set_index(i);
    e.set_term(1);
    e.set_type(raftpb::EntryNormal);
    e.set_data(Payload(i));
  }
  return v;
}

void SaveEntries(wal::Wal* w, uint64_t first, uint64_t last) {
  for (uint64_t i = first; i <= last; i += 5) {
    raftpb::HardState hs;
    hs.set_term(1);
    hs.set_vote(1);
    hs.set_commit(std::min(last, i + 4));
    ASSERT_OK(w->Save(hs, Entries(i, std::min(last, i + 4))));
  }
}

void ExpectEntries(const wal::WalContents& c, uint64_t first, uint64_t last) {
  ASSERT_EQ(c.entries.size(), last - first + 1);
  for (uint64_t i = first; i <= last; ++i) {
    const raftpb::Entry& e = c.entries[i - first];
    ASSERT_EQ(e.index(), i);
    ASSERT_TRUE(e.data() == Payload(i)) << "entry " << i;
  }
}

wal::WalOptions Options(wal::PayloadCodec* codec, uint64_t segment_size = 1 << 20) {
  wal::WalOptions o;
  o.codec = codec;
  o.segment_size = segment_size;
  o.preallocation = wal::Preallocation::kFallocate;
  return o;
}

// The stored bytes of every segment's metadata record, by segment, read
// through the public RecordReader.
std::vector<std::string> StoredMetadata(const std::string& dir) {
  std::vector<std::string> out;
  auto reader = wal::RecordReader::OpenAll(dir, env::DefaultFileSystem());
  EXPECT_OK(reader.status());
  if (!reader.ok()) return out;
  wal::Record rec;
  uint64_t last_segment = 0;
  while ((*reader)->ReadRecord(&rec)) {
    if (rec.type == static_cast<int64_t>(wal::RecordType::kMetadata)) {
      // One per segment, right after the segment's crc record.
      if (!out.empty()) {
        EXPECT_GT(rec.position.segment, last_segment);
      }
      EXPECT_GT(rec.position.offset, 0u);
      last_segment = rec.position.segment;
      out.emplace_back(rec.data);
    }
  }
  EXPECT_EQ((*reader)->end(), wal::RecordReader::End::kEof) << (*reader)->status();
  return out;
}

KeyId KeyIdOf(const std::string& stored) {
  auto id = MultiDecrypter::KeyIdOf(stored);
  EXPECT_OK(id.status());
  return id.ok() ? *id : KeyId(0);
}

class WalRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub(std::string(kEncryptedWalDirName));
    for (Dek* d : {&dek1_, &dek2_, &dek3_}) {
      ASSERT_OK_AND_ASSIGN(*d, Dek::Generate());
    }
  }

  // A codec sealing under `writer` (none: read-only) and opening records
  // sealed under any of `readers`.
  std::unique_ptr<WalCodec> Codec(const Dek* writer, std::vector<const Dek*> readers) {
    auto dec = std::shared_ptr<MultiDecrypter>(MultiDecrypter::Create());
    for (const Dek* d : readers) EXPECT_OK(dec->AddKey(d->id, d->algorithm, d->key.Clone()));
    WalCodecOptions o;
    if (writer != nullptr) {
      auto enc = AeadEncrypter::Create(*writer);
      EXPECT_OK(enc.status());
      if (enc.ok()) o.encrypter = std::move(*enc);
    }
    o.decrypter = dec;
    auto codec = WalCodec::Create(std::move(o));
    EXPECT_OK(codec.status());
    return codec.ok() ? std::move(*codec) : nullptr;
  }

  // Entries 1..30 under DEK1, 31..60 under DEK2, 61..80 under DEK3, a
  // snapshot record {80, 1}, 81..90 under DEK3.
  void WriteRotated() {
    codec1_ = Codec(&dek1_, {&dek1_});
    codec2_ = Codec(&dek2_, {&dek1_, &dek2_});
    codec3_ = Codec(&dek3_, {&dek1_, &dek2_, &dek3_});
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir_, kMetadata, Options(codec1_.get())));
    SaveEntries(w.get(), 1, 30);
    ASSERT_OK(w->SwitchWriteKey(codec2_.get()));
    EXPECT_EQ(w->stats().cuts, 1u);
    SaveEntries(w.get(), 31, 60);
    ASSERT_OK(w->SwitchWriteKey(codec3_.get()));
    EXPECT_EQ(w->stats().cuts, 2u);
    SaveEntries(w.get(), 61, 80);
    ASSERT_OK(w->SaveSnapshot({80, 1}));
    SaveEntries(w.get(), 81, 90);
    // As a node would once snapshot 80 is saved: release the segments
    // before the last switch (the one holding 80 stays locked).
    ASSERT_OK(w->ReleaseLockTo(80));
    ASSERT_OK(w->Close());
  }

  testing::TempDir tmp_;
  std::string dir_;
  Dek dek1_, dek2_, dek3_;
  std::unique_ptr<WalCodec> codec1_, codec2_, codec3_;
};

TEST_F(WalRotationTest, EachSwitchCutsASegmentWithResealedMetadata) {
  WriteRotated();
  ASSERT_EQ(testing::ListDirNames(dir_),
            (std::vector<std::string>{wal::SegmentFileName(0, 0), wal::SegmentFileName(1, 31),
                                      wal::SegmentFileName(2, 61)}));
  const std::vector<std::string> stored = StoredMetadata(dir_);
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(KeyIdOf(stored[0]), dek1_.id);
  EXPECT_EQ(KeyIdOf(stored[1]), dek2_.id);
  EXPECT_EQ(KeyIdOf(stored[2]), dek3_.id);
  // Every copy opens to the same plaintext.
  for (const auto& s : stored) {
    wal::PayloadContext ctx;
    ctx.kind = wal::PayloadContext::Kind::kMetadata;
    std::string plain;
    ASSERT_OK(codec3_->Decode(ctx, s, &plain));
    EXPECT_EQ(plain, kMetadata);
  }
}

TEST_F(WalRotationTest, UnionOfKeysReadsEverything) {
  WriteRotated();
  const auto union_codec = Codec(nullptr, {&dek1_, &dek2_, &dek3_});
  for (bool write : {false, true}) {
    SCOPED_TRACE(write ? "write mode" : "read mode");
    auto w = write ? wal::Wal::Open(dir_, {}, Options(union_codec.get()))
                   : wal::Wal::OpenForRead(dir_, {}, Options(union_codec.get()));
    ASSERT_OK(w.status());
    ASSERT_OK_AND_ASSIGN(wal::WalContents c, (*w)->ReadAll());
    EXPECT_TRUE(c.has_metadata);
    EXPECT_EQ(c.metadata, kMetadata);
    EXPECT_EQ(c.hardstate.commit(), 90u);
    ExpectEntries(c, 1, 90);
    ASSERT_OK((*w)->Close());
  }
  EXPECT_OK(wal::Wal::Verify(dir_, {}, Options(union_codec.get())));
  EXPECT_OK(wal::Wal::Verify(dir_, {80, 1}, Options(union_codec.get())));
  // Without a codec Verify refuses an "-encrypted" directory (its name
  // says it needs a key), before reading anything. etcd's reader, which
  // compares metadata as stored, sees the re-sealed copies differ (the
  // next test).
  EXPECT_EQ(wal::Wal::Verify(dir_, {}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wal::Wal::Verify(dir_, {80, 1}).code(), absl::StatusCode::kFailedPrecondition);
}

// etcd's own reader (the etcdwal-peer driver) compares metadata as stored:
// across a switch it sees a conflict, as the docs say; from a snapshot
// after the last switch it walks the log (one key, identical bytes).
TEST_F(WalRotationTest, EtcdWalksTheSegmentsAfterTheLastSwitch) {
  const std::string peer = testing::PeerBinary();
  SEALWAL_SKIP_WITHOUT_PEER(peer);
  WriteRotated();
  auto dump = [&](const std::string& from) {
    return testing::RunCommand(absl::StrCat(testing::ShellQuote(peer), " dump-jsonl --dir ",
                                            testing::ShellQuote(dir_), from, " --mode read"));
  };
  const auto all = dump("");
  EXPECT_NE(all.exit_code, 0);
  EXPECT_THAT(all.out + all.err, HasSubstr("wal: conflicting metadata found"));
  const auto after = dump(" --snap-index 80 --snap-term 1");
  ASSERT_EQ(after.exit_code, 0) << after.err << after.out.substr(0, 500);
  std::vector<std::string> lines = absl::StrSplit(after.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u + 10u);  // metadata, snapshot, hardstate, entries 81..90
  EXPECT_THAT(lines[0], HasSubstr("\"record\":\"metadata\""));
  EXPECT_THAT(lines.back(), HasSubstr("\"index\":90"));
}

TEST_F(WalRotationTest, AfterCollectionOnlyTheNewestKeyIsNeeded) {
  WriteRotated();
  // Garbage collection: the segments before the last switch go.
  for (const auto& n : {wal::SegmentFileName(0, 0), wal::SegmentFileName(1, 31)}) {
    ASSERT_EQ(::unlink((dir_ + "/" + n).c_str()), 0);
  }
  const auto only3 = Codec(nullptr, {&dek3_});
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::OpenForRead(dir_, {80, 1}, Options(only3.get())));
    ASSERT_OK_AND_ASSIGN(wal::WalContents c, w->ReadAll());
    EXPECT_EQ(c.metadata, kMetadata);
    ExpectEntries(c, 81, 90);
  }
  // A writer holding only DEK3 appends (its cuts repeat DEK3's metadata).
  const auto writer3 = Codec(&dek3_, {&dek3_});
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Open(dir_, {80, 1}, Options(writer3.get(), 16 * 1024)));
    ASSERT_OK_AND_ASSIGN(wal::WalContents c, w->ReadAll());
    ExpectEntries(c, 81, 90);
    SaveEntries(w.get(), 91, 400);
    EXPECT_GT(w->stats().cuts, 0u);
    ASSERT_OK(w->Close());
  }
  const std::vector<std::string> stored = StoredMetadata(dir_);
  ASSERT_GT(stored.size(), 1u);
  for (const auto& s : stored) EXPECT_TRUE(s == stored[0]) << "cut under one key re-sealed";
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::OpenForRead(dir_, {80, 1}, Options(only3.get())));
    ASSERT_OK_AND_ASSIGN(wal::WalContents c, w->ReadAll());
    ExpectEntries(c, 81, 400);
  }

  // A reader holding only DEK1 is told which key it lacks, and nothing
  // changes on disk, in read mode and in write mode.
  const auto only1 = Codec(nullptr, {&dek1_});
  const auto before = testing::DirContents(dir_);
  for (bool write : {false, true}) {
    SCOPED_TRACE(write ? "write mode" : "read mode");
    auto w = write ? wal::Wal::Open(dir_, {80, 1}, Options(only1.get()))
                   : wal::Wal::OpenForRead(dir_, {80, 1}, Options(only1.get()));
    ASSERT_OK(w.status());
    wal::WalContents c;
    absl::Status s = (*w)->ReadAll(&c);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound,
                            HasSubstr("no DEK with key id " + FormatKeyId(dek3_.id))));
    EXPECT_EQ(wal::GetWalErrorClass(s), wal::WalErrorClass::kDecryptFailed);
    EXPECT_TRUE(c.entries.empty());
    if (write) {
      EXPECT_THAT((*w)->Save({}, Entries(401, 401)),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_THAT((*w)->SwitchWriteKey(), StatusIs(absl::StatusCode::kFailedPrecondition));
    }
  }
  EXPECT_TRUE(testing::DirContents(dir_) == before) << "a missing key modified the WAL";
}

TEST_F(WalRotationTest, SwitchWithTheSameCodecObject) {
  // nullptr keeps the codec; with an unchanged key the new segment's
  // metadata is still re-sealed (a fresh nonce), and everything reads back.
  codec1_ = Codec(&dek1_, {&dek1_});
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir_, kMetadata, Options(codec1_.get())));
  SaveEntries(w.get(), 1, 10);
  ASSERT_OK(w->SwitchWriteKey());
  SaveEntries(w.get(), 11, 20);
  ASSERT_OK(w->Close());
  const std::vector<std::string> stored = StoredMetadata(dir_);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_FALSE(stored[0] == stored[1]);
  ASSERT_OK_AND_ASSIGN(auto r, wal::Wal::OpenForRead(dir_, {}, Options(codec1_.get())));
  ASSERT_OK_AND_ASSIGN(wal::WalContents c, r->ReadAll());
  EXPECT_EQ(c.metadata, kMetadata);
  ExpectEntries(c, 1, 20);
}

TEST(WalRotationPlaintextTest, SwitchCutsAndRepeatsTheMetadataAsIs) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal-v3");
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir, kMetadata, Options(nullptr)));
  SaveEntries(w.get(), 1, 10);
  ASSERT_OK(w->SwitchWriteKey(nullptr));
  EXPECT_EQ(w->stats().cuts, 1u);
  SaveEntries(w.get(), 11, 20);
  ASSERT_OK(w->Close());
  EXPECT_EQ(testing::ListDirNames(dir), (std::vector<std::string>{wal::SegmentFileName(0, 0),
                                                     wal::SegmentFileName(1, 11)}));
  EXPECT_EQ(StoredMetadata(dir), (std::vector<std::string>{kMetadata, kMetadata}));
  ASSERT_OK_AND_ASSIGN(auto r, wal::Wal::OpenForRead(dir, {}, Options(nullptr)));
  ASSERT_OK_AND_ASSIGN(wal::WalContents c, r->ReadAll());
  EXPECT_EQ(c.metadata, kMetadata);
  ExpectEntries(c, 1, 20);
  EXPECT_OK(wal::Wal::Verify(dir, {}));
}

TEST_F(WalRotationTest, FailedSwitchIsSticky) {
  codec1_ = Codec(&dek1_, {&dek1_});
  const auto read_only = Codec(nullptr, {&dek1_});  // Encode refuses
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir_, kMetadata, Options(codec1_.get())));
  SaveEntries(w.get(), 1, 10);
  const absl::Status failed = w->SwitchWriteKey(read_only.get());
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kFailedPrecondition));
  // The WAL is failed for good: every later write returns the first error.
  EXPECT_EQ(w->Save({}, Entries(11, 11)), failed);
  EXPECT_EQ(w->SwitchWriteKey(codec1_.get()), failed);
  EXPECT_EQ(w->Sync(), failed);
  EXPECT_EQ(w->Close(), failed);
  // What was saved before the switch is intact, in one segment.
  EXPECT_EQ(testing::ListDirNames(dir_), (std::vector<std::string>{wal::SegmentFileName(0, 0)}));
  ASSERT_OK_AND_ASSIGN(auto r, wal::Wal::OpenForRead(dir_, {}, Options(codec1_.get())));
  ASSERT_OK_AND_ASSIGN(wal::WalContents c, r->ReadAll());
  ExpectEntries(c, 1, 10);
}

TEST_F(WalRotationTest, SwitchNeedsAWritableOpenWal) {
  codec1_ = Codec(&dek1_, {&dek1_});
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir_, kMetadata, Options(codec1_.get())));
    SaveEntries(w.get(), 1, 5);
    ASSERT_OK(w->Close());
    EXPECT_THAT(w->SwitchWriteKey(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  const auto before = testing::DirContents(dir_);
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Open(dir_, {}, Options(codec1_.get())));
    EXPECT_THAT(w->SwitchWriteKey(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::OpenForRead(dir_, {}, Options(codec1_.get())));
    ASSERT_OK(w->ReadAll().status());
    EXPECT_THAT(w->SwitchWriteKey(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  EXPECT_TRUE(testing::DirContents(dir_) == before);
}

// The path the storage facade takes: one Keyring shared by the WAL codec
// (and snapshots). A rotation adds the new DEK, makes it the write key and
// calls SwitchWriteKey() with the same codec object; twice while the WAL
// stays open. The union keyring reads everything; after the segments before
// the last switch are collected, a keyring holding only the newest DEK reads
// from the snapshot on.
TEST_F(WalRotationTest, OneKeyringRotatedTwiceWhileOpen) {
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Keyring> keys, Keyring::ForDek(dek1_));
  ASSERT_OK_AND_ASSIGN(auto codec, WalCodec::ForKeyring(keys));
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::Create(dir_, kMetadata, Options(codec.get())));
    SaveEntries(w.get(), 1, 30);
    ASSERT_OK(keys->AddKey(dek2_));
    ASSERT_OK(keys->SetWriteKey(dek2_.id));
    ASSERT_OK(w->SwitchWriteKey());
    SaveEntries(w.get(), 31, 60);
    ASSERT_OK(keys->AddKey(dek3_));
    ASSERT_OK(keys->SetWriteKey(dek3_.id));
    ASSERT_OK(w->SwitchWriteKey());
    SaveEntries(w.get(), 61, 80);
    ASSERT_OK(w->SaveSnapshot({80, 1}));
    SaveEntries(w.get(), 81, 90);
    ASSERT_OK(w->ReleaseLockTo(80));
    ASSERT_OK(w->Close());
  }
  const std::vector<std::string> stored = StoredMetadata(dir_);
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(KeyIdOf(stored[0]), dek1_.id);
  EXPECT_EQ(KeyIdOf(stored[1]), dek2_.id);
  EXPECT_EQ(KeyIdOf(stored[2]), dek3_.id);
  {
    ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::OpenForRead(dir_, {}, Options(codec.get())));
    ASSERT_OK_AND_ASSIGN(wal::WalContents c, w->ReadAll());
    EXPECT_EQ(c.metadata, kMetadata);
    ExpectEntries(c, 1, 90);
  }
  for (const auto& n : {wal::SegmentFileName(0, 0), wal::SegmentFileName(1, 31)}) {
    ASSERT_EQ(::unlink((dir_ + "/" + n).c_str()), 0);
  }
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Keyring> newest, Keyring::ForDek(dek3_));
  ASSERT_OK_AND_ASSIGN(auto newest_codec, WalCodec::ForKeyring(newest));
  ASSERT_OK_AND_ASSIGN(auto w, wal::Wal::OpenForRead(dir_, {80, 1}, Options(newest_codec.get())));
  ASSERT_OK_AND_ASSIGN(wal::WalContents c, w->ReadAll());
  EXPECT_EQ(c.metadata, kMetadata);
  ExpectEntries(c, 81, 90);
}

}  // namespace
}  // namespace sealwal::encryption
