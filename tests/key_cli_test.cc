// `sealwal key ...` and `--key-file` for `wal gen|dump|verify` (docs/cli-key.md), checked against the `openssl` command line:
// a locked key file is read by `openssl pkey -passin pass:<unlock key>` and
// not without it, an unlocked one by plain `openssl pkey`, keys made by
// `openssl genpkey` import and round-trip; a wrong unlock key is exit 2 and
// changes no byte.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
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
using ::testing::Not;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;

std::string Cli(const std::string& args) { return ShellQuote(kCli) + " " + args; }
std::string WithKey(const std::string& unlock_key, const std::string& cmd) {
  return "SEALWAL_UNLOCK_KEY=" + ShellQuote(unlock_key) + " " + cmd;
}

class KeyCliTest : public ::testing::Test {
 protected:
  std::string Init(const std::string& extra = "--autolock") {
    auto r = RunCommand(Cli("key init --key-file " + ShellQuote(key_) + " " + extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LineValue(r.out, "unlock-key");
  }
  std::string Bytes() { return testing::ReadFileOrDie(key_); }
  testing::TempDir tmp_;
  std::string key_ = tmp_.Sub("node.key");
};

TEST_F(KeyCliTest, LockedKeyOpensInOpensslOnlyWithTheUnlockKey) {
  const std::string k = Init();
  ASSERT_THAT(k, StartsWith("SEALWAL-1-"));
  EXPECT_EQ(k.size(), 53u);
  EXPECT_THAT(Bytes(), HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  EXPECT_THAT(Bytes(), Not(HasSubstr(k)));
  auto ok = RunCommand("openssl pkey -in " + ShellQuote(key_) + " -passin pass:" + k + " -noout");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  for (const std::string& pass : {std::string("pass:"), std::string("pass:wrong"),
                                  // the last character changed (never to itself)
                                  "pass:" + k.substr(0, k.size() - 1) + (k.back() == 'A' ? "B" : "A")}) {
    auto bad = RunCommand("openssl pkey -in " + ShellQuote(key_) + " -passin " + pass +
                          " -noout </dev/null");
    EXPECT_NE(bad.exit_code, 0) << pass;
  }
  // PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (docs/format.md §11).
  auto info = RunCommand("sed -n '/BEGIN ENCRYPTED/,/END ENCRYPTED/p' " + ShellQuote(key_) +
                         " | openssl asn1parse -i");
  EXPECT_THAT(info.out, HasSubstr("PBES2"));
  EXPECT_THAT(info.out, HasSubstr("PBKDF2"));
  EXPECT_THAT(info.out, HasSubstr("hmacWithSHA256"));
  EXPECT_THAT(info.out, HasSubstr("aes-256-cbc"));
  // inspect without the key shows what it can, with it everything.
  auto i1 = RunCommand(Cli("key inspect --key-file " + ShellQuote(key_)));
  EXPECT_EQ(i1.exit_code, 0) << i1.err;
  EXPECT_EQ(LineValue(i1.out, "autolock"), "on");
  EXPECT_EQ(LineValue(i1.out, "raft-dek"), "wrapped");
  auto i2 = RunCommand(WithKey(k, Cli("key inspect --key-file " + ShellQuote(key_))));
  EXPECT_EQ(i2.exit_code, 0) << i2.err;
  EXPECT_EQ(LineValue(i2.out, "private-key"), "EC P-256");
  EXPECT_THAT(LineValue(i2.out, "raft-dek"), StartsWith("0x"));
  EXPECT_TRUE(i2.err.empty()) << i2.err;
}

TEST_F(KeyCliTest, UnlockedKeyOpensInOpensslAndInspectWarns) {
  EXPECT_EQ(Init(""), "");
  EXPECT_THAT(Bytes(), HasSubstr("-----BEGIN PRIVATE KEY-----"));
  auto ok = RunCommand("openssl pkey -in " + ShellQuote(key_) + " -noout");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto i = RunCommand(Cli("key inspect --key-file " + ShellQuote(key_)));
  EXPECT_EQ(i.exit_code, 0);
  EXPECT_EQ(LineValue(i.out, "autolock"), "off");
  EXPECT_THAT(i.err, HasSubstr("warning: autolock is off"));
  auto mode = RunCommand("stat -c %a " + ShellQuote(key_));
  EXPECT_EQ(absl::StripAsciiWhitespace(mode.out), "600");
}

TEST_F(KeyCliTest, GenpkeyKeysImportAndRoundTrip) {
  struct Kind {
    std::string name, genpkey;
  };
  for (const Kind& kind : {Kind{"ec", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"},
                           Kind{"rsa", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"},
                           Kind{"ed25519", "-algorithm ED25519"},
                           Kind{"ec-traditional", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"}}) {
    SCOPED_TRACE(kind.name);
    const std::string src = tmp_.Sub(kind.name + ".pem");
    const std::string dst = tmp_.Sub(kind.name + ".key");
    ASSERT_EQ(RunCommand("openssl genpkey " + kind.genpkey + " -out " + ShellQuote(src)).exit_code, 0);
    if (kind.name == "ec-traditional") {  // "-----BEGIN EC PRIVATE KEY-----"
      ASSERT_EQ(RunCommand("openssl ec -in " + ShellQuote(src) + " -out " + ShellQuote(src) +
                           ".t && mv " + ShellQuote(src) + ".t " + ShellQuote(src))
                    .exit_code,
                0);
      EXPECT_THAT(testing::ReadFileOrDie(src), HasSubstr("BEGIN EC PRIVATE KEY"));
    }
    auto init = RunCommand(Cli("key init --key-file " + ShellQuote(dst) + " --autolock --import " +
                               ShellQuote(src)));
    ASSERT_EQ(init.exit_code, 0) << init.err;
    const std::string k = LineValue(init.out, "unlock-key");
    // The same private key comes back out of the locked file, and again
    // after unlocking it.
    const std::string want = RunCommand("openssl pkey -in " + ShellQuote(src)).out;
    ASSERT_THAT(want, HasSubstr("BEGIN PRIVATE KEY"));
    EXPECT_EQ(RunCommand("openssl pkey -in " + ShellQuote(dst) + " -passin pass:" + k).out, want);
    auto unlock = RunCommand(WithKey(k, Cli("key unlock --key-file " + ShellQuote(dst))));
    ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
    EXPECT_EQ(RunCommand("openssl pkey -in " + ShellQuote(dst)).out, want);
    // A bare key file (what genpkey wrote) is read as a key without DEKs.
    auto bare = RunCommand(Cli("key inspect --key-file " + ShellQuote(src)));
    EXPECT_EQ(bare.exit_code, 0) << bare.err;
    EXPECT_THAT(LineValue(bare.out, "layout"), StartsWith("bare"));
  }
}

// Imported encrypted keys: only PBES2 with PBKDF2 (capped) or scrypt with
// bounded cost; anything else is refused before OpenSSL starts deriving,
// so a hostile key block cannot make a read spin for minutes.
TEST_F(KeyCliTest, ImportRefusesCostlyOrLegacyKeyEncryption) {
  const std::string plain = tmp_.Sub("plain.pem");
  ASSERT_EQ(RunCommand("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " +
                       ShellQuote(plain)).exit_code, 0);
  struct Case {
    std::string name, args;
    bool accepted;
  };
  for (const Case& c : std::vector<Case>{
           {"pbes2-pbkdf2", "-v2 aes-256-cbc -iter 1000", true},
           {"scrypt-default", "-scrypt", true},
           {"scrypt-huge-p", "-scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 64", false},
           {"pkcs12-pbe", "-v1 PBE-SHA1-3DES -iter 1000", false}}) {
    SCOPED_TRACE(c.name);
    const std::string enc = tmp_.Sub(c.name + ".pem");
    ASSERT_EQ(RunCommand("openssl pkcs8 -topk8 " + c.args + " -passout pass:secret -in " +
                         ShellQuote(plain) + " -out " + ShellQuote(enc)).exit_code, 0);
    const std::string key = tmp_.Sub(c.name + ".key");
    auto r = RunCommand("SEALWAL_UNLOCK_KEY= " +
                        Cli("key init --key-file " + ShellQuote(key) + " --import " + ShellQuote(enc)));
    if (c.accepted) {
      // Accepted scheme: it asks for the key's password (ours are unlock keys).
      EXPECT_THAT(r.err, Not(HasSubstr("unsupported PKCS#8"))) << r.err;
      EXPECT_THAT(r.err, Not(HasSubstr("scrypt parameters"))) << r.err;
    } else {
      EXPECT_NE(r.exit_code, 0);
      EXPECT_TRUE(absl::StrContains(r.err, "unsupported PKCS#8 encryption scheme") ||
                  absl::StrContains(r.err, "scrypt parameters exceed"))
          << r.err;
    }
  }
}

// A new unlock key that cannot be printed must not replace the old one:
// the command fails and the key file is left as it was.
TEST_F(KeyCliTest, UnprintableNewUnlockKeyChangesNothing) {
  auto init = RunCommand(Cli("key init --autolock --key-file " + ShellQuote(key_)) + " >/dev/full");
  EXPECT_NE(init.exit_code, 0);
  EXPECT_THAT(init.err, HasSubstr("could not print the new unlock key"));
  EXPECT_EQ(RunCommand("test -e " + ShellQuote(key_)).exit_code, 1) << "init left a key file";

  const std::string unlock = Init();
  const std::string before = Bytes();
  for (const char* cmd : {"rotate-kek", "lock"}) {
    auto r = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                        Cli(std::string("key ") + cmd + " --key-file " + ShellQuote(key_)) +
                        " >/dev/full");
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_EQ(Bytes(), before) << cmd;
  }
  auto ok = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                       Cli("key inspect --key-file " + ShellQuote(key_)));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(KeyCliTest, LockUnlockRotateKeepsDeks) {
  EXPECT_EQ(Init(""), "");
  auto dek = RunCommand(Cli("key rotate-dek --key-file " + ShellQuote(key_)));
  ASSERT_EQ(dek.exit_code, 0) << dek.err;
  const std::string current = LineValue(dek.out, "raft-dek");
  const std::string pending = LineValue(dek.out, "raft-dek-pending");
  ASSERT_THAT(pending, StartsWith("0x"));
  auto lock = RunCommand(Cli("key lock --key-file " + ShellQuote(key_)));
  ASSERT_EQ(lock.exit_code, 0) << lock.err;
  const std::string k1 = LineValue(lock.out, "unlock-key");
  EXPECT_EQ(LineValue(lock.out, "kek-version"), "1");
  // Locking twice is refused and changes nothing.
  const std::string locked = Bytes();
  auto again = RunCommand(Cli("key lock --key-file " + ShellQuote(key_)));
  EXPECT_EQ(again.exit_code, 2);
  ExpectOneErrorLine(again);
  EXPECT_EQ(Bytes(), locked);
  // rotate-kek with the key in a file.
  const std::string kf = tmp_.Sub("unlock");
  testing::WriteFileOrDie(kf, k1 + "\n");
  auto rot = RunCommand(Cli("key rotate-kek --key-file " + ShellQuote(key_) +
                            " --unlock-key-file " + ShellQuote(kf)));
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  const std::string k2 = LineValue(rot.out, "unlock-key");
  EXPECT_NE(k1, k2);
  EXPECT_EQ(LineValue(rot.out, "kek-version"), "2");
  // The old key no longer opens it.
  auto old = RunCommand(WithKey(k1, Cli("key inspect --key-file " + ShellQuote(key_))));
  EXPECT_EQ(old.exit_code, 2);
  EXPECT_THAT(old.err, HasSubstr("wrong unlock key"));
  auto insp = RunCommand(WithKey(k2, Cli("key inspect --key-file " + ShellQuote(key_))));
  ASSERT_EQ(insp.exit_code, 0) << insp.err;
  EXPECT_EQ(LineValue(insp.out, "raft-dek"), current);
  EXPECT_EQ(LineValue(insp.out, "raft-dek-pending"), pending);
  EXPECT_EQ(LineValue(insp.out, "raft-dek-needs-rotation"), "true");  // set by lock
  auto unlock = RunCommand(WithKey(k2, Cli("key unlock --key-file " + ShellQuote(key_))));
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  EXPECT_EQ(LineValue(unlock.out, "unlock-key"), "");
  auto plain = RunCommand(Cli("key inspect --key-file " + ShellQuote(key_)));
  EXPECT_EQ(LineValue(plain.out, "raft-dek"), current);
  EXPECT_EQ(LineValue(plain.out, "raft-dek-pending"), pending);
  EXPECT_EQ(LineValue(plain.out, "kek-version"), "3");
}

// A copy of the file from before rotate-kek opens with the old unlock key:
// the DEKs in it must be replaced, so rotate-kek marks them for rotation.
TEST_F(KeyCliTest, RotateKekMarksTheDeksForRotation) {
  const std::string k1 = Init();
  auto before = RunCommand(WithKey(k1, Cli("key inspect --key-file " + ShellQuote(key_))));
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(LineValue(before.out, "raft-dek-needs-rotation"), "false");
  auto rot = RunCommand(WithKey(k1, Cli("key rotate-kek --key-file " + ShellQuote(key_))));
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  const std::string k2 = LineValue(rot.out, "unlock-key");
  auto after = RunCommand(WithKey(k2, Cli("key inspect --key-file " + ShellQuote(key_))));
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(LineValue(after.out, "raft-dek"), LineValue(before.out, "raft-dek"));
  EXPECT_EQ(LineValue(after.out, "raft-dek-needs-rotation"), "true");
  // The next rotate-dek replaces the DEK and clears the mark.
  auto dek = RunCommand(WithKey(k2, Cli("key rotate-dek --key-file " + ShellQuote(key_))));
  ASSERT_EQ(dek.exit_code, 0) << dek.err;
  EXPECT_NE(LineValue(dek.out, "raft-dek-pending"), "none");
  EXPECT_EQ(LineValue(dek.out, "raft-dek-needs-rotation"), "false");
}

TEST_F(KeyCliTest, WrongOrMalformedUnlockKeyChangesNoByte) {
  const std::string k = Init();
  const std::string before = Bytes();
  const std::string wrong = "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
  for (const std::string sub : {"inspect", "rotate-dek", "rotate-kek", "unlock"}) {
    SCOPED_TRACE(sub);
    auto r = RunCommand(WithKey(wrong, Cli("key " + sub + " --key-file " + ShellQuote(key_))));
    EXPECT_EQ(r.exit_code, 2);
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("wrong unlock key"));
    auto none = RunCommand(Cli("key " + sub + " --key-file " + ShellQuote(key_)));
    if (sub != "inspect") {
      EXPECT_EQ(none.exit_code, 2);
      ExpectOneErrorLine(none);
      EXPECT_THAT(none.err, HasSubstr("SEALWAL_UNLOCK_KEY"));
    }
    auto bad = RunCommand(WithKey(k + "x", Cli("key " + sub + " --key-file " + ShellQuote(key_))));
    EXPECT_EQ(bad.exit_code, 2);
    ExpectOneErrorLine(bad);
    EXPECT_THAT(bad.err, HasSubstr("44 characters"));
    EXPECT_THAT(bad.err, Not(HasSubstr(k.substr(10))));
    EXPECT_EQ(Bytes(), before);
  }
  // A damaged file is a data error (1).
  std::string damaged = before;
  damaged[damaged.size() / 2] ^= 0x04;
  testing::WriteFileOrDie(key_, damaged);
  auto r = RunCommand(WithKey(k, Cli("key inspect --key-file " + ShellQuote(key_))));
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneErrorLine(r);
}

// An unlock key given for a file that turns out unlocked (it may have been
// swapped for one holding DEKs an attacker chose) is refused, not ignored.
TEST_F(KeyCliTest, UnlockedKeyFileIsRefusedWhenAnUnlockKeyIsGiven) {
  Init("");  // unlocked
  const std::string other = tmp_.Sub("other.key");
  auto o = RunCommand(Cli("key init --autolock --key-file " + ShellQuote(other)));
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const std::string k = LineValue(o.out, "unlock-key");
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  auto r = RunCommand(WithKey(k, Cli("wal gen " + ShellQuote(wal) +
                                     " --entries 3 --size 5 --batch 1 --seed 1 --key-file " +
                                     ShellQuote(key_))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is not locked, but an unlock key was given"));
  EXPECT_EQ(RunCommand("test -e " + ShellQuote(wal)).exit_code, 1);
  // Without an unlock key the unlocked file is used, with a warning.
  auto ok = RunCommand("SEALWAL_UNLOCK_KEY= " + Cli("wal gen " + ShellQuote(wal) +
                       " --entries 3 --size 5 --batch 1 --seed 1 --key-file " + ShellQuote(key_)));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.err, HasSubstr("is not locked"));
}

// Issue 16 item 1, the attack through the CLI: node.key is swapped for an
// unlocked file; the operator runs `key rotate-dek` (and a store writer
// opens the store) with the unlock key. Both refuse (exit 2, one line) and
// the planted file keeps every byte: no fresh DEK is ever stored in the clear.
TEST_F(KeyCliTest, SwappedUnlockedKeyFileIsNeverWrittenWithTheUnlockKey) {
  const std::string k = Init();  // the node's real, locked file
  // The attacker's unlocked file, put in its place.
  const std::string attacker = tmp_.Sub("attacker.key");
  auto a = RunCommand(Cli("key init --key-file " + ShellQuote(attacker)));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const std::string planted = testing::ReadFileOrDie(attacker);
  testing::WriteFileOrDie(key_, planted);
  // (`key inspect` only reads, and says "autolock off" with a warning.)
  for (const char* cmd : {"key rotate-dek", "key rotate-kek", "key unlock"}) {
    auto r = RunCommand(WithKey(k, Cli(std::string(cmd) + " --key-file " + ShellQuote(key_))));
    EXPECT_EQ(r.exit_code, 2) << cmd;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("not locked")) << cmd;
    EXPECT_EQ(Bytes(), planted) << cmd;
  }
  // A store whose node.key was swapped: the writer refuses to open it.
  const std::string store = tmp_.Sub("store");
  auto init = RunCommand(WithKey(k, Cli("store init " + ShellQuote(store))));
  ASSERT_EQ(init.exit_code, 0) << init.err;
  testing::WriteFileOrDie(store + "/node.key", planted);
  auto gen = RunCommand(WithKey(k, Cli("store gen " + ShellQuote(store) +
                                       " --entries 10 --size 10 --batch 5 --seed 1")));
  EXPECT_EQ(gen.exit_code, 2) << gen.err;
  ExpectOneErrorLine(gen);
  EXPECT_THAT(gen.err, HasSubstr("not locked"));
  EXPECT_EQ(testing::ReadFileOrDie(store + "/node.key"), planted);
}

// Issue 16 item 3: the DEK block of a locked file dropped (as `key lock` had
// marked its DEKs, or a rotation had a pending DEK), leaving a bare
// encrypted key that opens with the unlock key. No command holding the
// unlock key uses it, and none writes it.
TEST_F(KeyCliTest, DroppedDekBlockIsRefusedByEveryCommandWithTheUnlockKey) {
  const std::string k = Init();
  auto cut = RunCommand("sed -i '/BEGIN SEALWAL RAFT DEKS/,/END SEALWAL RAFT DEKS/d' " +
                        ShellQuote(key_));
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  const std::string bare = Bytes();
  ASSERT_THAT(bare, StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  for (const char* cmd : {"key rotate-dek", "key rotate-kek", "key unlock"}) {
    auto r = RunCommand(WithKey(k, Cli(std::string(cmd) + " --key-file " + ShellQuote(key_))));
    EXPECT_EQ(r.exit_code, 2) << cmd;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("no DEK headers and no file MAC")) << cmd;
    EXPECT_EQ(Bytes(), bare) << cmd;
  }
  const std::string store = tmp_.Sub("store");
  auto init = RunCommand(WithKey(k, Cli("store init " + ShellQuote(store))));
  ASSERT_EQ(init.exit_code, 0) << init.err;
  testing::WriteFileOrDie(store + "/node.key", bare);
  auto gen = RunCommand(WithKey(k, Cli("store gen " + ShellQuote(store) +
                                       " --entries 10 --size 10 --batch 5 --seed 1")));
  EXPECT_EQ(gen.exit_code, 2) << gen.err;
  ExpectOneErrorLine(gen);
  EXPECT_THAT(gen.err, HasSubstr("no DEK headers and no file MAC"));
  EXPECT_EQ(testing::ReadFileOrDie(store + "/node.key"), bare);
}

TEST_F(KeyCliTest, WalRoundTripsWithKeyFile) {
  const std::string k = Init();
  const std::string wal = tmp_.Sub("wal-v3-encrypted");
  const std::string plain = tmp_.Sub("wal-v3");
  auto gen = RunCommand(WithKey(k, Cli("wal gen " + ShellQuote(wal) +
                                       " --entries 30 --size 50 --batch 4 --seed 9 --key-file " +
                                       ShellQuote(key_))));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.out, HasSubstr("synced 30"));
  ASSERT_EQ(RunCommand(Cli("wal gen " + ShellQuote(plain) +
                           " --entries 30 --size 50 --batch 4 --seed 9"))
                .exit_code,
            0);
  auto v = RunCommand(WithKey(k, Cli("wal verify " + ShellQuote(wal) + " --expect-seed 9 --key-file " +
                                     ShellQuote(key_))));
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(LineValue(v.out, "encrypted"), "yes");
  auto pv = RunCommand(Cli("wal verify " + ShellQuote(plain) + " --expect-seed 9"));
  EXPECT_EQ(LineValue(v.out, "digest"), LineValue(pv.out, "digest"));
  // dump with the key in a file gives the plaintext log's lines.
  const std::string kf = tmp_.Sub("unlock");
  testing::WriteFileOrDie(kf, k);
  auto d = RunCommand(Cli("wal dump " + ShellQuote(wal) + " --key-file " + ShellQuote(key_) +
                          " --unlock-key-file " + ShellQuote(kf)));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto pd = RunCommand(Cli("wal dump " + ShellQuote(plain)));
  EXPECT_EQ(d.out, pd.out);
  // A locked key without its unlock key: exit 2, one line, nothing on stdout.
  for (const std::string sub : {"dump", "verify"}) {
    auto r = RunCommand(Cli("wal " + sub + " " + ShellQuote(wal) + " --key-file " + ShellQuote(key_)));
    EXPECT_EQ(r.exit_code, 2) << sub;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("locked"));
    EXPECT_TRUE(r.out.empty());
    auto w = RunCommand(WithKey("SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                                Cli("wal " + sub + " " + ShellQuote(wal) + " --key-file " +
                                    ShellQuote(key_))));
    EXPECT_EQ(w.exit_code, 2) << sub;
    ExpectOneErrorLine(w);
  }
  // After a DEK rotation the pending DEK is loaded too; reads still work.
  auto rot = RunCommand(WithKey(k, Cli("key rotate-dek --key-file " + ShellQuote(key_))));
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  auto v2 = RunCommand(WithKey(k, Cli("wal verify " + ShellQuote(wal) + " --key-file " +
                                      ShellQuote(key_))));
  EXPECT_EQ(v2.exit_code, 0) << v2.err;
}

// `key inspect` shows each DEK's creation time (UTC, whole seconds) with the
// unlock key, `locked` without it; `rotate-dek` gives the pending DEK its own.
TEST_F(KeyCliTest, InspectShowsDekCreationTimes) {
  auto utc_now = [] {
    auto d = RunCommand("date -u +%s");
    return std::stoll(std::string(absl::StripAsciiWhitespace(d.out)));
  };
  const long long before = utc_now();
  const std::string k = Init();
  const long long after = utc_now();
  auto to_unix = [](const std::string& v) {
    auto d = RunCommand("date -u -d " + ShellQuote(v) + " +%s");
    EXPECT_EQ(d.exit_code, 0) << v;
    return std::stoll(std::string(absl::StripAsciiWhitespace(d.out)));
  };
  auto locked = RunCommand(Cli("key inspect --key-file " + ShellQuote(key_)));
  ASSERT_EQ(locked.exit_code, 0) << locked.err;
  EXPECT_EQ(LineValue(locked.out, "raft-dek-created"), "locked");
  EXPECT_EQ(LineValue(locked.out, "raft-dek-pending-created"), "none");
  auto i = RunCommand(WithKey(k, Cli("key inspect --key-file " + ShellQuote(key_))));
  ASSERT_EQ(i.exit_code, 0) << i.err;
  const std::string created = LineValue(i.out, "raft-dek-created");
  ASSERT_EQ(created.size(), 20u) << created;  // 2026-12-01T10:00:00Z
  EXPECT_EQ(created.back(), 'Z');
  EXPECT_GE(to_unix(created), before);
  EXPECT_LE(to_unix(created), after);
  EXPECT_EQ(LineValue(i.out, "raft-dek-pending-created"), "none");
  // The existing lines are still there, in their form.
  EXPECT_THAT(LineValue(i.out, "raft-dek"), StartsWith("0x"));
  EXPECT_EQ(LineValue(i.out, "raft-dek-pending"), "none");
  auto rot = RunCommand(WithKey(k, Cli("key rotate-dek --key-file " + ShellQuote(key_))));
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  auto j = RunCommand(WithKey(k, Cli("key inspect --key-file " + ShellQuote(key_))));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(LineValue(j.out, "raft-dek-created"), created);  // kept across the rewrite
  const std::string pending = LineValue(j.out, "raft-dek-pending-created");
  ASSERT_EQ(pending.size(), 20u) << pending;
  EXPECT_GE(to_unix(pending), to_unix(created));
  EXPECT_LE(to_unix(pending), utc_now());
}

}  // namespace
}  // namespace sealwal
