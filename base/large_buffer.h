// Buffers for whole snapshots (tens of MiB to GiB) that are filled once.
//
// Filling fresh memory costs one page fault per 4 KiB page, which for a
// 64 MiB snapshot took longer than decrypting it. These helpers ask the
// kernel for transparent huge pages on the buffer (madvise MADV_HUGEPAGE;
// a hint, ignored where THP is off) before it is touched, so a fill takes
// one fault per 2 MiB instead. Below kLargeBufferBytes they do nothing
// special. Thread-safe: no shared state.
#ifndef SEALWAL_BASE_LARGE_BUFFER_H_
#define SEALWAL_BASE_LARGE_BUFFER_H_

#include <cstddef>
#include <string>

namespace sealwal {

inline constexpr size_t kLargeBufferBytes = size_t{8} << 20;

// s->reserve(n), then the huge-page hint on the reserved memory when n is
// large. Call on an empty string, before filling it.
void ReserveLargeString(std::string* s, size_t n);

}  // namespace sealwal

#endif  // SEALWAL_BASE_LARGE_BUFFER_H_
