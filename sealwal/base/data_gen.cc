#include "sealwal/base/data_gen.h"

#include <cstring>

#include "sealwal/base/endian.h"

namespace sealwal {
namespace {
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

DataGenStream::DataGenStream(uint64_t seed, uint64_t index, uint64_t term)
    : state_(seed ^ (index * kGolden) ^ (term * 0xC2B2AE3D27D4EB4Full)) {}

void DataGenStream::Fill(char* out, size_t len) {
  while (len > 0 && pending_len_ > 0) {
    *out++ = static_cast<char>(pending_ & 0xFF);
    pending_ >>= 8;
    --pending_len_;
    --len;
  }
  while (len >= 8) {
    state_ += kGolden;
    uint64_t z = Mix(state_);
    StoreLE64(z, out);
    out += 8;
    len -= 8;
  }
  if (len > 0) {
    state_ += kGolden;
    pending_ = Mix(state_);
    pending_len_ = 8;
    Fill(out, len);
  }
}

void DataGenFill(uint64_t seed, uint64_t index, uint64_t term, char* out, size_t len) {
  DataGenStream(seed, index, term).Fill(out, len);
}

std::string DataGen(uint64_t seed, uint64_t index, uint64_t term, size_t len) {
  std::string s(len, '\0');
  DataGenFill(seed, index, term, s.data(), len);
  return s;
}

}  // namespace sealwal
