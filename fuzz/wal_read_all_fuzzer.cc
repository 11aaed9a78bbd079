// Fuzzes a whole WAL directory read through the in-memory env: the input
// becomes up to three segment files, which are then read the ways a node
// does (OpenForRead + ReadAll, Open for append + ReadAll + Save, Repair).
// Beyond "no crash", it checks the promises callers rely on:
//   - ReadAll's entries are contiguous and start after the snapshot;
//   - a WAL that opened for append takes a new entry and reads it back;
//   - Repair that reports success leaves a WAL that no longer reads torn;
//   - a LogReader's scan agrees with ReadAll (status, entries), and what
//     its EntryVisitor sees, with the truncations applied, is the log.
//
// Input layout: byte 0 = segment count (1..3) and mode bits, byte 1 =
// snapshot index, then for each segment but the last a 2-byte length,
// then the segment bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/log_reader.h"
#include "sealwal/wal/wal.h"

namespace {

using namespace sealwal;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckContents(const wal::WalContents& c, uint64_t snap_index) {
  for (size_t i = 0; i < c.entries.size(); ++i) {
    Check(c.entries[i].index() == snap_index + 1 + i);
  }
}

// Applies what the scan visits: the log, when the scan succeeds.
class Applying final : public wal::EntryVisitor {
 public:
  void Visit(const wal::EntryView& e) override {
    entries.push_back({e.index, e.term, e.type, std::string(e.data)});
  }
  void Truncate(uint64_t index) override {
    while (!entries.empty() && entries.back().index >= index) entries.pop_back();
  }
  struct Seen {
    uint64_t index, term;
    int32_t type;
    std::string data;
  };
  std::vector<Seen> entries;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int segments = 1 + data[0] % 3;
  const bool append = (data[0] & 0x10) != 0;
  const bool repair = (data[0] & 0x20) != 0;
  wal::SnapshotPosition snap{uint64_t{data[1]} % 8, data[1] % 8 == 0 ? 0u : 1u};
  size_t pos = 2;

  auto fs = env::NewMemFileSystem(env::MemFileSystemOptions{.max_file_size = 1 << 20});
  const std::string dir = "/wal";
  Check(fs->CreateDir(dir).ok());
  uint64_t first_index = 0;
  for (int s = 0; s < segments; ++s) {
    size_t len = size - pos;
    if (s + 1 < segments) {
      if (size - pos < 2) return 0;
      len = std::min<size_t>(size - pos - 2, data[pos] | size_t{data[pos + 1]} << 8);
      pos += 2;
    }
    const std::string name = wal::SegmentFileName(static_cast<uint64_t>(s), first_index);
    first_index += 3;
    Check(env::WriteFileAtomically(fs.get(), dir + "/" + name,
                                   std::string(reinterpret_cast<const char*>(data + pos), len))
              .ok());
    pos += len;
  }

  wal::WalOptions opts;
  opts.fs = fs.get();
  opts.segment_size = 4096;

  if (repair) {
    absl::StatusOr<bool> r = wal::Wal::Repair(dir, opts);
    if (r.ok()) {
      // Repaired (or nothing to repair): the tail is not torn, and reading
      // it again never says so.
      auto w = wal::Wal::OpenForRead(dir, snap, opts);
      if (w.ok()) {
        wal::WalContents c;
        absl::Status s = (*w)->ReadAll(&c);
        if (s.ok()) {
          CheckContents(c, snap.index);
          Check(!c.torn_tail);
        }
        Check(wal::GetWalErrorClass(s) != wal::WalErrorClass::kUnexpectedEof);
      }
    }
  }

  {
    auto w = wal::Wal::OpenForRead(dir, snap, opts);
    if (w.ok()) {
      wal::WalContents c;
      absl::Status read = (*w)->ReadAll(&c);
      if (read.ok()) CheckContents(c, snap.index);
      // The indexed scan with a visitor reads the same log.
      Applying seen;
      wal::LogReaderOptions lo;
      lo.visitor = &seen;
      std::unique_ptr<wal::LogReader> r;
      absl::Status scanned = wal::LogReader::Open(dir, snap, opts, lo, &r);
      Check(scanned.ok() == read.ok());
      if (read.ok()) {
        Check(seen.entries.size() == c.entries.size());
        for (size_t i = 0; i < c.entries.size(); ++i) {
          const auto& e = c.entries[i];
          Check(seen.entries[i].index == e.index() && seen.entries[i].term == e.term() &&
                seen.entries[i].type == static_cast<int32_t>(e.type()) &&
                seen.entries[i].data == e.data());
        }
        Check(r->LastIndex() == (c.entries.empty() ? snap.index : c.entries.back().index()));
      }
    }
  }

  if (append) {
    uint64_t next = 0;
    {
      auto w = wal::Wal::Open(dir, snap, opts);
      if (!w.ok()) return 0;
      wal::WalContents c;
      if (!(*w)->ReadAll(&c).ok()) return 0;
      CheckContents(c, snap.index);
      next = c.entries.empty() ? snap.index + 1 : c.entries.back().index() + 1;
      sealwal::raftpb::Entry e;
      e.set_index(next);
      e.set_term(std::max<uint64_t>(snap.term, c.hardstate.term()));
      e.set_data("fuzz");
      sealwal::raftpb::HardState hs = c.hardstate;
      hs.set_term(e.term());
      if (!(*w)->Save(hs, {e}).ok()) return 0;  // e.g. ENOSPC in the mem env
      Check((*w)->Close().ok());
    }
    // What was saved reads back.
    auto r = wal::Wal::OpenForRead(dir, snap, opts);
    Check(r.ok());
    wal::WalContents c;
    absl::Status s = (*r)->ReadAll(&c);
    Check(s.ok());
    Check(!c.entries.empty() && c.entries.back().index() == next &&
          c.entries.back().data() == "fuzz");
  }
  return 0;
}
