// snap_rss_harness: writes or reads one streamed snapshot through the
// Snapshotter and reports its own peak RSS (getrusage ru_maxrss), so that
// the constant-memory claim of sealwal/snap/stream.h is a measurement:
//
//   snap_rss_harness save DIR BYTES [--encrypt] [--threads N] [--chunk-size B]
//   snap_rss_harness load DIR [--encrypt] [--threads N]
//
// Data is data_gen(seed 1, index 1, term 1) generated on the fly (never
// held whole); `load` checks every byte against it. Prints one JSON line:
// {"op":..,"bytes":..,"seconds":..,"mb_per_s":..,"max_rss_kib":..}
// (MB = 1e6 bytes). Exit 0 ok, 1 on any error (message on stderr).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sealwal/base/data_gen.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/snap/snapshotter.h"

namespace {

using sealwal::encryption::Keyring;

int Die(const std::string& msg) {
  std::fprintf(stderr, "snap_rss_harness: %s\n", msg.c_str());
  return 1;
}

long MaxRssKib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Die("usage: snap_rss_harness save DIR BYTES | load DIR [flags]");
  const std::string op = argv[1], dir = argv[2];
  uint64_t size = 0;
  int first_flag = 3;
  if (op == "save") {
    if (argc < 4) return Die("save needs BYTES");
    size = std::strtoull(argv[3], nullptr, 10);
    first_flag = 4;
  } else if (op != "load") {
    return Die("op must be save or load");
  }
  bool encrypt = false;
  int threads = 2;
  uint32_t chunk = sealwal::snap::kDefaultChunkSize;
  for (int i = first_flag; i < argc; ++i) {
    if (std::strcmp(argv[i], "--encrypt") == 0) encrypt = true;
    else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--chunk-size") == 0 && i + 1 < argc) chunk = static_cast<uint32_t>(std::atoi(argv[++i]));
    else return Die(std::string("unknown flag ") + argv[i]);
  }
  sealwal::snap::SnapshotterOptions o;
  o.create_dir = true;
  o.stream.threads = threads;
  o.stream.chunk_size = chunk;
  o.stream_read.threads = threads;
  if (encrypt) {
    auto key = sealwal::encryption::SecretKey::FromBytes(std::string(32, '\x5a'));
    auto dek = sealwal::encryption::Dek::FromParts(sealwal::encryption::KeyId(0xabcdef01),
                                                   sealwal::encryption::Algorithm::kAes256Gcm,
                                                   std::move(*key));
    o.keys = *Keyring::ForDek(*dek);
  }
  auto snapper = sealwal::snap::Snapshotter::Open(dir, o);
  if (!snapper.ok()) return Die(snapper.status().ToString());
  const auto t0 = std::chrono::steady_clock::now();
  std::string buf(1 << 20, '\0');
  sealwal::DataGenStream gen(1, 1, 1);
  uint64_t bytes = 0;
  if (op == "save") {
    sealwal::raftpb::SnapshotMetadata md;
    md.set_index(1);
    md.set_term(1);
    md.mutable_conf_state()->add_voters(1);
    auto saver = (*snapper)->SaveStream(md);
    if (!saver.ok()) return Die(saver.status().ToString());
    while (bytes < size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - bytes));
      gen.Fill(buf.data(), n);
      if (auto s = (*saver)->Append(absl::string_view(buf.data(), n)); !s.ok()) return Die(s.ToString());
      bytes += n;
    }
    if (auto s = (*saver)->Commit(); !s.ok()) return Die(s.ToString());
  } else {
    auto l = (*snapper)->Load();
    if (!l.ok()) return Die(l.status().ToString());
    if (!l->streamed()) return Die("the newest snapshot is not streamed");
    for (;;) {
      auto c = l->stream->NextChunk();
      if (!c.ok()) return Die(c.status().ToString());
      if (c->empty()) break;
      if (buf.size() < c->size()) buf.resize(c->size());
      gen.Fill(buf.data(), c->size());
      if (std::memcmp(buf.data(), c->data(), c->size()) != 0) {
        return Die("data differs from data_gen at chunk starting at byte " + std::to_string(bytes));
      }
      bytes += c->size();
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"op\":\"%s\",\"encrypt\":%s,\"bytes\":%llu,\"seconds\":%.4f,\"mb_per_s\":%.1f,"
              "\"max_rss_kib\":%ld}\n",
              op.c_str(), encrypt ? "true" : "false", static_cast<unsigned long long>(bytes), secs,
              static_cast<double>(bytes) / 1e6 / secs, MaxRssKib());
  return 0;
}
