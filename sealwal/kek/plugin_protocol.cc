#include "sealwal/kek/plugin_protocol.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "sealwal/kek/kek_source.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/proto/kek_plugin.pb.h"

namespace sealwal::kek {
namespace {

absl::Status Garbage(PluginOp op, absl::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("the KEK plugin's answer to ", PluginOpName(op), " is malformed: ", what));
}

// A plugin's text, safe to print on one line.
std::string Printable(absl::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
  return out;
}

void WipeAnswer(kekpluginpb::Response* r) {
  pem::WipeString(r->mutable_plaintext());
  r->clear_plaintext();
}

}  // namespace

absl::string_view PluginOpName(PluginOp op) {
  switch (op) {
    case PluginOp::kWrap: return "wrap";
    case PluginOp::kUnwrap: return "unwrap";
    case PluginOp::kKeyId: return "key-id";
  }
  return "unknown";
}

std::string WrapRequest(const encryption::SecretKey& plaintext, absl::string_view aad) {
  std::string b64;
  absl::Base64Escape(plaintext.bytes(), &b64);
  std::string out = absl::StrCat("{\"version\":", kPluginProtocolVersion,
                                 ",\"op\":\"wrap\",\"plaintext\":\"", b64, "\",\"aad\":\"",
                                 absl::Base64Escape(aad), "\"}\n");
  pem::WipeString(&b64);
  return out;
}

std::string UnwrapRequest(absl::string_view wrapped, absl::string_view aad) {
  return absl::StrCat("{\"version\":", kPluginProtocolVersion, ",\"op\":\"unwrap\",\"wrapped\":\"",
                      absl::Base64Escape(wrapped), "\",\"aad\":\"", absl::Base64Escape(aad),
                      "\"}\n");
}

std::string KeyIdRequest() {
  return absl::StrCat("{\"version\":", kPluginProtocolVersion, ",\"op\":\"key-id\"}\n");
}

absl::StatusOr<PluginAnswer> ParsePluginAnswer(PluginOp op, absl::string_view json) {
  if (json.size() > kMaxAnswerSize) {
    return Garbage(op, absl::StrCat("more than ", kMaxAnswerSize, " bytes"));
  }
  kekpluginpb::Response r;
  google::protobuf::util::JsonParseOptions po;
  po.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &r, po);
  if (!st.ok()) {
    WipeAnswer(&r);
    return Garbage(op, "not a JSON object of protocol version 1");
  }
  // Everything below returns through `fail`, which wipes what was parsed.
  auto fail = [&](absl::Status s) {
    WipeAnswer(&r);
    return s;
  };
  if (r.version() != kPluginProtocolVersion) {
    return fail(Garbage(op, absl::StrCat("version ", r.version(), ", want ",
                                         kPluginProtocolVersion)));
  }
  if (!r.error().empty()) {
    return fail(absl::UnavailableError(absl::StrCat("the KEK plugin refused ", PluginOpName(op),
                                                    ": ", Printable(r.error()))));
  }
  if (r.key_id().size() > kMaxKeyIdSize) return fail(Garbage(op, "key_id is too long"));
  for (char c : r.key_id()) {
    if (c < 0x20 || c > 0x7e) return fail(Garbage(op, "key_id is not printable"));
  }
  PluginAnswer out;
  switch (op) {
    case PluginOp::kWrap:
      if (!r.plaintext().empty()) return fail(Garbage(op, "it carries a plaintext"));
      if (r.wrapped().empty() || r.wrapped().size() > kMaxWrappedSize) {
        return fail(Garbage(op, absl::StrCat("wrapped must be 1..", kMaxWrappedSize, " bytes")));
      }
      out.wrapped = r.wrapped();
      out.key_id = r.key_id();
      break;
    case PluginOp::kUnwrap: {
      if (!r.wrapped().empty()) return fail(Garbage(op, "it carries wrapped bytes"));
      if (r.plaintext().empty() || r.plaintext().size() > kMaxPluginSecretSize) {
        return fail(Garbage(op, absl::StrCat("plaintext must be 1..", kMaxPluginSecretSize,
                                             " bytes")));
      }
      absl::StatusOr<encryption::SecretKey> k = encryption::SecretKey::FromBytes(r.plaintext());
      if (!k.ok()) return fail(k.status());
      out.plaintext = std::move(*k);
      break;
    }
    case PluginOp::kKeyId:
      if (!r.wrapped().empty() || !r.plaintext().empty()) {
        return fail(Garbage(op, "it carries key material"));
      }
      if (r.key_id().empty()) return fail(Garbage(op, "key_id is missing"));
      out.key_id = r.key_id();
      break;
  }
  WipeAnswer(&r);
  return out;
}

}  // namespace sealwal::kek
