// tools/cli.h: pieces shared by the `sealwal` subcommands: argument
// parsing, the exit-status contract (docs/cli.md) and digests.
//
// Exit status: 0 ok, 1 the data is bad (corruption, auth failure, missing),
// 2 usage or key error. Errors are one line on stderr starting "sealwal: ".
#ifndef SEALWAL_TOOLS_CLI_H_
#define SEALWAL_TOOLS_CLI_H_


#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/proto/raftpb.pb.h"

namespace sealwal::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDataError = 1;
inline constexpr int kExitUsage = 2;

// A thrown-free way to leave a command: the status and the exit code.
struct Failure {
  int exit_code;
  std::string message;
};

// Parsed "cmd POSITIONAL... --flag value --switch" arguments.
class Args {
 public:
  // `switches` are flags that take no value.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& switches);
  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(const std::string& flag) const { return flags_.count(flag) != 0; }
  std::optional<std::string> Get(const std::string& flag) const;
  // Parses an unsigned number (decimal, or 0x hex); error names the flag.
  absl::StatusOr<uint64_t> GetU64(const std::string& flag, std::optional<uint64_t> dflt) const;
  // Fails on any flag not in `allowed` (typos are usage errors).
  absl::Status CheckAllowed(const std::vector<std::string>& allowed) const;

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> flags_;
};

// The unlock key from --unlock-key-file or $SEALWAL_UNLOCK_KEY (nullopt when
// neither is given); an error about the file names the flag.
absl::StatusOr<std::optional<pem::UnlockKey>> UnlockKeyFromArgs(const Args& args);

// The batch `wal gen` and `store gen` save, like a Raft node: entries
// lo..hi (term 1, normal), entry i's data data_gen(seed, i, 1, size)
// (sealwal/base/data_gen.h), into *out (its strings reused); returns the
// HardState{term 1, vote 1, commit hi} saved with them.
raftpb::HardState FillGenBatch(uint64_t seed, uint64_t lo, uint64_t hi, uint64_t size,
                               std::vector<raftpb::Entry>* out);

// A JSON string literal (quotes included) for s, escaped as Go's encoder
// does with HTML escaping off.
std::string JsonString(absl::string_view s);

// True when the arguments ask for help ("--help" or "-h" anywhere): every
// command answers it with its usage on stdout and exit 0, before parsing
// anything else.
bool HelpRequested(const std::vector<std::string>& args);
// Prints `usage` to stdout and returns kExitOk.
int PrintUsage(absl::string_view usage);

// Prints "sealwal: <msg>" to stderr and returns `code`.
int Fail(int code, absl::string_view msg);
// Maps a status to the exit contract: data problems 1, everything else 2.
int ExitCodeFor(const absl::Status& s);

int WalMain(const std::vector<std::string>& args);
int DemoMain(const std::vector<std::string>& args);
int SnapMain(const std::vector<std::string>& args);
int KeyMain(const std::vector<std::string>& args);
int StoreMain(const std::vector<std::string>& args);

}  // namespace sealwal::cli

#endif  // SEALWAL_TOOLS_CLI_H_
