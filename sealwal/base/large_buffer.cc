#include "sealwal/base/large_buffer.h"

#include <sys/mman.h>

#include <cstdint>

namespace sealwal {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

// The hint covers only whole huge pages inside [p, p + n): madvise needs a
// page-aligned start, and the partial ends are not worth a huge page.
void AdviseHugePages(char* p, size_t n) {
  if (n < kLargeBufferBytes || n > kHugeBufferMaxBytes) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHugePage - 1);
  if (end > begin) {
    // Best effort: EINVAL on kernels without THP changes nothing.
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
}

}  // namespace

void ReserveLargeString(std::string* s, size_t n) {
  s->reserve(n);
  AdviseHugePages(s->data(), s->capacity());
}

}  // namespace sealwal
