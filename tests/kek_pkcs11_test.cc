// kek/pkcs11_source: a real SoftHSM2 token, initialised per test in a temp
// dir (SOFTHSM2_CONF): create a key, wrap/unwrap round trips, another aad
// and damaged bytes are refused, wrong or missing PINs, missing module,
// token or key, the spec subset, and several sources one after another in
// one process (C_Initialize / C_Finalize pairs).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/kek/pkcs11_source.h"
#include "testing/softhsm_token.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::kek {
namespace {

using encryption::SecretKey;
using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kModule = sealwal::testing::kSoftHsmModule;
constexpr char kToken[] = "sealwal-test";
constexpr char kPin[] = "1234";

std::string MakeSpec(absl::string_view object = "kek", absl::string_view token = kToken,
                     absl::string_view module = kModule) {
  return absl::StrCat("pkcs11:token=", token, ";object=", object, "?module-path=", module);
}

KekSourceOptions WithPin(absl::string_view pin) {
  KekSourceOptions options;
  options.pkcs11_pin = *SecretKey::FromBytes(pin);
  return options;
}

SecretKey Secret(int seed) {
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(static_cast<char>(seed * 7 + i));
  return *SecretKey::FromBytes(s);
}

// A fresh SoftHSM2 token labelled kToken (user PIN kPin) in a temp dir.
// SoftHSM2 reads SOFTHSM2_CONF at C_Initialize, so each test's sources see
// only its own token as long as the previous test's were finalised.
class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sealwal::testing::SoftHsmInstalled()) {
      GTEST_SKIP() << kModule << " is missing (scripts/setup.sh installs softhsm2)";
    }
    ASSERT_TRUE(sealwal::testing::InitSoftHsmToken(dir_, kToken, kPin));
  }

  void CreateKey(absl::string_view object = "kek") {
    ASSERT_OK(CreatePkcs11AesKey(MakeSpec(object), WithPin(kPin)));
  }

  std::unique_ptr<KekSource> Open(absl::string_view object = "kek") {
    absl::StatusOr<std::unique_ptr<KekSource>> s =
        OpenPkcs11Source(MakeSpec(object), WithPin(kPin));
    EXPECT_OK(s);
    return s.ok() ? std::move(*s) : nullptr;
  }

  sealwal::testing::TempDir dir_;
};

TEST_F(Pkcs11Test, WrapUnwrapRoundTrip) {
  CreateKey();
  std::unique_ptr<KekSource> source = Open();
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->Spec(), MakeSpec());

  SecretKey secret = Secret(1);
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(secret, "key file aad"));
  // version || IV || ciphertext || tag.
  ASSERT_EQ(wrapped.size(), 1u + 12u + 32u + 16u);
  EXPECT_EQ(static_cast<uint8_t>(wrapped[0]), kPkcs11WrappedVersion);
  EXPECT_EQ(wrapped.find(std::string(secret.bytes())), std::string::npos);
  ASSERT_OK_AND_ASSIGN(SecretKey back, source->Unwrap(wrapped, "key file aad"));
  EXPECT_TRUE(back == secret);

  // A fresh IV each time.
  ASSERT_OK_AND_ASSIGN(std::string again, source->Wrap(secret, "key file aad"));
  EXPECT_NE(again, wrapped);
  ASSERT_OK_AND_ASSIGN(SecretKey back2, source->Unwrap(again, "key file aad"));
  EXPECT_TRUE(back2 == secret);

  // An empty aad works too and is not the same as a non-empty one.
  ASSERT_OK_AND_ASSIGN(std::string no_aad, source->Wrap(secret, ""));
  ASSERT_OK_AND_ASSIGN(SecretKey back3, source->Unwrap(no_aad, ""));
  EXPECT_TRUE(back3 == secret);
  EXPECT_THAT(source->Unwrap(no_aad, "x"), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(Pkcs11Test, OpenKekSourceDispatchesPkcs11Specs) {
  CreateKey();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KekSource> source, OpenKekSource(MakeSpec(), WithPin(kPin)));
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(Secret(2), "aad"));
  ASSERT_OK_AND_ASSIGN(SecretKey back, source->Unwrap(wrapped, "aad"));
  EXPECT_TRUE(back == Secret(2));
}

TEST_F(Pkcs11Test, SpecIsCanonical) {
  CreateKey();
  // Attributes in another order, a percent-encoded character: the same key.
  const std::string given =
      absl::StrCat("pkcs11:object=k%65k;token=sealwal-test?module-path=", kModule);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KekSource> source, OpenPkcs11Source(given, WithPin(kPin)));
  EXPECT_EQ(source->Spec(), MakeSpec());
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(Secret(3), "aad"));
  source.reset();
  // The canonical spec opens the same key.
  ASSERT_OK_AND_ASSIGN(source, OpenPkcs11Source(MakeSpec(), WithPin(kPin)));
  ASSERT_OK_AND_ASSIGN(SecretKey back, source->Unwrap(wrapped, "aad"));
  EXPECT_TRUE(back == Secret(3));
  source.reset();

  // Spaces (and other reserved characters) are percent-encoded in labels
  // and the module path; '/' stays readable.
  const std::string link = dir_.Sub("soft hsm.so");
  ASSERT_EQ(symlink(kModule, link.c_str()), 0);
  const std::string spaced = absl::StrCat(
      "pkcs11:token=sealwal-test;object=my%20kek?module-path=", dir_.path(), "/soft%20hsm.so");
  ASSERT_OK(CreatePkcs11AesKey(spaced, WithPin(kPin)));
  ASSERT_OK_AND_ASSIGN(source, OpenPkcs11Source(spaced, WithPin(kPin)));
  EXPECT_EQ(source->Spec(), spaced);
  ASSERT_OK_AND_ASSIGN(wrapped, source->Wrap(Secret(3), "aad"));
  ASSERT_OK_AND_ASSIGN(back, source->Unwrap(wrapped, "aad"));
  EXPECT_TRUE(back == Secret(3));
}

TEST_F(Pkcs11Test, OtherAadDoesNotAuthenticate) {
  CreateKey();
  std::unique_ptr<KekSource> source = Open();
  ASSERT_NE(source, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(Secret(4), "store A"));
  EXPECT_THAT(source->Unwrap(wrapped, "store B"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("does not authenticate under the token's key")));
  // The failure leaves the session usable.
  ASSERT_OK_AND_ASSIGN(SecretKey back, source->Unwrap(wrapped, "store A"));
  EXPECT_TRUE(back == Secret(4));
}

TEST_F(Pkcs11Test, DamagedBytesAreRefused) {
  CreateKey();
  std::unique_ptr<KekSource> source = Open();
  ASSERT_NE(source, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(Secret(5), "aad"));

  for (size_t i = 0; i < wrapped.size(); ++i) {
    SCOPED_TRACE(i);
    std::string bad = wrapped;
    bad[i] ^= 0x01;
    // The version byte is a format error; any other flip fails GCM's tag.
    EXPECT_THAT(source->Unwrap(bad, "aad"), StatusIs(i == 0 ? absl::StatusCode::kInvalidArgument
                                                            : absl::StatusCode::kPermissionDenied));
  }
  for (size_t n = 0; n < wrapped.size(); ++n) {
    SCOPED_TRACE(n);
    absl::Status s = source->Unwrap(wrapped.substr(0, n), "aad").status();
    EXPECT_THAT(s, StatusIs(n < 30 ? absl::StatusCode::kInvalidArgument
                                   : absl::StatusCode::kPermissionDenied));
  }
  EXPECT_THAT(source->Unwrap(wrapped + "x", "aad"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(source->Unwrap(std::string(5000, '\x01'), "aad"),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // A key of the same label on another token (here: a new key under another
  // label) does not open it either.
  CreateKey("other");
  std::unique_ptr<KekSource> other = Open("other");
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(other->Unwrap(wrapped, "aad"), StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(SecretKey back, source->Unwrap(wrapped, "aad"));
  EXPECT_TRUE(back == Secret(5));
}

TEST_F(Pkcs11Test, WrapRejectsAnEmptySecret) {
  CreateKey();
  std::unique_ptr<KekSource> source = Open();
  ASSERT_NE(source, nullptr);
  EXPECT_THAT(source->Wrap(SecretKey(), "aad"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(Pkcs11Test, WrongPinIsPermissionDenied) {
  CreateKey();
  absl::Status s = OpenPkcs11Source(MakeSpec(), WithPin("98765")).status();
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("wrong PIN"), HasSubstr(kToken), Not(HasSubstr("98765")))));
  EXPECT_THAT(CreatePkcs11AesKey(MakeSpec("another"), WithPin("98765")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong PIN")));
  // The right PIN still works afterwards (SoftHSM2 counts failures but does
  // not lock the user PIN after one).
  EXPECT_NE(Open(), nullptr);
}

TEST_F(Pkcs11Test, NoPinIsPermissionDenied) {
  CreateKey();
  EXPECT_THAT(OpenPkcs11Source(MakeSpec(), KekSourceOptions()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("a PIN is needed")));
  EXPECT_THAT(OpenPkcs11Source(MakeSpec(), WithPin("")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("a PIN is needed")));
  EXPECT_THAT(CreatePkcs11AesKey(MakeSpec("another"), KekSourceOptions()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("a PIN is needed")));
}

TEST_F(Pkcs11Test, MissingTokenIsUnavailable) {
  EXPECT_THAT(
      OpenPkcs11Source(MakeSpec("kek", "no-such-token"), WithPin(kPin)),
      StatusIs(absl::StatusCode::kUnavailable,
               AllOf(HasSubstr("no token labelled \"no-such-token\""), HasSubstr(kModule))));
  // A label that is a prefix of the real one does not match it.
  EXPECT_THAT(OpenPkcs11Source(MakeSpec("kek", "sealwal"), WithPin(kPin)),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(Pkcs11Test, MissingObjectIsRefusedClearly) {
  CreateKey();
  EXPECT_THAT(OpenPkcs11Source(MakeSpec("absent"), WithPin(kPin)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("no secret key labelled \"absent\""), HasSubstr(kToken))));
  // Labels are compared whole.
  EXPECT_THAT(OpenPkcs11Source(MakeSpec("ke"), WithPin(kPin)),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(Pkcs11Test, CreateRefusesAnExistingLabel) {
  CreateKey();
  EXPECT_THAT(CreatePkcs11AesKey(MakeSpec(), WithPin(kPin)),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"kek\"")));
  // Still exactly one key: opening it works.
  std::unique_ptr<KekSource> source = Open();
  ASSERT_NE(source, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string wrapped, source->Wrap(Secret(6), "aad"));
  EXPECT_OK(source->Unwrap(wrapped, "aad"));
}

TEST_F(Pkcs11Test, SourcesOneAfterAnother) {
  CreateKey();
  std::string wrapped;
  {
    std::unique_ptr<KekSource> a = Open();
    ASSERT_NE(a, nullptr);
    ASSERT_OK_AND_ASSIGN(wrapped, a->Wrap(Secret(7), "aad"));
  }
  // The first source finalised the module; a second one initialises it again.
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    std::unique_ptr<KekSource> b = Open();
    ASSERT_NE(b, nullptr);
    ASSERT_OK_AND_ASSIGN(SecretKey back, b->Unwrap(wrapped, "aad"));
    EXPECT_TRUE(back == Secret(7));
  }
}

TEST_F(Pkcs11Test, TwoSourcesAtOnce) {
  CreateKey();
  CreateKey("second");
  std::unique_ptr<KekSource> a = Open();
  std::unique_ptr<KekSource> b = Open("second");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string wa, a->Wrap(Secret(8), "aad"));
  ASSERT_OK_AND_ASSIGN(std::string wb, b->Wrap(Secret(9), "aad"));
  // Closing one leaves the other's module, session and login in place.
  a.reset();
  ASSERT_OK_AND_ASSIGN(SecretKey back, b->Unwrap(wb, "aad"));
  EXPECT_TRUE(back == Secret(9));
  b.reset();
  a = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_OK_AND_ASSIGN(SecretKey back_a, a->Unwrap(wa, "aad"));
  EXPECT_TRUE(back_a == Secret(8));
}

TEST_F(Pkcs11Test, SourcesOnSeveralThreads) {
  CreateKey("a");
  CreateKey("b");
  std::unique_ptr<KekSource> sources[] = {Open("a"), Open("b")};
  ASSERT_NE(sources[0], nullptr);
  ASSERT_NE(sources[1], nullptr);
  // One call at a time per source, both sources at once (CKF_OS_LOCKING_OK).
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&sources, t] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<std::string> w = sources[t]->Wrap(Secret(t * 100 + i), "aad");
        ASSERT_OK(w.status());
        absl::StatusOr<SecretKey> back = sources[t]->Unwrap(*w, "aad");
        ASSERT_OK(back.status());
        EXPECT_TRUE(*back == Secret(t * 100 + i));
      }
    });
  }
  for (std::thread& th : threads) th.join();
}

// No token needed: these fail before the module is loaded or at dlopen.

TEST(Pkcs11SpecTest, MissingModuleIsUnavailable) {
  const std::string path = "/nonexistent/sealwal/libnope.so";
  EXPECT_THAT(OpenPkcs11Source(MakeSpec("kek", kToken, path), WithPin(kPin)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(path)));
  EXPECT_THAT(CreatePkcs11AesKey(MakeSpec("kek", kToken, path), WithPin(kPin)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(path)));
}

TEST(Pkcs11SpecTest, ANonModuleFileIsUnavailable) {
  sealwal::testing::TempDir dir;
  const std::string path = dir.Sub("not-a-module.so");
  sealwal::testing::WriteFileOrDie(path, "not an ELF file");
  EXPECT_THAT(OpenPkcs11Source(MakeSpec("kek", kToken, path), WithPin(kPin)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(path)));
}

TEST(Pkcs11SpecTest, MalformedSpecsAreInvalidArgument) {
  const std::string m = kModule;
  struct Case {
    std::string spec;
    std::string message;
  };
  const Case cases[] = {
      {"", "must start with \"pkcs11:\""},
      {"command:/bin/true", "must start with \"pkcs11:\""},
      {"pkcs11x:token=a;object=b?module-path=" + m, "must start with \"pkcs11:\""},
      {"PKCS11:token=a;object=b?module-path=" + m, "must start with \"pkcs11:\""},
      {"pkcs11:token=a;object=b", "needs ?module-path="},
      {"pkcs11:token=a;object=b?module-path=", "needs ?module-path="},
      {"pkcs11:token=a;object=b?module-path=libsofthsm2.so", "must be absolute"},
      {"pkcs11:token=a;object=b?module-path=./lib/x.so", "must be absolute"},
      {"pkcs11:object=b?module-path=" + m, "needs a non-empty token="},
      {"pkcs11:token=;object=b?module-path=" + m, "needs a non-empty token="},
      {"pkcs11:token=a?module-path=" + m, "needs a non-empty object="},
      {"pkcs11:token=a;object=?module-path=" + m, "needs a non-empty object="},
      {"pkcs11:token=a;object=b?module-path=" + m + "&pin-value=1234", "pin-value"},
      {"pkcs11:token=a;object=b;pin-value=1234?module-path=" + m, "pin-value"},
      {"pkcs11:token=a;object=b?pin-source=/etc/pin&module-path=" + m, "pin-source"},
      {"pkcs11:token=a;object=b;id=%01?module-path=" + m, "may hold only"},
      {"pkcs11:token=a;object=b;type=secret-key?module-path=" + m, "may hold only"},
      {"pkcs11:token=a;object=b;slot-id=0?module-path=" + m, "may hold only"},
      {"pkcs11:token=a;object=b;serial=1?module-path=" + m, "may hold only"},
      {"pkcs11:token=a;object=b?module-path=" + m + "&module-name=softhsm2", "may hold only"},
      {"pkcs11:token=a;object=b?module-path=" + m + "&x-vendor=1", "may hold only"},
      {"pkcs11:token=a;object=b;color=red?module-path=" + m, "does not know"},
      {"pkcs11:token=" + std::string(33, 'a') + ";object=b?module-path=" + m, "does not know"},
      {"pkcs11:token=my token;object=b?module-path=" + m, "whitespace"},
      {"pkcs11:token=a;object=b?module-path=" + m + "\n", "whitespace"},
      {"pkcs11:token=a;object=%zz?module-path=" + m, "not a PKCS#11 URI"},
      {"pkcs11:token=a;object?module-path=" + m, "not a PKCS#11 URI"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    absl::Status s = OpenPkcs11Source(c.spec, WithPin(kPin)).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    // One line, and never the PIN.
    EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos);
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("1234")));
    EXPECT_THAT(CreatePkcs11AesKey(c.spec, WithPin(kPin)),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace sealwal::kek
