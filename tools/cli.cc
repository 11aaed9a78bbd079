#include "tools/cli.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "CLI/CLI.hpp"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/pem/unlock_key.h"

namespace sealwal::cli {

namespace {

// "--name" for a bare flag name.
std::string Dashed(const std::string& flag) { return "--" + flag; }

// The numbers GetU64 accepts: decimal, or 0x hex; no sign, no overflow.
bool ParseU64(const std::string& v, uint64_t* out) {
  return absl::StartsWith(v, "0x") ? absl::SimpleHexAtoi(v.substr(2), out)
                                   : absl::SimpleAtoi(v, out);
}

// One line: CLI11 messages may span several.
std::string OneLine(absl::string_view msg) {
  std::string out;
  bool space = false;
  for (char c : msg) {
    if (c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out.push_back(c);
  }
  return out;
}

// Help starts with the usage line ("usage: sealwal wal gen [OPTIONS] DIR"),
// then the description, the positionals, the options and the footer.
class UsageFirstFormatter : public CLI::Formatter {
 public:
  UsageFirstFormatter() {
    label("Usage", "usage");
    column_width(28);
  }
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::string out = make_usage(app, name);
    if (!app->get_description().empty()) {
      absl::StrAppend(&out, "\n", Wrapped(app->get_description()), "\n");
    }
    absl::StrAppend(&out, make_positionals(app), make_groups(app, mode),
                    make_subcommands(app, mode));
    if (!app->get_footer().empty()) absl::StrAppend(&out, "\n", Wrapped(app->get_footer()));
    while (absl::EndsWith(out, "\n")) out.pop_back();
    return out;
  }

 private:
  // `text` broken into lines of at most 78 columns at spaces.
  static std::string Wrapped(absl::string_view text) {
    std::string out;
    size_t col = 0;
    for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
      if (col > 0 && col + 1 + word.size() > 78) {
        out += '\n';
        col = 0;
      } else if (col > 0) {
        out += ' ';
        ++col;
      }
      absl::StrAppend(&out, word);
      col += word.size();
    }
    return out;
  }
};

std::unique_ptr<CLI::App> NewApp(const std::string& path, const std::string& description) {
  auto app = std::make_unique<CLI::App>(description, absl::StrCat("sealwal ", path));
  app->formatter(std::make_shared<UsageFirstFormatter>());
  app->set_help_flag("-h,--help", "print this usage and exit");
  // `--flag a --flag b` means b, as it always did.
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  return app;
}

// CLI11's parse: help is 0 on stdout, anything else one line, exit 2.
std::optional<int> ParseApp(CLI::App* app, const std::vector<std::string>& args) {
  if (HelpRequested(args)) {
    std::fprintf(stdout, "%s\n", app->help().c_str());
    return kExitOk;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11's order
  try {
    app->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::fprintf(stdout, "%s\n", app->help().c_str());
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::fprintf(stdout, "%s\n", app->help("", CLI::AppFormatMode::All).c_str());
    return kExitOk;
  } catch (const CLI::ArgumentMismatch& e) {
    // "--entries: 1 required N missing" said as it always was.
    const std::string msg = OneLine(e.what());
    const size_t colon = msg.find(':');
    if (colon != std::string::npos && absl::EndsWith(msg, " missing") &&
        absl::StrContains(msg, " required ")) {
      return Fail(kExitUsage, absl::StrCat(msg.substr(0, colon), " needs a value"));
    }
    return Fail(kExitUsage, msg);
  } catch (const CLI::ParseError& e) {
    return Fail(kExitUsage, OneLine(e.what()));
  }
  return std::nullopt;
}

}  // namespace

Command::Command(const std::string& path, const std::string& description)
    : app_(NewApp(path, description)) {}

Command::~Command() = default;

void Command::Positional(const std::string& name, const std::string& help, Need need) {
  CLI::Option* o = app_->add_option(name, help);
  o->expected(1);
  if (need == kRequired) o->required();
  positional_names_.push_back(name);
}

void Command::Option(const std::string& flag, const std::string& value_name,
                     const std::string& help, Need need) {
  CLI::Option* o = app_->add_option(Dashed(flag), help);
  o->expected(1)->type_name(value_name);
  if (need == kRequired) o->required();
}

void Command::U64(const std::string& flag, const std::string& help, Need need) {
  CLI::Option* o = app_->add_option(Dashed(flag), help);
  o->expected(1)->type_name("N");
  o->check(CLI::Validator(
      [](std::string& v) -> std::string {
        uint64_t n;
        if (ParseU64(v, &n)) return "";
        return absl::StrCat("must be a non-negative integer, got \"", v, "\"");
      },
      "", "u64"));
  if (need == kRequired) o->required();
}

void Command::Switch(const std::string& flag, const std::string& help) {
  app_->add_flag(Dashed(flag), help);
}

void Command::KeyFlags() {
  Option("key-file", "F", "the node key file (`sealwal key init`): seals under raft-dek");
  Option("dek-file", "F", "a file of exactly 32 raw key bytes (tests and scripts)");
  Option("unlock-key-file", "U",
         "the unlock key of a locked key file (else $SEALWAL_UNLOCK_KEY)");
}

void Command::Footer(const std::string& text) { app_->footer(text); }

std::string Command::Help() const { return app_->help(); }

std::optional<int> Command::Parse(const std::vector<std::string>& args) {
  if (std::optional<int> rc = ParseApp(app_.get(), args)) return rc;
  positional_.clear();
  for (const std::string& name : positional_names_) {
    const CLI::Option* o = app_->get_option(name);
    if (o->count() == 0) break;
    positional_.push_back(o->results().back());
  }
  return std::nullopt;
}

bool Command::Has(const std::string& flag) const {
  const CLI::Option* o = app_->get_option_no_throw(Dashed(flag));
  return o != nullptr && o->count() != 0;
}

std::optional<std::string> Command::Get(const std::string& flag) const {
  const CLI::Option* o = app_->get_option_no_throw(Dashed(flag));
  if (o == nullptr || o->count() == 0 || o->results().empty()) return std::nullopt;
  return o->results().back();
}

absl::StatusOr<uint64_t> Command::GetU64(const std::string& flag,
                                         std::optional<uint64_t> dflt) const {
  auto v = Get(flag);
  if (!v.has_value()) {
    if (dflt.has_value()) return *dflt;
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " is required"));
  }
  uint64_t out;
  if (!ParseU64(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be a non-negative integer, got \"", *v, "\""));
  }
  return out;
}

int RunGroup(const std::string& group, const std::string& description,
             const std::vector<Subcommand>& subs, const std::vector<std::string>& args) {
  std::unique_ptr<CLI::App> app = NewApp(group, description);
  std::vector<std::string> names;
  for (const Subcommand& s : subs) {
    app->add_subcommand(s.name, s.summary);
    names.push_back(s.name);
  }
  app->require_subcommand(1);
  app->footer(absl::StrCat("Run `sealwal ", group, " <command> --help` for its options."));
  if (!args.empty()) {
    for (const Subcommand& s : subs) {
      if (s.name == args[0]) return s.run({args.begin() + 1, args.end()});
    }
  }
  if (HelpRequested(args)) {
    std::fprintf(stdout, "%s\n", app->help().c_str());
    return kExitOk;
  }
  if (args.empty()) {
    return Fail(kExitUsage, absl::StrCat("sealwal ", group, " needs a command: ",
                                         absl::StrJoin(names, ", "), " (see --help)"));
  }
  return Fail(kExitUsage, absl::StrCat("unknown ", group, " command \"", args[0], "\" (",
                                       absl::StrJoin(names, ", "), "; see --help)"));
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

absl::StatusOr<std::optional<pem::UnlockKey>> UnlockKeyFromArgs(const Command& args,
                                                                const std::string& key_file) {
  const std::optional<std::string> file = args.Get("unlock-key-file");
  env::FileSystem* fs = env::DefaultFileSystem();
  if (!key_file.empty()) {
    SEALWAL_ASSIGN_OR_RETURN(kek::KekSourceOptions ko, kek::KekSourceOptionsFromEnvironment(fs));
    absl::StatusOr<std::optional<pem::UnlockKey>> sourced =
        kek::UnlockKeyFromKekSource(fs, key_file, ko);
    if (!sourced.ok() || sourced->has_value()) {
      if (file.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            key_file, "'s KEK is held by its kek-source: --unlock-key-file is not used"));
      }
      return sourced;
    }
  }
  absl::StatusOr<std::optional<pem::UnlockKey>> key =
      pem::UnlockKeyFromFileOrEnv(fs, file);
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

void PrintSynced(uint64_t index) {
  std::printf("synced %llu\n", static_cast<unsigned long long>(index));
  std::fflush(stdout);
}

int Fail(int code, absl::string_view msg) {
  std::fprintf(stderr, "sealwal: %.*s\n", static_cast<int>(msg.size()), msg.data());
  return code;
}

// The `store` commands' mapping: data problems 1; keys, locks, refusals
// and usage 2 (a missing DEK is a key error); adds the unlock-key hint.
int StoreFail(const absl::Status& s) {
  std::string msg(s.message());
  if (absl::IsPermissionDenied(s) && absl::StrContains(msg, "is needed")) {
    absl::StrAppend(&msg, " (give it with --unlock-key-file U or $", pem::kUnlockKeyEnvVar, ")");
  }
  if (encryption::IsMissingKeyError(s)) return Fail(kExitUsage, msg);
  switch (s.code()) {
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
      return Fail(kExitDataError, msg);
    default:
      return Fail(kExitUsage, msg);
  }
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
