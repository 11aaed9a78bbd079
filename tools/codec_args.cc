#include "tools/codec_args.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/secret_key.h"
#include "sealwal/encryption/wal_codec.h"
#include "sealwal/env/file_system.h"
#include "absl/strings/match.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/unlock_key.h"

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

}  // namespace

absl::StatusOr<KeyFileDeks> DeksFromKeyFileArgs(const Args& args) {
  const std::string path = args.Get("key-file").value_or("");
  if (path.empty()) return absl::InvalidArgumentError("--key-file needs a path");
  env::FileSystem* fs = env::DefaultFileSystem();
  absl::StatusOr<std::optional<pem::UnlockKey>> unlock =
      UnlockKeyFromArgs(args);
  if (!unlock.ok()) return unlock.status();
  pem::KeyReadWriterOptions o;
  o.fs = fs;
  o.path = path;
  const bool have_unlock_key = unlock->has_value();
  o.unlock_key = std::move(*unlock);
  absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> krw =
      pem::KeyReadWriter::Create(std::move(o));
  if (!krw.ok()) return krw.status();
  absl::StatusOr<pem::KeyFile> file = (*krw)->Read();
  if (!file.ok()) {
    std::string msg(file.status().message());
    if (absl::IsPermissionDenied(file.status()) && absl::StrContains(msg, "is needed")) {
      absl::StrAppend(&msg, " (give it with --unlock-key-file U or $", pem::kUnlockKeyEnvVar,
                      ")");
    }
    return absl::Status(file.status().code(), absl::StrCat("--key-file ", msg));
  }
  // Someone who can write the key file could swap a locked file for an
  // unlocked one holding DEKs they chose; a caller who brings an unlock key
  // expects a locked file, so refuse rather than seal under those DEKs.
  if (have_unlock_key && !file->locked) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--key-file ", path, " is not locked, but an unlock key was given: refusing to use it "
        "(the file may have been replaced; unset $", pem::kUnlockKeyEnvVar,
        " to use an unlocked key file deliberately)"));
  }
  if (!file->locked) {
    std::fprintf(stderr, "sealwal: warning: %s is not locked: its DEKs are stored unencrypted\n",
                 path.c_str());
  }
  if (!file->headers.current.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--key-file ", path, " holds no raft-dek (run `sealwal key rotate-dek --key-file ", path,
        "`)"));
  }
  KeyFileDeks out;
  out.current = std::move(file->headers.current->dek);
  out.current_encryptions = file->headers.current->encryptions;
  if (file->headers.pending.has_value()) out.pending = std::move(file->headers.pending->dek);
  return out;
}

absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromKeyFileArgs(const Args& args) {
  absl::StatusOr<KeyFileDeks> deks = DeksFromKeyFileArgs(args);
  if (!deks.ok()) return deks.status();
  // Write under raft-dek; read records sealed under raft-dek or, during a
  // rotation, raft-dek-pending.
  std::shared_ptr<encryption::MultiDecrypter> dec = encryption::MultiDecrypter::Create();
  if (auto s = dec->AddKey(deks->current.id, deks->current.algorithm, deks->current.key.Clone());
      !s.ok()) {
    return s;
  }
  if (deks->pending.has_value()) {
    if (auto s = dec->AddKey(deks->pending->id, deks->pending->algorithm,
                             deks->pending->key.Clone());
        !s.ok()) {
      return s;
    }
  }
  encryption::EncrypterOptions eo;
  eo.initial_encryptions = deks->current_encryptions;
  absl::StatusOr<std::unique_ptr<encryption::AeadEncrypter>> enc =
      encryption::AeadEncrypter::Create(deks->current, eo);
  if (!enc.ok()) return enc.status();
  encryption::WalCodecOptions wo;
  wo.encrypter = std::move(*enc);
  wo.decrypter = std::move(dec);
  auto codec = encryption::WalCodec::Create(std::move(wo));
  if (!codec.ok()) return codec.status();
  return std::unique_ptr<wal::PayloadCodec>(std::move(*codec));
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

absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Args& args,
                                                                 const std::string& dir) {
  if (args.Has("key-file")) {
    if (args.Has("dek-file")) {
      return absl::InvalidArgumentError("give either --key-file or --dek-file, not both");
    }
    return CodecFromKeyFileArgs(args);  // raft-dek, and raft-dek-pending for reading
  }
  absl::StatusOr<std::optional<encryption::Dek>> dek = DekFromArgs(args, dir);
  if (!dek.ok()) return dek.status();
  if (!dek->has_value()) return std::unique_ptr<wal::PayloadCodec>();  // plaintext
  auto codec = encryption::WalCodec::ForDek(**dek);
  if (!codec.ok()) return codec.status();
  return std::unique_ptr<wal::PayloadCodec>(std::move(*codec));
}

absl::StatusOr<std::optional<encryption::Dek>> DekFromArgs(const Args& args,
                                                           const std::string& dir) {
  if (args.Has("key-file")) {
    // The node key file's raft-dek (see DeksFromKeyFileArgs).
    if (args.Has("dek-file")) {
      return absl::InvalidArgumentError("give either --key-file or --dek-file, not both");
    }
    absl::StatusOr<KeyFileDeks> deks = DeksFromKeyFileArgs(args);
    if (!deks.ok()) return deks.status();
    return std::optional<encryption::Dek>(std::move(deks->current));
  }
  if (!args.Has("dek-file")) {
    if (encryption::IsEncryptedWalDir(dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, " is an encrypted directory (its name ends in \"",
                       encryption::kEncryptedDirSuffix, "\"): give --key-file (or --dek-file)"));
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

}  // namespace sealwal::cli
