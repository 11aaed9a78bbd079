// The content digest that `wal verify` and `store verify` print last
// (docs/format.md §10), and the one-pass checker that computes it while a
// recovery scan reads the log (wal::EntryVisitor).
#ifndef SEALWAL_TOOLS_CONTENT_DIGEST_H_
#define SEALWAL_TOOLS_CONTENT_DIGEST_H_

#include <xxhash.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/log_reader.h"

namespace sealwal::cli {

// An XXH3-128 state fed in the order of docs/format.md §10.
class ContentDigest {
 public:
  ContentDigest();
  ~ContentDigest();
  ContentDigest(const ContentDigest&) = delete;
  ContentDigest& operator=(const ContentDigest&) = delete;

  void Reset();  // back to the empty digest
  void AddMetadata(absl::string_view metadata);
  void AddHardState(const raftpb::HardState& hs);
  void AddEntry(const wal::EntryView& e);
  void AddBytes(absl::string_view b);
  // The 16 canonical (big-endian) bytes of the digest so far.
  std::string Canonical() const;
  std::string Hex() const;  // 32 lowercase hex digits

 private:
  XXH3_state_t* state_;
};

// Checks entries as a scan visits them: hashes them into the entries
// digest and, with a seed, compares each entry's data with data_gen. A
// truncation (an overwritten tail) voids what was hashed: the caller then
// reads the log again with Recheck. Not thread-safe; the scan calls it from
// one thread at a time.
class EntryChecker final : public wal::EntryVisitor {
 public:
  // normal_only: compare only EntryNormal entries with the seed.
  EntryChecker(std::optional<uint64_t> seed, bool normal_only)
      : seed_(seed), normal_only_(normal_only) {}

  void Visit(const wal::EntryView& e) override;
  void Truncate(uint64_t index) override;

  // Hashes [first, last] of `r` again from disk (after a truncation).
  absl::Status Recheck(const wal::LogReader& r);

  bool truncated() const { return truncated_; }
  const ContentDigest& entries_digest() const { return digest_; }
  // The first entry that did not match the seed ("" when none did not).
  const std::string& mismatch() const { return mismatch_; }

 private:
  void Check(const wal::EntryView& e);
  const std::optional<uint64_t> seed_;
  const bool normal_only_;
  ContentDigest digest_;
  bool truncated_ = false;
  std::string want_;
  std::string mismatch_;
};

}  // namespace sealwal::cli

#endif  // SEALWAL_TOOLS_CONTENT_DIGEST_H_
