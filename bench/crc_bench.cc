// CRC32C benchmarks, on the same random buffer:
//   BM_Crc32cOurs/<bytes>    crc32c::ExtendSingleStream (SSE4.2 crc32, one
//                            stream: what Extend used for every size before)
//   BM_Crc32cIsal/<bytes>    ISA-L's crc32_iscsi (carry-less-multiply
//                            folding), as ~crc32_iscsi(buf, n, ~crc)
//   BM_Crc32cExtend/<bytes>  crc32c::Extend: the first below 256 B, ISA-L above
// 64 B to 512 B (where the two cross), 1 KiB (a WAL record), 16 KiB and
// 1 MiB (snapshot data). Reports bytes_per_second.
#include <isa-l/crc.h>

#include <cstdint>
#include <string>

#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "sealwal/base/crc32c.h"

namespace sealwal {
namespace {

uint32_t IsalExtend(uint32_t crc, const std::string& s) {
  // ISA-L neither inverts on entry nor on exit; Extend does both.
  return ~crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
                      static_cast<int>(s.size()), ~crc);
}

uint32_t OursExtend(uint32_t crc, const std::string& s) {
  return crc32c::ExtendSingleStream(crc, s.data(), s.size());
}

uint32_t MixedExtend(uint32_t crc, const std::string& s) { return crc32c::Extend(crc, s); }

template <uint32_t (*F)(uint32_t, const std::string&)>
void Run(benchmark::State& state) {
  const std::string buf = bench::RandomBytes(static_cast<size_t>(state.range(0)), 1);
  // All must agree, or the comparison means nothing.
  if (F(7, buf) != crc32c::ExtendPortable(7, buf.data(), buf.size())) {
    return state.SkipWithError("crc mismatch");
  }
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = F(crc, buf);
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_Crc32cOurs(benchmark::State& state) { Run<OursExtend>(state); }
void BM_Crc32cIsal(benchmark::State& state) { Run<IsalExtend>(state); }
void BM_Crc32cExtend(benchmark::State& state) { Run<MixedExtend>(state); }

#define SIZES Arg(64)->Arg(128)->Arg(256)->Arg(512)->Arg(1024)->Arg(16384)->Arg(1 << 20)
BENCHMARK(BM_Crc32cOurs)->SIZES;
BENCHMARK(BM_Crc32cIsal)->SIZES;
BENCHMARK(BM_Crc32cExtend)->SIZES;

}  // namespace
}  // namespace sealwal

BENCHMARK_MAIN();
