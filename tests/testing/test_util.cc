#include "testing/test_util.h"
#include "absl/strings/numbers.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace sealwal::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/sealwal-test-XXXXXX");
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    std::abort();
  }
  path_ = p;
}

TempDir::~TempDir() { RemoveTree(path_); }

void RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") RemoveTree(path + "/" + n);
      }
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

std::vector<std::string> ListDirNames(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& n : ListDirNames(dir)) m[n] = ReadFileOrDie(dir + "/" + n);
  return m;
}

void CopyDir(const std::string& from, const std::string& to) {
  ::mkdir(to.c_str(), 0700);
  DIR* d = ::opendir(from.c_str());
  ASSERT_NE(d, nullptr) << from;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    struct stat st;
    std::string src = from + "/" + n;
    if (n == "." || n == ".." || ::stat(src.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    WriteFileOrDie(to + "/" + n, ReadFileOrDie(src));
  }
  ::closedir(d);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileOrDie(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

google::protobuf::Struct LoadJson(const std::string& path) {
  google::protobuf::Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(ReadFileOrDie(path), &s);
  EXPECT_TRUE(st.ok()) << path << ": " << st.ToString();
  return s;
}

google::protobuf::Struct LoadJsonString(const std::string& json) {
  google::protobuf::Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(st.ok()) << st.ToString() << ": " << json.substr(0, 200);
  return s;
}

const google::protobuf::Value& Field(const google::protobuf::Struct& s, const std::string& key) {
  static const google::protobuf::Value* const empty = new google::protobuf::Value();
  auto it = s.fields().find(key);
  return it == s.fields().end() ? *empty : it->second;
}

bool HasField(const google::protobuf::Struct& s, const std::string& key) {
  return s.fields().find(key) != s.fields().end();
}

std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

CommandResult RunCommand(const std::string& cmd) {
  CommandResult r;
  char out_tmpl[] = "/tmp/sealwal-cmd-out-XXXXXX";
  char err_tmpl[] = "/tmp/sealwal-cmd-err-XXXXXX";
  int fo = ::mkstemp(out_tmpl), fe = ::mkstemp(err_tmpl);
  ::close(fo);
  ::close(fe);
  std::string full = absl::StrCat("(", cmd, ") >", out_tmpl, " 2>", err_tmpl, " </dev/null");
  int st = std::system(full.c_str());
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadFileOrDie(out_tmpl);
  r.err = ReadFileOrDie(err_tmpl);
  ::unlink(out_tmpl);
  ::unlink(err_tmpl);
  return r;
}

std::string FixturesDir() { return SEALWAL_FIXTURES_DIR; }

bool HaveFixtures() { return ::access((FixturesDir() + "/manifest.json").c_str(), R_OK) == 0; }

std::string PeerBinary() {
  if (const char* env = std::getenv("SEALWAL_PEER_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  std::string p = SEALWAL_PEER_BIN;
  if (!p.empty() && ::access(p.c_str(), X_OK) == 0) return p;
  return "";
}

bool PeerRequired() {
  const char* env = std::getenv("SEALWAL_REQUIRE_PEER");
  return env != nullptr && std::string(env) == "1";
}

void ExpectOneErrorLine(const CommandResult& r) {
  EXPECT_TRUE(absl::StartsWith(r.err, "sealwal: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

std::string LineValue(const std::string& out, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::ConsumePrefix(&line, name) && absl::ConsumePrefix(&line, " ")) {
      return std::string(line);
    }
  }
  return "";
}

}  // namespace sealwal::testing

namespace sealwal::testing {

uint64_t LastNumberAfter(const std::string& out, absl::string_view prefix) {
  uint64_t last = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    uint64_t n;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtoi(line, &n)) last = n;
  }
  return last;
}

}  // namespace sealwal::testing
