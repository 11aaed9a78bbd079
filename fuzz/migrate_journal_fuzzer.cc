// Fuzzes the reader of DATADIR/migrate.journal (sealwal/storage/migrate.h,
// docs/format.md §13), the one file `store migrate` leaves for Open to act
// on: any bytes must give "no journal", a verdict naming existing
// directories, or kDataLoss; never a crash, and never a verdict for text
// that is not one of the two journals the writer makes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/storage/migrate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sealwal;
  auto fs = env::NewMemFileSystem();
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Both kinds of store exist (a crash between the renames), so the
  // verdict depends only on the journal's bytes.
  for (const char* d : {"/d/wal-v3", "/d/snap-v3", "/d/wal-v3-encrypted.tmp",
                        "/d/snap-v3-encrypted.tmp"}) {
    if (!env::CreateDirAll(fs.get(), d).ok()) std::abort();
  }
  if (!env::WriteFileAtomically(fs.get(), "/d/migrate.journal", text).ok()) std::abort();
  auto pending = storage::ReadPendingMigration("/d", fs.get());
  if (!pending.ok()) {
    if (pending.status().code() != absl::StatusCode::kDataLoss) std::abort();
    return 0;
  }
  if (!pending->has_value()) std::abort();  // a journal exists
  const bool to_enc = (*pending)->to_encrypted;
  const std::string want = std::string("sealwal-migrate-journal 1\nto ") +
                           (to_enc ? "encrypted" : "plaintext") + "\n";
  if (text != want) std::abort();
  if (!fs->FileExists((*pending)->wal_dir).ok()) std::abort();
  return 0;
}
