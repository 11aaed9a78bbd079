// The `sealwal` command-line tool. Contract: docs/cli.md. Exit status 0 ok,
// 1 data error, 2 usage or key error. Each command group parses its own
// arguments with CLI11 (tools/cli.h); this only dispatches to the group.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/cli.h"

namespace {

constexpr char kUsage[] =
    "usage: sealwal <command> ...\n"
    "  wal gen|dump|verify|repair   an etcd-compatible WAL directory\n"
    "  snap save|load|inspect|ls    etcd-compatible and streamed snapshots\n"
    "  key init|inspect|rotate-dek|rotate-kek|lock|unlock   the node key file\n"
    "  store init|gen|verify|inspect|rotate|migrate   a Raft node's data directory (storage facade)\n"
    "  demo                         the whole product end to end, in a temp dir\n"
    "Run `sealwal <command> --help` for its usage.";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    return sealwal::cli::Fail(sealwal::cli::kExitUsage,
                              "no command given (run `sealwal --help` for the commands)");
  }
  if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fprintf(stdout, "%s\n", kUsage);
    return 0;
  }
  const std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "wal") return sealwal::cli::WalMain(rest);
  if (cmd == "demo") return sealwal::cli::DemoMain(rest);
  if (cmd == "snap") return sealwal::cli::SnapMain(rest);
  if (cmd == "key") return sealwal::cli::KeyMain(rest);
  if (cmd == "store") return sealwal::cli::StoreMain(rest);
  return sealwal::cli::Fail(sealwal::cli::kExitUsage,
                            absl::StrCat("unknown command \"", cmd,
                                         "\" (run `sealwal --help` for the commands)"));
}
