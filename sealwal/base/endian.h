// sealwal/base/endian.h: little-endian loads and stores of fixed-width
// unsigned integers, independent of the host's byte order. Internal
// (header-only, not installed). Every on-disk little-endian field of the
// WAL and snapshot formats goes through these.
//
// Thread-safety: pure functions. Ownership: callers own the buffers; a
// load reads exactly N/8 bytes at p, a store writes exactly N/8 bytes.
#ifndef SEALWAL_BASE_ENDIAN_H_
#define SEALWAL_BASE_ENDIAN_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace sealwal {
namespace endian_internal {

template <typename T>
inline T LoadLE(const void* p) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(b[i]) << (8 * i));
  return v;
}

template <typename T>
inline void StoreLE(T v, void* p) {
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
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
