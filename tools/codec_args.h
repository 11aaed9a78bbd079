// tools/codec_args.h: turns `--key-file` / `--dek-file` and a directory
// name ending in "-encrypted" into the WAL's payload codec (docs/cli.md:
// `wal` commands treat a WAL as encrypted when given a key or
// when its directory name ends in "-encrypted").
//
//   no key, plain directory name      -> null codec (plaintext WAL)
//   no key, "...-encrypted" directory -> error (exit 2): refuse to read an
//                                        encrypted WAL as plaintext or to
//                                        write plaintext into it
//   --dek-file PATH                   -> encryption::WalCodec, AES-256-GCM
//   --key-file PATH                   -> encryption::WalCodec over the node
//                                        key file (sealwal/pem/key_read_writer.h):
//                                        seals under raft-dek, opens records
//                                        under raft-dek or raft-dek-pending
//
// --key-file: the unlock key of a locked key file comes from
// --unlock-key-file U or $SEALWAL_UNLOCK_KEY (docs/cli.md). No
// unlock key, a wrong one, a damaged key file or one without a raft-dek is
// a key error (exit 2). The file is only read: `wal gen` does not yet
// persist raft-dek's encryption counter back into it (the key rotator's
// job); the codec starts from the count stored there.
//
// --dek-file (for tests and scripts): PATH holds exactly 32 raw key bytes
// and nothing else. A raw key carries no key id, so one is derived from the
// key so that `wal gen` and a later `wal dump`/`verify` with the same file
// agree: key id = the first 4 bytes of SHA-256(key) read as a little-endian
// uint32 (0 is replaced by 1, since 0 means "no key"). This departs from
// docs/format.md §9 ("key ids are random, never derived from key
// bytes"), which governs DEKs made by `key init`/the key rotator; it leaks
// 32 bits of a hash of a 256-bit key, which is of no help to an attacker,
// but it is why --dek-file is meant for tests, not production. The key
// bytes are wiped after use and never printed.
//
// Errors are statuses whose message is one line, for "sealwal: <msg>".
// Thread-safety: plain functions.
#ifndef SEALWAL_TOOLS_CODEC_ARGS_H_
#define SEALWAL_TOOLS_CODEC_ARGS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/dek.h"
#include "tools/cli.h"
#include "sealwal/wal/payload_codec.h"

namespace sealwal::cli {

// Null when the WAL is plaintext. A key error (missing key for an
// "-encrypted" directory, unreadable or malformed key file, --key-file) is
// an error: exit status 2.
absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Args& args,
                                                                 const std::string& dir);

// The DEK itself, for commands that need more than a WAL codec (`snap`
// derives per-stream keys from it): nullopt for plaintext (no key flag and
// a plain directory name); the same key errors as CodecFromArgs (exit 2).
absl::StatusOr<std::optional<encryption::Dek>> DekFromArgs(const Args& args,
                                                           const std::string& dir);

// The DEKs of the node key file named by --key-file (unlock key as above).
struct KeyFileDeks {
  encryption::Dek current;            // raft-dek
  uint64_t current_encryptions = 0;   // its stored encryption counter
  std::optional<encryption::Dek> pending;  // raft-dek-pending, during a rotation
};
absl::StatusOr<KeyFileDeks> DeksFromKeyFileArgs(const Args& args);

// The WAL codec for --key-file (see above).
absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromKeyFileArgs(const Args& args);

// The key id a --dek-file key gets (see above); exposed for tests.
uint32_t DekFileKeyId(absl::string_view key);

#define ASSIGN_CODEC_OR_FAIL(var, args, dir)                                 \
  auto var##_or = CodecFromArgs(args, dir);                                  \
  if (!var##_or.ok()) return Fail(kExitUsage, var##_or.status().message());  \
  std::unique_ptr<wal::PayloadCodec> var = std::move(*var##_or)

}  // namespace sealwal::cli

#endif  // SEALWAL_TOOLS_CODEC_ARGS_H_
