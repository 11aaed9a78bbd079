#include "tools/cli.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/env/file_system.h"

namespace sealwal::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& switches) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (absl::StartsWith(s, "--") && s.size() > 2) {
      std::string name = s.substr(2), value;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (std::find(switches.begin(), switches.end(), name) == switches.end()) {
        if (i + 1 >= argv.size()) {
          return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        }
        value = argv[++i];
      }
      a.flags_[name] = value;
    } else {
      a.positional_.push_back(s);
    }
  }
  return a;
}

std::optional<std::string> Args::Get(const std::string& flag) const {
  auto it = flags_.find(flag);
  if (it == flags_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<uint64_t> Args::GetU64(const std::string& flag,
                                      std::optional<uint64_t> dflt) const {
  auto v = Get(flag);
  if (!v.has_value()) {
    if (dflt.has_value()) return *dflt;
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " is required"));
  }
  uint64_t out;
  bool ok = absl::StartsWith(*v, "0x") ? absl::SimpleHexAtoi(v->substr(2), &out)
                                       : absl::SimpleAtoi(*v, &out);
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be a non-negative integer, got \"", *v, "\""));
  }
  return out;
}

absl::Status Args::CheckAllowed(const std::vector<std::string>& allowed) const {
  for (const auto& [name, value] : flags_) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return absl::OkStatus();
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          absl::StrAppend(&out, "\\u00", c < 0x10 ? "0" : "", absl::Hex(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += "\"";
  return out;
}

absl::StatusOr<std::optional<pem::UnlockKey>> UnlockKeyFromArgs(const Args& args) {
  const std::optional<std::string> file = args.Get("unlock-key-file");
  absl::StatusOr<std::optional<pem::UnlockKey>> key =
      pem::UnlockKeyFromFileOrEnv(env::DefaultFileSystem(), file);
  if (!key.ok() && file.has_value()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("--unlock-key-file: ", key.status().message()));
  }
  return key;
}

bool HelpRequested(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int PrintUsage(absl::string_view usage) {
  std::fprintf(stdout, "%.*s\n", static_cast<int>(usage.size()), usage.data());
  return kExitOk;
}

raftpb::HardState FillGenBatch(uint64_t seed, uint64_t lo, uint64_t hi, uint64_t size,
                               std::vector<raftpb::Entry>* out) {
  out->resize(hi - lo + 1);
  for (uint64_t i = lo; i <= hi; ++i) {
    raftpb::Entry& e = (*out)[i - lo];
    e.set_index(i);
    e.set_term(1);
    e.set_type(raftpb::EntryNormal);
    std::string* d = e.mutable_data();
    d->resize(size);
    DataGenFill(seed, i, 1, d->data(), size);
  }
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  hs.set_commit(hi);
  return hs;
}

int Fail(int code, absl::string_view msg) {
  std::fprintf(stderr, "sealwal: %.*s\n", static_cast<int>(msg.size()), msg.data());
  return code;
}

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitDataError;
    default:
      return kExitUsage;
  }
}

}  // namespace sealwal::cli
