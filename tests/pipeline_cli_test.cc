// pipeline_cli_test: `wal gen --pipeline DEPTH` and `store gen --pipeline
// DEPTH` from the outside.
//   - the flag is in --help; 0 and absurd depths are usage errors;
//   - a plaintext pipelined WAL is byte for byte the synchronous one, and
//     `synced` lines come in order, one per batch;
//   - SIGKILL at random moments of an encrypted pipelined `wal gen` (small
//     segments) and of a pipelined `store gen` (snapshots, rotations):
//     every index printed as `synced` comes back, and gen continues.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/env/file_system.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using testing::CommandResult;
using testing::ExpectOneErrorLine;
using testing::LineValue;
using testing::RunCommand;
using testing::ShellQuote;
using ::testing::HasSubstr;

const std::string kCli = SEALWAL_CLI_BIN;

std::vector<uint64_t> SyncedIndexes(const std::string& out) {
  std::vector<uint64_t> v;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    uint64_t n;
    if (absl::ConsumePrefix(&line, "synced ") && absl::SimpleAtoi(line, &n)) v.push_back(n);
  }
  return v;
}

// The last index of a verify's "entries A..B" line (or of its snapshot
// when no entry is retained).
uint64_t LastVerified(const std::string& out) {
  const std::string entries = LineValue(out, "entries");
  uint64_t last = 0;
  if (entries != "none" && !entries.empty()) {
    std::vector<std::string> parts = absl::StrSplit(entries, "..");
    if (parts.size() == 2 && absl::SimpleAtoi(parts[1], &last)) return last;
    return 0;
  }
  std::vector<std::string> parts = absl::StrSplit(LineValue(out, "snapshot"), ' ');
  if (!absl::SimpleAtoi(parts[0], &last)) return 0;
  return last;
}

class PipelineCliTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args) {
    return RunCommand("env -u SEALWAL_UNLOCK_KEY SEALWAL_RESERVATION_BLOCK=64 " +
                      ShellQuote(kCli) + " " + args);
  }
  // Starts `gen_args` in the background, SIGKILLs it once it has printed
  // `lines` synced lines (or after a random extra delay), and returns its
  // output.
  std::string KillMidRun(const std::string& gen_args, int lines, int extra_ms) {
    const std::string out = tmp_.Sub("gen.out");
    const std::string script = absl::StrCat(
        "SEALWAL_RESERVATION_BLOCK=64 ", ShellQuote(kCli), " ", gen_args, " > ", ShellQuote(out),
        " 2>/dev/null & pid=$!; ",
        "for i in $(seq 1 3000); do n=$(grep -c synced ", ShellQuote(out),
        " 2>/dev/null || echo 0); [ \"$n\" -ge ", lines, " ] && break; sleep 0.01; done; ",
        "sleep ", extra_ms / 1000.0, "; kill -9 $pid; wait $pid; exit 0");
    auto r = RunCommand("env -u SEALWAL_UNLOCK_KEY bash -c " + ShellQuote(script));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::ReadFileOrDie(out);
  }

  testing::TempDir tmp_;
  std::mt19937 rng_{20261202};
};

TEST_F(PipelineCliTest, FlagIsDocumentedAndBadDepthsAreUsageErrors) {
  for (const char* cmd : {"wal gen", "store gen"}) {
    auto h = Run(absl::StrCat(cmd, " --help"));
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_THAT(h.out, HasSubstr("--pipeline")) << cmd;
  }
  const std::string wal = ShellQuote(tmp_.Sub("w"));
  for (const char* depth : {"0", "1025", "x"}) {
    auto r = Run(absl::StrCat("wal gen ", wal, " --entries 1 --size 1 --batch 1 --seed 1 --pipeline ",
                              depth));
    EXPECT_EQ(r.exit_code, 2) << depth;
    ExpectOneErrorLine(r);
  }
  EXPECT_FALSE(env::DefaultFileSystem()->FileExists(tmp_.Sub("w")).ok()) << "a refused gen wrote";
}

TEST_F(PipelineCliTest, PipelinedWalIsTheSynchronousOneByteForByte) {
  const std::string a = tmp_.Sub("sync"), b = tmp_.Sub("piped");
  const std::string args = " --entries 3000 --size 200 --batch 7 --seed 5 --segment-size 65536";
  auto s = Run("wal gen " + ShellQuote(a) + args);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto p = Run("wal gen " + ShellQuote(b) + args + " --pipeline 8");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(s.out, p.out) << "the same synced lines, in the same order";
  const std::vector<uint64_t> synced = SyncedIndexes(p.out);
  ASSERT_EQ(synced.size(), 429u);  // ceil(3000 / 7)
  EXPECT_EQ(synced.back(), 3000u);
  const auto da = testing::DirContents(a), db = testing::DirContents(b);
  ASSERT_GT(da.size(), 3u);  // several segments: cuts under the pipeline
  EXPECT_TRUE(da == db) << "the pipelined WAL differs from the synchronous one";
}

TEST_F(PipelineCliTest, EncryptedPipelinedWalGenKilledAtRandomKeepsEverySyncedIndex) {
  const std::string key = tmp_.Sub("k.key");
  ASSERT_EQ(Run("key init --key-file " + ShellQuote(key)).exit_code, 0);
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  uint64_t printed = 0;
  for (int round = 0; round < 5; ++round) {
    const int lines = 20 + static_cast<int>(rng_() % 200);
    const int extra_ms = static_cast<int>(rng_() % 40);
    const std::string out = KillMidRun(
        "wal gen " + ShellQuote(wal) + " --entries 1000000 --size 700 --batch " +
            std::to_string(1 + round * 3) + " --seed 9 --pipeline 16 --segment-size 32768 "
            "--key-file " + ShellQuote(key),
        lines, extra_ms);
    const std::vector<uint64_t> synced = SyncedIndexes(out);
    ASSERT_FALSE(synced.empty()) << "round " << round;
    for (size_t i = 1; i < synced.size(); ++i) ASSERT_LT(synced[i - 1], synced[i]) << "out of order";
    ASSERT_GT(synced.back(), printed);
    printed = synced.back();
    // Verify repairs nothing (read-only); the next gen repairs a torn tail.
    auto v = Run("wal verify " + ShellQuote(wal) + " --expect-seed 9 --key-file " + ShellQuote(key));
    ASSERT_TRUE(v.exit_code == 0 || absl::StrContains(v.err, "torn")) << v.err;
    if (v.exit_code != 0) {
      auto rep = Run("wal repair " + ShellQuote(wal) + " --key-file " + ShellQuote(key));
      ASSERT_EQ(rep.exit_code, 0) << rep.err;
      v = Run("wal verify " + ShellQuote(wal) + " --expect-seed 9 --key-file " + ShellQuote(key));
      ASSERT_EQ(v.exit_code, 0) << v.err;
    }
    EXPECT_GE(LastVerified(v.out), printed) << "round " << round << ": a synced index was lost";
  }
}

TEST_F(PipelineCliTest, PipelinedStoreGenKilledAtRandomKeepsEverySyncedIndex) {
  const std::string dir = tmp_.Sub("node");
  ASSERT_EQ(Run("store init " + ShellQuote(dir)).exit_code, 0);
  uint64_t printed = 0;
  for (int round = 0; round < 4; ++round) {
    const int lines = 30 + static_cast<int>(rng_() % 150);
    const int extra_ms = static_cast<int>(rng_() % 40);
    const std::string out = KillMidRun(
        "store gen " + ShellQuote(dir) +
            " --entries 1000000 --size 300 --batch 3 --seed 21 --snapshot-every 500 "
            "--rotate-every 700 --segment-size 16384 --pipeline 8",
        lines, extra_ms);
    const std::vector<uint64_t> synced = SyncedIndexes(out);
    ASSERT_FALSE(synced.empty()) << "round " << round;
    for (size_t i = 1; i < synced.size(); ++i) ASSERT_LT(synced[i - 1], synced[i]) << "out of order";
    printed = std::max(printed, synced.back());
    auto v = Run("store verify " + ShellQuote(dir) + " --expect-seed 21");
    ASSERT_EQ(v.exit_code, 0) << "round " << round << ": " << v.err;
    EXPECT_GE(LastVerified(v.out), printed) << "round " << round << ": a synced index was lost";
  }
  // A pipelined gen then runs to its end on what the kills left.
  auto fin = Run("store gen " + ShellQuote(dir) +
                 " --entries 2000 --size 300 --batch 3 --seed 21 --snapshot-every 500 "
                 "--rotate-every 700 --segment-size 16384 --pipeline 8");
  ASSERT_EQ(fin.exit_code, 0) << fin.err;
  auto v = Run("store verify " + ShellQuote(dir) + " --expect-seed 21");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(LastVerified(v.out), SyncedIndexes(fin.out).back());
}

}  // namespace
}  // namespace sealwal
