// Fixed-width hex numbers in file names (etcd's "%016x-%016x.wal" and
// ".snap"). Thread-safe: pure function.
#ifndef SEALWAL_BASE_HEX_H_
#define SEALWAL_BASE_HEX_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace sealwal {

// Exactly 16 hex digits (either case), nothing else (no sign, prefix or
// space, unlike absl::SimpleHexAtoi): true and *v set, or false and *v
// unchanged.
inline bool ParseHex16(absl::string_view s, uint64_t* v) {
  if (s.size() != 16) return false;
  uint64_t r = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    r = r << 4 | static_cast<uint64_t>(d);
  }
  *v = r;
  return true;
}

}  // namespace sealwal

#endif  // SEALWAL_BASE_HEX_H_
