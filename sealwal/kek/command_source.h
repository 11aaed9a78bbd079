// sealwal/kek/command_source.h: a KekSource that is an external program, run
// once per request, speaking the JSON protocol of
// sealwal/kek/plugin_protocol.h on stdin/stdout (docs/kek-providers.md).
// Any KMS can be reached this way in a few lines, as git's credential
// helpers or Kubernetes' KMS plugins reach theirs.
//
// Spec: "command:/abs/path/to/plugin[ ARG...]": arguments are separated by
// single spaces (no quoting; an empty argument is refused). The plugin runs
// with sealwal's environment (where KMS credentials live), in its own
// process group, stdin/stdout/stderr on pipes and no other descriptors.
//
// Failure handling: a plugin that exits non-zero, dies on a signal, answers
// garbage or nothing, or runs past options.command_timeout (its process
// group is then killed with SIGKILL) gives kUnavailable naming the plugin,
// with its {"error":...} text or the last line of its stderr. SIGPIPE from
// a plugin that exits without reading is blocked and consumed, never
// delivered to the caller's process.
//
// Thread-safety: one call at a time per object (kek_source.h). Running the
// plugin forks: only async-signal-safe calls happen between fork and exec.
#ifndef SEALWAL_KEK_COMMAND_SOURCE_H_
#define SEALWAL_KEK_COMMAND_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/kek/plugin_protocol.h"

namespace sealwal::kek {

inline constexpr absl::string_view kCommandScheme = "command:";

class CommandSource : public KekSource {
 public:
  // `spec` starts with "command:". kInvalidArgument for a malformed spec or
  // a relative path; kUnavailable when the program is missing or not
  // executable.
  static absl::StatusOr<std::unique_ptr<CommandSource>> Open(absl::string_view spec,
                                                             const KekSourceOptions& options);

  std::string Spec() const override { return spec_; }
  absl::StatusOr<std::string> Wrap(const encryption::SecretKey& secret,
                                   absl::string_view aad) override;
  absl::StatusOr<encryption::SecretKey> Unwrap(absl::string_view wrapped,
                                               absl::string_view aad) override;
  std::string last_key_id() const override { return last_key_id_; }

  // The plugin's "key-id" answer.
  absl::StatusOr<std::string> KeyId();

 private:
  CommandSource(std::string spec, std::vector<std::string> argv, absl::Duration timeout)
      : spec_(std::move(spec)), argv_(std::move(argv)), timeout_(timeout) {}
  // Runs the plugin with `request` on stdin; its parsed answer.
  absl::StatusOr<PluginAnswer> Call(PluginOp op, absl::string_view request);

  std::string spec_;
  std::vector<std::string> argv_;
  absl::Duration timeout_;
  std::string last_key_id_;
};

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_COMMAND_SOURCE_H_
