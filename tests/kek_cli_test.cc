// KEK sources through the CLI (docs/kek-providers.md): `key init --kek`,
// `key rotate-kek --kek` between an unlock key, a real SoftHSM2 token and
// the reference KMS plugin, every command opening such a file by itself,
// a wrong PIN, a missing token, plugins that fail, hang, answer garbage or
// lie (exit 2, one line, files byte-identical), and a store whose backup
// holds no unwrapped key material.
#include <stdlib.h>
#include <sys/stat.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/softhsm_token.h"
#include "testing/test_util.h"

namespace sealwal {
namespace {

using testing::CommandResult;
using testing::DirContents;
using testing::ExpectOneErrorLine;
using testing::LineValue;
using testing::RunCommand;
using testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kCli = SEALWAL_CLI_BIN;
const std::string kPlugin = SEALWAL_EXAMPLE_KMS_PLUGIN;
using testing::kSoftHsmModule;

std::string Cli(const std::string& args) { return ShellQuote(kCli) + " " + args; }

class KekCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A plugin path whose behaviour each test can change without changing
    // the spec the key file records.
    SetPlugin("exec " + ShellQuote(kPlugin) + " " + ShellQuote(tmp_.Sub("master.key")));
  }
  void SetPlugin(const std::string& body) {
    testing::WriteFileOrDie(plugin_, "#!/bin/sh\n" + body + "\n");
    chmod(plugin_.c_str(), 0700);
  }
  std::string PluginSpec() const { return "command:" + plugin_; }
  std::string ReferenceSpec(const std::string& master) const {
    return "command:" + kPlugin + " " + tmp_.Sub(master);
  }

  // A SoftHSM2 token "sealwal" (PIN 1234) with an AES-256 key "kek", in a
  // config of this test's own; false when SoftHSM2 is not installed.
  bool MakeToken() {
    if (!testing::SoftHsmInstalled() || !testing::InitSoftHsmToken(tmp_, "sealwal", "1234")) {
      return false;
    }
    testing::WriteFileOrDie(tmp_.Sub("aes.bin"), std::string(32, '\x5a'));
    CommandResult r = RunCommand("softhsm2-util --import " + ShellQuote(tmp_.Sub("aes.bin")) +
                   " --aes --token sealwal --label kek --id 01 --pin 1234");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0;
  }
  static std::string TokenSpec() {
    return absl::StrCat("pkcs11:token=sealwal;object=kek?module-path=", kSoftHsmModule);
  }

  // `cmd` with the environment a token-held key file needs.
  static std::string Env(const std::string& cmd, const std::string& pin = "1234") {
    return "SEALWAL_PKCS11_PIN=" + ShellQuote(pin) + " SEALWAL_KEK_TIMEOUT=3s " + cmd;
  }
  CommandResult Key(const std::string& args, const std::string& pin = "1234") {
    return RunCommand(Env(Cli("key " + args + " --key-file " + ShellQuote(key_)), pin));
  }
  CommandResult Verify() {
    return RunCommand(Env(Cli("wal verify " + ShellQuote(wal_) + " --key-file " +
                              ShellQuote(key_) + " --expect-seed 7")));
  }
  void GenWal() {
    CommandResult r = RunCommand(Env(Cli("wal gen " + ShellQuote(wal_) +
                                         " --entries 50 --size 100 --batch 5 --seed 7 "
                                         "--key-file " + ShellQuote(key_))));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  testing::TempDir tmp_;
  std::string plugin_ = tmp_.Sub("plugin.sh");
  std::string key_ = tmp_.Sub("node.key");
  std::string wal_ = tmp_.Sub("wal-encrypted");
};

TEST_F(KekCliTest, InitWithAPluginNeedsNoUnlockKeyAnywhere) {
  CommandResult r = Key("init --kek " + ShellQuote(PluginSpec()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "kek-source"), PluginSpec());
  EXPECT_EQ(LineValue(r.out, "kek-key-id"), "example-kms:" + tmp_.Sub("master.key"));
  EXPECT_EQ(LineValue(r.out, "autolock"), "on");
  EXPECT_THAT(r.out, Not(HasSubstr("unlock-key")));
  EXPECT_THAT(testing::ReadFileOrDie(key_), HasSubstr("ENCRYPTED PRIVATE KEY"));

  r = Key("inspect");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "kek-source"), PluginSpec());
  EXPECT_THAT(LineValue(r.out, "key-material"), HasSubstr("none unwrapped"));
  EXPECT_EQ(LineValue(r.out, "private-key"), "EC P-256");  // opened through the plugin

  GenWal();
  r = Verify();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "entries"), "1..50");
  // A header update keeps the binding.
  r = Key("rotate-dek");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(testing::ReadFileOrDie(key_), HasSubstr("kek-source: " + PluginSpec()));
  EXPECT_EQ(Verify().exit_code, 0);

  // An unlock key given for such a file is a usage error.
  testing::WriteFileOrDie(tmp_.Sub("u"), "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n");
  r = Key("rotate-dek --unlock-key-file " + ShellQuote(tmp_.Sub("u")));
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("--unlock-key-file is not used"));
}

TEST_F(KekCliTest, RotateKekMovesTheFileBetweenEverySource) {
  const bool token = MakeToken();
  CommandResult r = Key("init --autolock");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string unlock = LineValue(r.out, "unlock-key");
  setenv("SEALWAL_UNLOCK_KEY", unlock.c_str(), 1);
  GenWal();
  unsetenv("SEALWAL_UNLOCK_KEY");
  // unlock key -> plugin A
  r = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                 Env(Cli("key rotate-kek --key-file " + ShellQuote(key_) + " --kek " +
                         ShellQuote(ReferenceSpec("a.key")))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("unlock-key")));
  ASSERT_EQ(Verify().exit_code, 0);
  EXPECT_EQ(LineValue(Key("inspect").out, "kek-source"), ReferenceSpec("a.key"));
  // plugin A -> token -> plugin B, when SoftHSM2 is installed
  if (token) {
    r = Key("rotate-kek --kek " + ShellQuote(TokenSpec()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(LineValue(Key("inspect").out, "kek-source"), TokenSpec());
    ASSERT_EQ(Verify().exit_code, 0) << Verify().err;
    // The token's key is all that opens the file now: plugin A's master
    // key is gone and nothing notices.
    ASSERT_EQ(unlink(tmp_.Sub("a.key").c_str()), 0);
    ASSERT_EQ(Verify().exit_code, 0);
  } else {
    ADD_FAILURE_AT(__FILE__, __LINE__) << "SoftHSM2 missing (" << kSoftHsmModule
                                       << "): the token leg was not run";
  }
  r = Key("rotate-kek --kek " + ShellQuote(ReferenceSpec("b.key")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Verify().exit_code, 0);
  // plugin B -> an unlock key the operator holds again
  r = Key("rotate-kek");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  unlock = LineValue(r.out, "unlock-key");
  ASSERT_FALSE(unlock.empty());
  EXPECT_THAT(testing::ReadFileOrDie(key_), Not(HasSubstr("kek-source")));
  EXPECT_EQ(LineValue(Key("inspect").out, "kek-source"), "unlock-key");
  r = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                 Cli("wal verify " + ShellQuote(wal_) + " --key-file " + ShellQuote(key_)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(Key("inspect").out, "kek-version"), token ? "4" : "3");
}

TEST_F(KekCliTest, WrongPinAndMissingTokenChangeNothing) {
  if (!MakeToken()) GTEST_FAIL() << "SoftHSM2 missing: " << kSoftHsmModule;
  CommandResult r = Key("init --kek " + ShellQuote(TokenSpec()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "kek-source"), TokenSpec());
  GenWal();
  const auto before = DirContents(tmp_.path());

  r = Key("rotate-dek", "9999");
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("PIN"));
  EXPECT_THAT(r.err, Not(HasSubstr("9999")));
  r = RunCommand(Cli("key rotate-dek --key-file " + ShellQuote(key_)));  // no PIN at all
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);

  // Another SoftHSM2 config: the token is not there.
  testing::WriteFileOrDie(tmp_.Sub("empty.conf"), "directories.tokendir = " + tmp_.Sub("none") +
                                                      "\nobjectstore.backend = file\n");
  mkdir(tmp_.Sub("none").c_str(), 0700);
  r = RunCommand("SOFTHSM2_CONF=" + ShellQuote(tmp_.Sub("empty.conf")) + " " +
                 Env(Cli("wal verify " + ShellQuote(wal_) + " --key-file " + ShellQuote(key_))));
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("sealwal"));  // the token's label
  rmdir(tmp_.Sub("none").c_str());
  unlink(tmp_.Sub("empty.conf").c_str());
  EXPECT_EQ(DirContents(tmp_.path()), before);
  EXPECT_EQ(Verify().exit_code, 0);
}

TEST_F(KekCliTest, MisbehavingPluginsAreOneLineAndChangeNoByte) {
  CommandResult r = Key("init --kek " + ShellQuote(PluginSpec()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GenWal();
  const std::string good = testing::ReadFileOrDie(plugin_);
  const struct {
    const char* name;
    std::string body;
    const char* says;
  } cases[] = {
      {"fails", "echo 'KMS unreachable' >&2; exit 4", "exited with status 4: KMS unreachable"},
      {"hangs", "sleep 60", "did not answer within 3s"},
      {"garbage", "echo '<html>502 Bad Gateway</html>'", "malformed"},
      {"lies", "echo '{\"version\":1,\"plaintext\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}'",
       "returned a key that does not open"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SetPlugin(c.body);
    const auto before = DirContents(tmp_.path());
    for (const std::string& cmd :
         {Cli("key rotate-dek --key-file " + ShellQuote(key_)),
          Cli("key rotate-kek --key-file " + ShellQuote(key_)),
          Cli("wal verify " + ShellQuote(wal_) + " --key-file " + ShellQuote(key_)),
          Cli("wal gen " + ShellQuote(wal_) + " --entries 60 --size 10 --batch 5 --seed 7 "
              "--key-file " + ShellQuote(key_))}) {
      r = RunCommand(Env(cmd));
      EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.out;
      ExpectOneErrorLine(r);
      EXPECT_THAT(r.err, HasSubstr(c.says)) << cmd;
      EXPECT_EQ(DirContents(tmp_.path()), before) << cmd;
    }
    // inspect still shows the file, with a warning.
    r = RunCommand(Env(Cli("key inspect --key-file " + ShellQuote(key_))));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(LineValue(r.out, "kek-source"), PluginSpec());
    EXPECT_THAT(r.err, HasSubstr(c.says));
  }
  // Moving to a failing plugin fails before anything is written.
  testing::WriteFileOrDie(plugin_, good);
  const std::string broken = tmp_.Sub("broken.sh");
  testing::WriteFileOrDie(broken, "#!/bin/sh\necho '{\"version\":1,\"wrapped\":\"AAAA\"}'\n");
  chmod(broken.c_str(), 0700);
  const auto before = DirContents(tmp_.path());
  r = Key("rotate-kek --kek " + ShellQuote("command:" + broken));
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("cannot unwrap what it just wrapped"));
  EXPECT_EQ(DirContents(tmp_.path()), before);
  EXPECT_EQ(Verify().exit_code, 0);
}

TEST_F(KekCliTest, AStoreUnderAPluginBacksUpNoKeyMaterialAndRestoresThroughIt) {
  const std::string data = tmp_.Sub("data");
  CommandResult r = RunCommand(Cli("store init " + ShellQuote(data) + " --autolock"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string unlock = LineValue(r.out, "unlock-key");
  r = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                 Cli("store gen " + ShellQuote(data) +
                     " --entries 200 --size 64 --batch 10 --seed 3 --snapshot-every 100"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand("SEALWAL_UNLOCK_KEY=" + unlock + " " +
                 Env(Cli("key rotate-kek --key-file " + ShellQuote(data + "/node.key") +
                         " --kek " + ShellQuote(PluginSpec()))));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Everything opens through the plugin now; the old unlock key is useless.
  r = RunCommand(Env(Cli("store gen " + ShellQuote(data) +
                         " --entries 300 --size 64 --batch 10 --seed 3")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Env(Cli("store verify " + ShellQuote(data) + " --expect-seed 3")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string digest = LineValue(r.out, "digest");
  r = RunCommand(Env(Cli("store inspect " + ShellQuote(data))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LineValue(r.out, "key-material"), HasSubstr("none unwrapped"));
  EXPECT_EQ(LineValue(r.out, "kek-source"), PluginSpec());

  const std::string backup = tmp_.Sub("b.swb");
  r = RunCommand(Env(Cli("store backup " + ShellQuote(data) + " --out " + ShellQuote(backup))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LineValue(r.out, "key-material"), HasSubstr("none unwrapped"));
  r = RunCommand(Env(Cli("store inspect " + ShellQuote(backup))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LineValue(r.out, "key-material"), HasSubstr("none unwrapped"));

  // Restoring needs the KMS: without it nothing is written.
  const std::string restored = tmp_.Sub("restored");
  SetPlugin("exit 1");
  r = RunCommand(Env(Cli("store restore " + ShellQuote(backup) + " --to " + ShellQuote(restored))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  ExpectOneErrorLine(r);
  EXPECT_NE(access(restored.c_str(), F_OK), 0);
  SetPlugin("exec " + ShellQuote(kPlugin) + " " + ShellQuote(tmp_.Sub("master.key")));
  r = RunCommand(Env(Cli("store restore " + ShellQuote(backup) + " --to " + ShellQuote(restored))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Env(Cli("store verify " + ShellQuote(restored) + " --expect-seed 3")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "digest"), digest);
}

TEST_F(KekCliTest, StoreInitWithAKekSourcePrintsNoUnlockKey) {
  const std::string data = tmp_.Sub("data");
  CommandResult r =
      RunCommand(Env(Cli("store init " + ShellQuote(data) + " --kek " + ShellQuote(PluginSpec()))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("unlock-key")));
  EXPECT_EQ(LineValue(r.out, "kek-source"), PluginSpec());
  EXPECT_THAT(LineValue(r.out, "autolock"), HasSubstr("on"));
  r = RunCommand(Env(Cli("store gen " + ShellQuote(data) +
                         " --entries 100 --size 32 --batch 10 --seed 5 --snapshot-every 50")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Env(Cli("store verify " + ShellQuote(data) + " --expect-seed 5")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LineValue(r.out, "entries"), "1..100");
  // A plugin that cannot wrap makes nothing.
  const std::string other = tmp_.Sub("other");
  SetPlugin("exit 1");
  r = RunCommand(Env(Cli("store init " + ShellQuote(other) + " --kek " + ShellQuote(PluginSpec()))));
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_NE(access(other.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace sealwal
