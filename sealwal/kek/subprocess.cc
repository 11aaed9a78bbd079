#include "sealwal/kek/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::kek {
namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void Close(int i) {
    if (fd[i] >= 0) close(fd[i]);
    fd[i] = -1;
  }
};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// SIGPIPE blocked in this thread while we write to a program that may have
// exited; one raised by our writes is consumed before the mask is restored,
// so the caller never sees it.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      const struct timespec zero = {0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

std::string LastLine(absl::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  const size_t nl = s.rfind('\n');
  if (nl != absl::string_view::npos) s.remove_prefix(nl + 1);
  std::string out;
  for (char c : s.substr(0, 200)) out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
  return out;
}

}  // namespace

absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               absl::string_view input, absl::Duration timeout,
                                               size_t max_stdout) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  Pipe in, out, err;
  if (pipe2(in.fd, O_CLOEXEC) != 0 || pipe2(out.fd, O_CLOEXEC) != 0 ||
      pipe2(err.fd, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  SigpipeGuard sigpipe;
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    if (dup2(in.fd[0], 0) < 0 || dup2(out.fd[1], 1) < 0 || dup2(err.fd[1], 2) < 0) _exit(126);
    // Nothing else of the caller's (a program linking sealwal may hold
    // descriptors without close-on-exec) reaches the plugin.
    close_range(3, ~0U, 0);
    // The caller's mask (SIGPIPE blocked) is inherited across exec: undo it.
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also from here, so the group exists before any kill
  in.Close(0);
  out.Close(1);
  err.Close(1);
  SetNonBlocking(in.fd[1]);
  SetNonBlocking(out.fd[0]);
  SetNonBlocking(err.fd[0]);

  SubprocessResult r;
  std::string err_buf;
  size_t written = 0;
  if (input.empty()) in.Close(1);
  const absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  auto kill_all = [&] {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    killed = true;
  };
  while (out.fd[0] >= 0 || err.fd[0] >= 0 || in.fd[1] >= 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      r.timed_out = true;
      kill_all();
      break;
    }
    struct pollfd p[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in.fd[1] >= 0) p[idx_in = n++] = {in.fd[1], POLLOUT, 0};
    if (out.fd[0] >= 0) p[idx_out = n++] = {out.fd[0], POLLIN, 0};
    if (err.fd[0] >= 0) p[idx_err = n++] = {err.fd[0], POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    if (poll(p, n, ms) < 0) {
      if (errno == EINTR) continue;
      kill_all();
      break;
    }
    if (idx_in >= 0 && p[idx_in].revents != 0) {
      const ssize_t w = write(in.fd[1], input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      // Done, or the program closed its stdin (EPIPE): either way, no more.
      if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in.Close(1);
    }
    char buf[4096];
    if (idx_out >= 0 && p[idx_out].revents != 0) {
      const ssize_t got = read(out.fd[0], buf, sizeof buf);
      if (got > 0) {
        r.out.append(buf, static_cast<size_t>(got));
        if (r.out.size() > max_stdout) {
          r.too_much = true;
          kill_all();
          break;
        }
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        out.Close(0);
      }
      std::memset(buf, 0, sizeof buf);
    }
    if (idx_err >= 0 && p[idx_err].revents != 0) {
      const ssize_t got = read(err.fd[0], buf, sizeof buf);
      if (got > 0) {
        err_buf.append(buf, static_cast<size_t>(got));
        if (err_buf.size() > 8192) err_buf.erase(0, err_buf.size() - 4096);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        err.Close(0);
      }
    }
  }
  // The pipes are closed; wait for the exit, still within the deadline.
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (absl::Now() >= deadline) {
        r.timed_out = true;
        kill_all();
      } else {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
  }
  if (WIFEXITED(status) && !killed) r.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status) && !killed) r.signal = WTERMSIG(status);
  r.err_tail = LastLine(err_buf);
  pem::WipeString(&err_buf);
  return r;
}

}  // namespace sealwal::kek
