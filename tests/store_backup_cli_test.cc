// `sealwal store backup|restore` and the key-material lines of `store|key|
// snap inspect` (docs/cli-store.md), run as the built binary: a backup taken
// while `store gen` appends restores to a store that verifies against the
// seed and equals the source's digest up to the consistency point; a quiet
// store round-trips to the same `store verify` output; refusals (wrong or
// missing unlock key, damaged, truncated, non-empty target, redacted) are
// one line with exit 1 or 2 and leave the target as it was; inspect says
// what key material each kind of file holds.
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
using ::testing::Not;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;

class StoreBackupCliTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args, const std::string& unlock) {
    return RunCommand((unlock.empty() ? std::string("env -u SEALWAL_UNLOCK_KEY ")
                                      : "SEALWAL_UNLOCK_KEY=" + ShellQuote(unlock) + " ") +
                      "SEALWAL_RESERVATION_BLOCK=64 " + ShellQuote(kCli) + " " + args);
  }
  CommandResult Run(const std::string& args) { return Run(args, unlock_); }
  std::string Q(const std::string& name) { return ShellQuote(tmp_.Sub(name)); }

  // An autolocked store with `entries` entries and snapshots every 400.
  void MakeStore(uint64_t entries, bool autolock = true) {
    auto init = Run("store init " + Q("s") + (autolock ? " --autolock" : ""), "");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    if (autolock) unlock_ = LineValue(init.out, "unlock-key");
    auto gen = Run(absl::StrCat("store gen ", Q("s"), " --entries ", entries,
                                " --size 120 --batch 10 --seed 9 --snapshot-every 400"));
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
  }
  // The lines of `store verify` that describe content.
  std::string Content(const std::string& dir) {
    auto v = Run("store verify " + Q(dir) + " --expect-seed 9");
    EXPECT_EQ(v.exit_code, 0) << v.err;
    std::string out;
    for (absl::string_view l : absl::StrSplit(v.out, '\n')) {
      if (absl::StartsWith(l, "entries ") || absl::StartsWith(l, "digest ") ||
          absl::StartsWith(l, "snapshot ")) {
        absl::StrAppend(&out, l, "\n");
      }
    }
    return out;
  }

  testing::TempDir tmp_;
  std::string unlock_;
};

TEST_F(StoreBackupCliTest, HelpOnBothCommands) {
  for (const char* sub : {"backup", "restore"}) {
    auto r = Run(absl::StrCat("store ", sub, " --help"));
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_THAT(r.out, StartsWith("usage: sealwal store")) << sub;
  }
  auto missing = Run("store backup " + Q("s"));  // no --out
  EXPECT_EQ(missing.exit_code, 2);
  ExpectOneErrorLine(missing);
}

TEST_F(StoreBackupCliTest, QuietStoreRoundTripsToTheSameContent) {
  MakeStore(3000);
  auto b = Run("store backup " + Q("s") + " --out " + Q("b"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.err, "");
  EXPECT_THAT(LineValue(b.out, "key-material"), StartsWith("wrapped"));
  EXPECT_EQ(LineValue(b.out, "snapshot"), "2800 1");
  struct stat st;
  ASSERT_EQ(::stat(tmp_.Sub("b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto r = Run("store restore " + Q("b") + " --to " + Q("r"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "raft-dek-needs-rotation"), "true");
  EXPECT_EQ(Content("r"), Content("s"));
  // The restored store takes writes where the original stopped (and rotates).
  auto gen = Run("store gen " + Q("r") +
                 " --entries 100 --size 120 --batch 10 --seed 9 --snapshot-every 400");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.out, HasSubstr("synced 3100"));
  EXPECT_THAT(gen.out, HasSubstr("rotated "));
}

TEST_F(StoreBackupCliTest, BackupWhileGenAppendsRestoresWhatWasSynced) {
  MakeStore(2000);
  CommandResult writer;
  std::thread t([&] {
    writer = Run("store gen " + Q("s") +
                 " --entries 40000 --size 120 --batch 50 --seed 9 --snapshot-every 400");
  });
  // Let the writer get going, then back up twice while it runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto b1 = Run("store backup " + Q("s") + " --out " + Q("b1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto b2 = Run("store backup " + Q("s") + " --out " + Q("b2"));
  t.join();
  ASSERT_EQ(writer.exit_code, 0) << writer.err;
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  for (const char* b : {"b1", "b2"}) {
    SCOPED_TRACE(b);
    const std::string to = absl::StrCat("r-", b);
    auto r = Run("store restore " + Q(b) + " --to " + Q(to));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // --expect-seed checks every restored entry against data_gen; the
    // backup holds at least what existed before gen started.
    auto v = Run("store verify " + Q(to) + " --expect-seed 9");
    ASSERT_EQ(v.exit_code, 0) << v.err;
    const std::string entries = LineValue(v.out, "entries");
    std::vector<std::string> range = absl::StrSplit(entries, "..");
    ASSERT_EQ(range.size(), 2u) << entries;
    EXPECT_GE(std::stoull(range[1]), 2000u);
  }
}

TEST_F(StoreBackupCliTest, RefusalsAreOneLineAndLeaveTheTargetAlone) {
  MakeStore(1500);
  ASSERT_EQ(Run("store backup " + Q("s") + " --out " + Q("b")).exit_code, 0);
  const std::string good = testing::ReadFileOrDie(tmp_.Sub("b"));
  const std::string wrong = "SEALWAL-1-" + std::string(43, 'A');
  auto expect_refused = [&](const CommandResult& r, int code, const std::string& what) {
    EXPECT_EQ(r.exit_code, code) << what << ": " << r.err;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr(what));
    struct stat st;
    EXPECT_NE(::stat(tmp_.Sub("r").c_str(), &st), 0) << "target left behind";
    EXPECT_NE(::stat(tmp_.Sub("r.restore-tmp").c_str(), &st), 0);
  };
  expect_refused(Run("store restore " + Q("b") + " --to " + Q("r"), wrong), 2, "unlock key");
  expect_refused(Run("store restore " + Q("b") + " --to " + Q("r"), ""), 2, "unlock key");
  std::string damaged = good;
  damaged[damaged.size() / 2] ^= 0x04;
  testing::WriteFileOrDie(tmp_.Sub("d"), damaged);
  expect_refused(Run("store restore " + Q("d") + " --to " + Q("r")), 1, "checksum");
  testing::WriteFileOrDie(tmp_.Sub("t"), good.substr(0, good.size() - 100));
  expect_refused(Run("store restore " + Q("t") + " --to " + Q("r")), 1, "truncated");
  ASSERT_EQ(Run("store backup " + Q("s") + " --out " + Q("x") + " --redact", "").exit_code, 0);
  expect_refused(Run("store restore " + Q("x") + " --to " + Q("r")), 2, "redacted");
  // A non-empty target: refused, untouched.
  testing::WriteFileOrDie(tmp_.Sub("r"), "");  // a file, not a directory
  auto r = Run("store restore " + Q("b") + " --to " + Q("r"));
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_EQ(testing::ReadFileOrDie(tmp_.Sub("r")), "");
  auto nonempty = Run("store restore " + Q("b") + " --to " + Q("s"));
  EXPECT_EQ(nonempty.exit_code, 2);
  EXPECT_THAT(nonempty.err, HasSubstr("not empty"));
}

TEST_F(StoreBackupCliTest, InspectSaysWhatKeyMaterialEachFileHolds) {
  MakeStore(900);
  // The store, its key file, a snapshot directory.
  auto si = Run("store inspect " + Q("s"));
  ASSERT_EQ(si.exit_code, 0) << si.err;
  EXPECT_THAT(LineValue(si.out, "key-material"), StartsWith("wrapped"));
  auto ki = Run("key inspect --key-file " + ShellQuote(tmp_.Sub("s/node.key")));
  ASSERT_EQ(ki.exit_code, 0) << ki.err;
  EXPECT_THAT(LineValue(ki.out, "key-material"), StartsWith("wrapped"));
  auto sn = Run("snap inspect " + ShellQuote(tmp_.Sub("s/snap-v3-encrypted")) + " --key-file " +
                ShellQuote(tmp_.Sub("s/node.key")));
  ASSERT_EQ(sn.exit_code, 0) << sn.err;
  EXPECT_THAT(sn.out, HasSubstr("key-material none (the data is sealed"));
  // A backup with keys and a redacted one.
  ASSERT_EQ(Run("store backup " + Q("s") + " --out " + Q("b")).exit_code, 0);
  ASSERT_EQ(Run("store backup " + Q("s") + " --out " + Q("x") + " --redact", "").exit_code, 0);
  auto bi = Run("store inspect " + Q("b"), "");
  ASSERT_EQ(bi.exit_code, 0) << bi.err;
  EXPECT_EQ(LineValue(bi.out, "checksums"), "ok");
  EXPECT_EQ(LineValue(bi.out, "redacted"), "false");
  EXPECT_THAT(LineValue(bi.out, "key-material"), StartsWith("wrapped"));
  EXPECT_THAT(bi.out, HasSubstr("member node.key "));
  auto xi = Run("store inspect " + Q("x"), "");
  ASSERT_EQ(xi.exit_code, 0) << xi.err;
  EXPECT_EQ(LineValue(xi.out, "redacted"), "true");
  EXPECT_THAT(LineValue(xi.out, "key-material"), StartsWith("none (redacted"));
  EXPECT_THAT(xi.out, Not(HasSubstr("member node.key")));
  EXPECT_EQ(testing::ReadFileOrDie(tmp_.Sub("x")).find("raft-dek"), std::string::npos);
  // A damaged backup: inspect checks the checksums (exit 1).
  std::string bytes = testing::ReadFileOrDie(tmp_.Sub("b"));
  bytes[100] ^= 1;
  testing::WriteFileOrDie(tmp_.Sub("b"), bytes);
  auto bad = Run("store inspect " + Q("b"), "");
  EXPECT_EQ(bad.exit_code, 1);
  ExpectOneErrorLine(bad);
}

TEST_F(StoreBackupCliTest, UnlockedAndPlaintextStores) {
  MakeStore(500, /*autolock=*/false);
  auto b = Run("store backup " + Q("s") + " --out " + Q("b"), "");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_THAT(LineValue(b.out, "key-material"), StartsWith("in the clear"));
  EXPECT_THAT(b.err, StartsWith("sealwal: warning: node.key is unlocked"));
  auto si = Run("store inspect " + Q("s"), "");
  EXPECT_THAT(LineValue(si.out, "key-material"), StartsWith("in the clear"));
  auto ki = Run("key inspect --key-file " + ShellQuote(tmp_.Sub("s/node.key")), "");
  EXPECT_THAT(LineValue(ki.out, "key-material"), StartsWith("in the clear"));
  auto r = Run("store restore " + Q("b") + " --to " + Q("r"), "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Content("r"), Content("s"));

  ASSERT_EQ(Run("store init " + Q("p") + " --plaintext", "").exit_code, 0);
  ASSERT_EQ(Run("store gen " + Q("p") + " --entries 700 --size 120 --batch 10 --seed 9 "
                "--snapshot-every 400", "").exit_code, 0);
  auto pb = Run("store backup " + Q("p") + " --out " + Q("pb"), "");
  ASSERT_EQ(pb.exit_code, 0) << pb.err;
  EXPECT_THAT(LineValue(pb.out, "key-material"), StartsWith("none (a plaintext store"));
  auto pr = Run("store restore " + Q("pb") + " --to " + Q("pr"), "");
  ASSERT_EQ(pr.exit_code, 0) << pr.err;
  EXPECT_EQ(Content("pr"), Content("p"));
}

}  // namespace
}  // namespace sealwal
