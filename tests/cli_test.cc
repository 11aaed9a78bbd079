// The `sealwal wal` command contract (docs/cli.md, docs/cli.md):
// exit statuses, the one-line `sealwal: ` errors, the script-readable last
// lines, and that refused commands leave every file untouched.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using ::sealwal::testing::CopyDir;
using ::sealwal::testing::FixturesDir;
using ::sealwal::testing::ReadFileOrDie;
using ::sealwal::testing::RunCommand;
using ::sealwal::testing::ShellQuote;
using ::sealwal::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

testing::CommandResult Sealwal(const std::string& args) {
  return RunCommand(absl::StrCat(ShellQuote(SEALWAL_CLI_BIN), " ", args));
}

std::string LastLine(const std::string& out) {
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  return lines.empty() ? "" : lines.back();
}

// Every file's bytes, so a test can prove a command changed nothing.
std::string Snapshot(const std::string& dir) {
  auto r = RunCommand(absl::StrCat("cd ", ShellQuote(dir), " && find . -type f | sort | xargs sha256sum"));
  return r.out;
}

TEST(CliTest, GenPrintsSyncedAndVerifyChecksEveryEntry) {
  TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  auto gen = Sealwal(absl::StrCat("wal gen ", dir, " --entries 250 --size 100 --batch 50 --seed 7 "
                                  "--segment-size 8192"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(gen.out, "synced 50\nsynced 100\nsynced 150\nsynced 200\nsynced 250\n");

  auto ok = Sealwal(absl::StrCat("wal verify ", dir, " --expect-seed 7"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\nentries 1..250\n"));
  EXPECT_THAT(LastLine(ok.out), StartsWith("digest "));
  EXPECT_EQ(LastLine(ok.out).size(), std::string("digest ").size() + 32);

  auto wrong = Sealwal(absl::StrCat("wal verify ", dir, " --expect-seed 8"));
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, StartsWith("sealwal: "));
}

// gen on an existing WAL continues it (a node restarting), but only with
// the seed that wrote it; otherwise it refuses and changes nothing.
TEST(CliTest, GenContinuesItsOwnWalAndRefusesAnother) {
  TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  ASSERT_EQ(Sealwal(absl::StrCat("wal gen ", dir, " --entries 1 --size 1 --batch 1 --seed 1"))
                .exit_code, 0);
  const std::string before = Snapshot(dir);
  auto other = Sealwal(absl::StrCat("wal gen ", dir, " --entries 1 --size 1 --batch 1 --seed 2"));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.err, StartsWith("sealwal: "));
  EXPECT_EQ(Snapshot(dir), before);

  auto more = Sealwal(absl::StrCat("wal gen ", dir, " --entries 2 --size 1 --batch 1 --seed 1"));
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_EQ(more.out, "synced 2\nsynced 3\n");
  auto v = Sealwal(absl::StrCat("wal verify ", dir, " --expect-seed 1"));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_THAT(v.out, HasSubstr("entries 1..3"));
}

TEST(CliTest, UsageErrorsExitTwoWithOneLine) {
  for (const char* args : {"wal gen", "wal dump", "wal frobnicate x", "wal dump x --bogus 1",
                           "wal gen x --entries nope --size 1 --batch 1 --seed 1"}) {
    auto r = Sealwal(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_THAT(r.err, StartsWith("sealwal: ")) << args;
  }
}

TEST(CliTest, MissingWalIsBadDataExitOne) {
  TempDir tmp;
  for (const char* cmd : {"wal dump", "wal verify", "wal repair"}) {
    auto r = Sealwal(absl::StrCat(cmd, " ", tmp.Sub("nope")));
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_THAT(r.err, StartsWith("sealwal: ")) << cmd;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// etcd's Repair looks at the last segment only; ours must not call a WAL
// with a corrupt older segment healthy, and must not touch it.
TEST(CliTest, RepairRefusesCrcMismatchAndChangesNothing) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  TempDir tmp;
  CopyDir(FixturesDir() + "/crc-flip/wal", tmp.Sub("wal"));
  const std::string before = Snapshot(tmp.Sub("wal"));
  auto r = Sealwal(absl::StrCat("wal repair ", tmp.Sub("wal")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("sealwal: crc_mismatch"));
  EXPECT_EQ(Snapshot(tmp.Sub("wal")), before);
}

TEST(CliTest, TornTailIsReportedUntilRepaired) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  for (const char* fixture : {"torn-truncated", "torn-zeroed"}) {
    TempDir tmp;
    const std::string dir = tmp.Sub("wal");
    CopyDir(FixturesDir() + "/" + fixture + "/wal", dir);
    auto torn = Sealwal(absl::StrCat("wal verify ", dir));
    EXPECT_EQ(torn.exit_code, 1) << fixture;
    EXPECT_THAT(torn.err, HasSubstr("torn tail")) << fixture;

    auto rep = Sealwal(absl::StrCat("wal repair ", dir));
    ASSERT_EQ(rep.exit_code, 0) << rep.err;
    EXPECT_THAT(rep.out, StartsWith("repaired "));
    auto ok = Sealwal(absl::StrCat("wal verify ", dir));
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    auto again = Sealwal(absl::StrCat("wal repair ", dir));
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_EQ(again.out, "nothing to repair\n");
  }
}

// A zeroed sector with synced entries after it is damage inside the log,
// not a torn write: etcd's rule would have Repair keep entries 1..7 of 20
// (zeroed: the ends of entry 8 and of its HardState, the start of entry 9).
TEST(CliTest, ZeroedSectorBeforeSyncedEntriesIsNotRepairedAway) {
  TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  auto gen = Sealwal(absl::StrCat("wal gen ", dir, " --entries 20 --size 1000 --batch 1 --seed 7"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  ASSERT_EQ(LastLine(gen.out), "synced 20");
  const std::string seg = dir + "/0000000000000000-0000000000000000.wal";
  ASSERT_EQ(RunCommand(absl::StrCat("dd if=/dev/zero of=", ShellQuote(seg),
                                    " bs=512 seek=16 count=1 conv=notrunc 2>/dev/null"))
                .exit_code,
            0);
  const std::string before = Snapshot(dir);

  auto verify = Sealwal(absl::StrCat("wal verify ", dir));
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_THAT(verify.err, StartsWith("sealwal: crc_mismatch"));
  EXPECT_THAT(verify.err, HasSubstr("not a torn tail"));
  auto rep = Sealwal(absl::StrCat("wal repair ", dir));
  EXPECT_EQ(rep.exit_code, 1);
  EXPECT_THAT(rep.err, HasSubstr("last intact entry before it is index 7 term 1"));
  EXPECT_THAT(rep.err, HasSubstr("the first entry there is index 10 term 1"));
  auto dump = Sealwal(absl::StrCat("wal dump ", dir, " --format jsonl"));
  EXPECT_EQ(dump.exit_code, 1);
  EXPECT_THAT(LastLine(dump.out), StartsWith("{\"record\":\"error\",\"class\":\"crc_mismatch\""));
  EXPECT_EQ(Snapshot(dir), before);
}

TEST(CliTest, DumpJsonlFromPositionAndErrors) {
  TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  ASSERT_EQ(Sealwal(absl::StrCat("wal gen ", dir, " --entries 5 --size 8 --batch 5 --seed 3"))
                .exit_code, 0);
  auto all = Sealwal(absl::StrCat("wal dump ", dir, " --format jsonl"));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::vector<std::string> lines = absl::StrSplit(all.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u + 5u);
  EXPECT_THAT(lines[0], StartsWith("{\"record\":\"metadata\",\"data_b64\":"));
  EXPECT_EQ(lines[1], "{\"record\":\"snapshot\",\"index\":0,\"term\":0}");
  EXPECT_EQ(lines[2], "{\"record\":\"hardstate\",\"term\":1,\"vote\":1,\"commit\":5}");
  EXPECT_THAT(lines[3], StartsWith("{\"record\":\"entry\",\"index\":1,\"term\":1,\"type\":0,"));

  // A position the WAL never recorded: everything, then the error line.
  auto nf = Sealwal(absl::StrCat("wal dump ", dir, " --format jsonl --from 3:1"));
  EXPECT_EQ(nf.exit_code, 1);
  EXPECT_THAT(LastLine(nf.out), StartsWith("{\"record\":\"error\",\"class\":\"snapshot_not_found\""));

  auto bad = Sealwal(absl::StrCat("wal dump ", dir, " --from nonsense"));
  EXPECT_EQ(bad.exit_code, 2);
}

// Every command answers --help (or -h) with its usage on stdout and exit 0,
// whatever else is on the line, and touches nothing.
TEST(CliTest, EveryCommandAnswersHelp) {
  for (const char* cmd :
       {"", "wal", "wal gen", "wal dump", "wal verify", "wal repair", "snap", "snap save",
        "snap load", "snap inspect", "snap ls", "key", "key init", "key inspect", "key rotate-dek",
        "key rotate-kek", "key lock", "key unlock", "demo", "wal gen /nonexistent/x --entries"}) {
    for (const char* flag : {"--help", "-h"}) {
      SCOPED_TRACE(absl::StrCat("sealwal ", cmd, " ", flag));
      auto r = Sealwal(absl::StrCat(cmd, " ", flag));
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(r.out, StartsWith("usage: sealwal "));
      EXPECT_EQ(r.err, "");
    }
  }
}

// The parser (CLI11) keeps the contract for every command: --help is
// usage on stdout, exit 0, nothing on stderr; an unknown flag, a missing
// required flag or positional, a flag without its value and a bad number
// are exit 2 with exactly one "sealwal: " line; nothing is made.
TEST(CliTest, EveryCommandKeepsTheParseContract) {
  TempDir tmp;
  const std::string d = ShellQuote(tmp.Sub("x"));
  struct Case {
    std::string cmd;      // with every required argument
    std::string missing;  // the same with a required argument left out
  };
  const std::vector<Case> cases = {
      {"wal gen " + d + " --entries 1 --size 1 --batch 1 --seed 1",
       "wal gen " + d + " --entries 1 --size 1 --batch 1"},
      {"wal dump " + d, "wal dump"},
      {"wal verify " + d, "wal verify"},
      {"wal repair " + d, "wal repair"},
      {"snap save " + d + " --index 1 --term 1 --size 1 --seed 1",
       "snap save " + d + " --index 1 --term 1 --size 1"},
      {"snap load " + d, "snap load"},
      {"snap inspect " + d, "snap inspect"},
      {"snap ls " + d, "snap ls"},
      {"key init --key-file " + d, "key init --autolock"},
      {"key inspect --key-file " + d, "key inspect"},
      {"key rotate-dek --key-file " + d, "key rotate-dek"},
      {"key rotate-kek --key-file " + d, "key rotate-kek"},
      {"key lock --key-file " + d, "key lock"},
      {"key unlock --key-file " + d, "key unlock"},
      {"store init " + d, "store init --autolock"},
      {"store gen " + d + " --entries 1 --size 1 --batch 1 --seed 1",
       "store gen " + d + " --entries 1 --size 1 --seed 1"},
      {"store verify " + d, "store verify"},
      {"store inspect " + d, "store inspect"},
      {"store rotate " + d, "store rotate"},
      {"demo --entries 1000", ""},  // demo requires nothing
      {"wal", ""},
      {"snap", ""},
      {"key", ""},
      {"store", ""},
  };
  auto expect_usage_error = [&](const std::string& args) {
    SCOPED_TRACE(absl::StrCat("sealwal ", args));
    auto r = Sealwal(args);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, StartsWith("sealwal: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  for (const Case& c : cases) {
    for (const char* help : {"--help", "-h"}) {
      SCOPED_TRACE(absl::StrCat("sealwal ", c.cmd, " ", help));
      auto r = Sealwal(absl::StrCat(c.cmd, " ", help));
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(r.out, StartsWith("usage: sealwal "));
      EXPECT_EQ(r.err, "");
    }
    expect_usage_error(c.cmd + " --no-such-flag 1");
    expect_usage_error(c.cmd + " --no-such-switch");
    if (!c.missing.empty()) expect_usage_error(c.missing);
  }
  // No or an unknown command or subcommand.
  expect_usage_error("");
  expect_usage_error("no-such-command");
  for (const char* group : {"wal", "snap", "key", "store"}) {
    expect_usage_error(group);
    expect_usage_error(absl::StrCat(group, " no-such-command"));
  }
  // Bad numbers (u64: no sign, no overflow, no garbage) and flags without
  // their values.
  for (const char* n : {"-1", "18446744073709551616", "12x", "x", "''", "0x"}) {
    expect_usage_error(absl::StrCat("wal gen ", d, " --entries ", n, " --size 1 --batch 1 --seed 1"));
    expect_usage_error(absl::StrCat("store gen ", d, " --entries 1 --size 1 --batch 1 --seed ", n));
    expect_usage_error(absl::StrCat("demo --entries ", n));
  }
  expect_usage_error(absl::StrCat("wal gen ", d, " --size 1 --batch 1 --seed 1 --entries"));
  expect_usage_error(absl::StrCat("wal dump ", d, " --from"));
  // Both value syntaxes, hex, and the largest u64 parse.
  auto eq = Sealwal(absl::StrCat("wal gen ", d, " --entries=0 --size=1 --batch 1 "
                                 "--seed=18446744073709551615 --segment-size=0x1000"));
  EXPECT_EQ(eq.exit_code, 0) << eq.err;
  // A test's directory: nothing else was made by a usage error.
  EXPECT_EQ(testing::ListDirNames(tmp.path()), std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace sealwal
