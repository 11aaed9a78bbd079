// log_reader_scan: what recovery costs on a WAL on disk, one way per run,
// for /usr/bin/time -v (peak RSS) beside `sealwal wal verify`:
//   log_reader_scan DIR DEK_FILE|- readall|scan-verify|scan-only|stream
// readall      Wal::ReadAll (every entry in memory)
// scan-verify  LogReader::Open, verify_payloads on (the default)
// scan-only    LogReader::Open, verify_payloads off
// stream       scan-only, then every entry read back through Entries
// A DEK_FILE holds the 32 raw key bytes `sealwal wal gen --dek-file` used.
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "sealwal/encryption/dek.h"
#include "sealwal/env/file_system.h"
#include "sealwal/wal/log_reader.h"
#include "sealwal/wal/wal.h"
#include "sealwal/walcrypt/wal_codec.h"

using namespace sealwal;  // NOLINT: a bench's main

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log_reader_scan DIR DEK_FILE|- readall|scan-verify|scan-only|stream\n");
    return 2;
  }
  const std::string dir = argv[1], mode = argv[3];
  std::unique_ptr<walcrypt::WalCodec> codec;
  if (std::string(argv[2]) != "-") {
    auto bytes = env::ReadSecretFile(env::DefaultFileSystem(), argv[2]);
    if (!bytes.ok()) return std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str()), 1;
    unsigned char d[SHA256_DIGEST_LENGTH];  // the CLI's key id for a --dek-file
    SHA256(reinterpret_cast<const unsigned char*>(bytes->data()), bytes->size(), d);
    uint32_t id = d[0] | d[1] << 8 | d[2] << 16 | static_cast<uint32_t>(d[3]) << 24;
    auto key = encryption::SecretKey::FromBytes(*bytes);
    auto dek = encryption::Dek::FromParts(encryption::KeyId(id == 0 ? 1 : id),
                                          encryption::Algorithm::kAes256Gcm, std::move(*key));
    auto c = walcrypt::WalCodec::ForDek(*dek);
    if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;
    codec = std::move(*c);
  }
  wal::WalOptions o;
  o.codec = codec.get();
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t entries = 0, bytes = 0;
  absl::Status s;
  if (mode == "readall") {
    auto w = wal::Wal::OpenForRead(dir, {}, o);
    auto c = w.ok() ? (*w)->ReadAll() : absl::StatusOr<wal::WalContents>(w.status());
    s = c.status();
    if (c.ok()) {
      entries = c->entries.size();
      for (const auto& e : c->entries) bytes += e.data().size();
    }
  } else {
    wal::LogReaderOptions lo;
    lo.cache_bytes = 0;
    lo.verify_payloads = mode == "scan-verify";
    std::unique_ptr<wal::LogReader> r;
    s = wal::LogReader::Open(dir, {}, o, lo, &r);
    if (s.ok()) {
      entries = r->LastIndex() - r->FirstIndex() + 1;
      for (uint64_t i = r->FirstIndex(); mode == "stream" && s.ok() && i <= r->LastIndex();) {
        auto e = r->Entries(i, std::min(r->LastIndex() + 1, i + 4096));
        s = e.status();
        if (!e.ok()) break;
        for (const auto& x : *e) bytes += x.data().size();
        i += e->size();
      }
      std::printf("index_bytes %zu\n", r->stats().index_bytes);
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %s entries %llu data %llu seconds %.3f\n", mode.c_str(), s.ToString().c_str(),
              static_cast<unsigned long long>(entries), static_cast<unsigned long long>(bytes),
              secs);
  return s.ok() ? 0 : 1;
}
