// The crash of `sealwal demo` (tools/demo.h): a child `sealwal store gen`
// writes into the store and reports each durable batch as `synced N` on a
// pipe; it is killed with SIGKILL mid-run; the store is reopened (Bootstrap
// repairs a torn tail) and every entry the child reported is checked byte
// for byte, as `store verify --expect-seed` does.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/storage/raft_storage.h"
#include "tools/demo.h"

extern char** environ;

namespace sealwal::cli::demo {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The path of this binary, so that the child is the same `sealwal`.
absl::StatusOr<std::string> SelfExe() {
  std::string buf(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return Errno("readlink /proc/self/exe");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// The child writer: `sealwal store gen`, stdout on a pipe, stderr in a file
// beside the store (its error, if it fails on its own).
struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

absl::StatusOr<Child> SpawnGen(const CrashOptions& o, const std::string& err_path) {
  SEALWAL_ASSIGN_OR_RETURN(std::string exe, SelfExe());
  std::vector<std::string> args = {
      exe,
      "store",
      "gen",
      o.data_dir,
      "--entries",
      // Ten times what it writes before the kill: it never gets there, and
      // a run-away child stays bounded.
      absl::StrCat(o.kill_after * 10),
      "--size",
      absl::StrCat(o.size),
      "--batch",
      absl::StrCat(o.batch),
      "--seed",
      absl::StrCat(o.seed),
      "--snapshot-every",
      absl::StrCat(o.snapshot_every),
      "--segment-size",
      absl::StrCat(o.segment_size),
  };
  // The unlock key travels in the child's environment, never on argv
  // (docs/cli.md): $SEALWAL_UNLOCK_KEY.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, absl::StrCat(pem::kUnlockKeyEnvVar, "="))) env_strings.push_back(*e);
  }
  if (o.unlock_key != nullptr) {
    env_strings.push_back(absl::StrCat(pem::kUnlockKeyEnvVar, "=", o.unlock_key->text()));
  }
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe");
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err_fd < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Errno("open " + err_path);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child: only async-signal-safe calls until execve (the parent has
    // threads). It dies with the demo: a killed demo leaves no writer.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execve(exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  // Wipe the copy of the key text (the parent keeps it in its UnlockKey).
  for (std::string& e : env_strings) std::fill(e.begin(), e.end(), '\0');
  ::close(fds[1]);
  ::close(err_fd);
  if (pid < 0) {
    ::close(fds[0]);
    errno = fork_errno;
    return Errno("fork");
  }
  Child c;
  c.pid = pid;
  c.out = ::fdopen(fds[0], "r");
  if (c.out == nullptr) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Errno("fdopen");
  }
  return c;
}

std::string FirstLineOf(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "";
  char buf[512] = {0};
  if (std::fgets(buf, sizeof buf, f) == nullptr) buf[0] = '\0';
  std::fclose(f);
  return std::string(absl::StripTrailingAsciiWhitespace(buf));
}

}  // namespace

absl::StatusOr<CrashResult> CrashAndRecover(const CrashOptions& o) {
  CrashResult r;
  const std::string err_path = o.data_dir + ".child-stderr";
  SEALWAL_ASSIGN_OR_RETURN(Child child, SpawnGen(o, err_path));
  std::printf("    child pid %d: sealwal store gen %s --size %llu --batch %llu --seed %llu ...\n",
              static_cast<int>(child.pid), o.data_dir.c_str(),
              static_cast<unsigned long long>(o.size), static_cast<unsigned long long>(o.batch),
              static_cast<unsigned long long>(o.seed));

  // Read `synced N` lines until the child has reported kill_after entries,
  // then kill it at once: it is then writing its next batch.
  char* line = nullptr;
  size_t cap = 0;
  bool killed = false;
  auto take = [&](absl::string_view l) {
    l = absl::StripTrailingAsciiWhitespace(l);
    uint64_t n = 0;
    if (absl::ConsumePrefix(&l, "synced ") && absl::SimpleAtoi(l, &n)) {
      if (r.child_first == 0) r.child_first = n - std::min(n - 1, o.batch - 1);
      r.synced_reported = n;
      ++r.synced_lines;
    } else if (absl::ConsumePrefix(&l, "snapshot ")) {
      ++r.child_snapshots;
    }
  };
  while (::getline(&line, &cap, child.out) > 0) {
    take(line);
    if (!killed && r.child_first != 0 && r.synced_reported + 1 - r.child_first >= o.kill_after) {
      ::kill(child.pid, SIGKILL);
      killed = true;
    }
  }
  // Lines the child wrote before it died are still in the pipe (read above
  // until EOF): each one was printed after its batch was durable.
  std::free(line);
  std::fclose(child.out);
  int wstatus = 0;
  struct rusage ru {};
  if (::wait4(child.pid, &wstatus, 0, &ru) != child.pid) return Errno("wait4");
  r.child_max_rss_kib = ru.ru_maxrss;
  if (!killed || !WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGKILL) {
    const std::string why = FirstLineOf(err_path);
    return absl::InternalError(absl::StrCat("the child writer ended on its own (status ", wstatus,
                                            ")", why.empty() ? "" : ": ", why));
  }
  ::unlink(err_path.c_str());
  std::printf("    child killed by SIGKILL after %llu batches reported durable, the last `synced %llu`\n",
              static_cast<unsigned long long>(r.synced_lines),
              static_cast<unsigned long long>(r.synced_reported));

  // Reopen as a restarted node would: Open, then Bootstrap (which repairs a
  // torn tail), then read everything back.
  const absl::Time t0 = absl::Now();
  storage::StorageOptions so;
  so.data_dir = o.data_dir;
  if (o.unlock_key != nullptr) so.unlock_key = o.unlock_key->Clone();
  so.segment_size = o.segment_size;
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<storage::RaftStorage> st,
                           storage::RaftStorage::Open(std::move(so)));
  SEALWAL_ASSIGN_OR_RETURN(storage::BootstrapState boot, st->Bootstrap());
  r.repaired_torn_tail = boot.repaired_torn_tail;
  if (boot.snapshot.has_value()) {
    r.snapshot_index = boot.snapshot->metadata.index();
    SEALWAL_ASSIGN_OR_RETURN(std::string data, storage::ReadSnapshotData(*boot.snapshot));
    if (data != DataGen(o.seed, r.snapshot_index, 0, data.size())) {
      return absl::DataLossError(absl::StrCat("snapshot ", r.snapshot_index,
                                              ": data does not match what was written"));
    }
  }
  const storage::LogView& log = *boot.log;
  r.log_first = log.FirstIndex();
  r.log_last = log.LastIndex();
  if (r.log_first != r.snapshot_index + 1) {
    return absl::DataLossError(absl::StrCat("the log starts at ", r.log_first,
                                            " but the snapshot is at ", r.snapshot_index));
  }
  if (std::max(r.log_last, r.snapshot_index) < r.synced_reported) {
    return absl::DataLossError(absl::StrCat("entries up to ", r.synced_reported,
                                            " were reported synced but the store ends at ",
                                            std::max(r.log_last, r.snapshot_index)));
  }
  constexpr uint64_t kChunk = 4096;
  std::string want;
  for (uint64_t lo = r.log_first; lo <= r.log_last; lo += kChunk) {
    SEALWAL_ASSIGN_OR_RETURN(std::vector<raftpb::Entry> es,
                             log.Entries(lo, std::min(r.log_last + 1, lo + kChunk)));
    for (const raftpb::Entry& e : es) {
      want.resize(o.size);
      DataGenFill(o.seed, e.index(), 1, want.data(), want.size());
      if (e.term() != 1 || e.data() != want) {
        return absl::DataLossError(absl::StrCat("entry ", e.index(),
                                                ": data does not match what was written"));
      }
      ++r.entries_verified;
    }
  }
  r.recover_time = absl::Now() - t0;
  boot.log.reset();
  SEALWAL_ASSIGN_OR_RETURN(r.inventory, st->Inventory());
  SEALWAL_RETURN_IF_ERROR(st->Close());
  return r;
}

}  // namespace sealwal::cli::demo
