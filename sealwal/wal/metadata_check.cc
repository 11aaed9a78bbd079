#include "sealwal/wal/metadata_check.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "sealwal/wal/decoder.h"

namespace sealwal::wal {
namespace {

absl::Status Conflict() {
  return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kMetadataConflict,
                  "wal: conflicting metadata found");
}

}  // namespace

absl::Status PayloadDecodeError(const absl::Status& s, absl::string_view what) {
  return WalError(
      s.code() == absl::StatusCode::kNotFound ? absl::StatusCode::kNotFound
                                              : absl::StatusCode::kDataLoss,
      WalErrorClass::kDecryptFailed, absl::StrCat(what, ": ", s.message()));
}

absl::Status MetadataCheck::Add(absl::string_view stored) {
  if (!distinct_.empty() && distinct_.back() == stored) return absl::OkStatus();
  if (!distinct_.empty() && codec_ == nullptr) return Conflict();
  if (std::find(distinct_.begin(), distinct_.end(), stored) == distinct_.end()) {
    distinct_.emplace_back(stored);
  } else {
    // Seen before, not last: keep the last one last.
    std::string s(stored);
    distinct_.erase(std::find(distinct_.begin(), distinct_.end(), s));
    distinct_.push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::Status MetadataCheck::CheckAgreement() const {
  if (distinct_.size() <= 1) return absl::OkStatus();
  std::string plain;
  return Finish(&plain);
}

absl::Status MetadataCheck::Finish(std::string* plain) const {
  plain->clear();
  if (distinct_.empty()) return absl::OkStatus();
  if (codec_ == nullptr) {
    *plain = distinct_.back();
    return absl::OkStatus();
  }
  PayloadContext ctx;
  ctx.kind = PayloadContext::Kind::kMetadata;
  std::string decoded;
  for (size_t i = 0; i < distinct_.size(); ++i) {
    absl::Status s = codec_->Decode(ctx, distinct_[i], &decoded);
    if (!s.ok()) {
      plain->clear();
      return PayloadDecodeError(s, "metadata");
    }
    if (i == 0) {
      plain->swap(decoded);
    } else if (decoded != *plain) {
      plain->clear();
      return Conflict();
    }
  }
  return absl::OkStatus();
}

}  // namespace sealwal::wal
