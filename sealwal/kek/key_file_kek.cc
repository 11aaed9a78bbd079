#include "sealwal/kek/key_file_kek.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::kek {
namespace {

constexpr absl::string_view kWrapDomain{"sealwal/v1/kek-wrap\0", 20};

}  // namespace

std::string WrapAad(absl::string_view spec) { return absl::StrCat(kWrapDomain, spec); }

absl::StatusOr<SourcedUnlockKey> NewSourcedUnlockKey(KekSource& source) {
  SEALWAL_ASSIGN_OR_RETURN(pem::UnlockKey unlock, pem::UnlockKey::Generate());
  const std::string spec = source.Spec();
  const std::string aad = WrapAad(spec);
  SEALWAL_ASSIGN_OR_RETURN(std::string wrapped, source.Wrap(unlock.bytes(), aad));
  absl::StatusOr<encryption::SecretKey> back = source.Unwrap(wrapped, aad);
  if (!back.ok()) {
    return absl::UnavailableError(absl::StrCat("the KEK source ", spec,
                                               " cannot unwrap what it just wrapped: ",
                                               back.status().message()));
  }
  if (!(*back == unlock.bytes())) {
    return absl::UnavailableError(
        absl::StrCat("the KEK source ", spec, " did not give the key back that it wrapped"));
  }
  SourcedUnlockKey out{std::move(unlock), pem::KekBinding{spec, std::move(wrapped)},
                       source.last_key_id()};
  return out;
}

absl::StatusOr<pem::UnlockKey> UnwrapBinding(const pem::KekBinding& binding,
                                             const KekSourceOptions& options) {
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<KekSource> source,
                           OpenKekSource(binding.source, options));
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey key,
                           source->Unwrap(binding.wrapped, WrapAad(binding.source)));
  if (key.size() != pem::kUnlockKeyBytes) {
    return absl::DataLossError(absl::StrCat("the KEK source ", binding.source, " returned ",
                                            key.size(), " bytes, not a ",
                                            pem::kUnlockKeyBytes, "-byte unlock key"));
  }
  return pem::UnlockKey::FromBytes(key.bytes());
}

absl::StatusOr<std::optional<pem::UnlockKey>> UnlockKeyFromKekSource(
    env::FileSystem* fs, const std::string& path, const KekSourceOptions& options) {
  absl::StatusOr<std::string> text = env::ReadSecretFile(fs, path);
  if (!text.ok()) return std::optional<pem::UnlockKey>();
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(*text);
  pem::WipeString(&*text);
  if (!parsed.ok() || !parsed->kek_binding.has_value()) return std::optional<pem::UnlockKey>();
  absl::StatusOr<pem::UnlockKey> unlock = UnwrapBinding(*parsed->kek_binding, options);
  if (!unlock.ok()) {
    return absl::Status(unlock.status().code(),
                        absl::StrCat(path, ": ", unlock.status().message()));
  }
  // The source's answer must be the key the DEK headers were wrapped
  // under; a KMS that answers with some other 32 bytes is caught here, with
  // a message that names it rather than "wrong unlock key".
  absl::StatusOr<pem::DekHeaders> headers = pem::OpenDekHeaders(*parsed, &*unlock);
  if (!headers.ok() && absl::IsPermissionDenied(headers.status())) {
    return absl::PermissionDeniedError(
        absl::StrCat("the KEK source ", parsed->kek_binding->source,
                     " returned a key that does not open ", path,
                     " (a misconfigured or lying KMS, or kek-wrapped from another file)"));
  }
  return std::optional<pem::UnlockKey>(std::move(*unlock));
}

absl::StatusOr<KekSourceOptions> KekSourceOptionsFromEnvironment(env::FileSystem* fs) {
  KekSourceOptions o;
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (std::optional<std::string> pin = env(kPinEnvVar)) {
    SEALWAL_ASSIGN_OR_RETURN(o.pkcs11_pin, encryption::SecretKey::FromBytes(*pin));
    pem::WipeString(&*pin);
  } else if (std::optional<std::string> file = env(kPinFileEnvVar)) {
    absl::StatusOr<std::string> pin = env::ReadSecretFile(fs, *file);
    if (!pin.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("$", kPinFileEnvVar, " ", *file, ": ", pin.status().message()));
    }
    absl::string_view p = *pin;
    if (!p.empty() && p.back() == '\n') p.remove_suffix(1);
    absl::StatusOr<encryption::SecretKey> k = encryption::SecretKey::FromBytes(p);
    pem::WipeString(&*pin);
    if (!k.ok()) return k.status();
    o.pkcs11_pin = std::move(*k);
  }
  if (std::optional<std::string> t = env(kTimeoutEnvVar)) {
    absl::Duration d;
    if (!absl::ParseDuration(*t, &d) || d <= absl::ZeroDuration() || d > absl::Hours(1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "$", kTimeoutEnvVar, " must be a duration such as 10s or 500ms (at most 1h)"));
    }
    o.command_timeout = d;
  }
  return o;
}

}  // namespace sealwal::kek
