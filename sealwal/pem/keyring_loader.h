// sealwal/pem/keyring_loader.h: the encryption::Keyring of a node key file.
//
// LoadKeyring reads the key file through a KeyReadWriter and builds the one
// keyring that the WAL codec (sealwal/walcrypt/wal_codec.h), .snap and
// .snap.stream files share (sealwal/encryption/keyring.h):
//   raft-dek          the write key, its usage counter starting at the
//                     file's stored `encryptions` value
//   raft-dek-pending  a read key (present during a rotation), likewise
//
// Persisted counts (docs/format.md §11 "DEK header values", docs/security.md
// "Keys"): unless options.persist_counts is false, the keyring's Reserver
// raises a DEK's stored `encryptions` in the key file, by a block
// (options.reservation_block, default 2^20), through
// KeyReadWriter::ViewAndUpdateHeaders (under F.lock, one atomic write)
// BEFORE the DEK seals past the stored value. A reservation that fails (the
// file cannot be written or locked, or the DEK is no longer in it) refuses
// the seal. So the stored value is an upper bound of the messages the DEK
// has sealed, in every process, even after a SIGKILL, and the 2^32 limit
// holds across processes. A keyring only read with (dump, verify, load)
// never writes the file.
//
// Errors: KeyReadWriter::Read's (kNotFound no file, kDataLoss damaged,
// kPermissionDenied no or wrong unlock key), each naming the file;
// kFailedPrecondition when the file holds no raft-dek, or when
// options.require_locked and the file is not locked (someone who can write
// the key file could swap in an unlocked one holding DEKs of their choice).
// Nothing is written by LoadKeyring itself.
//
// Thread-safety: LoadKeyring is a plain function; the keyring and the
// KeyReadWriter it keeps are thread-safe.
#ifndef SEALWAL_PEM_KEYRING_LOADER_H_
#define SEALWAL_PEM_KEYRING_LOADER_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/pem/key_read_writer.h"

namespace sealwal::pem {

struct LoadKeyringOptions {
  // Install the Reserver that persists counts (above). False: counts live
  // in memory only, starting at the stored values (for tools that must not
  // write the key file; they must not seal either).
  bool persist_counts = true;
  // How far one reservation raises a stored count; 1 .. 2^32.
  uint64_t reservation_block = encryption::kDefaultReservationBlock;
  uint64_t rotation_threshold = encryption::kDefaultRotationThreshold;
  // Refuse an unlocked key file (the caller has an unlock key and expects
  // the file to be locked).
  bool require_locked = false;
  // Encrypters' threads for large WAL batches (EncrypterOptions).
  int seal_threads = 0;
  // Told, on the thread that seals, when a reservation (a key-file write)
  // fails: its durability is unknown (a failed fsync of the file or of its
  // directory), so a writer may choose to stop for good rather than write
  // the key file again. Must be thread-safe and must not call the keyring.
  std::function<void(const absl::Status&)> on_reserve_error;
};

struct LoadedKeyring {
  std::shared_ptr<encryption::Keyring> keyring;
  bool locked = false;  // the key file is autolocked
};

// The keyring of the key file `krw` reads and writes (shared: the
// keyring's Reserver keeps it).
absl::StatusOr<LoadedKeyring> LoadKeyring(std::shared_ptr<KeyReadWriter> krw,
                                          const LoadKeyringOptions& options = {});

// The Reserver LoadKeyring installs, for callers that build a keyring
// themselves: raises DEK `id`'s stored count (raft-dek or raft-dek-pending)
// in `krw`'s file as key_usage.h's Reserver contract says.
encryption::Reserver KeyFileReserver(std::shared_ptr<KeyReadWriter> krw);

}  // namespace sealwal::pem

#endif  // SEALWAL_PEM_KEYRING_LOADER_H_
