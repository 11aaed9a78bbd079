// The built `sealwal` binary with one node key file for WAL and snapshots
// (docs/cli.md, docs/cli-key.md, docs/cli-snap.md):
//   - `wal` and `snap` commands take the same --key-file, raft-dek and
//     raft-dek-pending, and read what was sealed under either;
//   - a missing key is exit 2 and names the key id, tampering is exit 1, in
//     WAL and snapshot commands alike, and neither changes a file;
//   - the persisted encryption counter: `key inspect` shows it; after a
//     SIGKILL mid-run the stored count is at least every seal that happened;
//     a DEK near 2^32 refuses to seal past it across two processes.
// Key files are made with `sealwal key init` and edited through the
// library (pem::KeyReadWriter), as the key rotator would.
#include <sys/types.h>

#include <algorithm>
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
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/snap/format.h"
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

// The index of the last "synced N" line (0 if none).
uint64_t LastSynced(const std::string& out) {
  uint64_t last = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    uint64_t n;
    if (absl::ConsumePrefix(&line, "synced ") && absl::SimpleAtoi(line, &n)) last = n;
  }
  return last;
}

class KeyringCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = RunCommand(ShellQuote(kCli) + " key init --autolock --key-file " + ShellQuote(key_));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    unlock_ = LineValue(r.out, "unlock-key");
    ASSERT_THAT(unlock_, StartsWith("SEALWAL-1-"));
  }

  // `sealwal ARGS` with the unlock key in the environment.
  CommandResult Run(const std::string& args, const std::string& env = "") {
    return RunCommand("SEALWAL_UNLOCK_KEY=" + ShellQuote(unlock_) + " " + env + " " +
                      ShellQuote(kCli) + " " + args);
  }
  std::string KeyFlag(const std::string& file) { return " --key-file " + ShellQuote(file); }

  std::unique_ptr<pem::KeyReadWriter> Krw(const std::string& path) {
    pem::KeyReadWriterOptions o;
    o.path = path;
    o.unlock_key = *pem::UnlockKey::Parse(unlock_);
    return *pem::KeyReadWriter::Create(std::move(o));
  }
  // Writes `path`: the private key of key_, with `headers`.
  void WriteKeyFile(const std::string& path, const pem::DekHeaders& headers) {
    auto file = Krw(key_)->Read();
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE(Krw(path)->Write(file->key, headers).ok());
  }
  pem::DekHeaders Headers() {
    auto file = Krw(key_)->Read();
    EXPECT_TRUE(file.ok()) << file.status();
    return file->headers.Clone();
  }
  uint64_t StoredCount() { return Headers().current->encryptions; }

  // Every regular file below `dir` with its contents.
  std::vector<std::pair<std::string, std::string>> Files(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    auto names = env::DefaultFileSystem()->ListDir(dir);
    if (!names.ok()) return out;
    std::sort(names->begin(), names->end());
    for (const auto& n : *names) out.emplace_back(n, testing::ReadFileOrDie(dir + "/" + n));
    return out;
  }

  testing::TempDir tmp_;
  std::string key_ = tmp_.Sub("node.key");
  std::string unlock_;
};

TEST_F(KeyringCliTest, WalAndSnapShareTheKeyFileIncludingThePendingDek) {
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  const std::string snap = tmp_.Sub("snap-v3-encrypted");
  ASSERT_EQ(Run("wal gen " + ShellQuote(wal) + " --entries 20 --size 40 --batch 3 --seed 4" +
                KeyFlag(key_)).exit_code, 0);
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) + " --index 5 --term 1 --size 3000 --seed 4" +
                KeyFlag(key_)).exit_code, 0);
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) +
                " --index 9 --term 1 --size 300000 --seed 4 --stream --chunk-size 65536" +
                KeyFlag(key_)).exit_code, 0);
  const pem::DekHeaders h = Headers();
  const std::string old_id = encryption::FormatKeyId(h.current->dek.id);

  // A key file whose raft-dek is new and whose raft-dek-pending is the DEK
  // everything was sealed under: both commands read through the pending DEK.
  const std::string rotated = tmp_.Sub("rotated.key");
  pem::DekHeaders r;
  r.current = pem::StoredDek{*encryption::Dek::Generate(), 0};
  r.pending = h.current->Clone();
  WriteKeyFile(rotated, r);
  auto v = Run("wal verify " + ShellQuote(wal) + " --expect-seed 4" + KeyFlag(rotated));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  auto l = Run("snap load " + ShellQuote(snap) + " --expect-seed 4" + KeyFlag(rotated));
  EXPECT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(LineValue(l.out, "key_id"), old_id);
  EXPECT_EQ(LineValue(l.out, "kind"), "stream");

  // Without that DEK: exit 2 naming the key id, in both, and no file changes.
  const std::string other = tmp_.Sub("other.key");
  pem::DekHeaders o;
  o.current = r.current->Clone();
  WriteKeyFile(other, o);
  const auto wal_before = Files(wal);
  const auto snap_before = Files(snap);
  for (const std::string& cmd :
       {"wal verify " + ShellQuote(wal), "wal dump " + ShellQuote(wal),
        "snap load " + ShellQuote(snap), "snap inspect " + ShellQuote(snap)}) {
    auto m = Run(cmd + KeyFlag(other));
    EXPECT_EQ(m.exit_code, 2) << cmd << ": " << m.err;
    EXPECT_THAT(m.out + m.err, HasSubstr("no DEK with key id " + old_id)) << cmd;
    if (!absl::StrContains(cmd, "dump") && !absl::StrContains(cmd, "inspect")) {
      ExpectOneErrorLine(m);
    }
  }
  EXPECT_EQ(Files(wal), wal_before);
  EXPECT_EQ(Files(snap), snap_before);
}

TEST_F(KeyringCliTest, TamperingIsExitOneAndRenamesNothing) {
  const std::string snap = tmp_.Sub("snap-v3-encrypted");
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) + " --index 5 --term 1 --size 3000 --seed 4" +
                KeyFlag(key_)).exit_code, 0);
  // Flip one ciphertext byte and recompute the CRC: the file is intact for
  // etcd's checks, but does not authenticate under the DEK it names.
  const std::string path = snap + "/" + snap::SnapFileName(1, 5);
  const std::string bytes = testing::ReadFileOrDie(path);
  auto file = snap::DecodeSnapFile(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  auto view = snap::DecodeRaftSnapshot(file->raft_snapshot);
  ASSERT_TRUE(view.ok()) << view.status();
  std::string sealed(view->data);
  sealed[sealed.size() / 2] ^= 0x01;
  const snap::SnapFilePieces p = snap::EncodeSnapFilePieces(sealed, view->metadata);
  testing::WriteFileOrDie(path, p.prefix + sealed + p.suffix);
  const auto before = Files(snap);
  auto l = Run("snap load " + ShellQuote(snap) + KeyFlag(key_));
  EXPECT_EQ(l.exit_code, 1) << l.err;
  ExpectOneErrorLine(l);
  EXPECT_THAT(l.err, HasSubstr("does not decrypt"));
  EXPECT_THAT(l.err, HasSubstr("nothing was renamed"));
  auto i = Run("snap inspect " + ShellQuote(snap) + KeyFlag(key_));
  EXPECT_EQ(i.exit_code, 1) << i.out << i.err;
  EXPECT_THAT(i.out, HasSubstr("DOES NOT DECRYPT (does not authenticate)"));
  EXPECT_EQ(Files(snap), before);

  // A WAL whose entry bytes were altered: exit 1 too.
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  ASSERT_EQ(Run("wal gen " + ShellQuote(wal) + " --entries 5 --size 40 --batch 1 --seed 4" +
                KeyFlag(key_)).exit_code, 0);
  auto names = env::DefaultFileSystem()->ListDir(wal);
  ASSERT_TRUE(names.ok());
  std::string seg;
  for (const auto& n : *names) {
    if (absl::EndsWith(n, ".wal")) seg = wal + "/" + n;
  }
  std::string w = testing::ReadFileOrDie(seg);
  const size_t at = w.find(std::string(4, '\0'), 200);  // after the first records
  ASSERT_NE(at, std::string::npos);
  w[at - 8] ^= 0x40;
  testing::WriteFileOrDie(seg, w);
  auto v = Run("wal verify " + ShellQuote(wal) + KeyFlag(key_));
  EXPECT_EQ(v.exit_code, 1) << v.err;
}

TEST_F(KeyringCliTest, InspectShowsTheCountWhichIsRaisedInBlocksBeforeUse) {
  auto i0 = Run("key inspect" + KeyFlag(key_));
  ASSERT_EQ(i0.exit_code, 0) << i0.err;
  EXPECT_EQ(LineValue(i0.out, "encryptions"), "0");
  EXPECT_EQ(LineValue(i0.out, "needs-rotation"), "false");
  // Without the unlock key the count is not readable.
  auto locked = RunCommand(ShellQuote(kCli) + " key inspect" + KeyFlag(key_));
  EXPECT_EQ(LineValue(locked.out, "encryptions"), "locked");

  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  // 10 entries one per batch plus the metadata: 11 seals, blocks of 4.
  ASSERT_EQ(Run("wal gen " + ShellQuote(wal) + " --entries 10 --size 40 --batch 1 --seed 4" +
                    KeyFlag(key_), "SEALWAL_RESERVATION_BLOCK=4")
                .exit_code,
            0);
  EXPECT_EQ(StoredCount(), 12u);
  // Reading never writes the key file.
  const std::string key_bytes = testing::ReadFileOrDie(key_);
  ASSERT_EQ(Run("wal verify " + ShellQuote(wal) + KeyFlag(key_)).exit_code, 0);
  EXPECT_EQ(testing::ReadFileOrDie(key_), key_bytes);
  // The default block: one reservation of 2^20 for a few seals; a .snap
  // and a stream count one each (the stream: its key derivation; its .snap
  // record: one more).
  const std::string snap = tmp_.Sub("snap-v3-encrypted");
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) + " --index 5 --term 1 --size 30 --seed 4" +
                KeyFlag(key_)).exit_code, 0);
  EXPECT_EQ(StoredCount(), 12u + encryption::kDefaultReservationBlock);
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) + " --index 6 --term 1 --size 30 --seed 4" +
                    KeyFlag(key_), "SEALWAL_RESERVATION_BLOCK=1")
                .exit_code,
            0);
  EXPECT_EQ(StoredCount(), 12u + encryption::kDefaultReservationBlock + 1);
  ASSERT_EQ(Run("snap save " + ShellQuote(snap) + " --index 7 --term 1 --size 30 --seed 4 "
                "--stream" + KeyFlag(key_), "SEALWAL_RESERVATION_BLOCK=1")
                .exit_code,
            0);
  EXPECT_EQ(StoredCount(), 12u + encryption::kDefaultReservationBlock + 3);
  auto i1 = Run("key inspect" + KeyFlag(key_));
  EXPECT_EQ(LineValue(i1.out, "encryptions"), absl::StrCat(StoredCount()));
  EXPECT_EQ(LineValue(i1.out, "needs-rotation"), "false");

  // At the rotation threshold `needs-rotation` turns true.
  pem::DekHeaders h = Headers();
  h.current->encryptions = encryption::kDefaultRotationThreshold;
  WriteKeyFile(key_, h);
  auto i2 = Run("key inspect" + KeyFlag(key_));
  EXPECT_EQ(LineValue(i2.out, "encryptions"), "1073741824");
  EXPECT_EQ(LineValue(i2.out, "needs-rotation"), "true");
  // A test knob cannot make the block larger than the default.
  auto big = Run("wal gen " + ShellQuote(tmp_.Sub("w2-encrypted")) +
                     " --entries 1 --size 1 --batch 1 --seed 4" + KeyFlag(key_),
                 "SEALWAL_RESERVATION_BLOCK=99999999");
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_THAT(big.err, HasSubstr("SEALWAL_RESERVATION_BLOCK"));
}

// (a) SIGKILL mid-run: every entry printed as "synced N" was sealed, and so
// was the metadata; the stored count is never below that, whenever the
// process dies, and the next process continues from it.
TEST_F(KeyringCliTest, StoredCountCoversEverySealAfterSigkill) {
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  const std::string out = tmp_.Sub("gen.out");
  uint64_t printed = 0;
  for (int round = 0; round < 4; ++round) {
    const int wait_lines = 40 + 70 * round;  // kill at different points
    const std::string script = absl::StrCat(
        "SEALWAL_UNLOCK_KEY=", ShellQuote(unlock_), " SEALWAL_RESERVATION_BLOCK=16 ",
        ShellQuote(kCli), " wal gen ", ShellQuote(wal),
        " --entries 1000000 --size 64 --batch 1 --seed 11", KeyFlag(key_), " > ",
        ShellQuote(out), " 2>/dev/null & pid=$!; ",
        "for i in $(seq 1 3000); do n=$(grep -c synced ", ShellQuote(out),
        " 2>/dev/null || echo 0); [ \"$n\" -ge ", wait_lines, " ] && break; sleep 0.01; done; ",
        "kill -9 $pid; wait $pid; exit 0");
    auto r = RunCommand("bash -c " + ShellQuote(script));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t last = LastSynced(testing::ReadFileOrDie(out));
    ASSERT_GT(last, printed) << "round " << round << " printed nothing new";
    printed = last;
    // Entries 1..last were sealed (some perhaps twice, by a process killed
    // before its batch was durable), plus the metadata once.
    EXPECT_GE(StoredCount(), printed + 1) << "round " << round;
  }
  // The log reads back with the same key file.
  auto v = Run("wal verify " + ShellQuote(wal) + " --expect-seed 11" + KeyFlag(key_));
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

// (b) A DEK whose stored count is 25 below 2^32: the first process seals
// the metadata and 24 entries, then refuses the 25th entry; a second
// process refuses at once, for the WAL and for snapshots. Exit 2 (a key
// error: rotate the DEK), one line naming the problem, nothing written.
TEST_F(KeyringCliTest, ADekNearTheLimitRefusesPastItAcrossProcesses) {
  pem::DekHeaders h = Headers();
  h.current->encryptions = encryption::kMaxEncryptionsPerKey - 25;
  WriteKeyFile(key_, h);

  // Refused: exit 2, one line saying the DEK must be rotated.
  auto expect_exhausted = [](const CommandResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << what << ": " << r.err;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("DEK exhausted, rotate")) << what;
  };
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  auto first = Run("wal gen " + ShellQuote(wal) + " --entries 30 --size 16 --batch 1 --seed 3" +
                   KeyFlag(key_));
  expect_exhausted(first, "first wal gen");
  EXPECT_EQ(LastSynced(first.out), 24u);
  EXPECT_EQ(StoredCount(), encryption::kMaxEncryptionsPerKey);
  auto inspect = Run("key inspect" + KeyFlag(key_));
  EXPECT_EQ(LineValue(inspect.out, "encryptions"), "4294967296");
  EXPECT_EQ(LineValue(inspect.out, "needs-rotation"), "true");

  const std::string wal2 = tmp_.Sub("second-wal-v3-encrypted");
  auto second = Run("wal gen " + ShellQuote(wal2) + " --entries 1 --size 16 --batch 1 --seed 3" +
                    KeyFlag(key_));
  expect_exhausted(second, "second wal gen");
  EXPECT_FALSE(env::DefaultFileSystem()->FileExists(wal2).ok());
  const std::string snap = tmp_.Sub("snap-v3-encrypted");
  for (const std::string extra : {"", " --stream"}) {
    auto s = Run("snap save " + ShellQuote(snap) + " --index 5 --term 1 --size 30 --seed 4" +
                 extra + KeyFlag(key_));
    expect_exhausted(s, "snap save" + extra);
  }
  auto ls = env::DefaultFileSystem()->ListDir(snap);
  EXPECT_TRUE(!ls.ok() || ls->empty()) << "a refused save left files";
  EXPECT_EQ(StoredCount(), encryption::kMaxEncryptionsPerKey);
  // The log the first process wrote still reads (reading seals nothing).
  auto v = Run("wal verify " + ShellQuote(wal) + " --expect-seed 3" + KeyFlag(key_));
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

}  // namespace
}  // namespace sealwal
