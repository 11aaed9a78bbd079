// Fuzzes the streaming-snapshot reader (sealwal/snap/stream.h) on one arbitrary
// .snap.stream file: header decoding, the layout from the file size, and
// every chunk read sequentially (on worker threads and inline) and by
// number. Any input must end in a fully read stream or a kDataLoss /
// kNotFound / kFailedPrecondition, never a crash or a hang; a stream that
// reads fully must read the same bytes both ways.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "fuzz/snap_fuzz_keys.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/stream.h"

namespace {

using namespace sealwal;

bool Allowed(const absl::Status& s) {
  return absl::IsDataLoss(s) || absl::IsNotFound(s) || absl::IsFailedPrecondition(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto h = snap::DecodeStreamHeader(bytes);
  if (h.ok() && snap::EncodeStreamHeader(*h) != bytes.substr(0, snap::kStreamHeaderSize)) {
    std::abort();
  }
  // There is no .snap here: the expectation is what the header claims and
  // the size its layout gives (a file of no valid layout is refused before
  // the expectation is looked at). A plaintext stream is read without a
  // keyring, since a keyring refuses plaintext streams.
  snap::StreamExpectation expect;
  bool encrypted = true;
  if (h.ok()) {
    auto layout = snap::LayoutFromFileSize(*h, bytes.size());
    expect.index = h->index;
    expect.term = h->term;
    expect.ref.algorithm = h->algorithm;
    expect.ref.key_id = h->key_id;
    expect.ref.chunk_size = h->chunk_size;
    expect.ref.salt = h->salt;
    if (layout.ok()) expect.ref.size = layout->size;
    encrypted = h->algorithm != encryption::Algorithm::kNotEncrypted;
  }
  auto fs = env::NewMemFileSystem();
  if (!env::WriteFileAtomically(fs.get(), "/x.snap.stream", bytes).ok()) std::abort();
  auto keys = encrypted ? fuzz::SeedKeyring(h.ok() ? h->key_id.value() : 1) : nullptr;
  std::string seq[2];
  bool full[2] = {false, false};
  for (int threads : {0, 2}) {
    snap::StreamReadOptions o;
    o.threads = threads;
    auto r = snap::StreamReader::Open(fs.get(), "/x.snap.stream", keys, expect, o);
    if (!r.ok()) {
      if (!Allowed(r.status())) std::abort();
      return 0;
    }
    if (threads == 0) {
      (void)(*r)->VerifyEnds();
      const uint64_t n = (*r)->chunk_count();
      for (uint64_t i : {uint64_t{0}, n / 2, n - 1, n}) (void)(*r)->ReadChunk(i);
    }
    for (;;) {
      auto c = (*r)->NextChunk();
      if (!c.ok()) {
        if (!Allowed(c.status())) std::abort();
        break;
      }
      if (c->empty()) {
        full[threads ? 1 : 0] = true;
        break;
      }
      seq[threads ? 1 : 0].append(c->data(), c->size());
    }
  }
  if (full[0] != full[1] || (full[0] && seq[0] != seq[1])) std::abort();
  return 0;
}
