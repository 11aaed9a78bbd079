// Fuzzes the WAL frame decoder (sealwal/wal/decoder.h) on one arbitrary segment:
// length words, pads, walpb.Record parsing, CRC chain and torn-write
// detection. Any input must end in "end of log" or a classified error,
// never a crash, a hang or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sealwal;
  auto fs = env::NewMemFileSystem();
  const std::string path = "/0000000000000000-0000000000000000.wal";
  if (!env::WriteFileAtomically(fs.get(), path,
                                std::string(reinterpret_cast<const char*>(data), size))
           .ok()) {
    std::abort();
  }
  wal::Decoder decoder(fs.get(), {path});
  wal::DecodedRecord rec;
  uint64_t last = 0;
  for (;;) {
    absl::StatusOr<bool> more = decoder.Next(&rec);
    if (!more.ok()) {
      // Every failure carries one of the classes the tools report.
      (void)wal::WalErrorClassName(wal::GetWalErrorClass(more.status()));
      break;
    }
    if (!*more) break;
    // Progress: each good frame moves the offset forward, within the file.
    // (Not always 8-aligned: a hostile length word may state any pad, and
    // etcd's reader, like ours, trusts it.)
    if (decoder.last_valid_offset() <= last || decoder.last_valid_offset() > size) {
      std::abort();
    }
    last = decoder.last_valid_offset();
    if (rec.type == static_cast<int64_t>(wal::RecordType::kCrc)) decoder.UpdateCrc(rec.crc);
  }
  return 0;
}
