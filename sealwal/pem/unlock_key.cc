#include "sealwal/pem/unlock_key.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/keyring.h"

namespace sealwal::pem {
namespace {

constexpr absl::string_view kKekInfo = "sealwal/v1/kek";
constexpr absl::string_view kFileMacInfo = "sealwal/v1/key-file-mac";

// Overwrites a string that held secret bytes before it is freed.
void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}

}  // namespace

absl::StatusOr<UnlockKey> UnlockKey::FromBytes(absl::string_view bytes) {
  if (bytes.size() != kUnlockKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("an unlock key is ", kUnlockKeyBytes, " bytes, got ", bytes.size()));
  }
  // Both the base64 and the text hold the key: each is wiped.
  std::string b64 = absl::WebSafeBase64Escape(bytes);
  std::string text;
  text.reserve(kUnlockKeyPrefix.size() + b64.size());
  text.append(kUnlockKeyPrefix.data(), kUnlockKeyPrefix.size());
  text.append(b64);
  Wipe(&b64);
  absl::StatusOr<encryption::SecretKey> t = encryption::SecretKey::FromBytes(text);
  Wipe(&text);
  if (!t.ok()) return t.status();
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey b, encryption::SecretKey::FromBytes(bytes));
  return UnlockKey(std::move(b), std::move(*t));
}

absl::StatusOr<UnlockKey> UnlockKey::Generate() {
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey b, encryption::SecretKey::Generate(kUnlockKeyBytes));
  return FromBytes(b.bytes());
}

absl::StatusOr<UnlockKey> UnlockKey::Parse(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  // Messages describe the input's shape, never its characters: it may be a
  // real key with a typo.
  if (text.empty()) return absl::InvalidArgumentError("unlock key is empty");
  if (!absl::StartsWith(text, kUnlockKeyPrefix)) {
    if (absl::StartsWith(text, "SEALWAL-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unlock key has an unsupported format version (this sealwal reads \"",
          kUnlockKeyPrefix, "...\")"));
    }
    if (absl::StartsWith(text, "SWMKEY-")) {
      return absl::InvalidArgumentError(
          "unlock key is a docker swarm key (SWMKEY-...), not a sealwal key (SEALWAL-1-...)");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unlock key must start with \"", kUnlockKeyPrefix, "\""));
  }
  absl::string_view b64 = text.substr(kUnlockKeyPrefix.size());
  const size_t want = kUnlockKeyTextSize - kUnlockKeyPrefix.size();
  if (b64.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("unlock key has ", b64.size(), " characters after \"", kUnlockKeyPrefix,
                     "\", want ", want, " (is it truncated or pasted twice?)"));
  }
  for (size_t i = 0; i < b64.size(); ++i) {
    if (!IsBase64UrlChar(b64[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unlock key has a character outside base64url (A-Z a-z 0-9 - _) at position ",
          kUnlockKeyPrefix.size() + i + 1));
    }
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(b64, &raw) || raw.size() != kUnlockKeyBytes) {
    Wipe(&raw);
    return absl::InvalidArgumentError("unlock key is not valid base64url");
  }
  // 43 characters carry 258 bits; the last character's 2 spare bits must be
  // zero, so exactly one text form exists per key.
  absl::StatusOr<UnlockKey> key = FromBytes(raw);
  Wipe(&raw);
  if (!key.ok()) return key.status();
  if (CRYPTO_memcmp(key->text().data(), text.data(), text.size()) != 0) {
    return absl::InvalidArgumentError(
        "unlock key's last character is not canonical base64url (a typo?)");
  }
  return key;
}

absl::StatusOr<Kek> UnlockKey::DeriveKek() const {
  // No salt: RFC 5869's default (HashLen zero bytes) equals an empty salt.
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey okm,
                           encryption::HkdfSha256(bytes_, "", kKekInfo, 36));
  const auto* out = reinterpret_cast<const unsigned char*>(okm.bytes().data());
  const uint32_t id = LoadLE32(out + 32);
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey key,
                           encryption::SecretKey::FromBytes(okm.bytes().substr(0, 32)));
  return Kek{encryption::KeyId(id == 0 ? 1 : id), std::move(key)};
}

absl::StatusOr<encryption::SecretKey> UnlockKey::DeriveFileMacKey() const {
  return encryption::HkdfSha256(bytes_, "", kFileMacInfo, 32);
}

absl::StatusOr<UnlockKey> ReadUnlockKeyFile(env::FileSystem* fs, const std::string& path) {
  absl::StatusOr<std::string> text = env::ReadSecretFile(fs, path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unlock key file ", path, ": ", text.status().message()));
  }
  absl::StatusOr<UnlockKey> key = UnlockKey::Parse(*text);
  Wipe(&*text);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unlock key file ", path, ": ", key.status().message()));
  }
  return key;
}

absl::StatusOr<std::optional<UnlockKey>> UnlockKeyFromFileOrEnv(
    env::FileSystem* fs, const std::optional<std::string>& file) {
  if (file.has_value()) {
    if (file->empty()) return absl::InvalidArgumentError("unlock key file: empty path");
    SEALWAL_ASSIGN_OR_RETURN(UnlockKey key, ReadUnlockKeyFile(fs, *file));
    return std::optional<UnlockKey>(std::move(key));
  }
  const char* env = std::getenv(kUnlockKeyEnvVar);
  if (env == nullptr || *env == '\0') return std::optional<UnlockKey>();
  absl::StatusOr<UnlockKey> key = UnlockKey::Parse(env);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("$", kUnlockKeyEnvVar, ": ", key.status().message()));
  }
  return std::optional<UnlockKey>(std::move(*key));
}

}  // namespace sealwal::pem
