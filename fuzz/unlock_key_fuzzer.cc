// Fuzzes the unlock key parser (sealwal/pem/unlock_key.h): any input is a key or a
// kInvalidArgument; an accepted key's text form is exactly the trimmed
// input (one text form per key) and parses back to the same key, and its
// KEK derives.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "sealwal/pem/unlock_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sealwal::pem::UnlockKey;
  const std::string in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<UnlockKey> k = UnlockKey::Parse(in);
  if (!k.ok()) {
    if (!absl::IsInvalidArgument(k.status())) std::abort();
    return 0;
  }
  if (k->text() != absl::StripAsciiWhitespace(in)) std::abort();
  absl::StatusOr<UnlockKey> again = UnlockKey::Parse(k->text());
  if (!again.ok() || *again != *k) std::abort();
  if (!k->DeriveKek().ok()) std::abort();
  return 0;
}
