#include "sealwal/kek/pkcs11_uri.h"

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::kek {
namespace {

struct UriDeleter {
  void operator()(P11KitUri* uri) const { p11_kit_uri_free(uri); }
};
using UriPtr = std::unique_ptr<P11KitUri, UriDeleter>;

struct FreeDeleter {
  void operator()(char* p) const { free(p); }
};

absl::StatusOr<std::string> Format(P11KitUri* uri) {
  char* out = nullptr;
  int rc = p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &out);
  std::unique_ptr<char, FreeDeleter> owned(out);
  if (rc != P11_KIT_URI_OK || out == nullptr) {
    return absl::InternalError(
        absl::StrCat("pkcs11 spec: cannot format: ", p11_kit_uri_message(rc)));
  }
  return std::string(out);
}

// A URI in the state p11_kit_uri_parse leaves for "pkcs11:", so that
// formatting it and a parsed spec differ only in what the spec set.
absl::StatusOr<UriPtr> EmptyUri() {
  UriPtr uri(p11_kit_uri_new());
  if (uri == nullptr || p11_kit_uri_parse("pkcs11:", P11_KIT_URI_FOR_ANY, uri.get()) != 0) {
    return absl::InternalError("pkcs11 spec: p11-kit cannot create a URI");
  }
  return uri;
}

// RFC 7512 query value: unreserved characters and '/' as they are, the
// rest percent-encoded.
std::string EncodeQueryValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~' || c == '/') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", static_cast<unsigned char>(c)));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Pkcs11Uri> ParsePkcs11Uri(absl::string_view spec) {
  // p11-kit compares only the first six characters of the scheme.
  if (!absl::StartsWith(spec, kPkcs11Scheme)) {
    return absl::InvalidArgumentError("pkcs11 spec must start with \"pkcs11:\"");
  }
  if (spec.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("pkcs11 spec holds a NUL byte");
  }
  // p11-kit drops whitespace anywhere in a URI (RFC 7512 §2.3), which would
  // silently turn "my token" into "mytoken".
  for (char c : spec) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "pkcs11 spec holds whitespace; write a space in a label or path as %20");
    }
  }
  const std::string text(spec);
  SEALWAL_ASSIGN_OR_RETURN(UriPtr uri, EmptyUri());
  int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
  if (rc != P11_KIT_URI_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("pkcs11 spec is not a PKCS#11 URI: ", p11_kit_uri_message(rc)));
  }
  // The PIN check comes first: its message must be the one an operator sees.
  if (p11_kit_uri_get_pin_value(uri.get()) != nullptr) {
    return absl::InvalidArgumentError(
        "pkcs11 spec must not hold a PIN (pin-value): the key file would record it; pass the "
        "PIN separately");
  }
  if (p11_kit_uri_get_pin_source(uri.get()) != nullptr) {
    return absl::InvalidArgumentError(
        "pkcs11 spec: pin-source is not supported; pass the PIN separately");
  }
  if (p11_kit_uri_any_unrecognized(uri.get())) {
    return absl::InvalidArgumentError(
        "pkcs11 spec has an attribute sealwal does not know or a value too long (a token "
        "label is at most 32 bytes)");
  }

  Pkcs11Uri out;
  const CK_TOKEN_INFO* token = p11_kit_uri_get_token_info(uri.get());
  std::memcpy(out.padded_token.data(), token->label, kTokenLabelSize);
  size_t end = kTokenLabelSize;
  while (end > 0 && (token->label[end - 1] == ' ' || token->label[end - 1] == '\0')) --end;
  out.token.assign(reinterpret_cast<const char*>(token->label), end);
  if (out.token.empty()) {
    return absl::InvalidArgumentError("pkcs11 spec needs a non-empty token=LABEL");
  }
  const CK_ATTRIBUTE* label = p11_kit_uri_get_attribute(uri.get(), CKA_LABEL);
  if (label == nullptr || label->ulValueLen == 0 || label->pValue == nullptr) {
    return absl::InvalidArgumentError("pkcs11 spec needs a non-empty object=LABEL");
  }
  out.object.assign(static_cast<const char*>(label->pValue), label->ulValueLen);
  const char* path = p11_kit_uri_get_module_path(uri.get());
  if (path == nullptr || *path == '\0') {
    return absl::InvalidArgumentError("pkcs11 spec needs ?module-path=/absolute/path/to/module.so");
  }
  out.module_path = path;
  if (out.module_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("pkcs11 spec: module-path must be absolute, got \"", out.module_path, "\""));
  }

  // Anything beyond token, object and module-path (id, type, slot, library,
  // module-name, vendor queries) makes the two formats differ.
  SEALWAL_ASSIGN_OR_RETURN(UriPtr canon, EmptyUri());
  std::memcpy(p11_kit_uri_get_token_info(canon.get())->label, out.padded_token.data(), kTokenLabelSize);
  CK_ATTRIBUTE attr = {CKA_LABEL, out.object.data(), out.object.size()};
  if (p11_kit_uri_set_attribute(canon.get(), &attr) != P11_KIT_URI_OK) {
    return absl::InternalError("pkcs11 spec: p11-kit cannot set the object label");
  }
  // p11-kit writes module-path with every '/' as %2F; the canonical form
  // keeps the path readable (RFC 7512 allows '/' in the query).
  SEALWAL_ASSIGN_OR_RETURN(std::string path_part, Format(canon.get()));
  out.canonical = absl::StrCat(path_part, "?module-path=", EncodeQueryValue(out.module_path));
  p11_kit_uri_set_module_path(canon.get(), out.module_path.c_str());
  SEALWAL_ASSIGN_OR_RETURN(std::string given, Format(uri.get()));
  SEALWAL_ASSIGN_OR_RETURN(std::string expected, Format(canon.get()));
  if (given != expected) {
    return absl::InvalidArgumentError(
        "pkcs11 spec may hold only token=, object= and ?module-path= (no id, type, slot, "
        "library, module-name or other attributes)");
  }
  return out;
}


}  // namespace sealwal::kek
