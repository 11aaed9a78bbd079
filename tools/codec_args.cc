#include "tools/codec_args.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "encryption/dek.h"
#include "encryption/secret_key.h"
#include "encryption/wal_codec.h"

namespace sealwal::cli {
namespace {

// Reads exactly 32 bytes from `path` into a SecretKey. The stack buffer is
// wiped on every path; no key byte reaches a message.
absl::StatusOr<encryption::SecretKey> ReadDekFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dek-file ", path, ": ", std::strerror(errno)));
  }
  unsigned char buf[encryption::kAeadKeySize + 1];
  const size_t n = std::fread(buf, 1, sizeof(buf), f);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  absl::StatusOr<encryption::SecretKey> key;
  if (read_error) {
    key = absl::InvalidArgumentError(absl::StrCat("--dek-file ", path, ": read error"));
  } else if (n != encryption::kAeadKeySize) {
    key = absl::InvalidArgumentError(
        absl::StrCat("--dek-file ", path, " must hold exactly ", encryption::kAeadKeySize,
                     " raw key bytes, found ", n == sizeof(buf) ? "more" : absl::StrCat(n)));
  } else {
    key = encryption::SecretKey::FromBytes(
        absl::string_view(reinterpret_cast<const char*>(buf), n));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return key;
}

}  // namespace

uint32_t DekFileKeyId(absl::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  const uint32_t id = static_cast<uint32_t>(digest[0]) | static_cast<uint32_t>(digest[1]) << 8 |
                      static_cast<uint32_t>(digest[2]) << 16 |
                      static_cast<uint32_t>(digest[3]) << 24;
  OPENSSL_cleanse(digest, sizeof(digest));
  return id == 0 ? 1 : id;
}

absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Args& args,
                                                                 const std::string& dir) {
  if (args.Has("key-file")) {
    return absl::UnimplementedError(
        "--key-file is not yet supported (PEM key files come with the PEM issue); for tests "
        "use --dek-file with a file of 32 raw key bytes");
  }
  if (!args.Has("dek-file")) {
    if (encryption::IsEncryptedWalDir(dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, " is an encrypted WAL (its name ends in \"",
                       encryption::kEncryptedDirSuffix, "\"): give --dek-file"));
    }
    return std::unique_ptr<wal::PayloadCodec>();
  }
  const std::string path = args.Get("dek-file").value_or("");
  if (path.empty()) return absl::InvalidArgumentError("--dek-file needs a path");
  absl::StatusOr<encryption::SecretKey> key = ReadDekFile(path);
  if (!key.ok()) return key.status();
  const encryption::KeyId id(DekFileKeyId(key->bytes()));
  absl::StatusOr<encryption::Dek> dek =
      encryption::Dek::FromParts(id, encryption::Algorithm::kAes256Gcm, std::move(*key));
  if (!dek.ok()) return dek.status();
  auto codec = encryption::WalCodec::ForDek(*dek);
  if (!codec.ok()) return codec.status();
  return std::unique_ptr<wal::PayloadCodec>(std::move(*codec));
}

}  // namespace sealwal::cli
