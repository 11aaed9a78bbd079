// sealwal/kek without a token: the plugin protocol (plugin_protocol.h), the
// command source against the reference plugin and against plugins that
// fail, hang, answer garbage or lie (command_source.h), and the key file's
// KEK binding (pem/key_file.h, pem/key_read_writer.h, kek/key_file_kek.h).
#include <sys/stat.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/kek/command_source.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/kek/plugin_protocol.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/sealwal.h"
#include "testing/test_util.h"

namespace sealwal::kek {
namespace {

using ::testing::HasSubstr;

const std::string kPlugin = SEALWAL_EXAMPLE_KMS_PLUGIN;

encryption::SecretKey Secret(char fill) { return *encryption::SecretKey::FromBytes(std::string(32, fill)); }

// A plugin written as a shell script in `dir`.
std::string Script(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir.Sub(name);
  testing::WriteFileOrDie(path, "#!/bin/sh\n" + body + "\n");
  chmod(path.c_str(), 0700);
  return path;
}

KekSourceOptions Fast() {
  KekSourceOptions o;
  o.command_timeout = absl::Seconds(2);
  return o;
}

TEST(PluginProtocolTest, AnswersAreCheckedForTheirRequest) {
  const std::string b64_32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  auto unwrap = ParsePluginAnswer(PluginOp::kUnwrap,
                                  absl::StrCat(R"({"version":1,"plaintext":")", b64_32, R"("})"));
  ASSERT_TRUE(unwrap.ok()) << unwrap.status();
  EXPECT_EQ(unwrap->plaintext->size(), 32u);
  auto wrap = ParsePluginAnswer(PluginOp::kWrap, R"({"version":1,"wrapped":"AAEC","key_id":"k1"})");
  ASSERT_TRUE(wrap.ok()) << wrap.status();
  EXPECT_EQ(wrap->wrapped, std::string("\x00\x01\x02", 3));
  EXPECT_EQ(wrap->key_id, "k1");
  auto id = ParsePluginAnswer(PluginOp::kKeyId, R"({"version":1,"keyId":"k2"})");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->key_id, "k2");

  const struct {
    PluginOp op;
    const char* json;
    const char* says;
  } bad[] = {
      {PluginOp::kWrap, "", "malformed"},
      {PluginOp::kWrap, "{{{", "malformed"},
      {PluginOp::kWrap, R"({"version":2,"wrapped":"AAEC"})", "version 2"},
      {PluginOp::kWrap, R"({"wrapped":"AAEC"})", "version 0"},
      {PluginOp::kWrap, R"({"version":1,"wrapped":"AAEC","more":1})", "malformed"},
      {PluginOp::kWrap, R"({"version":1})", "wrapped must be"},
      {PluginOp::kWrap, R"({"version":1,"wrapped":"AAEC","plaintext":"AAEC"})", "plaintext"},
      {PluginOp::kUnwrap, R"({"version":1,"wrapped":"AAEC"})", "wrapped bytes"},
      {PluginOp::kUnwrap, R"({"version":1})", "plaintext must be"},
      {PluginOp::kKeyId, R"({"version":1})", "key_id is missing"},
      {PluginOp::kKeyId, R"({"version":1,"key_id":"a\u0001b"})", "not printable"},
      {PluginOp::kUnwrap, R"({"version":1,"error":"denied by policy"})", "refused unwrap: denied"},
  };
  for (const auto& b : bad) {
    auto a = ParsePluginAnswer(b.op, b.json);
    ASSERT_FALSE(a.ok()) << b.json;
    EXPECT_TRUE(absl::IsUnavailable(a.status())) << a.status();
    EXPECT_THAT(std::string(a.status().message()), HasSubstr(b.says)) << b.json;
  }
  EXPECT_FALSE(ParsePluginAnswer(PluginOp::kWrap, std::string(kMaxAnswerSize + 1, ' ')).ok());
}

TEST(PluginProtocolTest, RequestsAreOneJsonLine) {
  const std::string w = WrapRequest(Secret('\x01'), "ad");
  EXPECT_EQ(w, "{\"version\":1,\"op\":\"wrap\",\"plaintext\":"
               "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\",\"aad\":\"YWQ=\"}\n");
  EXPECT_EQ(UnwrapRequest("x", ""), "{\"version\":1,\"op\":\"unwrap\",\"wrapped\":\"eA==\",\"aad\":\"\"}\n");
  EXPECT_EQ(KeyIdRequest(), "{\"version\":1,\"op\":\"key-id\"}\n");
}

class CommandSourceTest : public ::testing::Test {
 protected:
  std::string Spec() const { return "command:" + kPlugin + " " + tmp_.Sub("master.key"); }
  testing::TempDir tmp_;
};

TEST_F(CommandSourceTest, ReferencePluginWrapsAndUnwrapsBoundToTheAad) {
  auto src = CommandSource::Open(Spec(), Fast());
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->Spec(), Spec());
  auto wrapped = (*src)->Wrap(Secret('\x07'), "aad-1");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ((*src)->last_key_id(), "example-kms:" + tmp_.Sub("master.key"));
  EXPECT_EQ(wrapped->find(std::string(32, '\x07')), std::string::npos);
  auto back = (*src)->Unwrap(*wrapped, "aad-1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == Secret('\x07'));
  auto other = (*src)->Unwrap(*wrapped, "aad-2");
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("refused unwrap"));
  auto id = (*src)->KeyId();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "example-kms:" + tmp_.Sub("master.key"));
}

TEST_F(CommandSourceTest, SpecsAreChecked) {
  EXPECT_TRUE(absl::IsInvalidArgument(CommandSource::Open("command:relative/plugin", Fast()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CommandSource::Open("command:" + kPlugin + "  x", Fast()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CommandSource::Open("command:", Fast()).status()));
  EXPECT_TRUE(absl::IsUnavailable(CommandSource::Open("command:/nonexistent/plugin", Fast()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenKekSource("kms:foo", Fast()).status()));
  KekSourceOptions zero;
  zero.command_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(CommandSource::Open(Spec(), zero).status()));
}

TEST_F(CommandSourceTest, MisbehavingPluginsGiveClearErrors) {
  const struct {
    const char* name;
    const char* body;
    const char* says;
  } cases[] = {
      {"fails", "echo 'KMS: access denied' >&2; exit 3", "exited with status 3: KMS: access denied"},
      {"refuses", "echo '{\"version\":1,\"error\":\"key disabled\"}'; exit 1",
       "refused unwrap: key disabled"},
      {"garbage", "echo 'hello'", "malformed"},
      {"silent", "exit 0", "malformed"},
      {"signal", "kill -9 $$", "died on signal 9"},
      {"hangs", "sleep 30", "did not answer within 2s; it was killed"},
      {"hangs-after-answer", "echo '{\"version\":1,\"plaintext\":\"AAAA\"}'; exec sleep 30",
       "did not answer within 2s"},
      {"closes-and-hangs", "exec >/dev/null 2>&1 </dev/null; sleep 30", "did not answer within"},
      {"floods", "yes", "wrote more than"},
      {"ignores-stdin", "exec 0<&-; echo '{\"version\":1,\"plaintext\":\"AAAA\"}'", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = Script(tmp_, c.name, c.body);
    auto src = CommandSource::Open("command:" + path, Fast());
    ASSERT_TRUE(src.ok()) << src.status();
    const absl::Time start = absl::Now();
    auto r = (*src)->Unwrap(std::string(1000, 'w'), "aad");
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    if (std::string(c.name) == "ignores-stdin") {
      // Closing stdin unread is allowed; no SIGPIPE may reach this process.
      ASSERT_TRUE(r.ok()) << r.status();
      continue;
    }
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.says));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
  }
}

// A key file locked under an unlock key that a source holds.
class KeyFileKekTest : public CommandSourceTest {
 protected:
  void MakeFile() {
    auto src = OpenKekSource(Spec(), Fast());
    ASSERT_TRUE(src.ok()) << src.status();
    auto k = NewSourcedUnlockKey(**src);
    ASSERT_TRUE(k.ok()) << k.status();
    pem::KeyReadWriterOptions o;
    o.path = path_;
    o.unlock_key = k->unlock_key.Clone();
    o.kek_binding = k->binding;
    auto krw = pem::KeyReadWriter::Create(std::move(o));
    ASSERT_TRUE(krw.ok());
    pem::DekHeaders h;
    h.current = pem::StoredDek{*encryption::Dek::Generate(), 0, 1};
    ASSERT_TRUE((*krw)->Write(*pem::PrivateKey::GenerateEcP256(), h).ok());
    dek_ = h.current->dek.id;
  }
  std::string path_ = tmp_.Sub("node.key");
  encryption::KeyId dek_;
};

TEST_F(KeyFileKekTest, TheFileHoldsOnlyTheWrappedUnlockKeyAndOpensThroughTheSource) {
  MakeFile();
  const std::string text = testing::ReadFileOrDie(path_);
  EXPECT_THAT(text, HasSubstr("kek-source: " + Spec() + "\n"));
  EXPECT_THAT(text, HasSubstr("kek-wrapped: "));
  auto parsed = pem::ParseKeyFile(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->kek_binding.has_value());
  EXPECT_TRUE(parsed->locked);

  auto unlock = UnlockKeyFromKekSource(env::DefaultFileSystem(), path_, Fast());
  ASSERT_TRUE(unlock.ok()) << unlock.status();
  ASSERT_TRUE(unlock->has_value());
  pem::KeyReadWriterOptions o;
  o.path = path_;
  o.unlock_key = (*unlock)->Clone();
  auto krw = pem::KeyReadWriter::Create(std::move(o));
  ASSERT_TRUE(krw.ok());
  auto file = (*krw)->Read();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->headers.current->dek.id, dek_);
  // A header update keeps the binding: the file still opens through it.
  ASSERT_TRUE((*krw)->ViewAndUpdateHeaders([](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
    pem::DekHeaders out = h.Clone();
    out.needs_rotation = true;
    return out;
  }).ok());
  auto again = UnlockKeyFromKekSource(env::DefaultFileSystem(), path_, Fast());
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_value());
  EXPECT_TRUE(**again == **unlock);
}

TEST_F(KeyFileKekTest, AFileWithoutASourceGivesNoKey) {
  auto none = UnlockKeyFromKekSource(env::DefaultFileSystem(), tmp_.Sub("missing.key"), Fast());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(KeyFileKekTest, ALyingSourceIsNamedAndNothingChanges) {
  MakeFile();
  const std::string before = testing::ReadFileOrDie(path_);
  // Swap in a "KMS" that answers every unwrap with 32 fixed bytes.
  const std::string liar = Script(
      tmp_, "liar",
      "echo '{\"version\":1,\"plaintext\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}'");
  auto parsed = pem::ParseKeyFile(before);
  ASSERT_TRUE(parsed.ok());
  std::string text = before;
  const std::string from = "kek-source: " + Spec();
  text.replace(text.find(from), from.size(), "kek-source: command:" + liar);
  // The digest covers the header: the edited file is damage...
  EXPECT_TRUE(absl::IsDataLoss(pem::ParseKeyFile(text).status()));
  // ...and a binding whose source lies is caught by the DEK headers.
  pem::KekBinding b = *parsed->kek_binding;
  b.source = "command:" + liar;
  auto u = UnwrapBinding(b, Fast());
  ASSERT_TRUE(u.ok()) << u.status();  // 32 bytes: only the DEK headers can tell
  EXPECT_TRUE(absl::IsPermissionDenied(pem::OpenDekHeaders(*parsed, &*u).status()));
  EXPECT_EQ(testing::ReadFileOrDie(path_), before);
}

TEST_F(KeyFileKekTest, BindingsAreOnlyWrittenAndReadInALockedFile) {
  pem::KekBinding b{Spec(), "wrapped"};
  pem::DekHeaders h;
  h.current = pem::StoredDek{*encryption::Dek::Generate(), 0, 1};
  auto key = pem::PrivateKey::GenerateEcP256();
  EXPECT_TRUE(absl::IsInvalidArgument(pem::EncodeKeyFile(*key, h, 1, nullptr, &b).status()));
  auto unlock = pem::UnlockKey::Generate();
  pem::KekBinding empty{"", "x"};
  EXPECT_TRUE(absl::IsInvalidArgument(pem::EncodeKeyFile(*key, h, 1, &*unlock, &empty).status()));
  pem::KekBinding big{Spec(), std::string(pem::kMaxKekWrappedSize + 1, 'x')};
  EXPECT_TRUE(absl::IsInvalidArgument(pem::EncodeKeyFile(*key, h, 1, &*unlock, &big).status()));
  auto text = pem::EncodeKeyFile(*key, h, 1, &*unlock, &b);
  ASSERT_TRUE(text.ok()) << text.status();
  auto parsed = pem::ParseKeyFile(*text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed->kek_binding, b);
  // One header without the other is damage.
  std::string cut = *text;
  const size_t at = cut.find("kek-wrapped: ");
  cut.erase(at, cut.find('\n', at) + 1 - at);
  EXPECT_TRUE(absl::IsDataLoss(pem::ParseKeyFile(cut).status()));
}

// The C API opens a store whose node.key a plugin holds, with no unlock
// key given; a failing plugin is SEALWAL_ERR_UNAVAILABLE and changes nothing.
TEST_F(KeyFileKekTest, TheCApiOpensThroughTheKeyFilesSource) {
  const std::string data = tmp_.Sub("data");
  ASSERT_EQ(mkdir(data.c_str(), 0700), 0);
  path_ = data + "/node.key";
  MakeFile();
  auto open = [&](sealwal_store** st, std::string* err) {
    sealwal_options* o = sealwal_options_create();
    sealwal_options_set_create_if_missing(o, 1);
    char* msg = nullptr;
    const int rc = sealwal_open(data.c_str(), o, st, &msg);
    if (msg != nullptr) *err = msg;
    sealwal_free(msg);
    sealwal_options_destroy(o);
    return rc;
  };
  sealwal_store* st = nullptr;
  std::string err;
  ASSERT_EQ(open(&st, &err), SEALWAL_OK) << err;
  EXPECT_EQ(sealwal_encrypted(st), 1);
  sealwal_recovery* rec = nullptr;
  ASSERT_EQ(sealwal_bootstrap(st, &rec, nullptr), SEALWAL_OK);
  sealwal_recovery_destroy(rec);
  const std::string payload = "sealed through the plugin's key";
  sealwal_entry e{1, 1, 0, payload.data(), payload.size()};
  sealwal_hardstate hs{1, 1, 1};
  ASSERT_EQ(sealwal_save(st, &hs, &e, 1, nullptr), SEALWAL_OK);
  ASSERT_EQ(sealwal_close(st, nullptr), SEALWAL_OK);

  // The plugin's master key is gone: nothing opens, nothing changes.
  const auto before = testing::DirContents(data);
  ASSERT_EQ(rename(tmp_.Sub("master.key").c_str(), tmp_.Sub("master.key.away").c_str()), 0);
  st = nullptr;
  EXPECT_EQ(open(&st, &err), SEALWAL_ERR_UNAVAILABLE);
  EXPECT_EQ(st, nullptr);
  EXPECT_THAT(err, HasSubstr("KEK plugin"));
  EXPECT_EQ(testing::DirContents(data), before);
  ASSERT_EQ(rename(tmp_.Sub("master.key.away").c_str(), tmp_.Sub("master.key").c_str()), 0);

  ASSERT_EQ(open(&st, &err), SEALWAL_OK) << err;
  ASSERT_EQ(sealwal_bootstrap(st, &rec, nullptr), SEALWAL_OK);
  sealwal_recovery_destroy(rec);
  EXPECT_EQ(sealwal_log_last_index(st), 1u);
  sealwal_entry_iter* it = nullptr;
  ASSERT_EQ(sealwal_log_entries(st, 1, 2, &it, nullptr), SEALWAL_OK);
  int has = 0;
  sealwal_entry got{};
  ASSERT_EQ(sealwal_entry_iter_next(it, &has, &got, nullptr), SEALWAL_OK);
  ASSERT_EQ(has, 1);
  EXPECT_EQ(std::string(static_cast<const char*>(got.data), got.data_len), payload);
  sealwal_entry_iter_destroy(it);
  ASSERT_EQ(sealwal_close(st, nullptr), SEALWAL_OK);
}

TEST(KekOptionsTest, EnvironmentGivesPinAndTimeout) {
  testing::TempDir tmp;
  setenv(kPinEnvVar, "1234", 1);
  setenv(kTimeoutEnvVar, "750ms", 1);
  auto o = KekSourceOptionsFromEnvironment(env::DefaultFileSystem());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(*o->pkcs11_pin == *encryption::SecretKey::FromBytes("1234"));
  EXPECT_EQ(o->command_timeout, absl::Milliseconds(750));
  unsetenv(kPinEnvVar);
  testing::WriteFileOrDie(tmp.Sub("pin"), "5678\n");
  setenv(kPinFileEnvVar, tmp.Sub("pin").c_str(), 1);
  o = KekSourceOptionsFromEnvironment(env::DefaultFileSystem());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(*o->pkcs11_pin == *encryption::SecretKey::FromBytes("5678"));
  setenv(kTimeoutEnvVar, "forever", 1);
  EXPECT_TRUE(absl::IsInvalidArgument(KekSourceOptionsFromEnvironment(env::DefaultFileSystem()).status()));
  unsetenv(kPinFileEnvVar);
  unsetenv(kTimeoutEnvVar);
}

}  // namespace
}  // namespace sealwal::kek
