// sealwal/wal/metadata_check.h: decides whether the metadata records a
// reader meets agree, as etcd's reader insists they do. Without a codec
// the stored bytes are compared, as etcd does. With one, the plaintexts
// are: within one key every segment repeats the same stored bytes, but a
// segment cut by Wal::SwitchWriteKey re-seals the metadata under the new
// key, so its ciphertext differs while its plaintext may not. Internal to
// the wal target. Not thread-safe; the codec is borrowed.
#ifndef SEALWAL_WAL_METADATA_CHECK_H_
#define SEALWAL_WAL_METADATA_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sealwal/wal/payload_codec.h"

namespace sealwal::wal {

// The WAL's status for a payload the codec refused: class kDecryptFailed,
// code kNotFound when the codec lacks the key (so the caller can tell a
// missing key from tampering), kDataLoss otherwise; "<what>: <message>".
absl::Status PayloadDecodeError(const absl::Status& codec_status, absl::string_view what);

class MetadataCheck {
 public:
  explicit MetadataCheck(const PayloadCodec* codec) : codec_(codec) {}

  // One metadata record's stored bytes. Without a codec, bytes that differ
  // from the ones seen before are a conflict (kDataLoss, class
  // kMetadataConflict), returned at once. With a codec every distinct
  // stored form is kept for Finish.
  absl::Status Add(absl::string_view stored);

  bool has_metadata() const { return !distinct_.empty(); }
  // The stored bytes of the last metadata record seen (what a writer
  // appending under the same key repeats).
  const std::string& last_stored() const { return distinct_.back(); }

  // The metadata's plaintext (the stored bytes without a codec). With a
  // codec: decodes every distinct stored form; a refused one is
  // PayloadDecodeError("metadata"), plaintexts that differ a conflict.
  absl::Status Finish(std::string* plain) const;
  // Only whether the records agree (Verify): decodes nothing when they are
  // byte-identical, as Finish otherwise.
  absl::Status CheckAgreement() const;

 private:
  const PayloadCodec* const codec_;
  std::vector<std::string> distinct_;  // in the order first seen
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_METADATA_CHECK_H_
