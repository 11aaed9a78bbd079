// `sealwal wal gen|dump|verify --dek-file` on encrypted WALs (docs/cli.md):
// the same log written plaintext and encrypted dumps and
// digests identically once decrypted; an "-encrypted" directory without a
// key, a malformed key file and --key-file are usage errors (exit 2, one
// "sealwal: " line); a wrong key fails (exit 1, or 2 once wal/ keeps the
// codec's kNotFound for an unknown key id) and changes no file.
#include <algorithm>
#include <map>
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

using testing::ExpectOneErrorLine;
using testing::RunCommand;
using testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;

std::string Cli(const std::string& args) { return ShellQuote(kCli) + " " + args; }

std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> m;
  auto r = RunCommand("ls -1 " + ShellQuote(dir));
  for (absl::string_view n : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    m[std::string(n)] = testing::ReadFileOrDie(dir + "/" + std::string(n));
  }
  return m;
}

class EncryptedWalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = tmp_.Sub("dek");
    std::string k;
    for (int i = 0; i < 32; ++i) k.push_back(static_cast<char>(i * 37 + 1));
    testing::WriteFileOrDie(key_, k);
    std::string w = k;
    w[0] ^= 1;
    wrong_key_ = tmp_.Sub("wrong-dek");
    testing::WriteFileOrDie(wrong_key_, w);
    enc_ = tmp_.Sub("wal-v3-encrypted");
    plain_ = tmp_.Sub("wal-v3");
  }

  testing::TempDir tmp_;
  std::string key_, wrong_key_, enc_, plain_;
};

TEST_F(EncryptedWalCliTest, GenDumpVerifyMatchThePlaintextLog) {
  const std::string gen_args = " --entries 300 --size 200 --batch 7 --seed 5 --segment-size 16384";
  auto g1 = RunCommand(Cli("wal gen " + ShellQuote(enc_) + gen_args + " --dek-file " +
                           ShellQuote(key_)));
  ASSERT_EQ(g1.exit_code, 0) << g1.err;
  EXPECT_THAT(g1.out, HasSubstr("synced 300\n"));
  auto g2 = RunCommand(Cli("wal gen " + ShellQuote(plain_) + gen_args));
  ASSERT_EQ(g2.exit_code, 0) << g2.err;

  // Decrypted, the encrypted log dumps exactly like the plaintext one.
  auto d1 = RunCommand(Cli("wal dump " + ShellQuote(enc_) + " --dek-file " + ShellQuote(key_)));
  auto d2 = RunCommand(Cli("wal dump " + ShellQuote(plain_)));
  ASSERT_EQ(d1.exit_code, 0) << d1.err;
  ASSERT_EQ(d2.exit_code, 0) << d2.err;
  EXPECT_TRUE(d1.out == d2.out) << d1.out.substr(0, 400) << "\n---\n" << d2.out.substr(0, 400);
  EXPECT_EQ(std::count(d1.out.begin(), d1.out.end(), '\n'), 303);

  auto v1 = RunCommand(Cli("wal verify " + ShellQuote(enc_) + " --dek-file " + ShellQuote(key_) +
                           " --expect-seed 5"));
  auto v2 = RunCommand(Cli("wal verify " + ShellQuote(plain_) + " --expect-seed 5"));
  ASSERT_EQ(v1.exit_code, 0) << v1.err;
  ASSERT_EQ(v2.exit_code, 0) << v2.err;
  EXPECT_THAT(v1.out, HasSubstr("encrypted yes\n"));
  EXPECT_THAT(v1.out, HasSubstr("entries 1..300\n"));
  const auto digest = [](const std::string& out) { return out.substr(out.rfind("digest ")); };
  EXPECT_EQ(digest(v1.out), digest(v2.out));

  // gen continues an existing encrypted log with the same key.
  auto g3 = RunCommand(Cli("wal gen " + ShellQuote(enc_) +
                           " --entries 10 --size 50 --batch 3 --seed 5 --dek-file " +
                           ShellQuote(key_)));
  ASSERT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_THAT(g3.out, HasSubstr("synced 310\n"));
  auto v3 = RunCommand(Cli("wal verify " + ShellQuote(enc_) + " --dek-file " + ShellQuote(key_) +
                           " --expect-seed 5"));
  EXPECT_EQ(v3.exit_code, 0) << v3.err;
  EXPECT_THAT(v3.out, HasSubstr("entries 1..310\n"));
}

TEST_F(EncryptedWalCliTest, KeyErrorsAreUsageErrors) {
  ASSERT_EQ(RunCommand(Cli("wal gen " + ShellQuote(enc_) +
                           " --entries 20 --size 10 --batch 5 --seed 1 --dek-file " +
                           ShellQuote(key_)))
                .exit_code,
            0);
  const auto before = Files(enc_);
  for (const std::string sub : {"dump", "verify"}) {
    SCOPED_TRACE(sub);
    auto r = RunCommand(Cli("wal " + sub + " " + ShellQuote(enc_)));
    EXPECT_EQ(r.exit_code, 2);
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("encrypted"));
    EXPECT_TRUE(r.out.empty());
  }
  // Writing plaintext into an "-encrypted" directory is refused too.
  auto g = RunCommand(Cli("wal gen " + ShellQuote(tmp_.Sub("new-encrypted")) +
                          " --entries 1 --size 1 --batch 1 --seed 1"));
  EXPECT_EQ(g.exit_code, 2);
  ExpectOneErrorLine(g);

  auto pem = RunCommand(Cli("wal dump " + ShellQuote(enc_) + " --key-file " + ShellQuote(key_)));
  EXPECT_EQ(pem.exit_code, 2);
  ExpectOneErrorLine(pem);
  // A raw DEK is not a node key file: the PEM reader says what is wrong.
  EXPECT_THAT(pem.err, HasSubstr("--key-file"));

  for (size_t n : {0, 31, 33}) {
    const std::string bad = tmp_.Sub(absl::StrCat("dek", n));
    testing::WriteFileOrDie(bad, std::string(n, 'k'));
    auto r = RunCommand(Cli("wal dump " + ShellQuote(enc_) + " --dek-file " + ShellQuote(bad)));
    EXPECT_EQ(r.exit_code, 2) << n;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr("exactly 32"));
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("kkkk")));
  }
  auto missing = RunCommand(Cli("wal dump " + ShellQuote(enc_) + " --dek-file /nonexistent/k"));
  EXPECT_EQ(missing.exit_code, 2);
  ExpectOneErrorLine(missing);
  EXPECT_TRUE(Files(enc_) == before);
}

// The directory's name says which kind a WAL is: every `wal` command
// refuses an "-encrypted" WAL without a key and a plaintext WAL with one,
// with exit 2 and one "sealwal: " line, and changes no file.
TEST_F(EncryptedWalCliTest, KeyKindMismatchIsRefusedByEveryCommand) {
  const std::string gen = " --entries 20 --size 10 --batch 5 --seed 1";
  ASSERT_EQ(RunCommand(Cli("wal gen " + ShellQuote(enc_) + gen + " --dek-file " + ShellQuote(key_)))
                .exit_code,
            0);
  ASSERT_EQ(RunCommand(Cli("wal gen " + ShellQuote(plain_) + gen)).exit_code, 0);
  const auto enc_before = Files(enc_);
  const auto plain_before = Files(plain_);
  for (const std::string sub : {"gen", "dump", "verify"}) {
    const std::string extra = sub == "gen" ? gen : "";
    {
      SCOPED_TRACE(sub + " on an encrypted WAL without a key");
      auto r = RunCommand(Cli("wal " + sub + " " + ShellQuote(enc_) + extra));
      EXPECT_EQ(r.exit_code, 2);
      ExpectOneErrorLine(r);
      EXPECT_THAT(r.err, HasSubstr("is an encrypted directory"));
    }
    {
      // A key makes any WAL encrypted (the CLI contract): a WAL written in
      // plaintext is then refused, by its records' content.
      SCOPED_TRACE(sub + " on a plaintext WAL with a key");
      auto r = RunCommand(Cli("wal " + sub + " " + ShellQuote(plain_) + extra + " --dek-file " +
                              ShellQuote(key_)));
      EXPECT_NE(r.exit_code, 0);
      EXPECT_THAT(r.err, StartsWith("sealwal: "));
      if (sub != "dump") ExpectOneErrorLine(r);
    }
  }
  EXPECT_TRUE(Files(enc_) == enc_before) << "a refused command modified the encrypted WAL";
  EXPECT_TRUE(Files(plain_) == plain_before) << "a refused command modified the plaintext WAL";
}

TEST_F(EncryptedWalCliTest, WrongKeyFailsAndChangesNothing) {
  ASSERT_EQ(RunCommand(Cli("wal gen " + ShellQuote(enc_) +
                           " --entries 50 --size 100 --batch 5 --seed 2 --segment-size 8192 "
                           "--dek-file " + ShellQuote(key_)))
                .exit_code,
            0);
  const auto before = Files(enc_);
  auto d = RunCommand(Cli("wal dump " + ShellQuote(enc_) + " --dek-file " + ShellQuote(wrong_key_)));
  // A key the WAL does not name: exit 1 while wal/ reports every decode
  // failure as kDataLoss, 2 ("key error") once it keeps the codec's
  // kNotFound; never 0.
  EXPECT_TRUE(d.exit_code == 1 || d.exit_code == 2) << d.exit_code;
  EXPECT_THAT(d.out, HasSubstr("{\"record\":\"error\",\"class\":\"decrypt_failed\""));
  EXPECT_THAT(d.err, HasSubstr("no DEK with key id 0x"));  // a wrong key has another id
  auto v = RunCommand(Cli("wal verify " + ShellQuote(enc_) + " --dek-file " +
                          ShellQuote(wrong_key_)));
  EXPECT_TRUE(v.exit_code == 1 || v.exit_code == 2) << v.exit_code;
  ExpectOneErrorLine(v);
  // Appending with the wrong key opens the WAL for writing: it must refuse
  // and leave every byte as it was.
  auto g = RunCommand(Cli("wal gen " + ShellQuote(enc_) +
                          " --entries 5 --size 10 --batch 1 --seed 2 --dek-file " +
                          ShellQuote(wrong_key_)));
  EXPECT_NE(g.exit_code, 0);
  ExpectOneErrorLine(g);
  EXPECT_TRUE(Files(enc_) == before) << "a wrong key modified the WAL";
}

}  // namespace
}  // namespace sealwal
