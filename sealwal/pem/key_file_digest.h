// sealwal/pem/key_file_digest.h (internal, not installed): the key file's
// unkeyed digest (docs/format.md §11 "File info and digest"), defined in
// key_file.cc. Exposed for tests, which play an attacker who edits a file
// and recomputes it (tests/testing/key_file_tamper.h): knowing it proves
// nothing, only the MAC of a version-2 file info does. Thread-safe; no I/O.
#ifndef SEALWAL_PEM_KEY_FILE_DIGEST_H_
#define SEALWAL_PEM_KEY_FILE_DIGEST_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::pem {

// SHA-256 over the domain string, `version`, `flags`, each of `dek_headers`
// as a "name: value\n" line, `key_label` "\n" and `key_der`. All zeros if
// OpenSSL fails, which never matches a stored digest.
std::array<unsigned char, 32> KeyFileDigest(uint8_t version, uint8_t flags,
                                            const std::vector<PemHeader>& dek_headers,
                                            absl::string_view key_label,
                                            absl::string_view key_der);

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_KEY_FILE_DIGEST_H_
