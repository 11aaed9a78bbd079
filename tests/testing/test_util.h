// Helpers shared by the test binaries: temporary directories, copies of
// fixtures, SHA-256, manifest JSON, and running the CLI or the etcd peer.
#ifndef SEALWAL_TESTS_TESTING_TEST_UTIL_H_
#define SEALWAL_TESTS_TESTING_TEST_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace sealwal::testing {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(absl::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Copies the regular files of `from` into `to` (created), not recursive.
void CopyDir(const std::string& from, const std::string& to);
void RemoveTree(const std::string& path);
// The names in `dir` (no "." or ".."), sorted; empty when it cannot be read.
std::vector<std::string> ListDirNames(const std::string& dir);
// name -> bytes of every entry of `dir`: compared before and after an
// operation that must modify nothing.
std::map<std::string, std::string> DirContents(const std::string& dir);
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, absl::string_view data);

std::string Sha256Hex(absl::string_view data);

// Parses a JSON file (a manifest) into a Struct; fails the test on error.
google::protobuf::Struct LoadJson(const std::string& path);
google::protobuf::Struct LoadJsonString(const std::string& json);
// Field helpers on parsed JSON.
const google::protobuf::Value& Field(const google::protobuf::Struct& s, const std::string& key);
bool HasField(const google::protobuf::Struct& s, const std::string& key);

// Runs a shell command, returns its exit status; stdout/stderr captured.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::string& cmd);
// Single-quotes s for a shell.
std::string ShellQuote(absl::string_view s);
// The CLI's error contract: exactly one line on stderr, starting "sealwal: ".
void ExpectOneErrorLine(const CommandResult& r);
// The value of the "name value" line in a command's output ("" if none).
std::string LineValue(const std::string& out, absl::string_view name);
// The number N of the last "<prefix>N" line in a command's output (0 if none),
// e.g. LastNumberAfter(out, "synced ") for the last durable index of a gen.
uint64_t LastNumberAfter(const std::string& out, absl::string_view prefix);

// The fixtures root and the etcd peer binary (empty when not built).
std::string FixturesDir();
std::string PeerBinary();
// True when the fixtures root holds etcd's fixtures (the build generates them
// with the peer, so they are missing when the peer is).
bool HaveFixtures();
// True when $SEALWAL_REQUIRE_PEER is "1" (scripts/test.sh sets it in CI): a
// missing peer then fails the interop tests instead of skipping them.
bool PeerRequired();

// In a test body or SetUp: skips (or, when the peer is required, fails) the
// test when `peer` is empty.
#define SEALWAL_SKIP_WITHOUT_PEER(peer)                                               \
  do {                                                                                \
    if ((peer).empty()) {                                                             \
      if (::sealwal::testing::PeerRequired()) {                                       \
        FAIL() << "etcdwal-peer is required ($SEALWAL_REQUIRE_PEER=1) but not built"; \
      }                                                                               \
      GTEST_SKIP() << "etcdwal-peer not built (scripts/test.sh builds it; it needs "  \
                      "Debian's golang packages)";                                    \
    }                                                                                 \
  } while (0)

// The same for a test that reads etcd's fixtures.
#define SEALWAL_SKIP_WITHOUT_FIXTURES()                                                 \
  do {                                                                                  \
    if (!::sealwal::testing::HaveFixtures()) {                                          \
      if (::sealwal::testing::PeerRequired()) {                                         \
        FAIL() << "etcd fixtures are required ($SEALWAL_REQUIRE_PEER=1) but missing in " \
               << ::sealwal::testing::FixturesDir();                                    \
      }                                                                                 \
      GTEST_SKIP() << "etcd fixtures not generated (the build makes them with "         \
                      "etcdwal-peer: scripts/test.sh)";                                 \
    }                                                                                   \
  } while (0)

}  // namespace sealwal::testing

#endif  // SEALWAL_TESTS_TESTING_TEST_UTIL_H_
