// data_gen: the deterministic entry payloads that the etcd-written test
// fixtures also use (the `data_gen` field of their manifest.json):
//
//   state = seed ^ (index * 0x9E3779B97F4A7C15) ^ (term * 0xC2B2AE3D27D4EB4F)
//   repeat { state += 0x9E3779B97F4A7C15; z = splitmix64-mix(state);
//            emit 8 bytes of z little-endian }, truncated to len.
//
// `sealwal wal gen`, `store gen` and `snap save` fill data with it so that
// `--expect-seed` can check every byte after a read. Thread-safe.
#ifndef SEALWAL_BASE_DATA_GEN_H_
#define SEALWAL_BASE_DATA_GEN_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace sealwal {

// Writes len bytes of data_gen(seed, index, term) into out.
void DataGenFill(uint64_t seed, uint64_t index, uint64_t term, char* out, size_t len);
std::string DataGen(uint64_t seed, uint64_t index, uint64_t term, size_t len);

// A streaming variant for payloads too large to hold (snapshots): Fill
// continues where the previous call stopped.
class DataGenStream {
 public:
  DataGenStream(uint64_t seed, uint64_t index, uint64_t term);
  void Fill(char* out, size_t len);

 private:
  uint64_t state_;
  uint64_t pending_ = 0;   // bytes of the current word not yet emitted
  int pending_len_ = 0;
};

}  // namespace sealwal

#endif  // SEALWAL_BASE_DATA_GEN_H_
