// sealwal/base/endian.h: little-endian loads and stores of fixed-width
// unsigned integers, independent of the host's byte order. Internal
// (header-only, not installed). Every on-disk little-endian field of the
// WAL and snapshot formats goes through these.
//
// Thread-safety: pure functions. Ownership: callers own the buffers; a
// load reads exactly N/8 bytes at p, a store writes exactly N/8 bytes.
#ifndef SEALWAL_BASE_ENDIAN_H_
#define SEALWAL_BASE_ENDIAN_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace sealwal {
namespace endian_internal {

inline uint16_t ByteSwap(uint16_t v) { return __builtin_bswap16(v); }
inline uint32_t ByteSwap(uint32_t v) { return __builtin_bswap32(v); }
inline uint64_t ByteSwap(uint64_t v) { return __builtin_bswap64(v); }

// memcpy compiles to one unaligned load or store; big-endian hosts swap.
template <typename T>
inline T LoadLE(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  return v;
}

template <typename T>
inline void StoreLE(T v, void* p) {
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  std::memcpy(p, &v, sizeof(T));
}

template <typename T>
inline void AppendLE(T v, std::string* out) {
  char b[sizeof(T)];
  StoreLE<T>(v, b);
  out->append(b, sizeof(T));
}

}  // namespace endian_internal

inline uint16_t LoadLE16(const void* p) { return endian_internal::LoadLE<uint16_t>(p); }
inline uint32_t LoadLE32(const void* p) { return endian_internal::LoadLE<uint32_t>(p); }
inline uint64_t LoadLE64(const void* p) { return endian_internal::LoadLE<uint64_t>(p); }

inline void StoreLE16(uint16_t v, void* p) { endian_internal::StoreLE<uint16_t>(v, p); }
inline void StoreLE32(uint32_t v, void* p) { endian_internal::StoreLE<uint32_t>(v, p); }
inline void StoreLE64(uint64_t v, void* p) { endian_internal::StoreLE<uint64_t>(v, p); }

inline void AppendLE16(uint16_t v, std::string* out) { endian_internal::AppendLE<uint16_t>(v, out); }
inline void AppendLE32(uint32_t v, std::string* out) { endian_internal::AppendLE<uint32_t>(v, out); }
inline void AppendLE64(uint64_t v, std::string* out) { endian_internal::AppendLE<uint64_t>(v, out); }

}  // namespace sealwal

#endif  // SEALWAL_BASE_ENDIAN_H_
