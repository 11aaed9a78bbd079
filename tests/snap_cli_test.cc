// `sealwal snap save|load|inspect|ls` (docs/cli.md): output lines,
// exit codes, key handling; and a `snap save --stream` killed with SIGKILL
// at random points never leaves a snapshot that `snap load` accepts but is
// incomplete.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using ::testing::HasSubstr;
using testing::RunCommand;
using testing::ShellQuote;

const std::string kCli = SEALWAL_CLI_BIN;

testing::CommandResult Snap(const std::string& args) {
  return RunCommand(absl::StrCat(ShellQuote(kCli), " snap ", args));
}

// The value of the line "KEY VALUE" in out ("" when missing).
std::string Line(const std::string& out, const std::string& key) {
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(l, key + " ")) return std::string(l.substr(key.size() + 1));
  }
  return "";
}

class SnapCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = tmp_.Sub("dek");
    other_key_ = tmp_.Sub("dek2");
    testing::WriteFileOrDie(key_, std::string(32, '\x07'));
    testing::WriteFileOrDie(other_key_, std::string(32, '\x08'));
  }
  testing::TempDir tmp_;
  std::string key_, other_key_;
};

TEST_F(SnapCliTest, SaveLoadRoundTripsWithTheSameDigest) {
  for (bool encrypted : {false, true}) {
    for (bool stream : {false, true}) {
      SCOPED_TRACE(absl::StrCat(encrypted ? "encrypted" : "plain", stream ? " stream" : " inline"));
      const std::string dir =
          tmp_.Sub(absl::StrCat("snap-", stream, encrypted ? "-encrypted" : ""));
      const std::string key = encrypted ? " --dek-file " + ShellQuote(key_) : "";
      auto s = Snap(absl::StrCat("save ", ShellQuote(dir), " --index 100 --term 3 --size 300001",
                                 " --seed 5", stream ? " --stream --chunk-size 65536" : "", key));
      ASSERT_EQ(s.exit_code, 0) << s.err;
      auto l = Snap(absl::StrCat("load ", ShellQuote(dir), " --expect-seed 5", key));
      ASSERT_EQ(l.exit_code, 0) << l.err;
      EXPECT_EQ(Line(l.out, "snapshot"), "100 3");
      EXPECT_EQ(Line(l.out, "bytes"), "300001");
      EXPECT_EQ(Line(l.out, "digest"), Line(s.out, "digest"));
      EXPECT_EQ(Line(l.out, "digest").size(), 32u);
      EXPECT_EQ(Line(l.out, "kind"), stream ? "stream" : "inline");
      EXPECT_EQ(Line(l.out, "algorithm"), encrypted ? "aes-256-gcm" : "not-encrypted");
      // The last three lines are the contract's.
      EXPECT_THAT(l.out, HasSubstr(absl::StrCat("snapshot 100 3\nbytes 300001\ndigest ",
                                                Line(s.out, "digest"), "\n")));
      auto bad = Snap(absl::StrCat("load ", ShellQuote(dir), " --expect-seed 6", key));
      EXPECT_EQ(bad.exit_code, 1);
      EXPECT_THAT(bad.err, HasSubstr("differs from data_gen"));
      auto ins = Snap(absl::StrCat("inspect ", ShellQuote(dir), key));
      EXPECT_EQ(ins.exit_code, 0) << ins.err;
      EXPECT_THAT(ins.out, HasSubstr("index 100 term 3"));
      if (encrypted) {
        EXPECT_THAT(ins.out, ::testing::Not(HasSubstr("UNENCRYPTED")));
        EXPECT_THAT(ins.out, HasSubstr("key_id 0x"));
      } else {
        EXPECT_THAT(ins.out, HasSubstr("warning: snapshot data is stored UNENCRYPTED"));
      }
      auto ls = Snap(absl::StrCat("ls ", ShellQuote(dir), key));
      EXPECT_EQ(ls.exit_code, 0);
      EXPECT_THAT(ls.out, HasSubstr(absl::StrCat("0000000000000003-0000000000000064.snap index 100 "
                                                 "term 3 size 300001 kind ",
                                                 stream ? "stream" : "inline")));
    }
  }
}

TEST_F(SnapCliTest, KeyErrorsExitTwoWithOneLine) {
  const std::string dir = tmp_.Sub("snap-v3-encrypted");
  auto nokey = Snap(absl::StrCat("save ", ShellQuote(dir), " --index 1 --term 1 --size 10 --seed 1"));
  EXPECT_EQ(nokey.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(nokey.err, "sealwal: ")) << nokey.err;
  EXPECT_EQ(std::count(nokey.err.begin(), nokey.err.end(), '\n'), 1);
  ASSERT_EQ(Snap(absl::StrCat("save ", ShellQuote(dir), " --index 1 --term 1 --size 10 --seed 1",
                              " --dek-file ", ShellQuote(key_)))
                .exit_code,
            0);
  const auto before = RunCommand("ls " + ShellQuote(dir)).out;
  auto wrong = Snap(absl::StrCat("load ", ShellQuote(dir), " --dek-file ", ShellQuote(other_key_)));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("key problem"));
  EXPECT_EQ(RunCommand("ls " + ShellQuote(dir)).out, before);  // nothing renamed
  EXPECT_EQ(Snap(absl::StrCat("load ", ShellQuote(dir))).exit_code, 2);
  // Usage errors.
  EXPECT_EQ(Snap("save").exit_code, 2);
  EXPECT_EQ(Snap(absl::StrCat("save ", ShellQuote(dir), " --index 0 --term 1 --size 1 --seed 1")).exit_code, 2);
  EXPECT_EQ(Snap("frobnicate x").exit_code, 2);
  EXPECT_EQ(Snap(absl::StrCat("load ", ShellQuote(tmp_.Sub("missing")))).exit_code, 1);
}

// A key for a directory whose name does not end in "-encrypted" is
// refused by every snap command (exit 2, one line), and nothing changes.
// A key makes a snapshot directory encrypted (the CLI contract): a
// plaintext snapshot in it is then refused, never read as if sealed, and
// nothing is renamed.
TEST_F(SnapCliTest, PlaintextSnapshotIsRefusedUnderAKey) {
  const std::string dir = tmp_.Sub("snap-v3");
  ASSERT_EQ(Snap(absl::StrCat("save ", ShellQuote(dir), " --index 1 --term 1 --size 10 --seed 1"))
                .exit_code,
            0);
  const auto before = RunCommand("ls " + ShellQuote(dir)).out;
  auto r = Snap(absl::StrCat("load ", ShellQuote(dir), " --dek-file ", ShellQuote(key_)));
  EXPECT_NE(r.exit_code, 0);
  testing::ExpectOneErrorLine(r);
  EXPECT_EQ(RunCommand("ls " + ShellQuote(dir)).out, before);
  EXPECT_EQ(Snap(absl::StrCat("load ", ShellQuote(dir))).exit_code, 0);
}

TEST_F(SnapCliTest, LoadFallsBackOverTheCorruptFixtureAndRenamesIt) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  const std::string dir = tmp_.Sub("snap");
  testing::CopyDir(testing::FixturesDir() + "/snap-newest-corrupt/snap", dir);
  auto l = Snap("load " + ShellQuote(dir));
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(Line(l.out, "snapshot"), "500 2");
  EXPECT_EQ(Line(l.out, "bytes"), "10000");
  EXPECT_THAT(l.err, HasSubstr("crc mismatch"));
  EXPECT_EQ(RunCommand("ls " + ShellQuote(dir)).out,
            "0000000000000002-00000000000001f4.snap\n0000000000000003-0000000000000384.snap.broken\n");
}

// Starts `sealwal args...` and returns its pid.
pid_t Spawn(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(kCli.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stdout);
    execv(kCli.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

TEST_F(SnapCliTest, StreamSaveKilledAtRandomNeverLeavesAnIncompleteSnapshot) {
  for (bool encrypted : {false, true}) {
    const std::string dir = tmp_.Sub(encrypted ? "k-encrypted" : "k");
    std::vector<std::string> key;
    if (encrypted) key = {"--dek-file", key_};
    const std::string size = "33554432";  // 32 MiB
    auto base = [&](uint64_t index) {
      std::vector<std::string> a = {"snap", "save", dir, "--index", absl::StrCat(index), "--term",
                                    "2", "--size", size, "--seed", "11", "--stream",
                                    "--chunk-size", "262144"};
      a.insert(a.end(), key.begin(), key.end());
      return a;
    };
    // A complete first snapshot, timing a full save.
    const auto t0 = std::chrono::steady_clock::now();
    pid_t p = Spawn(base(1));
    int st = 0;
    waitpid(p, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const auto full = std::chrono::steady_clock::now() - t0;
    std::mt19937_64 rng(encrypted ? 7 : 8);
    int killed = 0;
    for (uint64_t round = 0; round < 10; ++round) {
      const uint64_t index = 10 + round;
      const auto delay = std::chrono::duration_cast<std::chrono::microseconds>(full) *
                         static_cast<int64_t>(rng() % 1000) / 1000;
      pid_t pid = Spawn(base(index));
      std::this_thread::sleep_for(delay);
      kill(pid, SIGKILL);
      ASSERT_EQ(waitpid(pid, &st, 0), pid);
      // Killed by us, or finished before the kill: a save that failed on
      // its own is a bug, not a crash to recover from.
      const bool by_kill = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
      ASSERT_TRUE(by_kill || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
          << "round " << round << ": the save ended on its own (status " << st << ")";
      if (by_kill) ++killed;
      std::string load = absl::StrCat("load ", ShellQuote(dir), " --expect-seed 11");
      if (encrypted) load += " --dek-file " + ShellQuote(key_);
      auto l = Snap(load);
      ASSERT_EQ(l.exit_code, 0) << "round " << round << ": " << l.err;
      EXPECT_EQ(Line(l.out, "bytes"), size);  // complete, and --expect-seed checked each byte
      const std::string snap = Line(l.out, "snapshot");
      const bool finished = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (finished) {
        EXPECT_EQ(snap, absl::StrCat(index, " 2"));
      }
    }
    EXPECT_GT(killed, 0);
  }
}

}  // namespace
}  // namespace sealwal
