// sealwal/encryption/key_usage.h: the one usage counter of a DEK in a process.
//
// A DEK may seal at most 2^32 messages (kMaxEncryptionsPerKey; NIST SP
// 800-38D's bound for random 96-bit nonces) and should be rotated once it
// has sealed 2^30 (the rotation threshold). Every sealer of a DEK in a
// process (the WAL codec's Encrypter, each .snap's Encrypter, each stream's
// key derivation) draws from the same KeyUsage, which the DEK's
// encryption::Keyring entry owns, so that the count is per DEK, not per
// object.
//
// Persistence (docs/format.md §11, docs/security.md "Keys"): the key file
// stores, per DEK, an upper bound on the messages it has sealed. A KeyUsage
// with a Reserver never lets `used()` pass `limit()`, the bound the Reserver
// last made durable: before a message would cross it, Consume calls the
// Reserver (under this object's mutex, so one reservation at a time) to
// raise the stored bound by a block (default 2^20) and only then seals.
// A failed reservation refuses the message (nothing is sealed). So after a
// crash at any moment the stored bound is at least every message sealed,
// and the next process starts from it: the 2^32 limit and the rotation
// threshold hold across processes.
//
// Several processes may share a key file: a Reserver returns where its
// reservation begins, which is the stored bound if another process raised
// it meanwhile; `used()` then jumps there, so reservations of different
// processes never overlap and the stored bound stays an upper bound of the
// sum.
//
// Without a Reserver (keys that live only in memory, tests) limit() is
// 2^32 from the start and nothing is persisted.
//
// Thread-safety: all methods are thread-safe. The common case (the message
// fits under limit()) is one atomic compare-and-swap, no lock.
#ifndef SEALWAL_ENCRYPTION_KEY_USAGE_H_
#define SEALWAL_ENCRYPTION_KEY_USAGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::encryption {

// Default count at which a DEK should be rotated (docs/format.md §9).
inline constexpr uint64_t kDefaultRotationThreshold = uint64_t{1} << 30;
// Hard limit: a DEK never seals more than this many messages.
inline constexpr uint64_t kMaxEncryptionsPerKey = uint64_t{1} << 32;
// How far a reservation raises the stored bound (one key-file write per
// this many messages).
inline constexpr uint64_t kDefaultReservationBlock = uint64_t{1} << 20;

// Makes durable that DEK `id` may seal `count` more messages, starting no
// lower than `floor` (this process's current bound): the stored bound S
// becomes min(max(S, floor) + count, 2^32), and the Reserver returns
// max(S, floor), where this reservation begins. It must not return before
// the new bound is durable. An error refuses the messages that needed it.
using Reserver =
    std::function<absl::StatusOr<uint64_t>(KeyId id, uint64_t floor, uint64_t count)>;

class KeyUsage {
 public:
  // A counter starting at `initial` (the stored bound, or what an
  // in-memory key has sealed before). With a reserver the limit starts at
  // `initial` too (the first message reserves); without one it is 2^32.
  KeyUsage(KeyId id, uint64_t initial, Reserver reserver = nullptr,
           uint64_t block = kDefaultReservationBlock);
  KeyUsage(const KeyUsage&) = delete;
  KeyUsage& operator=(const KeyUsage&) = delete;

  // Counts `n` messages (nonces) about to be sealed, reserving first when
  // they would pass limit(). kResourceExhausted ("DEK exhausted, rotate")
  // when the DEK would pass 2^32; the Reserver's error when a reservation
  // fails. On error nothing is counted and the caller must not seal.
  absl::Status Consume(uint64_t n);

  KeyId id() const { return id_; }
  // Messages counted (an upper bound of those sealed in this process plus
  // the count it started from and other processes' reservations).
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  // The bound made durable (2^32 without a reserver).
  uint64_t limit() const { return limit_.load(std::memory_order_acquire); }
  bool persistent() const { return reserver_ != nullptr; }

 private:
  absl::Status ConsumeSlow(uint64_t n);

  const KeyId id_;
  const Reserver reserver_;
  const uint64_t block_;
  std::atomic<uint64_t> used_;
  std::atomic<uint64_t> limit_;
  std::mutex reserve_mu_;  // one reservation at a time
};

}  // namespace sealwal::encryption

#endif  // SEALWAL_ENCRYPTION_KEY_USAGE_H_
