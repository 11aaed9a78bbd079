// tests/testing/wal_entries.h: the Raft values the WAL tests save, in one
// place (header-only).
//   HS(term, vote, commit)          a HardState
//   HS(commit)                      HS(1, 1, commit): a one-term log
//   PatternEntry(index, term, size) a normal entry whose data,
//                                   "e<index>t<term>:" padded with letters to
//                                   `size` bytes, tells where it belongs
//   PatternRange(from, to, term, size)  PatternEntry for from..to
#ifndef SEALWAL_TESTING_WAL_ENTRIES_H_
#define SEALWAL_TESTING_WAL_ENTRIES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/proto/raftpb.pb.h"

namespace sealwal::testing {

inline raftpb::HardState HS(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

inline raftpb::HardState HS(uint64_t commit) { return HS(1, 1, commit); }

inline raftpb::Entry PatternEntry(uint64_t index, uint64_t term, size_t size) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::EntryNormal);
  std::string data = absl::StrCat("e", index, "t", term, ":");
  while (data.size() < size) data += static_cast<char>('a' + (index * 7 + data.size()) % 26);
  e.set_data(std::move(data));
  return e;
}

inline std::vector<raftpb::Entry> PatternRange(uint64_t from, uint64_t to, uint64_t term,
                                               size_t size) {
  std::vector<raftpb::Entry> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(PatternEntry(i, term, size));
  return v;
}

}  // namespace sealwal::testing

#endif  // SEALWAL_TESTING_WAL_ENTRIES_H_
