#include "testing/softhsm_token.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sealwal::testing {

bool SoftHsmInstalled() { return access(kSoftHsmModule, R_OK) == 0; }

bool InitSoftHsmToken(const TempDir& dir, const std::string& label, const std::string& pin) {
  const std::string tokens = dir.Sub("tokens");
  EXPECT_EQ(mkdir(tokens.c_str(), 0700), 0) << tokens;
  const std::string conf = dir.Sub("softhsm2.conf");
  WriteFileOrDie(conf, absl::StrCat("directories.tokendir = ", tokens,
                                    "\nobjectstore.backend = file\nlog.level = ERROR\n"));
  EXPECT_EQ(setenv("SOFTHSM2_CONF", conf.c_str(), 1), 0);
  const CommandResult r = RunCommand(absl::StrCat("softhsm2-util --init-token --free --label ",
                                                  ShellQuote(label), " --pin ", ShellQuote(pin),
                                                  " --so-pin 5678"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return r.exit_code == 0;
}

}  // namespace sealwal::testing
