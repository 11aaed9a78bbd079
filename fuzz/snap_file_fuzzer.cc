// Fuzzes the .snap decoder (sealwal/snap/format.h) and Snapshotter::Load on one
// arbitrary .snap file. Our hand-rolled wire decoder must never accept what
// protobuf's parser rejects, and must read the same crc, data and metadata
// when both accept. Load (plaintext and with a key) must end in a snapshot
// or a classified error; a file Load renamed .broken must be one the
// decoder rejects.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "fuzz/snap_fuzz_keys.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/proto/snappb.pb.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/snapshotter.h"

namespace {

using namespace sealwal;

void LoadOnce(const std::string& bytes, std::shared_ptr<encryption::Keyring> keys) {
  auto fs = env::NewMemFileSystem();
  // The directory's name must say what the keyring says (Snapshotter::Open).
  const std::string dir = keys != nullptr ? "/s-encrypted" : "/s";
  if (!fs->CreateDir(dir).ok()) std::abort();
  const std::string name = snap::SnapFileName(1, 1);
  if (!env::WriteFileAtomically(fs.get(), dir + "/" + name, bytes).ok()) std::abort();
  snap::SnapshotterOptions o;
  o.fs = fs.get();
  o.keys = std::move(keys);
  auto s = snap::Snapshotter::Open(dir, o);
  if (!s.ok()) std::abort();
  (void)(*s)->Inspect(name);
  snap::LoadReport report;
  auto l = (*s)->Load(&report);
  const bool renamed = fs->FileExists(dir + "/" + name + ".broken").ok();
  const bool decodes = snap::DecodeSnapFile(bytes).ok() &&
                       snap::DecodeRaftSnapshot(snap::DecodeSnapFile(bytes)->raft_snapshot).ok();
  if (renamed == decodes) std::abort();  // renamed exactly the undecodable
  if (l.ok() && l->streamed()) {
    for (;;) {
      auto c = l->stream->NextChunk();
      if (!c.ok() || c->empty()) break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto f = snap::DecodeSnapFile(bytes);
  if (f.ok()) {
    sealwal::snappb::Snapshot p;
    if (!p.ParseFromString(bytes) || p.crc() != f->crc || p.data() != f->raft_snapshot) std::abort();
    auto r = snap::DecodeRaftSnapshot(f->raft_snapshot);
    sealwal::raftpb::Snapshot rp;
    const bool parsed = rp.ParseFromString(std::string(f->raft_snapshot));
    if (r.ok()) {
      if (!parsed || rp.data() != r->data ||
          rp.metadata().SerializeAsString() != r->metadata.SerializeAsString()) {
        std::abort();
      }
      if (snap::IsStreamRef(r->data)) {
        auto ref = snap::DecodeStreamRef(r->data);
        if (ref.ok() && snap::EncodeStreamRef(*ref) != r->data) std::abort();
      }
    }
  }
  LoadOnce(bytes, nullptr);
  // With a key whose id is the one the record names (when it names one).
  uint32_t id = 1;
  if (f.ok()) {
    auto r = snap::DecodeRaftSnapshot(f->raft_snapshot);
    if (r.ok()) {
      auto kid = encryption::MultiDecrypter::KeyIdOf(r->data);
      if (kid.ok()) id = kid->value();
    }
  }
  LoadOnce(bytes, fuzz::SeedKeyring(id));
  return 0;
}
