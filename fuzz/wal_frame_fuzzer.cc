// Fuzzes the WAL frame decoder (sealwal/wal/decoder.h) and the public
// RecordReader over it on one arbitrary segment: length words, pads,
// walpb.Record parsing, CRC chain and torn-write detection. Any input must
// end in "end of log" or a classified error, never a crash, a hang or an
// out-of-bounds read; and the two must agree:
//   - every decoder failure carries an error class (never none);
//   - RecordReader returns records in file order, ends at kEof with an OK
//     status or otherwise with an error whose class matches how it ended
//     (torn tail <-> unexpected_eof; corruption is never unexpected_eof);
//   - it never returns a record past the frames the decoder accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"

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
      if (wal::GetWalErrorClass(more.status()) == wal::WalErrorClass::kNone) std::abort();
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

  wal::RecordReader reader(fs.get(), {path});
  wal::Record r;
  uint64_t prev = 0;
  bool first = true;
  while (reader.ReadRecord(&r)) {
    if (!first && r.position.offset <= prev) std::abort();  // file order
    if (r.position.offset >= last) std::abort();  // only frames the decoder accepted
    prev = r.position.offset;
    first = false;
  }
  const wal::WalErrorClass cls = wal::GetWalErrorClass(reader.status());
  switch (reader.end()) {
    case wal::RecordReader::End::kEof:
      if (!reader.status().ok()) std::abort();
      break;
    case wal::RecordReader::End::kTornTail:
      if (cls != wal::WalErrorClass::kUnexpectedEof) std::abort();
      break;
    case wal::RecordReader::End::kCorruption:
      if (cls == wal::WalErrorClass::kNone || cls == wal::WalErrorClass::kUnexpectedEof) {
        std::abort();
      }
      break;
    case wal::RecordReader::End::kIoError:
    case wal::RecordReader::End::kNotYet:
      std::abort();  // a memory file system does not fail; the read has ended
  }
  return 0;
}
