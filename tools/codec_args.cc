#include "tools/codec_args.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sealwal::cli {

absl::StatusOr<std::unique_ptr<wal::PayloadCodec>> CodecFromArgs(const Args& args,
                                                                 const std::string& dir) {
  const bool keyed = args.Has("key-file") || args.Has("dek-file");
  if (!keyed && absl::EndsWith(dir, "-encrypted")) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " is an encrypted WAL: give --key-file or --dek-file"));
  }
  if (keyed) {
    return absl::UnimplementedError("encrypted WALs are not supported by this build yet");
  }
  return std::unique_ptr<wal::PayloadCodec>();
}

}  // namespace sealwal::cli
