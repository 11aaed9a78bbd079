// CRC32C against published vectors (RFC 3720 B.4, leveldb's crc32c_test),
// hardware/ISA-L vs portable, and against the CRCs etcd stored in fixture records.
#include "sealwal/base/crc32c.h"

#include <random>
#include <string>

#include "sealwal/env/file_system.h"
#include "gtest/gtest.h"
#include "sealwal/proto/walpb.pb.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

TEST(Crc32cTest, PublishedVectors) {
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string asc(32, 0), desc(32, 0);
  for (int i = 0; i < 32; ++i) {
    asc[i] = static_cast<char>(i);
    desc[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc32c::Value(asc), 0x46DD794Eu);
  EXPECT_EQ(crc32c::Value(desc), 0x113FDB5Cu);
  EXPECT_EQ(crc32c::Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const std::string s = "hello, write-ahead log";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(crc32c::Extend(crc32c::Value(s.substr(0, cut)), s.substr(cut)),
              crc32c::Value(s));
  }
}

TEST(Crc32cTest, HardwareMatchesPortable) {
  std::mt19937_64 rng(42);
  std::string buf(70000, 0);
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t off : {0, 1, 3, 7}) {
    // 255/256/257: either side of where Extend switches to ISA-L.
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 255, 256, 257, 1024, 4096, 65536}) {
      uint32_t seed = static_cast<uint32_t>(rng());
      EXPECT_EQ(crc32c::Extend(seed, buf.data() + off, len),
                crc32c::ExtendPortable(seed, buf.data() + off, len))
          << off << "/" << len;
      EXPECT_EQ(crc32c::ExtendSingleStream(seed, buf.data() + off, len),
                crc32c::ExtendPortable(seed, buf.data() + off, len))
          << off << "/" << len;
    }
  }
  std::printf("hardware crc32c: %s\n", crc32c::HardwareAccelerated() ? "yes" : "no");
}

// Walks the frames of etcd's first basic segment and recomputes the chain.
TEST(Crc32cTest, MatchesEtcdFixtureRecords) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  auto content = env::ReadFileToString(
      env::DefaultFileSystem(),
      std::string(SEALWAL_FIXTURES_DIR) + "/basic/wal/0000000000000000-0000000000000000.wal");
  ASSERT_TRUE(content.ok()) << content.status();
  uint32_t running = 0;
  size_t off = 0, checked = 0;
  while (off + 8 <= content->size()) {
    uint64_t word;
    std::memcpy(&word, content->data() + off, 8);
    if (word == 0) break;
    uint64_t len = word & ((uint64_t{1} << 56) - 1);
    uint64_t pad = (word >> 63) ? (word >> 56) & 7 : 0;
    walpb::Record rec;
    ASSERT_TRUE(rec.ParseFromArray(content->data() + off + 8, static_cast<int>(len)));
    if (rec.type() == 4) {
      running = rec.crc();
    } else {
      running = crc32c::Extend(running, rec.data());
      ASSERT_EQ(rec.crc(), running) << "record at offset " << off;
      ++checked;
    }
    off += 8 + len + pad;
  }
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace sealwal
