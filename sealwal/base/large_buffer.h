// Buffers for whole snapshots (tens of MiB to GiB) that are filled once.
//
// Filling fresh memory costs one page fault per 4 KiB page, which for a
// 64 MiB snapshot took longer than decrypting it. These helpers ask the
// kernel for transparent huge pages on the buffer (madvise MADV_HUGEPAGE;
// a hint, ignored where THP is off) before it is touched, so a fill takes
// one fault per 2 MiB instead (64 MiB .snap load: 2.5x faster).
//
// Only between kLargeBufferBytes and kHugeBufferMaxBytes: below, 4 KiB
// pages cost little; above, huge pages tend to land on memory the
// hypervisor has never backed, and a 1 GiB load measured 4x slower with
// them than without on our VMs (snapshots that large should be streamed
// anyway). Thread-safe: no shared state.
#ifndef SEALWAL_BASE_LARGE_BUFFER_H_
#define SEALWAL_BASE_LARGE_BUFFER_H_

#include <cstddef>
#include <string>

namespace sealwal {

inline constexpr size_t kLargeBufferBytes = size_t{8} << 20;
inline constexpr size_t kHugeBufferMaxBytes = size_t{256} << 20;

// s->reserve(n), then the huge-page hint on the reserved memory when n is
// in the range above. Call on an empty string, before filling it.
void ReserveLargeString(std::string* s, size_t n);

}  // namespace sealwal

#endif  // SEALWAL_BASE_LARGE_BUFFER_H_
