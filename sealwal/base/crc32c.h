// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum etcd's
// WAL chains over record data.
//
// Extend(crc, data) continues a running CRC: Extend(Extend(0, a), b) ==
// Value(a + b). etcd's WAL stores exactly this running value in each record
// (see sealwal/wal/format.h), seeded from the previous segment's last CRC.
//
// Inputs of 256 B or more go to ISA-L's crc32_iscsi (libisal), which folds
// with carry-less multiplies: bench/crc_bench on the 2-core AMD EPYC dev box
// (loaded) gave 28-29 GiB/s at 1 KiB (a WAL record) and 40-48 GiB/s at
// 16 KiB-1 MiB, against 7.5-8.1 GiB/s for one stream of crc32 instructions.
// Shorter inputs (entry heads, metadata) stay on that SSE4.2 loop when the
// CPU has it (checked once at start-up), about 3x faster than ISA-L at 64 B,
// and on a portable slicing-by-8 table otherwise. All give identical
// results. Thread-safe: pure functions.
#ifndef SEALWAL_BASE_CRC32C_H_
#define SEALWAL_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace sealwal::crc32c {

// Continues `crc` (the CRC of everything before `data`) over `data`.
uint32_t Extend(uint32_t crc, const char* data, size_t n);
inline uint32_t Extend(uint32_t crc, absl::string_view data) {
  return Extend(crc, data.data(), data.size());
}
inline uint32_t Value(absl::string_view data) { return Extend(0, data); }

// The portable implementation, exposed so tests can compare it with the
// hardware and ISA-L ones on the same inputs.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
// What Extend uses below 256 B (SSE4.2 or portable), at any length, so that
// tests and bench/crc_bench can compare it with ISA-L.
uint32_t ExtendSingleStream(uint32_t crc, const char* data, size_t n);
// True when Extend uses the SSE4.2 instruction for short inputs on this
// machine (ISA-L picks its own code for long ones).
bool HardwareAccelerated();

}  // namespace sealwal::crc32c

#endif  // SEALWAL_BASE_CRC32C_H_
