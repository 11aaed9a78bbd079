// sealwal/kek/subprocess.h (internal): runs a program with a request on its
// stdin and a deadline, collecting its stdout and the tail of its stderr.
#ifndef SEALWAL_KEK_SUBPROCESS_H_
#define SEALWAL_KEK_SUBPROCESS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sealwal::kek {

struct SubprocessResult {
  // Set when the program ended by itself: its exit status, or -1 with
  // `signal` set when a signal ended it.
  int exit_status = -1;
  int signal = 0;
  bool timed_out = false;   // killed (with its process group) at the deadline
  bool too_much = false;    // stdout passed max_stdout; killed
  std::string out;          // stdout (secret for an unwrap: the caller wipes it)
  std::string err_tail;     // the last non-empty line of stderr, printable
};

// Runs argv[0] (an absolute path) with argv[1..] in a new process group,
// writes `input` to its stdin and closes it, reads stdout (at most
// `max_stdout` bytes) and stderr until both close and the program exits, or
// until `timeout` passes. kInternal only when the process cannot be started
// (pipe or fork fails); everything the program does is in the result.
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               absl::string_view input, absl::Duration timeout,
                                               size_t max_stdout);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_SUBPROCESS_H_
