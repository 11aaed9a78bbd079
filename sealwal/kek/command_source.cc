#include "sealwal/kek/command_source.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sealwal/kek/subprocess.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::kek {

absl::StatusOr<std::unique_ptr<CommandSource>> CommandSource::Open(
    absl::string_view spec, const KekSourceOptions& options) {
  if (!absl::StartsWith(spec, kCommandScheme)) {
    return absl::InvalidArgumentError("a command KEK source starts with \"command:\"");
  }
  const absl::string_view rest = spec.substr(kCommandScheme.size());
  std::vector<std::string> argv = absl::StrSplit(rest, ' ');
  for (const std::string& a : argv) {
    if (a.empty()) {
      return absl::InvalidArgumentError(
          "KEK source command: arguments are separated by single spaces (an empty argument)");
    }
  }
  if (argv[0].front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("KEK source command: the plugin path must be absolute, not \"", argv[0],
                     "\""));
  }
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::UnavailableError(
        absl::StrCat("KEK plugin ", argv[0], " is missing or not executable"));
  }
  if (options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the KEK plugin timeout must be positive");
  }
  return std::unique_ptr<CommandSource>(
      new CommandSource(std::string(spec), std::move(argv), options.command_timeout));
}

absl::StatusOr<PluginAnswer> CommandSource::Call(PluginOp op, absl::string_view request) {
  absl::StatusOr<SubprocessResult> r = RunSubprocess(argv_, request, timeout_, kMaxAnswerSize);
  if (!r.ok()) return r.status();
  const std::string who = absl::StrCat("KEK plugin ", argv_[0], " (", PluginOpName(op), ")");
  auto tail = [&] { return r->err_tail.empty() ? "" : absl::StrCat(": ", r->err_tail); };
  absl::Status bad;
  if (r->timed_out) {
    bad = absl::UnavailableError(absl::StrCat(who, " did not answer within ",
                                              absl::FormatDuration(timeout_), "; it was killed"));
  } else if (r->too_much) {
    bad = absl::UnavailableError(
        absl::StrCat(who, " wrote more than ", kMaxAnswerSize, " bytes; it was killed"));
  } else if (r->signal != 0) {
    bad = absl::UnavailableError(absl::StrCat(who, " died on signal ", r->signal, tail()));
  } else if (r->exit_status != 0) {
    // Its {"error": ...} says more than an exit status, when it wrote one.
    absl::StatusOr<PluginAnswer> a = ParsePluginAnswer(op, r->out);
    bad = absl::UnavailableError(absl::StrCat(
        who, " exited with status ", r->exit_status,
        !a.ok() && absl::StrContains(a.status().message(), "refused")
            ? absl::StrCat(": ", a.status().message())
            : tail()));
  }
  if (!bad.ok()) {
    pem::WipeString(&r->out);
    return bad;
  }
  absl::StatusOr<PluginAnswer> a = ParsePluginAnswer(op, r->out);
  pem::WipeString(&r->out);
  if (!a.ok()) {
    return absl::Status(a.status().code(), absl::StrCat("KEK plugin ", argv_[0], ": ",
                                                        a.status().message()));
  }
  return a;
}

absl::StatusOr<std::string> CommandSource::Wrap(const encryption::SecretKey& secret,
                                                absl::string_view aad) {
  std::string request = WrapRequest(secret, aad);
  absl::StatusOr<PluginAnswer> a = Call(PluginOp::kWrap, request);
  pem::WipeString(&request);
  if (!a.ok()) return a.status();
  last_key_id_ = a->key_id;
  return std::move(a->wrapped);
}

absl::StatusOr<encryption::SecretKey> CommandSource::Unwrap(absl::string_view wrapped,
                                                            absl::string_view aad) {
  absl::StatusOr<PluginAnswer> a = Call(PluginOp::kUnwrap, UnwrapRequest(wrapped, aad));
  if (!a.ok()) return a.status();
  return std::move(*a->plaintext);
}

absl::StatusOr<std::string> CommandSource::KeyId() {
  absl::StatusOr<PluginAnswer> a = Call(PluginOp::kKeyId, KeyIdRequest());
  if (!a.ok()) return a.status();
  return std::move(a->key_id);
}

}  // namespace sealwal::kek
