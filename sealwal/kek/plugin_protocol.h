// sealwal/kek/plugin_protocol.h: the KEK plugin protocol, version 1
// (docs/kek-providers.md; messages in sealwal/proto/kek_plugin.proto).
//
// One request per plugin run: a JSON object on the plugin's stdin, one JSON
// object on its stdout, exit status 0. Requests:
//   {"version":1,"op":"wrap","plaintext":B64,"aad":B64}
//   {"version":1,"op":"unwrap","wrapped":B64,"aad":B64}
//   {"version":1,"op":"key-id"}
// Answers: {"version":1,"wrapped":B64,"key_id":S} to wrap,
// {"version":1,"plaintext":B64} to unwrap, {"version":1,"key_id":S} to
// key-id, or {"version":1,"error":S} for any failure. Unknown fields are
// refused (a plugin of a newer protocol must say so through "version").
//
// Requests are written here by hand so that the copies holding a secret are
// all ours to wipe; answers are parsed by protobuf's JSON parser (its own
// temporary buffers are freed unwiped: docs/security.md).
//
// Errors of ParsePluginAnswer: kUnavailable for anything but a well-formed
// answer to `op` (not JSON, over kMaxAnswerSize, an unknown field, another
// version, a missing or oversized field, a field that does not belong to
// the answer) and for an answer carrying "error" (its text is quoted, cut
// at 200 printable characters). Thread-safety: pure functions.
#ifndef SEALWAL_KEK_PLUGIN_PROTOCOL_H_
#define SEALWAL_KEK_PLUGIN_PROTOCOL_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/secret_key.h"

namespace sealwal::kek {

inline constexpr int kPluginProtocolVersion = 1;
inline constexpr size_t kMaxAnswerSize = 64 * 1024;
inline constexpr size_t kMaxKeyIdSize = 256;
inline constexpr size_t kMaxPluginSecretSize = 64;

enum class PluginOp { kWrap, kUnwrap, kKeyId };
absl::string_view PluginOpName(PluginOp op);

// The request texts (one line, ending in "\n"). A wrap request holds the
// secret in base64: the caller wipes it (pem::WipeString) after use.
std::string WrapRequest(const encryption::SecretKey& plaintext, absl::string_view aad);
std::string UnwrapRequest(absl::string_view wrapped, absl::string_view aad);
std::string KeyIdRequest();

struct PluginAnswer {
  std::string wrapped;                         // wrap
  std::optional<encryption::SecretKey> plaintext;  // unwrap
  std::string key_id;                          // wrap (may be empty), key-id
};

// Parses and checks the plugin's stdout for a request `op`.
absl::StatusOr<PluginAnswer> ParsePluginAnswer(PluginOp op, absl::string_view json);

}  // namespace sealwal::kek

#endif  // SEALWAL_KEK_PLUGIN_PROTOCOL_H_
