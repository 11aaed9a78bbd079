// bench/bench_util.h: what the benchmark binaries share -- where files go,
// payloads, and how many entries each batch size writes (scripts/bench.sh
// passes the same counts to etcd's driver).
#ifndef SEALWAL_BENCH_BENCH_UTIL_H_
#define SEALWAL_BENCH_BENCH_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sealwal/wal/wal.h"

namespace sealwal::bench {

inline constexpr size_t kEntrySize = 1024;  // 1 KiB entries, as the peer's --size

// A fresh directory under $SEALWAL_BENCH_DIR (default /tmp): keep it on the
// disk under test.
inline std::string BenchDir(const char* prefix) {
  const char* d = std::getenv("SEALWAL_BENCH_DIR");
  std::string tmpl = std::string(d != nullptr ? d : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

inline void RemoveTree(const std::string& p) {
  const std::string cmd = "rm -rf '" + p + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
}

// n incompressible bytes, the same for the same seed.
inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

// Entries per run at each batch size ($SEALWAL_BENCH_ENTRIES overrides).
inline uint64_t EntriesForBatch(int64_t batch) {
  if (const char* e = std::getenv("SEALWAL_BENCH_ENTRIES")) return std::strtoull(e, nullptr, 10);
  switch (batch) {
    case 1: return 3000;
    case 10: return 20000;
    case 100: return 100000;
    default: return 200000;
  }
}

// Saves entries 1..n of kEntrySize bytes in batches of `batch`, each with
// HardState{term 1, vote 1, commit = last}, as etcd's driver (bench-append)
// does. Entry j's data is slice j of `payload`, wrapping around.
inline absl::Status SaveLikeARaftNode(wal::Wal* w, const std::string& payload, uint64_t n,
                                      uint64_t batch) {
  const uint64_t slices = payload.size() / kEntrySize;
  std::vector<raftpb::Entry> ents;
  for (uint64_t i = 0; i < n; i += batch) {
    const uint64_t end = std::min<uint64_t>(n, i + batch);
    ents.resize(end - i);
    for (uint64_t j = i; j < end; ++j) {
      raftpb::Entry& e = ents[j - i];
      e.set_index(j + 1);
      e.set_term(1);
      e.set_type(raftpb::EntryNormal);
      e.set_data(payload.data() + (j % slices) * kEntrySize, kEntrySize);
    }
    raftpb::HardState hs;
    hs.set_term(1);
    hs.set_vote(1);
    hs.set_commit(end);
    if (absl::Status s = w->Save(hs, ents); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace sealwal::bench

#endif  // SEALWAL_BENCH_BENCH_UTIL_H_
