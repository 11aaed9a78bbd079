// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum etcd's
// WAL chains over record data.
//
// Extend(crc, data) continues a running CRC: Extend(Extend(0, a), b) ==
// Value(a + b). etcd's WAL stores exactly this running value in each record
// (see sealwal/wal/format.h), seeded from the previous segment's last CRC.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
// start-up) and a portable slicing-by-8 table otherwise; both give identical
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
// hardware one on the same inputs.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
// True when Extend uses the SSE4.2 instruction on this machine.
bool HardwareAccelerated();

}  // namespace sealwal::crc32c

#endif  // SEALWAL_BASE_CRC32C_H_
