// sealwal/kek/pkcs11_uri.h (internal): the PKCS#11 KEK source's spec, a
// subset of RFC 7512 URIs parsed by p11-kit (sealwal/kek/pkcs11_source.h
// lists what is accepted and refused).
#ifndef SEALWAL_KEK_PKCS11_URI_H_
#define SEALWAL_KEK_PKCS11_URI_H_

#include <array>
#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sealwal::kek {

inline constexpr absl::string_view kPkcs11Scheme = "pkcs11:";
inline constexpr size_t kTokenLabelSize = 32;  // CK_TOKEN_INFO.label, blank-padded

struct Pkcs11Uri {
  std::string token;  // the label as given, without padding
  std::array<unsigned char, kTokenLabelSize> padded_token{};
  std::string object;
  std::string module_path;
  std::string canonical;  // what Spec() returns and the key file records
};

// kInvalidArgument with a one-line reason for anything outside the subset.
absl::StatusOr<Pkcs11Uri> ParsePkcs11Uri(absl::string_view spec);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_PKCS11_URI_H_
