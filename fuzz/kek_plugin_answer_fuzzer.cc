// Fuzzes the KEK plugin protocol's answer parser (sealwal/kek/plugin_protocol.h):
// what an external KMS plugin writes on its stdout. Input byte 0 picks the
// request the answer is for (wrap, unwrap, key-id); the rest is the answer.
// Any input must give a checked answer or kUnavailable, never a crash, and
// an accepted answer must keep the protocol's limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sealwal/kek/kek_source.h"
#include "sealwal/kek/plugin_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sealwal::kek;  // NOLINT: a fuzz target
  if (size == 0) return 0;
  const PluginOp op = data[0] % 3 == 0 ? PluginOp::kWrap
                      : data[0] % 3 == 1 ? PluginOp::kUnwrap
                                         : PluginOp::kKeyId;
  const std::string json(reinterpret_cast<const char*>(data + 1), size - 1);
  absl::StatusOr<PluginAnswer> a = ParsePluginAnswer(op, json);
  if (!a.ok()) {
    if (!absl::IsUnavailable(a.status())) std::abort();
    return 0;
  }
  switch (op) {
    case PluginOp::kWrap:
      if (a->wrapped.empty() || a->wrapped.size() > kMaxWrappedSize || a->plaintext) std::abort();
      break;
    case PluginOp::kUnwrap:
      if (!a->plaintext || a->plaintext->size() == 0 ||
          a->plaintext->size() > kMaxPluginSecretSize || !a->wrapped.empty()) {
        std::abort();
      }
      break;
    case PluginOp::kKeyId:
      if (a->key_id.empty() || a->key_id.size() > kMaxKeyIdSize) std::abort();
      break;
  }
  for (char c : a->key_id) {
    if (c < 0x20 || c > 0x7e) std::abort();
  }
  return 0;
}
