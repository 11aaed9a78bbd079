// Fuzzes EncryptedRecord parsing and decryption (sealwal/encryption/decrypter.h),
// which sees every encrypted payload read from disk.
//
// Byte 0 picks the mode:
//   even: the rest is a serialized record, decrypted under two known DEKs
//         (AES-256-GCM id 1, ChaCha20-Poly1305 id 2) at a fixed place, by
//         copying and in place: both must agree.
//   odd:  byte 1 splits the rest into a plaintext and an XOR mask; the
//         plaintext is sealed, the mask applied to the sealed bytes, and the
//         result decrypted. AEAD integrity says: if it decrypts, it is the
//         original plaintext; an unmodified record always decrypts; the
//         same record at another index never does.
// With SEALWAL_FUZZ_WRITE_SEEDS=DIR the binary writes seed records to DIR
// (fuzz/seeds/encrypted_record_fuzzer.sh runs it that way).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/encryption/decrypter.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/encryption/secret_key.h"

namespace {

using namespace sealwal::encryption;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Keys {
  std::unique_ptr<AeadEncrypter> aes, chacha;
  std::unique_ptr<MultiDecrypter> dec;
};

SecretKey FixedKey(char fill) {
  auto k = SecretKey::FromBytes(std::string(32, fill));
  Check(k.ok());
  return std::move(*k);
}

Keys& Get() {
  static Keys* keys = [] {
    auto* k = new Keys;
    k->aes = std::move(AeadEncrypter::Create(KeyId(1), FixedKey('a'),
                                             {.algorithm = Algorithm::kAes256Gcm})
                           .value());
    k->chacha = std::move(AeadEncrypter::Create(KeyId(2), FixedKey('c'),
                                                {.algorithm = Algorithm::kChaCha20Poly1305})
                              .value());
    k->dec = MultiDecrypter::Create();
    Check(k->dec->AddKey(KeyId(1), Algorithm::kAes256Gcm, FixedKey('a')).ok());
    Check(k->dec->AddKey(KeyId(2), Algorithm::kChaCha20Poly1305, FixedKey('c')).ok());
    return k;
  }();
  return *keys;
}

AadContext Place(uint64_t index) {
  AadContext ctx;
  ctx.purpose = Purpose::kWalEntry;
  ctx.index = index;
  ctx.term = 3;
  return ctx;
}

void WriteSeeds(const char* dir) {
  Keys& k = Get();
  int n = 0;
  for (AeadEncrypter* e : {k.aes.get(), k.chacha.get()}) {
    for (const std::string& plain : {std::string(), std::string("x"), std::string(300, 'p')}) {
      std::string rec;
      Check(e->EncryptTo(Place(7), plain, &rec).ok());
      std::string path = std::string(dir) + "/seed-" + std::to_string(n++);
      FILE* f = std::fopen(path.c_str(), "wb");
      Check(f != nullptr);
      const char mode = 0;
      std::fwrite(&mode, 1, 1, f);
      std::fwrite(rec.data(), 1, rec.size(), f);
      std::fclose(f);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SEALWAL_FUZZ_WRITE_SEEDS")) {
    WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Keys& k = Get();
  std::string out;
  if ((data[0] & 1) == 0) {
    const std::string rec(reinterpret_cast<const char*>(data + 1), size - 1);
    (void)MultiDecrypter::KeyIdOf(rec);
    const absl::Status s = k.dec->DecryptSerialized(rec, Place(7), &out);
    // In-place decryption gives the same verdict and the same plaintext.
    std::string buf = rec, scratch;
    absl::string_view plain;
    const absl::Status t =
        k.dec->DecryptSerializedInPlace(absl::MakeSpan(buf), Place(7), &scratch, &plain);
    Check(s.code() == t.code());
    if (s.ok()) Check(plain == out);
    return 0;
  }
  if (size < 2) return 0;
  const size_t rest = size - 2;
  const size_t plain_len = rest == 0 ? 0 : data[1] % (rest + 1);
  const std::string plain(reinterpret_cast<const char*>(data + 2), plain_len);
  const std::string mask(reinterpret_cast<const char*>(data + 2 + plain_len), rest - plain_len);
  AeadEncrypter* e = (data[0] & 2) ? k.chacha.get() : k.aes.get();
  std::string rec;
  Check(e->EncryptTo(Place(7), plain, &rec).ok());
  std::string changed = rec;
  for (size_t i = 0; i < mask.size() && i < changed.size(); ++i) changed[i] ^= mask[i];
  absl::Status s = k.dec->DecryptSerialized(changed, Place(7), &out);
  if (changed == rec) Check(s.ok() && out == plain);
  if (s.ok()) Check(out == plain);
  Check(!k.dec->DecryptSerialized(rec, Place(8), &out).ok());
  return 0;
}
