// tools/codec_args.h: turns `--key-file` / `--dek-file` and a directory
// name ending in "-encrypted" into the WAL's payload codec (docs/cli.md:
// `wal` commands treat a WAL as encrypted when given a key or
// when its directory name ends in "-encrypted").
//
//   no key, plain directory name      -> null codec (plaintext WAL)
//   no key, "...-encrypted" directory -> error (exit 2): refuse to read an
//                                        encrypted WAL as plaintext or to
//                                        write plaintext into it
//   --dek-file PATH                   -> walcrypt::WalCodec, AES-256-GCM
//   --key-file PATH                   -> walcrypt::WalCodec over the node
//                                        key file's keyring
//                                        (pem::LoadKeyring,
//                                        sealwal/pem/keyring_loader.h):
//                                        seals under raft-dek, opens records
//                                        under raft-dek or raft-dek-pending
//
// `snap` commands take the same flags and the same keyring
// (KeyringFromArgs), so a WAL and its snapshots are read and written with
// the same keys, and a missing key (exit 2) and tampering (exit 1) are
// classified alike (KeyAwareExitCode).
//
// --key-file: the unlock key of a locked key file comes from
// --unlock-key-file U or $SEALWAL_UNLOCK_KEY (docs/cli.md). No
// unlock key, a wrong one, a damaged key file or one without a raft-dek is
// a key error (exit 2). Sealing raises raft-dek's stored encryption count
// in the key file, a block at a time, before the DEK seals past it
// (sealwal/pem/keyring_loader.h); commands that only read never write the
// key file. $SEALWAL_RESERVATION_BLOCK (tests only) makes the block
// smaller than the default 2^20, never larger.
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
#include "sealwal/encryption/keyring.h"
#include "tools/cli.h"
#include "sealwal/wal/payload_codec.h"

namespace sealwal::cli {

// Null when the WAL is plaintext. A key error (missing key for an
// "-encrypted" directory, a key flag for any other directory, unreadable
// or malformed key file) is an error: exit status 2.
absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Command& args,
                                                                 const std::string& dir);

// The keyring the key flags name: null for plaintext (no key flag and a
// plain directory name); the same key errors as CodecFromArgs (exit 2).
absl::StatusOr<std::shared_ptr<encryption::Keyring>> KeyringFromArgs(const Command& args,
                                                                     const std::string& dir);

// The keyring of the node key file named by --key-file (unlock key as
// above): raft-dek writes, raft-dek-pending reads, counts persisted.
absl::StatusOr<std::shared_ptr<encryption::Keyring>> KeyringFromKeyFileArgs(const Command& args);

// The exit status for an error of a command that used keys: a missing key
// (encryption::IsMissingKeyError, or a WAL decrypt failure that is
// kNotFound) and an exhausted DEK are key errors (2); kDataLoss (tampering,
// authentication failure under a held key) is 1; otherwise ExitCodeFor.
int KeyAwareExitCode(const absl::Status& s);
// True for the key errors above (missing key, exhausted DEK).
bool IsKeyError(const absl::Status& s);

// The key id a --dek-file key gets (see above); exposed for tests.
uint32_t DekFileKeyId(absl::string_view key);

#define ASSIGN_CODEC_OR_FAIL(var, args, dir)                                 \
  auto var##_or = CodecFromArgs(args, dir);                                  \
  if (!var##_or.ok()) return Fail(kExitUsage, var##_or.status().message());  \
  std::unique_ptr<wal::PayloadCodec> var = std::move(*var##_or)

}  // namespace sealwal::cli

#endif  // SEALWAL_TOOLS_CODEC_ARGS_H_
