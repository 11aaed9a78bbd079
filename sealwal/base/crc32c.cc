#include "sealwal/base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>

#include "sealwal/base/endian.h"

namespace sealwal::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// Slicing-by-8 tables, built at compile time.
constexpr std::array<std::array<uint32_t, 256>, 8> MakeTables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}
constexpr auto kTables = MakeTables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* p,
                                                        size_t n) {
  uint64_t c = ~crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, static_cast<uint8_t>(*p++));
    --n;
  }
  return ~c32;
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);

ExtendFn Choose() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return &ExtendSse42;
#endif
  return &ExtendPortable;
}

const ExtendFn kExtend = Choose();

// ISA-L wins from 256 B (bench/crc_bench); below, its set-up costs more than
// our single-stream loop (64 B: 2.4 vs 7.4 GiB/s).
constexpr size_t kIsalMin = 256;
// crc32_iscsi takes an int length.
constexpr size_t kIsalChunk = size_t{1} << 30;
static_assert(kIsalChunk <= INT_MAX);

uint32_t ExtendIsal(uint32_t crc, const char* data, size_t n) {
  // crc32_iscsi neither inverts on entry nor on exit; Extend does both. It
  // only reads the buffer despite the non-const pointer.
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(data));
  uint32_t c = ~crc;
  while (n > 0) {
    const size_t k = std::min(n, kIsalChunk);
    c = crc32_iscsi(p, static_cast<int>(k), c);
    p += k;
    n -= k;
  }
  return ~c;
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = LoadLE32(p);
    const uint32_t hi = LoadLE32(p + 4);
    lo ^= c;
    c = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^
        kTables[5][(lo >> 16) & 0xFF] ^ kTables[4][lo >> 24] ^
        kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
        kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kTables[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t ExtendSingleStream(uint32_t crc, const char* data, size_t n) {
  return kExtend(crc, data, n);
}

uint32_t Extend(uint32_t crc, const char* data, size_t n) {
  return n >= kIsalMin ? ExtendIsal(crc, data, n) : kExtend(crc, data, n);
}

bool HardwareAccelerated() { return kExtend != &ExtendPortable; }

}  // namespace sealwal::crc32c
