// tools/codec_args.h: turns `--key-file` / `--dek-file` and a directory
// name ending in "-encrypted" into the WAL's payload codec.
#ifndef SEALWAL_TOOLS_CODEC_ARGS_H_
#define SEALWAL_TOOLS_CODEC_ARGS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tools/cli.h"
#include "wal/payload_codec.h"

namespace sealwal::cli {

// Null when the WAL is plaintext. A key error (missing key for an
// "-encrypted" directory, unreadable key file) is an error: exit status 2.
absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Args& args,
                                                                 const std::string& dir);

#define ASSIGN_CODEC_OR_FAIL(var, args, dir)                                 \
  auto var##_or = CodecFromArgs(args, dir);                                  \
  if (!var##_or.ok()) return Fail(kExitUsage, var##_or.status().message());  \
  std::unique_ptr<wal::PayloadCodec> var = std::move(*var##_or)

}  // namespace sealwal::cli

#endif  // SEALWAL_TOOLS_CODEC_ARGS_H_
