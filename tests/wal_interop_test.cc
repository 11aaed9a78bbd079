// WALs written by `sealwal wal gen` read back identically through etcd's own
// code (the etcdwal-peer driver), and WALs written by etcd (gen-random) dump
// identically through both. Skipped, saying why, when the peer is not built.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

const std::string kCli = SEALWAL_CLI_BIN;

class WalInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_ = testing::PeerBinary();
    SEALWAL_SKIP_WITHOUT_PEER(peer_);
  }

  // Dumps dir through etcd (read or write mode) and through us; both must
  // print the same lines and exit alike.
  void ExpectSameDump(const std::string& dir, uint64_t index, uint64_t term,
                      const std::string& mode = "read") {
    SCOPED_TRACE(absl::StrCat(dir, " at ", index, ":", term, " (", mode, ")"));
    auto p = RunCommand(absl::StrCat(ShellQuote(peer_), " dump-jsonl --dir ", ShellQuote(dir),
                                     " --snap-index ", index, " --snap-term ", term,
                                     " --mode ", mode));
    auto s = RunCommand(absl::StrCat(ShellQuote(kCli), " wal dump ", ShellQuote(dir),
                                     " --from ", index, ":", term));
    EXPECT_EQ(p.exit_code, s.exit_code) << p.err << s.err;
    EXPECT_TRUE(p.out == s.out) << "etcd:\n" << p.out.substr(0, 2000) << "\nsealwal:\n"
                                << s.out.substr(0, 2000);
    EXPECT_FALSE(s.out.empty());
  }

  std::string peer_;
};

TEST_F(WalInteropTest, EtcdReadsWhatWeWrite) {
  struct Case {
    uint64_t entries, size, batch, seed, segment;
  };
  const std::vector<Case> cases = {
      {1000, 100, 1, 1, 16384},  {3000, 1024, 10, 2, 65536}, {2000, 3000, 100, 3, 131072},
      {500, 0, 7, 4, 8192},      {200, 20000, 3, 5, 32768},  {5000, 64, 1000, 6, 1 << 20},
  };
  for (const Case& c : cases) {
    testing::TempDir tmp;
    const std::string dir = tmp.Sub("wal");
    auto g = RunCommand(absl::StrCat(ShellQuote(kCli), " wal gen ", ShellQuote(dir),
                                     " --entries ", c.entries, " --size ", c.size, " --batch ",
                                     c.batch, " --seed ", c.seed, " --segment-size ", c.segment));
    ASSERT_EQ(g.exit_code, 0) << g.err;
    EXPECT_NE(g.out.find(absl::StrCat("synced ", c.entries, "\n")), std::string::npos);
    ExpectSameDump(dir, 0, 0, "read");
    ExpectSameDump(dir, 0, 0, "write");  // etcd's strict open accepts our tail too
    auto v = RunCommand(absl::StrCat(ShellQuote(kCli), " wal verify ", ShellQuote(dir),
                                     " --expect-seed ", c.seed));
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find(absl::StrCat("entries 1..", c.entries)), std::string::npos) << v.out;
  }
}

TEST_F(WalInteropTest, WeReadWhatEtcdWrites) {
  for (int seed : {1, 2, 3}) {
    testing::TempDir tmp;
    const std::string out = tmp.Sub("r");
    auto g = RunCommand(absl::StrCat(ShellQuote(peer_), " gen-random --out ", ShellQuote(out),
                                     " --seed ", seed, " --entries 2000"));
    ASSERT_EQ(g.exit_code, 0) << g.err;
    auto summary = testing::LoadJsonString(g.out);
    ExpectSameDump(out + "/wal", 0, 0);
    for (const auto& v : testing::Field(summary, "snapshot_records").list_value().values()) {
      const auto& snap = v.struct_value();
      ExpectSameDump(out + "/wal", static_cast<uint64_t>(testing::Field(snap, "index").number_value()),
                     static_cast<uint64_t>(testing::Field(snap, "term").number_value()));
    }
    ExpectSameDump(out + "/wal", 7, 99);  // no such snapshot record: same error
  }
}

// A frame whose record is cut short inside it (its length word says fewer
// bytes than the protobuf needs): etcd's Unmarshal says io.ErrUnexpectedEOF,
// which etcd treats as a torn write. Both must read it alike, and our Repair
// must fix it as etcd's would.
TEST_F(WalInteropTest, RecordCutShortInsideItsFrameReadsAsTorn) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  ASSERT_EQ(RunCommand(absl::StrCat(ShellQuote(kCli), " wal gen ", ShellQuote(dir),
                                    " --entries 4 --size 40 --batch 1 --seed 5"))
                .exit_code,
            0);
  auto names = RunCommand(absl::StrCat("ls ", ShellQuote(dir), " | grep '\\.wal$'"));
  const std::string seg = dir + "/" + names.out.substr(0, names.out.find('\n'));
  std::string bytes = testing::ReadFileOrDie(seg);
  // Walk the frames to the last one.
  size_t off = 0, last = 0;
  for (;;) {
    uint64_t word = 0;
    for (int i = 0; i < 8; ++i) word |= uint64_t{static_cast<uint8_t>(bytes[off + i])} << (8 * i);
    if (word == 0) break;
    const uint64_t len = word & ((uint64_t{1} << 56) - 1);
    const uint64_t pad = (word >> 63) ? (word >> 56) & 7 : 0;
    last = off;
    off += 8 + len + pad;
  }
  uint64_t word = 0;
  for (int i = 0; i < 8; ++i) word |= uint64_t{static_cast<uint8_t>(bytes[last + i])} << (8 * i);
  // 3 bytes shorter, the pad 3 bytes longer: the frame keeps its size, and
  // the record (a HardState: 16 bytes, no pad) now ends inside its data.
  const uint64_t len = word & ((uint64_t{1} << 56) - 1);
  const uint64_t pad = (word >> 63) ? (word >> 56) & 7 : 0;
  ASSERT_LE(pad + 3, 7u);
  word = (len - 3) | ((0x80 | (pad + 3)) << 56);
  for (int i = 0; i < 8; ++i) bytes[last + i] = static_cast<char>(word >> (8 * i));
  testing::WriteFileOrDie(seg, bytes);

  ExpectSameDump(dir, 0, 0);
  auto w = RunCommand(absl::StrCat(ShellQuote(peer_), " dump-jsonl --dir ", ShellQuote(dir),
                                   " --mode write"));
  EXPECT_NE(w.out.find("\"class\":\"unexpected_eof\""), std::string::npos) << w.out;
  auto rep = RunCommand(absl::StrCat(ShellQuote(kCli), " wal repair ", ShellQuote(dir)));
  EXPECT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_EQ(rep.out.rfind("repaired ", 0), 0u) << rep.out;
  ExpectSameDump(dir, 0, 0);
  ExpectSameDump(dir, 0, 0, "write");
}

TEST_F(WalInteropTest, FixturesDumpAlike) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  for (const char* f : {"basic", "torn-truncated", "torn-zeroed", "crc-flip", "secretbox"}) {
    const std::string dir = testing::FixturesDir() + "/" + f + "/wal";
    ExpectSameDump(dir, 0, 0);
    ExpectSameDump(dir, 500, 2);
  }
}

}  // namespace
}  // namespace sealwal
