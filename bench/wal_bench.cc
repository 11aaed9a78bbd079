// WAL benchmarks, shaped like etcd's peer driver (bench-append/bench-read)
// so that scripts/bench.sh can print ratios from one run:
//   BM_WalAppend/B        N entries of 1 KiB, B per Save, timed Save loop only
//   BM_WalSubmit/B        the same through Submit (16 batches in flight) and
//                         Flush; p50/p99 submit-to-durable latency
//   BM_WalReadAll         OpenForRead + ReadAll of a 100k x 1 KiB log
//   BM_FdatasyncLoop      the device's limit: 1 KiB pwrite + fdatasync over a
//                         file already filled with zeros and synced (p50/p99
//                         of one write + fdatasync)
// Files go to $SEALWAL_BENCH_DIR (default /tmp): keep it on the disk under test.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

using bench::EntriesForBatch;
using bench::kEntrySize;
using bench::RandomBytes;
using bench::RemoveTree;
std::string BenchDir() { return bench::BenchDir("sealwal-bench"); }

void RunAppend(benchmark::State& state, Preallocation prealloc) {
  const int64_t batch = state.range(0);
  const uint64_t n = EntriesForBatch(batch);
  const std::string payload = RandomBytes(n * kEntrySize, 1);
  uint64_t fsyncs = 0;
  for (auto _ : state) {
    const std::string root = BenchDir();
    WalOptions opts;
    opts.preallocation = prealloc;
    auto w = Wal::Create(root + "/wal", "bench", opts);
    if (!w.ok()) {
      state.SkipWithError(std::string(w.status().message()).c_str());
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    if (auto s = bench::SaveLikeARaftNode(w->get(), payload, n, static_cast<uint64_t>(batch));
        !s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(secs);
    fsyncs = (*w)->stats().fsyncs;
    state.counters["fsync_us"] = (*w)->stats().fsync_nanos / 1e3 / std::max<uint64_t>(1, fsyncs);
    state.counters["write_us"] = (*w)->stats().write_nanos / 1e3 / std::max<uint64_t>(1, fsyncs);
    state.counters["save_us"] = secs * 1e6 / ((n + batch - 1) / batch);
    (*w)->Close().IgnoreError();
    w->reset();
    RemoveTree(root);
  }
  state.SetItemsProcessed(static_cast<int64_t>(n) * state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(n * kEntrySize) * state.iterations());
  state.counters["entries"] = static_cast<double>(n);
  state.counters["fsyncs"] = static_cast<double>(fsyncs);
}

void BM_WalAppend(benchmark::State& state) { RunAppend(state, Preallocation::kZeroFill); }

void BM_WalSubmit(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const uint64_t n = EntriesForBatch(batch);
  const std::string payload = RandomBytes(n * kEntrySize, 1);
  std::vector<double> lat;
  WalStats stats;
  for (auto _ : state) {
    const std::string root = BenchDir();
    auto w = Wal::Create(root + "/wal", "bench", WalOptions{});
    if (!w.ok()) return state.SkipWithError(std::string(w.status().message()).c_str());
    const auto start = std::chrono::steady_clock::now();
    if (auto s = bench::SubmitLikeARaftNode(w->get(), payload, n, static_cast<uint64_t>(batch),
                                            &lat);
        !s.ok()) {
      return state.SkipWithError(std::string(s.message()).c_str());
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    stats = (*w)->stats();
    (*w)->Close().IgnoreError();
    w->reset();
    RemoveTree(root);
  }
  std::sort(lat.begin(), lat.end());
  state.SetItemsProcessed(static_cast<int64_t>(n) * state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(n * kEntrySize) * state.iterations());
  state.counters["entries"] = static_cast<double>(n);
  state.counters["fsyncs"] = static_cast<double>(stats.fsyncs);
  state.counters["fsync_us"] = stats.fsync_nanos / 1e3 / std::max<uint64_t>(1, stats.fsyncs);
  state.counters["p50_us"] = lat.empty() ? 0 : lat[lat.size() / 2];
  state.counters["p99_us"] = lat.empty() ? 0 : lat[lat.size() * 99 / 100];
}
BENCHMARK(BM_WalSubmit)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Iterations(1)
    ->Unit(benchmark::kMillisecond);
void BM_WalAppendFallocate(benchmark::State& state) {
  RunAppend(state, Preallocation::kFallocate);
}

BENCHMARK(BM_WalAppend)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WalAppendFallocate)->Arg(1)->Arg(100)->UseManualTime()->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_WalReadAll(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const std::string root = BenchDir();
  {
    auto w = Wal::Create(root + "/wal", "bench");
    if (!w.ok()) return state.SkipWithError("create failed");
    const std::string payload = RandomBytes(1000 * kEntrySize, 2);
    if (!bench::SaveLikeARaftNode(w->get(), payload, n, 1000).ok()) {
      return state.SkipWithError("save failed");
    }
    (*w)->Close().IgnoreError();
  }
  // Measure reading, not the kernel writing back what was just appended.
  ::sync();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto r = Wal::OpenForRead(root + "/wal", {});
    auto c = (*r)->ReadAll();
    if (!c.ok() || c->entries.size() != n) return state.SkipWithError("readall failed");
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    benchmark::DoNotOptimize(c->entries.data());
  }
  RemoveTree(root);
  state.SetItemsProcessed(static_cast<int64_t>(n) * state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(n * kEntrySize) * state.iterations());
}
BENCHMARK(BM_WalReadAll)->Arg(100000)->UseManualTime()->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// The device's limit for small synced appends: overwrite already-written,
// already-synced zeros, so fdatasync has no file metadata to commit.
void BM_FdatasyncLoop(benchmark::State& state) {
  const uint64_t n = EntriesForBatch(1);
  const std::string root = BenchDir();
  const std::string path = root + "/loop";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  const std::string zeros(1 << 20, '\0');
  for (uint64_t off = 0; off < n * kEntrySize + (1 << 20); off += zeros.size()) {
    if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) < 0) std::abort();
  }
  ::fsync(fd);
  const std::string data = RandomBytes(kEntrySize, 3);
  std::vector<double> lat(n);  // each write + fdatasync, for p50/p99
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      if (::pwrite(fd, data.data(), kEntrySize, static_cast<off_t>(i * kEntrySize)) < 0 ||
          ::fdatasync(fd) != 0) {
        return state.SkipWithError("write/fdatasync failed");
      }
      lat[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                   .count();
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  ::close(fd);
  RemoveTree(root);
  state.SetItemsProcessed(static_cast<int64_t>(n) * state.iterations());
  state.counters["entries"] = static_cast<double>(n);
  std::sort(lat.begin(), lat.end());
  state.counters["p50_us"] = lat[n / 2];
  state.counters["p99_us"] = lat[n * 99 / 100];
}
BENCHMARK(BM_FdatasyncLoop)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sealwal::wal

BENCHMARK_MAIN();
