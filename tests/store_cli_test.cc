// `sealwal store ...` (docs/cli-store.md), run as the built binary: init/gen/
// verify round trips (encrypted with a generated or given unlock key, and
// plaintext), gen continuing on an existing store, gen killed with SIGKILL
// (verify shows every `synced` entry), `store rotate` while gen runs (a
// `rotated` line, the old key gone from the key file and from every retained
// file), inspect, --help on each command, and the exit contract.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using testing::CommandResult;
using testing::ExpectOneErrorLine;
using testing::LineValue;
using testing::RunCommand;
using testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;

std::vector<std::string> Lines(const std::string& out, absl::string_view prefix) {
  std::vector<std::string> v;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, prefix)) v.emplace_back(line);
  }
  return v;
}

class StoreCliTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args) {
    return RunCommand((unlock_.empty() ? std::string("env -u SEALWAL_UNLOCK_KEY ")
                                       : "SEALWAL_UNLOCK_KEY=" + ShellQuote(unlock_) + " ") +
                      "SEALWAL_RESERVATION_BLOCK=64 " + ShellQuote(kCli) + " " + args);
  }
  std::string Dir() { return ShellQuote(dir_); }

  testing::TempDir tmp_;
  const std::string dir_ = tmp_.Sub("node");
  std::string unlock_;
};

TEST_F(StoreCliTest, HelpOnEveryCommand) {
  for (const char* sub : {"", "init", "gen", "verify", "inspect", "rotate"}) {
    auto r = Run(absl::StrCat("store ", sub, " --help"));
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_THAT(r.out, StartsWith("usage: sealwal store")) << sub;
    EXPECT_EQ(r.err, "") << sub;
  }
  auto r = Run("--help");
  EXPECT_THAT(r.out, HasSubstr("store init|gen|verify|inspect|rotate"));
}

TEST_F(StoreCliTest, InitGenVerifyRoundTripAndContinue) {
  auto init = Run("store init " + Dir() + " --autolock");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  unlock_ = LineValue(init.out, "unlock-key");
  ASSERT_THAT(unlock_, StartsWith("SEALWAL-1-"));
  EXPECT_EQ(LineValue(init.out, "kind"), "encrypted");
  // A second init refuses (exit 2, one line).
  auto again = Run("store init " + Dir() + " --autolock");
  EXPECT_EQ(again.exit_code, 2);
  ExpectOneErrorLine(again);

  auto gen = Run("store gen " + Dir() +
                 " --entries 250 --size 100 --batch 10 --seed 3 --snapshot-every 100 "
                 "--segment-size 8192");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(testing::LastNumberAfter(gen.out, "synced "), 250u);
  EXPECT_EQ(Lines(gen.out, "snapshot ").size(), 2u);
  auto v = Run("store verify " + Dir() + " --expect-seed 3");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  // Every entry the retained WAL holds: GC kept the snapshots at 100 and
  // 200 and the segments from the one holding 100, so verify reads from
  // there, although a restart replays only what follows 200. The newest
  // snapshot is at the last index and "entries" still lists them.
  EXPECT_EQ(LineValue(v.out, "entries"), "101..250");
  EXPECT_EQ(LineValue(v.out, "snapshot"), "200 1");
  const std::string digest = LineValue(v.out, "digest");
  EXPECT_EQ(digest.size(), 32u);
  // The last line is the digest; verify reads only.
  EXPECT_THAT(v.out, ::testing::EndsWith("digest " + digest + "\n"));
  auto v2 = Run("store verify " + Dir());
  EXPECT_EQ(LineValue(v2.out, "digest"), digest);
  // A wrong seed is a data error.
  auto bad = Run("store verify " + Dir() + " --expect-seed 4");
  EXPECT_EQ(bad.exit_code, 1);
  ExpectOneErrorLine(bad);
  // gen continues after the last entry.
  auto more = Run("store gen " + Dir() + " --entries 30 --size 100 --batch 7 --seed 3");
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_EQ(Lines(more.out, "synced ").front(), "synced 257");
  EXPECT_EQ(testing::LastNumberAfter(more.out, "synced "), 280u);
  v = Run("store verify " + Dir() + " --expect-seed 3");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(LineValue(v.out, "entries"), "101..280");
  // Without the unlock key: a key error, exit 2, nothing changed.
  const std::string key = unlock_;
  unlock_.clear();
  auto locked = Run("store verify " + Dir());
  EXPECT_EQ(locked.exit_code, 2);
  ExpectOneErrorLine(locked);
  unlock_ = key;
  auto ins = Run("store inspect " + Dir());
  ASSERT_EQ(ins.exit_code, 0) << ins.err;
  EXPECT_EQ(LineValue(ins.out, "keys-present"), "true");
  EXPECT_EQ(LineValue(ins.out, "raft-dek-pending"), "none");
}

TEST_F(StoreCliTest, PlaintextStore) {
  auto init = Run("store init " + Dir() + " --plaintext");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(LineValue(init.out, "kind"), "plaintext");
  auto gen = Run("store gen " + Dir() + " --entries 40 --size 20 --batch 3 --seed 8");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto v = Run("store verify " + Dir() + " --expect-seed 8");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(LineValue(v.out, "entries"), "1..40");
  EXPECT_EQ(LineValue(v.out, "snapshot"), "none");
  auto rot = Run("store rotate " + Dir());
  EXPECT_EQ(rot.exit_code, 2);
  ExpectOneErrorLine(rot);
  auto usage = Run("store gen " + Dir() + " --entries 1 --size 1 --batch 1");
  EXPECT_EQ(usage.exit_code, 2);
  ExpectOneErrorLine(usage);
}

TEST_F(StoreCliTest, GenKilledWithSigkillKeepsEverySyncedEntry) {
  auto init = Run("store init " + Dir());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string out = tmp_.Sub("gen.out");
  for (int round = 0; round < 3; ++round) {
    const int wait_lines = 30 + 60 * round;
    const std::string script = absl::StrCat(
        "SEALWAL_RESERVATION_BLOCK=64 ", ShellQuote(kCli), " store gen ", Dir(),
        " --entries 1000000 --size 300 --batch 3 --seed 21 --snapshot-every 500 "
        "--rotate-every 700 --segment-size 16384 > ",
        ShellQuote(out), " 2>/dev/null & pid=$!; ",
        "for i in $(seq 1 3000); do n=$(grep -c synced ", ShellQuote(out),
        " 2>/dev/null || echo 0); [ \"$n\" -ge ", wait_lines, " ] && break; sleep 0.01; done; ",
        "kill -9 $pid; wait $pid; exit 0");
    auto r = RunCommand("env -u SEALWAL_UNLOCK_KEY bash -c " + ShellQuote(script));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t synced = testing::LastNumberAfter(testing::ReadFileOrDie(out), "synced ");
    ASSERT_GT(synced, 0u);
    auto v = Run("store verify " + Dir() + " --expect-seed 21");
    ASSERT_EQ(v.exit_code, 0) << "round " << round << ": " << v.err;
    const std::string entries = LineValue(v.out, "entries");
    uint64_t last = 0;
    if (entries != "none") {
      std::vector<std::string> parts = absl::StrSplit(entries, "..");
      ASSERT_EQ(parts.size(), 2u);
      ASSERT_TRUE(absl::SimpleAtoi(parts[1], &last));
    } else {
      std::vector<std::string> parts = absl::StrSplit(LineValue(v.out, "snapshot"), ' ');
      ASSERT_TRUE(absl::SimpleAtoi(parts[0], &last));
    }
    EXPECT_GE(last, synced) << "round " << round;
    auto ins = Run("store inspect " + Dir());
    EXPECT_EQ(ins.exit_code, 0) << ins.out << ins.err;
  }
}

TEST_F(StoreCliTest, RotateWhileGenRunsEndsWithTheOldKeyGone) {
  auto init = Run("store init " + Dir());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string old_key = LineValue(init.out, "raft-dek");
  ASSERT_THAT(old_key, StartsWith("0x"));
  const std::string out = tmp_.Sub("gen.out");
  // gen runs for a while; once it has synced some batches, `store rotate`
  // asks for a rotation through the key file only.
  const std::string script = absl::StrCat(
      "SEALWAL_RESERVATION_BLOCK=64 ", ShellQuote(kCli), " store gen ", Dir(),
      " --entries 6000 --size 100 --batch 5 --seed 4 --segment-size 16384 > ", ShellQuote(out),
      " 2>", ShellQuote(out + ".err"), " & pid=$!; ",
      "for i in $(seq 1 3000); do n=$(grep -c synced ", ShellQuote(out),
      " 2>/dev/null || echo 0); [ \"$n\" -ge 20 ] && break; sleep 0.01; done; ",
      ShellQuote(kCli), " store rotate ", Dir(), " || exit 9; wait $pid");
  auto r = RunCommand("env -u SEALWAL_UNLOCK_KEY bash -c " + ShellQuote(script));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << testing::ReadFileOrDie(out + ".err");
  const std::string gen = testing::ReadFileOrDie(out);
  const std::vector<std::string> rotated = Lines(gen, "rotated ");
  ASSERT_EQ(rotated.size(), 1u) << gen.substr(0, 2000);
  const std::string new_key = rotated[0].substr(std::string("rotated ").size());
  EXPECT_NE(new_key, old_key);
  EXPECT_FALSE(Lines(gen, "snapshot ").empty());
  auto ins = Run("store inspect " + Dir());
  ASSERT_EQ(ins.exit_code, 0) << ins.err;
  EXPECT_THAT(ins.out, Not(HasSubstr(old_key)));
  EXPECT_THAT(LineValue(ins.out, "raft-dek"), StartsWith(new_key));
  EXPECT_EQ(LineValue(ins.out, "raft-dek-pending"), "none");
  EXPECT_EQ(LineValue(ins.out, "raft-dek-needs-rotation"), "false");
  EXPECT_EQ(LineValue(ins.out, "keys-present"), "true");
  auto v = Run("store verify " + Dir() + " --expect-seed 4");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_THAT(LineValue(v.out, "entries"), ::testing::EndsWith("..6000"));
}

// A rotation killed with SIGKILL once each of its steps is durable (so also
// just before the next one): after create-pending (before the switch),
// after the WAL switched keys, after the snapshot was requested (before it
// is saved), once the rotation's snapshot is saved (before old files go),
// after old files were released (before promotion) and after promotion
// (kForgetKey only follows a crash, when a key no file needs is still held;
// storage_test covers it). Each time the store reopens with every
// synced entry, a second gen completes the rotation, and the old DEK is then
// gone from the key file and from every retained file.
TEST_F(StoreCliTest, RotationKilledAtEachStepRecovers) {
  for (const char* point : {"create-pending", "switch-write-key", "request-snapshot",
                            "rotation-snapshot", "release-old-files", "promote-pending"}) {
    SCOPED_TRACE(point);
    testing::TempDir tmp;
    const std::string dir = ShellQuote(tmp.Sub("node"));
    auto init = Run("store init " + dir);
    ASSERT_EQ(init.exit_code, 0) << init.err;
    const std::string old_key = LineValue(init.out, "raft-dek");
    const std::string out = tmp.Sub("gen.out");
    auto killed = RunCommand(absl::StrCat(
        "env -u SEALWAL_UNLOCK_KEY SEALWAL_RESERVATION_BLOCK=64 SEALWAL_TEST_KILL_AFTER_STEP=",
        point, " ", ShellQuote(kCli), " store gen ", dir,
        " --entries 4000 --size 200 --batch 10 --seed 8 --snapshot-every 1000 "
        "--rotate-every 1500 --segment-size 16384 > ", ShellQuote(out)));
    EXPECT_NE(killed.exit_code, 0) << "gen was not killed";
    const std::string gen_out = testing::ReadFileOrDie(out);
    const uint64_t synced = testing::LastNumberAfter(gen_out, "synced ");
    ASSERT_GE(synced, 1500u) << gen_out.substr(gen_out.size() > 500 ? gen_out.size() - 500 : 0);
    EXPECT_LT(synced, 4000u);
    // Every synced entry reads back, or is covered by the snapshot (when
    // the rotation's release left no snapshot record below it to read from).
    auto v = Run("store verify " + dir + " --expect-seed 8");
    ASSERT_EQ(v.exit_code, 0) << v.err;
    uint64_t last = 0;
    if (const std::string entries = LineValue(v.out, "entries"); entries != "none") {
      std::vector<std::string> range = absl::StrSplit(entries, "..");
      ASSERT_EQ(range.size(), 2u) << v.out;
      ASSERT_TRUE(absl::SimpleAtoi(range[1], &last));
    } else {
      std::vector<std::string> snap = absl::StrSplit(LineValue(v.out, "snapshot"), ' ');
      ASSERT_TRUE(absl::SimpleAtoi(snap[0], &last)) << v.out;
    }
    EXPECT_GE(last, synced);
    auto ins = Run("store inspect " + dir);
    EXPECT_EQ(ins.exit_code, 0) << ins.out << ins.err;
    // A second writer (no rotation of its own) finishes the rotation.
    auto more = Run("store gen " + dir +
                    " --entries 1200 --size 200 --batch 10 --seed 8 --snapshot-every 1000 "
                    "--segment-size 16384");
    ASSERT_EQ(more.exit_code, 0) << more.err;
    ins = Run("store inspect " + dir);
    ASSERT_EQ(ins.exit_code, 0) << ins.out << ins.err;
    EXPECT_EQ(LineValue(ins.out, "raft-dek-pending"), "none");
    EXPECT_EQ(LineValue(ins.out, "keys-present"), "true");
    EXPECT_THAT(ins.out, Not(HasSubstr(old_key))) << ins.out;
    v = Run("store verify " + dir + " --expect-seed 8");
    ASSERT_EQ(v.exit_code, 0) << v.err;
    EXPECT_THAT(LineValue(v.out, "entries"),
                ::testing::EndsWith(absl::StrCat("..", last + 1200)));
  }
}

// `store gen --rotate-after SECONDS`: a DEK older than that is rotated by
// the writer (a `rotated` line); a young one is not; 0 is a usage error.
TEST_F(StoreCliTest, GenRotateAfterRotatesAnOldDek) {
  auto init = Run("store init " + Dir());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string args = " --entries 200 --size 50 --batch 10 --seed 5 --segment-size 8192";
  auto young = Run("store gen " + Dir() + args + " --rotate-after 3600");
  ASSERT_EQ(young.exit_code, 0) << young.err;
  EXPECT_TRUE(Lines(young.out, "rotated ").empty()) << young.out;
  auto zero = Run("store gen " + Dir() + args + " --rotate-after 0");
  EXPECT_EQ(zero.exit_code, 2);
  ExpectOneErrorLine(zero);
  RunCommand("sleep 2");
  auto old = Run("store gen " + Dir() + args + " --rotate-after 1");
  ASSERT_EQ(old.exit_code, 0) << old.err;
  EXPECT_FALSE(Lines(old.out, "rotated ").empty()) << old.out;
  auto v = Run("store verify " + Dir() + " --expect-seed 5");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace sealwal
