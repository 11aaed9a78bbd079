// sealwal/pem/pem_block.h: a strict reader and writer of PEM text (RFC 7468
// framing with RFC 1421 "Name: value" headers), for the one thing OpenSSL
// offers no API for: a block of our own whose headers carry data (the
// "SEALWAL RAFT DEKS" block, docs/format.md §11). The private key inside a
// key file is still decoded by OpenSSL (sealwal/pem/private_key.h); this reader
// only finds where each block starts and ends and what headers it has.
//
// Grammar accepted (anything else is kDataLoss naming the line):
//
//   file    = *(blank) *(block *(blank))
//   blank   = line of spaces/tabs only (possibly empty)
//   block   = "-----BEGIN " label "-----" EOL
//             [ 1*(header EOL) EOL ]            headers, then one empty line
//             *(b64line EOL)
//             "-----END " label "-----" [EOL]   the same label
//   label   = 1*64 of A-Z 0-9 SPACE, not starting or ending with SPACE
//   header  = name ":" *SP value
//   name    = 1*64 of A-Z a-z 0-9 "-"
//   value   = *(printable ASCII 0x20-0x7e), trailing spaces dropped
//   b64line = 1*(A-Z a-z 0-9 "+" "/" "=")
//   EOL     = LF or CR LF
//
// Differences from OpenSSL's reader, on purpose: text between blocks must
// be blank (OpenSSL skips anything, so a mangled BEGIN line would make a
// block vanish silently); folded (continued) header lines are refused
// (nothing sealwal reads or writes uses them); a line may not exceed
// kMaxPemLine bytes; the whole text may not exceed kMaxPemText.
//
// Thread-safety: pure functions.
#ifndef SEALWAL_PEM_PEM_BLOCK_H_
#define SEALWAL_PEM_PEM_BLOCK_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sealwal::pem {

inline constexpr size_t kMaxPemText = size_t{1} << 20;
inline constexpr size_t kMaxPemLine = 4096;

// Header values and bodies may hold key material in the clear (an
// unlocked key file's DEK records and private key), so both types wipe
// their strings when destroyed. Moves leave nothing behind (a moved-from
// string owns no heap buffer; short strings hold no key).
struct PemHeader {
  PemHeader() = default;
  PemHeader(std::string n, std::string v) : name(std::move(n)), value(std::move(v)) {}
  PemHeader(const PemHeader&) = default;
  PemHeader(PemHeader&&) = default;
  PemHeader& operator=(const PemHeader&) = default;
  PemHeader& operator=(PemHeader&&) = default;
  ~PemHeader();

  std::string name;
  std::string value;
};

struct PemBlock {
  PemBlock() = default;
  PemBlock(const PemBlock&) = default;
  PemBlock(PemBlock&&) = default;
  PemBlock& operator=(const PemBlock&) = default;
  PemBlock& operator=(PemBlock&&) = default;
  ~PemBlock();

  std::string label;
  std::vector<PemHeader> headers;  // in file order
  std::string body_base64;         // the body lines joined, no line breaks
  int begin_line = 0;              // 1-based line number of the BEGIN line
};

// Splits `text` into blocks (grammar above). The body is not decoded.
absl::StatusOr<std::vector<PemBlock>> ParsePemBlocks(absl::string_view text);

// "-----BEGIN label-----\n", "name: value\n" per header, an empty line when
// there are headers, base64(body) in 64-character lines, "-----END ...\n".
std::string FormatPemBlock(absl::string_view label, const std::vector<PemHeader>& headers,
                           absl::string_view body);

// Standard base64 (with padding), refusing anything but the one canonical
// encoding of some byte string: kDataLoss naming `what` otherwise. So a
// changed character can never decode to the same bytes unnoticed.
absl::StatusOr<std::string> DecodeCanonicalBase64(absl::string_view b64, absl::string_view what);

// Overwrites a string's bytes (OPENSSL_cleanse) and empties it.
void WipeString(std::string* s);

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_PEM_BLOCK_H_
