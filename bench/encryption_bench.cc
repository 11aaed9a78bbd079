// Encryption benchmarks (run by scripts/bench.sh encryption):
//   BM_Seal/<alg>/<bytes>          AeadEncrypter::EncryptTo per record
//   BM_Open/<alg>/<bytes>          MultiDecrypter::DecryptSerialized per record
//       alg 0 = AES-256-GCM, 1 = ChaCha20-Poly1305; 64 B, 1 KiB, 16 KiB
//   BM_WalAppend/<enc>/<batch>     N entries of 1 KiB, B per Save (fsync per
//                                  Save), plaintext (enc=0) vs AES-256-GCM
//                                  (enc=1); timed Save loop only, as wal_bench
//   BM_WalSubmit/<enc>/<batch>     the same through Wal::Submit (16 batches
//                                  in flight) and Flush
//   BM_WalReadAll/<enc>/<threads>  OpenForRead + ReadAll of 100k x 1 KiB,
//                                  decoding on WalOptions::decode_threads
//                                  (2, the default, and 1 for comparison)
// Counters: entries_per_s and MB_per_s (MB = 1e6 plaintext bytes).
// Files go to $SEALWAL_BENCH_DIR (default /tmp); $SEALWAL_BENCH_ENTRIES
// overrides the append entry counts, as in wal_bench.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "sealwal/wal/wal.h"

namespace sealwal::encryption {
namespace {

using bench::EntriesForBatch;
using walcrypt::kEncryptedWalDirName;
using walcrypt::kPlaintextWalDirName;
using walcrypt::WalCodec;
using bench::kEntrySize;
using bench::RandomBytes;
using bench::RemoveTree;
std::string BenchDir() { return bench::BenchDir("sealwal-encbench"); }

Algorithm AlgOf(int64_t v) {
  return v == 0 ? Algorithm::kAes256Gcm : Algorithm::kChaCha20Poly1305;
}

void Rates(benchmark::State& state, double entries, double bytes) {
  state.counters["entries_per_s"] = benchmark::Counter(entries, benchmark::Counter::kIsRate);
  state.counters["MB_per_s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
}

// ---- per record ----

void BM_Seal(benchmark::State& state) {
  auto dek = Dek::Generate(AlgOf(state.range(0)));
  auto enc = AeadEncrypter::Create(*dek);
  const std::string pt = RandomBytes(static_cast<size_t>(state.range(1)), 1);
  std::string out;
  AadContext ctx;
  for (auto _ : state) {
    ++ctx.index;
    if (!enc.value()->EncryptTo(ctx, pt, &out).ok()) return state.SkipWithError("seal failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(std::string(AlgorithmName(AlgOf(state.range(0)))));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(1));
  Rates(state, static_cast<double>(state.iterations()),
        static_cast<double>(state.iterations() * state.range(1)));
}
BENCHMARK(BM_Seal)->ArgsProduct({{0, 1}, {64, 1024, 16384}});

// One decrypter shared by every benchmark thread, as Wal::ReadAll shares
// its codec between decode threads.
struct SharedDecrypter {
  SharedDecrypter() : dek(*Dek::Generate(Algorithm::kAes256Gcm)), dec(MultiDecrypter::Create()) {
    if (!dec->AddKey(dek.id, dek.algorithm, dek.key.Clone()).ok()) std::abort();
  }
  Dek dek;
  std::unique_ptr<MultiDecrypter> dec;
};

void BM_Open(benchmark::State& state) {
  auto dek = Dek::Generate(AlgOf(state.range(0)));
  auto enc = AeadEncrypter::Create(*dek);
  auto dec = MultiDecrypter::Create();
  if (!dec->AddKey(dek->id, dek->algorithm, dek->key.Clone()).ok()) std::abort();
  const std::string pt = RandomBytes(static_cast<size_t>(state.range(1)), 1);
  AadContext ctx;
  ctx.index = 9;
  std::string rec, out;
  if (!enc.value()->EncryptTo(ctx, pt, &rec).ok()) std::abort();
  for (auto _ : state) {
    if (!dec->DecryptSerialized(rec, ctx, &out).ok()) return state.SkipWithError("open failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(std::string(AlgorithmName(AlgOf(state.range(0)))));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(1));
  Rates(state, static_cast<double>(state.iterations()),
        static_cast<double>(state.iterations() * state.range(1)));
}
BENCHMARK(BM_Open)->ArgsProduct({{0, 1}, {64, 1024, 16384}});

// 1 KiB AES-256-GCM records opened through one shared MultiDecrypter on 1
// and 2 threads: shows whether the per-key context pool scales.
void BM_OpenShared(benchmark::State& state) {
  static SharedDecrypter* shared = new SharedDecrypter();
  auto enc = AeadEncrypter::Create(shared->dek);
  const std::string pt = RandomBytes(kEntrySize, 1);
  AadContext ctx;
  ctx.index = 9;
  std::string rec, out;
  if (!enc.value()->EncryptTo(ctx, pt, &rec).ok()) std::abort();
  for (auto _ : state) {
    if (!shared->dec->DecryptSerialized(rec, ctx, &out).ok()) {
      return state.SkipWithError("open failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kEntrySize));
}
BENCHMARK(BM_OpenShared)->Threads(1)->Threads(2)->UseRealTime();

// ---- WAL ----

std::unique_ptr<WalCodec> MaybeCodec(bool encrypted) {
  if (!encrypted) return nullptr;
  auto dek = Dek::Generate(Algorithm::kAes256Gcm);
  auto codec = WalCodec::ForDek(*dek);
  if (!codec.ok()) std::abort();
  return std::move(*codec);
}

void RunAppend(benchmark::State& state, bool pipelined) {
  const bool encrypted = state.range(0) != 0;
  const int64_t batch = state.range(1);
  const uint64_t n = EntriesForBatch(batch);
  const std::string payload = RandomBytes(n * kEntrySize, 1);
  double total_secs = 0;
  for (auto _ : state) {
    auto codec = MaybeCodec(encrypted);
    const std::string root = BenchDir();
    wal::WalOptions opts;
    opts.codec = codec.get();
    const std::string dir =
        root + "/" + std::string(encrypted ? kEncryptedWalDirName : kPlaintextWalDirName);
    auto w = wal::Wal::Create(dir, "bench", opts);
    if (!w.ok()) return state.SkipWithError(std::string(w.status().message()).c_str());
    const auto start = std::chrono::steady_clock::now();
    std::vector<double> latency_us;
    const absl::Status s =
        pipelined ? bench::SubmitLikeARaftNode(w->get(), payload, n,
                                               static_cast<uint64_t>(batch), &latency_us)
                  : bench::SaveLikeARaftNode(w->get(), payload, n, static_cast<uint64_t>(batch));
    if (!s.ok()) return state.SkipWithError(std::string(s.message()).c_str());
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(secs);
    total_secs += secs;
    state.counters["fsyncs"] = static_cast<double>((*w)->stats().fsyncs);
    // Where the wall time went: waiting for fdatasync, handing frames to the
    // kernel; the rest is encoding (and, encrypted, sealing).
    state.counters["fsync_ms"] = static_cast<double>((*w)->stats().fsync_nanos) / 1e6;
    state.counters["write_ms"] = static_cast<double>((*w)->stats().write_nanos) / 1e6;
    (*w)->Close().IgnoreError();
    w->reset();
    RemoveTree(root);
  }
  const double entries = static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetLabel(encrypted ? "aes-256-gcm" : "plaintext");
  state.SetItemsProcessed(static_cast<int64_t>(entries));
  state.SetBytesProcessed(static_cast<int64_t>(entries * kEntrySize));
  state.counters["entries"] = static_cast<double>(n);
  state.counters["entries_per_s"] = entries / total_secs;
  state.counters["MB_per_s"] = entries * kEntrySize / 1e6 / total_secs;
}
void BM_WalAppend(benchmark::State& state) { RunAppend(state, /*pipelined=*/false); }
BENCHMARK(BM_WalAppend)
    ->ArgsProduct({{0, 1}, {1, 10, 100, 1000}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
void BM_WalSubmit(benchmark::State& state) { RunAppend(state, /*pipelined=*/true); }
BENCHMARK(BM_WalSubmit)
    ->ArgsProduct({{0, 1}, {10, 100, 1000}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_WalReadAll(benchmark::State& state) {
  const bool encrypted = state.range(0) != 0;
  const uint64_t n = 100000;
  auto codec = MaybeCodec(encrypted);
  const std::string root = BenchDir();
  const std::string dir =
      root + "/" + std::string(encrypted ? kEncryptedWalDirName : kPlaintextWalDirName);
  wal::WalOptions opts;
  opts.codec = codec.get();
  opts.decode_threads = static_cast<int>(state.range(1));
  {
    auto w = wal::Wal::Create(dir, "bench", opts);
    if (!w.ok()) return state.SkipWithError("create failed");
    const std::string payload = RandomBytes(1000 * kEntrySize, 2);
    if (!bench::SaveLikeARaftNode(w->get(), payload, n, 1000).ok()) {
      return state.SkipWithError("save failed");
    }
    (*w)->Close().IgnoreError();
  }
  // Measure reading, not the kernel writing back what earlier benchmarks
  // left dirty (it competed for the second core: 0.7 to 1.6 GB/s, run to run).
  ::sync();
  double total_secs = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto r = wal::Wal::OpenForRead(dir, {}, opts);
    auto c = (*r)->ReadAll();
    if (!c.ok() || c->entries.size() != n) return state.SkipWithError("readall failed");
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(secs);
    total_secs += secs;
    benchmark::DoNotOptimize(c->entries.data());
  }
  RemoveTree(root);
  const double entries = static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetLabel(encrypted ? "aes-256-gcm" : "plaintext");
  state.SetItemsProcessed(static_cast<int64_t>(entries));
  state.SetBytesProcessed(static_cast<int64_t>(entries * kEntrySize));
  state.counters["entries_per_s"] = entries / total_secs;
  state.counters["MB_per_s"] = entries * kEntrySize / 1e6 / total_secs;
}
BENCHMARK(BM_WalReadAll)->ArgsProduct({{0, 1}, {2, 1}})->UseManualTime()->Iterations(5)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sealwal::encryption

BENCHMARK_MAIN();
