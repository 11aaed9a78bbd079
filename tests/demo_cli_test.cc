// `sealwal demo` (tools/demo.cc), run as the built binary: the whole demo
// exits 0 and prints its key lines (every rotation step in order, the
// rotation's snapshot at or past the switch index, the crash verified, the
// summary, the old key gone), never the whole unlock key, and removes its
// temp dir; `--keep` leaves a store that `store inspect` opens; usage
// errors are exit 2 with one line.
#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using testing::CommandResult;
using testing::ExpectOneErrorLine;
using testing::RunCommand;
using testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;

class DemoCliTest : public ::testing::Test {
 protected:
  // The demo's temp dir goes under this test's own ($TMPDIR), so that
  // nothing is left behind even when a check fails.
  CommandResult Demo(const std::string& args) {
    return RunCommand("env -u SEALWAL_UNLOCK_KEY TMPDIR=" + ShellQuote(tmp_.path()) + " " +
                      ShellQuote(kCli) + " demo " + args);
  }
  testing::TempDir tmp_;
};

TEST_F(DemoCliTest, RunsEndToEndAndPrintsItsKeyLines) {
  const CommandResult r = Demo("");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // stderr holds progress only, no error line.
  EXPECT_THAT(r.err, Not(HasSubstr("sealwal:")));
  EXPECT_THAT(r.err, HasSubstr("entries durable"));

  // The five rotation steps, in their order.
  size_t at = 0;
  for (const char* step : {"rotation 1 create-pending", "rotation 2 switch-write-key",
                           "rotation 3 request-snapshot", "rotation 4 release-old-files",
                           "rotation 5 promote-pending"}) {
    const size_t p = r.out.find(step, at);
    ASSERT_NE(p, std::string::npos) << step << "\n" << r.out;
    at = p;
  }
  // The rotation's snapshot is at or past the index the WAL switched at.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("new key 0x[0-9a-f]{8} at index ([0-9]+)")))
      << r.out;
  const uint64_t n = std::stoull(m[1]);
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("index +([0-9]+) +snapshot saved \\(for the "
                                                     "rotation, >= ([0-9]+)\\)")))
      << r.out;
  EXPECT_EQ(std::stoull(m[2]), n);
  EXPECT_GE(std::stoull(m[1]), n);
  EXPECT_THAT(r.out, HasSubstr("pending none; retained files need: 0x"));

  // The crash: killed, recovered, verified.
  EXPECT_THAT(r.out, HasSubstr("child killed by SIGKILL after"));
  EXPECT_THAT(r.out, HasSubstr("-> every entry the child reported synced is there"));
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("the child reported up to ([0-9]+) synced")));
  EXPECT_GT(std::stoull(m[1]), 100000u);

  // The summary.
  for (const char* row : {"    entries ", "    append, plaintext ", "    append, encrypted ",
                          "    files on disk ", "    peak RSS ", "    keys in node.key ",
                          "    keys retained files need ", "    wall time "}) {
    EXPECT_THAT(r.out, HasSubstr(row));
  }
  EXPECT_THAT(r.out, HasSubstr(": in neither (rotated away)"));
  EXPECT_THAT(r.out, ::testing::EndsWith("demo ok\n"));

  // The unlock key is shown shortened only.
  EXPECT_THAT(r.out, HasSubstr("unlock key   SEALWAL-1-"));
  EXPECT_FALSE(std::regex_search(r.out, std::regex("SEALWAL-1-[A-Za-z0-9_-]{43}")));
  // It cleaned up after itself.
  EXPECT_TRUE(testing::ListDirNames(tmp_.path()).empty());
}

TEST_F(DemoCliTest, KeepLeavesAStoreThatTheCliOpens) {
  const CommandResult r = Demo("--entries 5000 --size 200 --batch 50 --keep");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::vector<std::string> dirs = testing::ListDirNames(tmp_.path());
  ASSERT_EQ(dirs.size(), 1u);
  const std::string dir = tmp_.Sub(dirs[0]);
  EXPECT_THAT(r.out, HasSubstr("files kept in " + dir));
  const CommandResult ins =
      RunCommand("env -u SEALWAL_UNLOCK_KEY " + ShellQuote(kCli) + " store inspect " +
                 ShellQuote(dir + "/node") + " --unlock-key-file " + ShellQuote(dir + "/unlock-key"));
  ASSERT_EQ(ins.exit_code, 0) << ins.out << ins.err;
  EXPECT_EQ(testing::LineValue(ins.out, "keys-present"), "true");
  EXPECT_EQ(testing::LineValue(ins.out, "raft-dek-pending"), "none");
  EXPECT_THAT(r.out, HasSubstr("raft-dek " + testing::LineValue(ins.out, "raft-dek")
                                                 .substr(0, 10)));
}

TEST_F(DemoCliTest, HelpAndUsageErrors) {
  const CommandResult h = Demo("--help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_THAT(h.out, StartsWith("usage: sealwal demo"));
  EXPECT_EQ(h.err, "");
  for (const char* bad : {"--bogus 1", "--entries x", "--entries 10", "extra", "--batch 0"}) {
    const CommandResult r = Demo(bad);
    EXPECT_EQ(r.exit_code, 2) << bad;
    ExpectOneErrorLine(r);
  }
  // Nothing was made for a usage error.
  EXPECT_TRUE(testing::ListDirNames(tmp_.path()).empty());
}

}  // namespace
}  // namespace sealwal
