// Fuzzes the node key file reader (sealwal/pem/pem_block.h, sealwal/pem/key_file.h): the
// PEM block grammar, the DEK headers, base64, the file digest, the DEK
// records (opened with a fixed unlock key, U0 = bytes 0x00..0x1f) and, for
// unlocked files, OpenSSL's key parser behind them. Input byte 0 picks:
//
//   even  the rest is a key file: any input must give a key file or a
//         classified error, never a crash or a hang; a file that decodes
//         re-encodes to one that decodes to the same DEKs.
//   odd   a valid file (locked under U0 or unlocked, chosen by byte 1) is
//         edited at fuzzer-chosen places (flip, set, insert, erase); if the
//         edited file still opens, its DEKs must be the original ones
//         (the digest, the locked file's MAC and the AEAD leave no other
//         outcome), and a locked one keeps its version-2 file info and id.
//
// SEALWAL_FUZZ_WRITE_SEEDS=DIR makes LLVMFuzzerInitialize write seed files
// (locked under U0, unlocked, swarmkit layout, bare key) into DIR.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"

namespace {

using namespace sealwal;  // NOLINT: a fuzz target

pem::UnlockKey U0() {
  std::string b;
  for (int i = 0; i < 32; ++i) b.push_back(static_cast<char>(i));
  return *pem::UnlockKey::FromBytes(b);
}

pem::DekHeaders Headers() {
  pem::DekHeaders h;
  h.current = pem::StoredDek{
      *encryption::Dek::FromParts(encryption::KeyId(0x1a2b3c4d), encryption::Algorithm::kAes256Gcm,
                                  *encryption::SecretKey::FromBytes(std::string(32, 'c'))),
      12345, 1796119200};
  h.pending = pem::StoredDek{
      *encryption::Dek::FromParts(encryption::KeyId(0x55667788),
                                  encryption::Algorithm::kChaCha20Poly1305,
                                  *encryption::SecretKey::FromBytes(std::string(32, 'p'))),
      0};
  h.needs_rotation = true;
  return h;
}

bool SameDek(const std::optional<pem::StoredDek>& a, const std::optional<pem::StoredDek>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || (a->dek.id == b->dek.id && a->dek.algorithm == b->dek.algorithm &&
                            a->dek.key == b->dek.key && a->encryptions == b->encryptions &&
                            a->created == b->created);
}

bool Same(const pem::DekHeaders& a, const pem::DekHeaders& b) {
  return SameDek(a.current, b.current) && SameDek(a.pending, b.pending) &&
         a.needs_rotation == b.needs_rotation;
}

struct Fixtures {
  std::string locked, unlocked, swarmkit, bare;
};

const Fixtures& Files() {
  static const Fixtures* f = [] {
    auto* out = new Fixtures;
    pem::PrivateKey key = *pem::PrivateKey::GenerateEcP256();
    pem::UnlockKey u = U0();
    out->locked = *pem::EncodeKeyFile(key, Headers(), 7, &u);
    out->unlocked = *pem::EncodeKeyFile(key, Headers(), 3, nullptr);
    // swarmkit: the DEK headers on the key block.
    auto blocks = *pem::ParsePemBlocks(out->unlocked);
    std::string der = *pem::DecodeCanonicalBase64(blocks[1].body_base64, "key");
    out->swarmkit = pem::FormatPemBlock(blocks[1].label, blocks[0].headers, der);
    out->bare = *key.ToPkcs8Pem(std::nullopt);
    return out;
  }();
  return *f;
}

void Abort(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

void RawMode(const std::string& text) {
  (void)pem::ParsePemBlocks(text);
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(text);
  if (!parsed.ok()) return;
  pem::UnlockKey u = U0();
  (void)pem::OpenDekHeaders(*parsed, nullptr);
  (void)pem::OpenDekHeaders(*parsed, &u);
  // Decrypting a locked key costs a PBKDF2 per input: unlocked only.
  if (parsed->locked) return;
  absl::StatusOr<pem::KeyFile> f = pem::DecodeKeyFile(text, nullptr);
  if (!f.ok()) return;
  absl::StatusOr<std::string> again =
      pem::EncodeKeyFile(f->key, f->headers, f->kek_version, nullptr);
  if (!again.ok()) {
    // Only a file OpenSSL reads but cannot write back as PKCS#8 may fail.
    if (!absl::IsInternal(again.status())) Abort("re-encoding a decoded file failed");
    return;
  }
  absl::StatusOr<pem::KeyFile> back = pem::DecodeKeyFile(*again, nullptr);
  if (!back.ok()) Abort("a re-encoded file does not decode");
  if (!Same(back->headers, f->headers) || back->kek_version != f->kek_version) {
    Abort("a re-encoded file decodes to other headers");
  }
}

void EditMode(FuzzedDataProvider& fdp) {
  const bool locked = fdp.ConsumeBool();
  std::string text = locked ? Files().locked : Files().unlocked;
  const std::string original = text;
  const int edits = fdp.ConsumeIntegralInRange<int>(1, 4);
  for (int i = 0; i < edits && !text.empty(); ++i) {
    const size_t pos = fdp.ConsumeIntegralInRange<size_t>(0, text.size() - 1);
    const uint8_t b = fdp.ConsumeIntegral<uint8_t>();
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: text[pos] = static_cast<char>(text[pos] ^ (b == 0 ? 1 : b)); break;
      case 1: text[pos] = static_cast<char>(b); break;
      case 2: text.insert(pos, 1, static_cast<char>(b)); break;
      default: text.erase(pos, 1); break;
    }
  }
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(text);
  if (!parsed.ok()) return;
  pem::UnlockKey u = U0();
  absl::StatusOr<pem::DekHeaders> h = pem::OpenDekHeaders(*parsed, &u);
  if (h.ok() && !Same(*h, Headers())) Abort("an edited file opened to other DEKs");
  if (locked && h.ok()) {
    // Opened under U0: the MAC matched, so the file info is the original's.
    static const std::string* const want = new std::string(
        pem::ParseKeyFile(original)->file_info);
    if (parsed->info_version != pem::kFileInfoVersion2 || parsed->file_info != *want) {
      Abort("an edited locked file opened without its version-2 file info");
    }
  }
  if (!locked && h.ok() && text != original) {
    // Unlocked: the key too must be the original one (the digest covers it).
    absl::StatusOr<pem::KeyFile> f = pem::DecodeKeyFile(text, nullptr);
    absl::StatusOr<pem::KeyFile> o = pem::DecodeKeyFile(original, nullptr);
    if (f.ok() && !f->key.Equals(o->key)) Abort("an edited file opened to another key");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("SEALWAL_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return 0;
  const Fixtures& f = Files();
  const std::pair<const char*, const std::string*> seeds[] = {
      {"locked", &f.locked}, {"unlocked", &f.unlocked}, {"swarmkit", &f.swarmkit},
      {"bare", &f.bare}};
  for (const auto& [name, text] : seeds) {
    std::string path = std::string(dir) + "/seed-" + name;
    if (std::FILE* out = std::fopen(path.c_str(), "wb")) {
      std::fputc(0, out);  // raw mode
      std::fwrite(text->data(), 1, text->size(), out);
      std::fclose(out);
    }
  }
  for (int mode : {1, 3}) {  // edit mode, unlocked and locked
    std::string path = std::string(dir) + "/seed-edit-" + std::to_string(mode);
    if (std::FILE* out = std::fopen(path.c_str(), "wb")) {
      const unsigned char bytes[] = {static_cast<unsigned char>(mode), static_cast<unsigned char>(mode == 3), 10, 0, 20, 1, 30};
      std::fwrite(bytes, 1, sizeof(bytes), out);
      std::fclose(out);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0) {
    RawMode(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  } else {
    FuzzedDataProvider fdp(data + 1, size - 1);
    EditMode(fdp);
  }
  return 0;
}
