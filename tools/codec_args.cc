#include "tools/codec_args.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/keyring_loader.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/wal/wal.h"
#include "sealwal/walcrypt/wal_codec.h"

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
  // Unbuffered: stdio's own buffer would hold a copy of the key that
  // nobody wipes.
  std::setvbuf(f, nullptr, _IONBF, 0);
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

// The --dek-file DEK: nullopt for plaintext (no key flag and a plain
// directory name).
absl::StatusOr<std::optional<encryption::Dek>> DekFromArgs(const Command& args,
                                                           const std::string& dir) {
  if (!args.Has("dek-file")) {
    if (walcrypt::IsEncryptedWalDir(dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, " is an encrypted directory (its name ends in \"",
                       walcrypt::kEncryptedDirSuffix, "\"): give --key-file (or --dek-file)"));
    }
    return std::optional<encryption::Dek>();
  }
  const std::string path = args.Get("dek-file").value_or("");
  if (path.empty()) return absl::InvalidArgumentError("--dek-file needs a path");
  absl::StatusOr<encryption::SecretKey> key = ReadDekFile(path);
  if (!key.ok()) return key.status();
  const encryption::KeyId id(DekFileKeyId(key->bytes()));
  absl::StatusOr<encryption::Dek> dek =
      encryption::Dek::FromParts(id, encryption::Algorithm::kAes256Gcm, std::move(*key));
  if (!dek.ok()) return dek.status();
  return std::optional<encryption::Dek>(std::move(*dek));
}

}  // namespace

absl::StatusOr<std::shared_ptr<encryption::Keyring>> KeyringFromKeyFileArgs(const Command& args) {
  const std::string path = args.Get("key-file").value_or("");
  if (path.empty()) return absl::InvalidArgumentError("--key-file needs a path");
  absl::StatusOr<std::optional<pem::UnlockKey>> unlock = UnlockKeyFromArgs(args, path);
  if (!unlock.ok()) return unlock.status();
  pem::KeyReadWriterOptions o;
  o.fs = env::DefaultFileSystem();
  o.path = path;
  // Someone who can write the key file could swap a locked file for an
  // unlocked one holding DEKs they chose; a caller who brings an unlock key
  // expects a locked file, so LoadKeyring refuses rather than seal under
  // those DEKs.
  pem::LoadKeyringOptions lo;
  lo.require_locked = unlock->has_value();
  o.unlock_key = std::move(*unlock);
  if (const char* b = std::getenv("SEALWAL_RESERVATION_BLOCK"); b != nullptr && *b != '\0') {
    uint64_t block = 0;
    if (!absl::SimpleAtoi(b, &block) || block == 0 || block > lo.reservation_block) {
      return absl::InvalidArgumentError(absl::StrCat(
          "$SEALWAL_RESERVATION_BLOCK must be 1..", lo.reservation_block));
    }
    lo.reservation_block = block;
  }
  absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> krw =
      pem::KeyReadWriter::Create(std::move(o));
  if (!krw.ok()) return krw.status();
  absl::StatusOr<pem::LoadedKeyring> loaded =
      pem::LoadKeyring(std::shared_ptr<pem::KeyReadWriter>(std::move(*krw)), lo);
  if (!loaded.ok()) {
    std::string msg(loaded.status().message());
    if (absl::IsPermissionDenied(loaded.status()) && absl::StrContains(msg, "is needed")) {
      absl::StrAppend(&msg, " (give it with --unlock-key-file U or $", pem::kUnlockKeyEnvVar,
                      ")");
    } else if (absl::StrContains(msg, "holds no raft-dek")) {
      absl::StrAppend(&msg, " (run `sealwal key rotate-dek --key-file ", path, "`)");
    } else if (absl::StrContains(msg, "is not locked, but an unlock key was given")) {
      absl::StrAppend(&msg, "; unset $", pem::kUnlockKeyEnvVar,
                      " to use an unlocked key file deliberately");
    }
    return absl::Status(loaded.status().code(), absl::StrCat("--key-file ", msg));
  }
  if (!loaded->locked) {
    std::fprintf(stderr, "sealwal: warning: %s is not locked: its DEKs are stored unencrypted\n",
                 path.c_str());
  }
  return std::move(loaded->keyring);
}

bool IsKeyError(const absl::Status& s) {
  if (encryption::IsMissingKeyError(s)) return true;
  // The WAL rewraps decode errors but keeps kNotFound for a missing key.
  if (absl::IsNotFound(s) && wal::GetWalErrorClass(s) == wal::WalErrorClass::kDecryptFailed) {
    return true;
  }
  return absl::IsResourceExhausted(s);  // the DEK is used up: rotate it
}

int KeyAwareExitCode(const absl::Status& s) {
  if (IsKeyError(s)) return kExitUsage;
  if (absl::IsDataLoss(s)) return kExitDataError;
  return ExitCodeFor(s);
}

uint32_t DekFileKeyId(absl::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  const uint32_t id = static_cast<uint32_t>(digest[0]) | static_cast<uint32_t>(digest[1]) << 8 |
                      static_cast<uint32_t>(digest[2]) << 16 |
                      static_cast<uint32_t>(digest[3]) << 24;
  OPENSSL_cleanse(digest, sizeof(digest));
  return id == 0 ? 1 : id;
}

absl::StatusOr<std::shared_ptr<encryption::Keyring>> KeyringFromArgs(const Command& args,
                                                                     const std::string& dir) {
  if (args.Has("key-file")) {
    if (args.Has("dek-file")) {
      return absl::InvalidArgumentError("give either --key-file or --dek-file, not both");
    }
    return KeyringFromKeyFileArgs(args);  // raft-dek, and raft-dek-pending for reading
  }
  absl::StatusOr<std::optional<encryption::Dek>> dek = DekFromArgs(args, dir);
  if (!dek.ok()) return dek.status();
  if (!dek->has_value()) return std::shared_ptr<encryption::Keyring>();  // plaintext
  return encryption::Keyring::ForDek(**dek);  // a raw test key: counts in memory only
}

absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Command& args,
                                                                 const std::string& dir) {
  absl::StatusOr<std::shared_ptr<encryption::Keyring>> keys = KeyringFromArgs(args, dir);
  if (!keys.ok()) return keys.status();
  if (*keys == nullptr) return std::unique_ptr<wal::PayloadCodec>();  // plaintext
  auto codec = walcrypt::WalCodec::ForKeyring(std::move(*keys));
  if (!codec.ok()) return codec.status();
  return std::unique_ptr<wal::PayloadCodec>(std::move(*codec));
}

}  // namespace sealwal::cli
