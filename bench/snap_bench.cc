// Snapshot benchmarks (scripts/bench_snap.sh runs them beside etcd's
// bench-snap and dd): save and load of inline .snap files and of streamed
// snapshots, plaintext and encrypted (AES-256-GCM), at 64 MiB and 1 GiB.
//
//   save  = Snapshotter::Save (inline) or SaveStream + Append + Commit,
//           fsyncs included, from data already in memory
//   load  = Snapshotter::Load and, for a stream, reading every chunk
//           (page cache warm, as etcd's bench-snap measures it)
//
// Files go to $SEALWAL_BENCH_DIR (default /tmp); keep it on the disk under
// test. bytes_per_second counts snapshot data bytes.
#include <cstdlib>
#include <string>

#include "sealwal/base/data_gen.h"
#include "benchmark/benchmark.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/snap/snapshotter.h"

namespace sealwal::snap {
namespace {

std::string BenchDir(const std::string& name) {
  const char* d = std::getenv("SEALWAL_BENCH_DIR");
  return std::string(d != nullptr && *d != 0 ? d : "/tmp") + "/snap-bench-" + name;
}

void RemoveDir(const std::string& dir) {
  env::FileSystem* fs = env::DefaultFileSystem();
  auto names = fs->ListDir(dir);
  if (names.ok()) {
    for (const auto& n : *names) fs->RemoveFile(dir + "/" + n).IgnoreError();
  }
  fs->RemoveDir(dir).IgnoreError();
}

std::unique_ptr<Snapshotter> Open(const std::string& dir, bool encrypted) {
  SnapshotterOptions o;
  o.create_dir = true;
  if (encrypted) {
    auto key = encryption::SecretKey::FromBytes(std::string(32, '\x33'));
    auto dek = encryption::Dek::FromParts(encryption::KeyId(0x0badf00d),
                                          encryption::Algorithm::kAes256Gcm, std::move(*key));
    o.keys = *encryption::Keyring::ForDek(*dek);
  }
  return std::move(*Snapshotter::Open(dir, o));
}

raftpb::SnapshotMetadata Md(uint64_t index) {
  raftpb::SnapshotMetadata md;
  md.set_index(index);
  md.set_term(1);
  for (int v = 1; v <= 3; ++v) md.mutable_conf_state()->add_voters(v);
  return md;
}

const std::string& Data(size_t n) {
  static std::string data;
  if (data.size() < n) data = DataGen(1, 1, 1, n);
  return data;
}

// Args: size in MiB, encrypted (0/1).
void BM_SnapSave(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0)) << 20;
  const bool enc = state.range(1) != 0;
  const std::string dir = BenchDir(enc ? "save-encrypted" : "save");
  RemoveDir(dir);
  auto s = Open(dir, enc);
  const absl::string_view data = absl::string_view(Data(n)).substr(0, n);
  uint64_t index = 1;
  for (auto _ : state) {
    auto st = s->Save(Md(index++), data);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  RemoveDir(dir);
}

void BM_SnapLoad(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0)) << 20;
  const bool enc = state.range(1) != 0;
  const std::string dir = BenchDir(enc ? "load-encrypted" : "load");
  RemoveDir(dir);
  auto s = Open(dir, enc);
  if (auto st = s->Save(Md(1), absl::string_view(Data(n)).substr(0, n)); !st.ok()) {
    state.SkipWithError(std::string(st.message()).c_str());
  }
  for (auto _ : state) {
    auto l = s->Load();
    if (!l.ok() || l->data.size() != n) state.SkipWithError("load failed");
    benchmark::DoNotOptimize(l->data.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  RemoveDir(dir);
}

void BM_StreamSave(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0)) << 20;
  const bool enc = state.range(1) != 0;
  const std::string dir = BenchDir(enc ? "stream-save-encrypted" : "stream-save");
  RemoveDir(dir);
  auto s = Open(dir, enc);
  // The caller's data arrives in 1 MiB pieces (a state machine writing out
  // its state); the same piece is reused so that memory stays small.
  const absl::string_view piece = absl::string_view(Data(1 << 20)).substr(0, 1 << 20);
  uint64_t index = 1;
  for (auto _ : state) {
    auto saver = s->SaveStream(Md(index++));
    absl::Status st = saver.status();
    for (size_t off = 0; st.ok() && off < n; off += piece.size()) st = (*saver)->Append(piece);
    if (st.ok()) st = (*saver)->Commit();
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    state.PauseTiming();
    if (index > 2) s->Purge(1).IgnoreError();  // keep the disk footprint at ~2 snapshots
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  RemoveDir(dir);
}

void BM_StreamLoad(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0)) << 20;
  const bool enc = state.range(1) != 0;
  const std::string dir = BenchDir(enc ? "stream-load-encrypted" : "stream-load");
  RemoveDir(dir);
  auto s = Open(dir, enc);
  {
    auto saver = s->SaveStream(Md(1));
    const absl::string_view piece = absl::string_view(Data(1 << 20)).substr(0, 1 << 20);
    for (size_t off = 0; off < n; off += piece.size()) (*saver)->Append(piece).IgnoreError();
    if (auto st = (*saver)->Commit(); !st.ok()) state.SkipWithError(std::string(st.message()).c_str());
  }
  for (auto _ : state) {
    auto l = s->Load();
    if (!l.ok() || !l->streamed()) {
      state.SkipWithError("load failed");
      break;
    }
    uint64_t got = 0;
    for (;;) {
      auto c = l->stream->NextChunk();
      if (!c.ok()) {
        state.SkipWithError("chunk failed");
        break;
      }
      if (c->empty()) break;
      benchmark::DoNotOptimize(c->data());
      got += c->size();
    }
    if (got != n) state.SkipWithError("short stream");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  RemoveDir(dir);
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int enc : {0, 1}) {
    b->Args({64, enc});
    b->Args({1024, enc});
  }
  b->ArgNames({"MiB", "encrypted"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
}

BENCHMARK(BM_SnapSave)->Apply(Sizes);
BENCHMARK(BM_SnapLoad)->Apply(Sizes);
BENCHMARK(BM_StreamSave)->Apply(Sizes);
BENCHMARK(BM_StreamLoad)->Apply(Sizes);

}  // namespace
}  // namespace sealwal::snap

BENCHMARK_MAIN();
