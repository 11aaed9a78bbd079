// bench/bench_util.h: what the benchmark binaries share -- where files go,
// payloads, and how many entries each batch size writes (scripts/bench.sh
// passes the same counts to etcd's driver).
#ifndef SEALWAL_BENCH_BENCH_UTIL_H_
#define SEALWAL_BENCH_BENCH_UTIL_H_

#include <chrono>
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
// Batch i of a run like a Raft node's: entries [first, end] of 1 KiB
// slices of `payload`, HardState{1, 1, commit = end}.
inline raftpb::HardState FillBatch(const std::string& payload, uint64_t first, uint64_t end,
                                   std::vector<raftpb::Entry>* ents) {
  const uint64_t slices = payload.size() / kEntrySize;
  ents->resize(end - first + 1);
  for (uint64_t j = first; j <= end; ++j) {
    raftpb::Entry& e = (*ents)[j - first];
    e.set_index(j);
    e.set_term(1);
    e.set_type(raftpb::EntryNormal);
    e.set_data(payload.data() + ((j - 1) % slices) * kEntrySize, kEntrySize);
  }
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  hs.set_commit(end);
  return hs;
}

inline absl::Status SaveLikeARaftNode(wal::Wal* w, const std::string& payload, uint64_t n,
                                      uint64_t batch) {
  std::vector<raftpb::Entry> ents;
  for (uint64_t i = 0; i < n; i += batch) {
    const uint64_t end = std::min<uint64_t>(n, i + batch);
    const raftpb::HardState hs = FillBatch(payload, i + 1, end, &ents);
    if (absl::Status s = w->Save(hs, ents); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The same batches through Wal::Submit (the WAL's pipeline_depth in
// flight), then Flush. *latency_us gets each batch's submit-to-durable time.
inline absl::Status SubmitLikeARaftNode(wal::Wal* w, const std::string& payload, uint64_t n,
                                        uint64_t batch, std::vector<double>* latency_us) {
  std::vector<raftpb::Entry> ents;
  latency_us->assign((n + batch - 1) / batch, 0);
  for (uint64_t i = 0, k = 0; i < n; i += batch, ++k) {
    const uint64_t end = std::min<uint64_t>(n, i + batch);
    const raftpb::HardState hs = FillBatch(payload, i + 1, end, &ents);
    const auto t0 = std::chrono::steady_clock::now();
    double* slot = &(*latency_us)[k];
    absl::Status s = w->Submit(hs, ents, [t0, slot](absl::Status) {
      *slot = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count();
    });
    if (!s.ok()) return s;
  }
  return w->Flush();
}

}  // namespace sealwal::bench

#endif  // SEALWAL_BENCH_BENCH_UTIL_H_
