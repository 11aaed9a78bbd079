#include "sealwal/pem/pem_block.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sealwal::pem {
namespace {

constexpr absl::string_view kBegin = "-----BEGIN ";
constexpr absl::string_view kEnd = "-----END ";
constexpr absl::string_view kDashes = "-----";

absl::Status LineError(int line, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("PEM line ", line, ": ", what));
}

bool IsBlank(absl::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

bool ValidLabel(absl::string_view label) {
  if (label.empty() || label.size() > 64 || label.front() == ' ' || label.back() == ' ') {
    return false;
  }
  for (char c : label) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')) return false;
  }
  return true;
}

bool ValidHeaderName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
  }
  return true;
}

bool IsBase64Char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
}

// "-----BEGIN X-----" -> X (or "" when the line is not a BEGIN line).
bool Framed(absl::string_view line, absl::string_view prefix, absl::string_view* label) {
  if (!absl::StartsWith(line, prefix) || !absl::EndsWith(line, kDashes) ||
      line.size() < prefix.size() + kDashes.size()) {
    return false;
  }
  *label = line.substr(prefix.size(), line.size() - prefix.size() - kDashes.size());
  return true;
}

}  // namespace

void WipeString(std::string* s) {
  // The whole buffer, not only size(): bytes past the end may hold what a
  // shorter assignment left behind. resize() within the capacity does not
  // reallocate, and makes every byte addressable.
  s->resize(s->capacity());
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

PemHeader::~PemHeader() { WipeString(&value); }

PemBlock::~PemBlock() { WipeString(&body_base64); }

absl::StatusOr<std::vector<PemBlock>> ParsePemBlocks(absl::string_view text) {
  if (text.size() > kMaxPemText) {
    return absl::DataLossError(
        absl::StrCat("PEM text of ", text.size(), " bytes exceeds the limit of ", kMaxPemText));
  }
  // Split into lines first (LF or CRLF; a lone CR inside a line is refused
  // below as a non-printable character).
  std::vector<absl::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    absl::string_view line =
        nl == absl::string_view::npos ? text.substr(pos) : text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == absl::string_view::npos) break;
    pos = nl + 1;
  }

  std::vector<PemBlock> blocks;
  size_t i = 0;
  while (i < lines.size()) {
    const int lineno = static_cast<int>(i) + 1;
    absl::string_view line = lines[i];
    if (line.size() > kMaxPemLine) return LineError(lineno, "line too long");
    if (IsBlank(line)) {
      ++i;
      continue;
    }
    absl::string_view label;
    if (!Framed(line, kBegin, &label)) {
      return LineError(lineno, absl::StartsWith(line, kEnd)
                                   ? "END line without a BEGIN line"
                                   : "text outside a PEM block (expected \"-----BEGIN ...-----\")");
    }
    if (!ValidLabel(label)) return LineError(lineno, "malformed PEM label in BEGIN line");
    PemBlock block;
    block.label = std::string(label);
    block.begin_line = lineno;
    ++i;
    // Headers: present when the first line after BEGIN has a colon.
    if (i < lines.size() && absl::StrContains(lines[i], ':') &&
        !absl::StartsWith(lines[i], kEnd)) {
      while (true) {
        if (i >= lines.size()) {
          return LineError(static_cast<int>(i), "PEM headers end without an empty line");
        }
        absl::string_view h = lines[i];
        const int hl = static_cast<int>(i) + 1;
        if (h.size() > kMaxPemLine) return LineError(hl, "line too long");
        if (h.empty()) {
          ++i;
          break;
        }
        if (h.front() == ' ' || h.front() == '\t') {
          return LineError(hl, "folded (continued) header lines are not supported");
        }
        size_t colon = h.find(':');
        if (colon == absl::string_view::npos) {
          return LineError(hl, "header line without \":\" (or a missing empty line after the "
                               "headers)");
        }
        absl::string_view name = h.substr(0, colon);
        absl::string_view value = h.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
        if (!ValidHeaderName(name)) return LineError(hl, "malformed header name");
        for (char c : value) {
          if (c < 0x20 || c > 0x7e) {
            return LineError(hl, absl::StrCat("header \"", name,
                                              "\" has a non-printable character"));
          }
        }
        block.headers.push_back(PemHeader{std::string(name), std::string(value)});
        ++i;
      }
    }
    // Body up to the END line.
    bool ended = false;
    while (i < lines.size()) {
      absl::string_view b = lines[i];
      const int bl = static_cast<int>(i) + 1;
      ++i;
      if (b.size() > kMaxPemLine) return LineError(bl, "line too long");
      absl::string_view end_label;
      if (Framed(b, kEnd, &end_label)) {
        if (end_label != block.label) {
          return LineError(bl, absl::StrCat("END line does not match BEGIN ", block.label));
        }
        ended = true;
        break;
      }
      if (b.empty()) return LineError(bl, "empty line inside a PEM body");
      for (char c : b) {
        if (!IsBase64Char(c)) return LineError(bl, "character outside base64 in a PEM body");
      }
      absl::StrAppend(&block.body_base64, b);
    }
    if (!ended) {
      return LineError(block.begin_line,
                       absl::StrCat("block ", block.label, " has no END line (truncated?)"));
    }
    blocks.push_back(std::move(block));
  }
  return blocks;
}

std::string FormatPemBlock(absl::string_view label, const std::vector<PemHeader>& headers,
                           absl::string_view body) {
  std::string out = absl::StrCat(kBegin, label, kDashes, "\n");
  for (const PemHeader& h : headers) absl::StrAppend(&out, h.name, ": ", h.value, "\n");
  if (!headers.empty()) out += "\n";
  std::string b64 = absl::Base64Escape(body);
  for (size_t p = 0; p < b64.size(); p += 64) {
    absl::StrAppend(&out, absl::string_view(b64).substr(p, 64), "\n");
  }
  WipeString(&b64);
  absl::StrAppend(&out, kEnd, label, kDashes, "\n");
  return out;
}

absl::StatusOr<std::string> DecodeCanonicalBase64(absl::string_view b64, absl::string_view what) {
  std::string raw;
  if (b64.size() % 4 != 0 || !absl::Base64Unescape(b64, &raw)) {
    WipeString(&raw);
    return absl::DataLossError(absl::StrCat(what, " is not valid base64"));
  }
  std::string again = absl::Base64Escape(raw);
  const bool same = again.size() == b64.size() &&
                    CRYPTO_memcmp(again.data(), b64.data(), b64.size()) == 0;
  WipeString(&again);
  if (!same) {
    WipeString(&raw);
    return absl::DataLossError(absl::StrCat(what, " is not canonical base64 (altered?)"));
  }
  return raw;
}

}  // namespace sealwal::pem
