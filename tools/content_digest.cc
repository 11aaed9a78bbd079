#include "tools/content_digest.h"

#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/endian.h"

namespace sealwal::cli {
namespace {

void PutU64(XXH3_state_t* st, uint64_t v) {
  char b[8];
  StoreLE64(v, b);
  XXH3_128bits_update(st, b, 8);
}

}  // namespace

ContentDigest::ContentDigest() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }
ContentDigest::~ContentDigest() { XXH3_freeState(state_); }
void ContentDigest::Reset() { XXH3_128bits_reset(state_); }

void ContentDigest::AddMetadata(absl::string_view m) {
  PutU64(state_, m.size());
  XXH3_128bits_update(state_, m.data(), m.size());
}

void ContentDigest::AddHardState(const raftpb::HardState& hs) {
  PutU64(state_, hs.term());
  PutU64(state_, hs.vote());
  PutU64(state_, hs.commit());
}

void ContentDigest::AddEntry(const wal::EntryView& e) {
  // One update for the four words: per-call overhead showed in profiles.
  char head[32];
  StoreLE64(e.index, head);
  StoreLE64(e.term, head + 8);
  StoreLE64(static_cast<uint64_t>(e.type), head + 16);
  StoreLE64(e.data.size(), head + 24);
  XXH3_128bits_update(state_, head, sizeof(head));
  XXH3_128bits_update(state_, e.data.data(), e.data.size());
}

void ContentDigest::AddBytes(absl::string_view b) {
  XXH3_128bits_update(state_, b.data(), b.size());
}

std::string ContentDigest::Canonical() const {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state_));
  return std::string(reinterpret_cast<const char*>(c.digest), sizeof(c.digest));
}

std::string ContentDigest::Hex() const {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : Canonical()) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

void EntryChecker::Check(const wal::EntryView& e) {
  digest_.AddEntry(e);
  if (!seed_.has_value() || !mismatch_.empty()) return;
  if (normal_only_ && e.type != raftpb::EntryNormal) return;
  want_.resize(e.data.size());
  DataGenFill(*seed_, e.index, e.term, want_.data(), want_.size());
  if (want_ != e.data) {
    mismatch_ = absl::StrCat("entry ", e.index, " (term ", e.term, ") does not match seed ",
                             *seed_);
  }
}

void EntryChecker::Visit(const wal::EntryView& e) {
  if (!truncated_) Check(e);
}

void EntryChecker::Truncate(uint64_t) { truncated_ = true; }

absl::Status EntryChecker::Recheck(const wal::LogReader& r) {
  digest_.Reset();
  mismatch_.clear();
  // Chunks of 4096 entries: a few MiB, flat in the log's size.
  constexpr uint64_t kChunk = 4096;
  const uint64_t last = r.LastIndex();
  for (uint64_t i = r.FirstIndex(); i <= last;) {
    auto ents = r.Entries(i, last - i >= kChunk ? i + kChunk : last + 1);
    if (!ents.ok()) return ents.status();
    for (const raftpb::Entry& e : *ents) {
      Check(wal::EntryView{e.index(), e.term(), static_cast<int32_t>(e.type()), e.data()});
    }
    i += ents->size();
  }
  return absl::OkStatus();
}

}  // namespace sealwal::cli
