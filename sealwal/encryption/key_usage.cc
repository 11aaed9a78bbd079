#include "sealwal/encryption/key_usage.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sealwal::encryption {
namespace {

absl::Status Exhausted(KeyId id, uint64_t used) {
  return absl::ResourceExhaustedError(
      absl::StrCat("DEK exhausted, rotate: key id ", FormatKeyId(id), " has sealed ", used,
                   " messages and may seal at most 2^32"));
}

}  // namespace

KeyUsage::KeyUsage(KeyId id, uint64_t initial, Reserver reserver, uint64_t block)
    : id_(id),
      reserver_(std::move(reserver)),
      block_(std::max<uint64_t>(block, 1)),
      used_(initial),
      limit_(reserver_ != nullptr ? std::min(initial, kMaxEncryptionsPerKey)
                                  : kMaxEncryptionsPerKey) {}

absl::Status KeyUsage::Consume(uint64_t n) {
  uint64_t u = used_.load(std::memory_order_relaxed);
  for (;;) {
    if (u > kMaxEncryptionsPerKey || n > kMaxEncryptionsPerKey - u) return Exhausted(id_, u);
    if (u + n > limit_.load(std::memory_order_acquire)) return ConsumeSlow(n);
    if (used_.compare_exchange_weak(u, u + n, std::memory_order_relaxed)) return absl::OkStatus();
  }
}

absl::Status KeyUsage::ConsumeSlow(uint64_t n) {
  std::lock_guard<std::mutex> l(reserve_mu_);
  for (;;) {
    uint64_t u = used_.load(std::memory_order_relaxed);
    if (u > kMaxEncryptionsPerKey || n > kMaxEncryptionsPerKey - u) return Exhausted(id_, u);
    const uint64_t limit = limit_.load(std::memory_order_acquire);
    if (u + n <= limit) {
      // Another thread reserved meanwhile (or the fast path moved `used`).
      if (used_.compare_exchange_weak(u, u + n, std::memory_order_relaxed)) {
        return absl::OkStatus();
      }
      continue;
    }
    // Only reached with a reserver: without one the limit is 2^32, checked
    // above. The block covers this request even when it is larger.
    const uint64_t count = std::max(block_, n);
    absl::StatusOr<uint64_t> begin = reserver_(id_, limit, count);
    if (!begin.ok()) {
      return absl::Status(begin.status().code(),
                          absl::StrCat("cannot reserve encryptions for DEK ", FormatKeyId(id_),
                                       ", refusing to seal: ", begin.status().message()));
    }
    if (*begin < limit) {
      return absl::InternalError(absl::StrCat("reservation for DEK ", FormatKeyId(id_),
                                              " began at ", *begin, ", below the bound ", limit));
    }
    const uint64_t end = std::min(kMaxEncryptionsPerKey, *begin + std::min(count, kMaxEncryptionsPerKey));
    // When another process reserved [limit, begin) meanwhile, this one's
    // counter cannot skip that hole and keep the rest of its own range: it
    // moves up to `begin` (the rest of its range is given up) before the new
    // limit is visible. Otherwise it continues where it is.
    if (*begin > limit) {
      uint64_t cur = used_.load(std::memory_order_relaxed);
      while (cur < *begin &&
             !used_.compare_exchange_weak(cur, *begin, std::memory_order_relaxed)) {
      }
    }
    limit_.store(end, std::memory_order_release);
  }
}

}  // namespace sealwal::encryption
