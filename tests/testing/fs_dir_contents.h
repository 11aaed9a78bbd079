// tests/testing/fs_dir_contents.h: name -> bytes of every entry of a
// directory of an env::FileSystem (a mem FS, typically), compared before
// and after an operation that must modify nothing. Header-only, so that
// sealwal_testing needs no env dependency.
#ifndef SEALWAL_TESTING_FS_DIR_CONTENTS_H_
#define SEALWAL_TESTING_FS_DIR_CONTENTS_H_

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "sealwal/env/file_system.h"

namespace sealwal::testing {

inline std::map<std::string, std::string> FsDirContents(env::FileSystem* fs,
                                                        const std::string& dir) {
  std::map<std::string, std::string> m;
  auto names = fs->ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return m;
  for (const auto& n : *names) {
    auto bytes = env::ReadFileToString(fs, env::JoinPath(dir, n));
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    if (bytes.ok()) m[n] = std::move(*bytes);
  }
  return m;
}

}  // namespace sealwal::testing

#endif  // SEALWAL_TESTING_FS_DIR_CONTENTS_H_
