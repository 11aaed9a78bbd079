#include "sealwal/pem/keyring_loader.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::pem {

encryption::Reserver KeyFileReserver(std::shared_ptr<KeyReadWriter> krw) {
  return [krw = std::move(krw)](encryption::KeyId id, uint64_t floor,
                                uint64_t count) -> absl::StatusOr<uint64_t> {
    uint64_t begin = 0;
    SEALWAL_RETURN_IF_ERROR(krw->ViewAndUpdateHeaders(
        [&](const DekHeaders& h) -> absl::StatusOr<DekHeaders> {
          DekHeaders out = h.Clone();
          StoredDek* d = nullptr;
          if (out.current.has_value() && out.current->dek.id == id) d = &*out.current;
          if (out.pending.has_value() && out.pending->dek.id == id) d = &*out.pending;
          if (d == nullptr) {
            return absl::FailedPreconditionError(
                absl::StrCat("DEK ", encryption::FormatKeyId(id), " is no longer in key file ",
                             krw->path(), " (rotated away by another process?)"));
          }
          begin = std::max(d->encryptions, floor);
          d->encryptions = std::min(encryption::kMaxEncryptionsPerKey,
                                    begin + std::min(count, encryption::kMaxEncryptionsPerKey));
          return out;
        }));
    return begin;
  };
}

absl::StatusOr<LoadedKeyring> LoadKeyring(std::shared_ptr<KeyReadWriter> krw,
                                          const LoadKeyringOptions& options) {
  if (krw == nullptr) return absl::InvalidArgumentError("LoadKeyring needs a KeyReadWriter");
  if (options.reservation_block == 0 ||
      options.reservation_block > encryption::kMaxEncryptionsPerKey) {
    return absl::InvalidArgumentError(absl::StrCat("reservation block ",
                                                   options.reservation_block,
                                                   " is outside 1 .. 2^32"));
  }
  SEALWAL_ASSIGN_OR_RETURN(KeyFile file, krw->Read());
  if (options.require_locked && !file.locked) {
    return absl::FailedPreconditionError(absl::StrCat(
        krw->path(), " is not locked, but an unlock key was given: refusing to use it (the "
                     "file may have been replaced)"));
  }
  if (!file.headers.current.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(krw->path(), " holds no raft-dek"));
  }
  encryption::KeyringOptions ko;
  ko.rotation_threshold = options.rotation_threshold;
  ko.reservation_block = options.reservation_block;
  ko.seal_threads = options.seal_threads;
  if (options.persist_counts) {
    ko.reserver = KeyFileReserver(krw);
    if (options.on_reserve_error) {
      ko.reserver = [reserve = std::move(ko.reserver), told = options.on_reserve_error](
                        encryption::KeyId id, uint64_t floor,
                        uint64_t count) -> absl::StatusOr<uint64_t> {
        absl::StatusOr<uint64_t> r = reserve(id, floor, count);
        if (!r.ok()) told(r.status());
        return r;
      };
    }
  }
  auto keys = std::make_shared<encryption::Keyring>(std::move(ko));
  // raft-dek first: the first key added is the write key.
  SEALWAL_RETURN_IF_ERROR(
      keys->AddKey(file.headers.current->dek, file.headers.current->encryptions));
  if (file.headers.pending.has_value()) {
    SEALWAL_RETURN_IF_ERROR(
        keys->AddKey(file.headers.pending->dek, file.headers.pending->encryptions));
  }
  return LoadedKeyring{std::move(keys), file.locked};
}

}  // namespace sealwal::pem
