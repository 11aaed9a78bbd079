// Our .proto files decode what etcd 3.4 wrote: the records of the basic
// fixture's WAL and its .snap files, and re-marshal them to the same bytes.
#include <cstring>
#include <string>
#include <vector>

#include "sealwal/base/crc32c.h"
#include "sealwal/env/file_system.h"
#include "gtest/gtest.h"
#include "sealwal/proto/encryption.pb.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/proto/snappb.pb.h"
#include "sealwal/proto/walpb.pb.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

const std::string kBasic = std::string(SEALWAL_FIXTURES_DIR) + "/basic";

std::vector<walpb::Record> Records(const std::string& path) {
  auto content = env::ReadFileToString(env::DefaultFileSystem(), path);
  EXPECT_TRUE(content.ok()) << content.status();
  std::vector<walpb::Record> out;
  size_t off = 0;
  while (content.ok() && off + 8 <= content->size()) {
    uint64_t word;
    std::memcpy(&word, content->data() + off, 8);
    if (word == 0) break;
    uint64_t len = word & ((uint64_t{1} << 56) - 1);
    uint64_t pad = (word >> 63) ? (word >> 56) & 7 : 0;
    walpb::Record rec;
    EXPECT_TRUE(rec.ParseFromArray(content->data() + off + 8, static_cast<int>(len)));
    // Every field etcd sets is present, so re-marshalling gives the same bytes.
    EXPECT_EQ(rec.SerializeAsString(), std::string(content->data() + off + 8, len));
    out.push_back(rec);
    off += 8 + len + pad;
  }
  return out;
}

TEST(ProtoFixtureTest, FirstSegmentOpensWithCrcMetadataSnapshot) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  auto recs = Records(kBasic + "/wal/0000000000000000-0000000000000000.wal");
  ASSERT_GE(recs.size(), 3u);
  EXPECT_EQ(recs[0].type(), 4);
  EXPECT_EQ(recs[0].crc(), 0u);
  EXPECT_FALSE(recs[0].has_data());
  EXPECT_EQ(recs[1].type(), 1);
  EXPECT_EQ(recs[1].data(), "fixture-meta");
  EXPECT_EQ(recs[2].type(), 5);
  walpb::Snapshot snap;
  ASSERT_TRUE(snap.ParseFromString(recs[2].data()));
  EXPECT_EQ(snap.index(), 0u);
  EXPECT_EQ(snap.term(), 0u);
}

TEST(ProtoFixtureTest, EntriesAndStatesDecode) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  auto names = env::DefaultFileSystem()->ListDir(kBasic + "/wal");
  ASSERT_TRUE(names.ok());
  size_t entries = 0, conf_changes = 0, states = 0;
  raftpb::HardState last;
  for (const auto& n : *names) {
    for (const auto& rec : Records(kBasic + "/wal/" + n)) {
      if (rec.type() == 2) {
        raftpb::Entry e;
        ASSERT_TRUE(e.ParseFromString(rec.data()));
        EXPECT_EQ(e.SerializeAsString(), rec.data());
        ++entries;
        if (e.type() == raftpb::EntryConfChange) ++conf_changes;
      } else if (rec.type() == 3) {
        ASSERT_TRUE(last.ParseFromString(rec.data()));
        EXPECT_EQ(last.SerializeAsString(), rec.data());
        ++states;
      }
    }
  }
  EXPECT_EQ(entries, 1020u);  // 1000 + the 20 overwritten entries 281..300
  EXPECT_EQ(conf_changes, 4u);
  EXPECT_GT(states, 0u);
  EXPECT_EQ(last.term(), 3u);
  EXPECT_EQ(last.vote(), 3u);
  EXPECT_EQ(last.commit(), 990u);
}

TEST(ProtoFixtureTest, SnapFileDecodes) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  auto content = env::ReadFileToString(env::DefaultFileSystem(),
                                       kBasic + "/snap/0000000000000002-00000000000001f4.snap");
  ASSERT_TRUE(content.ok());
  snappb::Snapshot file;
  ASSERT_TRUE(file.ParseFromString(*content));
  EXPECT_EQ(file.crc(), crc32c::Value(file.data()));
  raftpb::Snapshot snap;
  ASSERT_TRUE(snap.ParseFromString(file.data()));
  EXPECT_EQ(snap.metadata().index(), 500u);
  EXPECT_EQ(snap.metadata().term(), 2u);
  EXPECT_EQ(snap.metadata().conf_state().voters_size(), 3);
  EXPECT_EQ(snap.data().size(), 10000u);
}

TEST(ProtoFixtureTest, EncryptedRecordRoundTrips) {
  encryptionpb::EncryptedRecord r;
  r.set_algorithm(encryptionpb::EncryptedRecord::AES_256_GCM);
  r.set_data(std::string(33, 'x'));
  r.set_nonce(std::string(12, 'n'));
  r.set_key_id(0xdeadbeef);
  encryptionpb::EncryptedRecord back;
  ASSERT_TRUE(back.ParseFromString(r.SerializeAsString()));
  EXPECT_EQ(back.key_id(), 0xdeadbeefu);
  EXPECT_EQ(back.algorithm(), encryptionpb::EncryptedRecord::AES_256_GCM);
  // key_id is fixed32: tag 0x25 followed by 4 little-endian bytes.
  const std::string bytes = r.SerializeAsString();
  EXPECT_NE(bytes.find(std::string("\x25\xef\xbe\xad\xde", 5)), std::string::npos);
}

}  // namespace
}  // namespace sealwal
