// wal_zero_sector_test: zero 512 bytes at every 8-byte-aligned offset of a
// small last segment, and hold the reader to the rule of docs/format.md §7:
// damage is a torn tail only when nothing valid follows it.
//
// etcd's rule (a record with an all-zero sector in the last segment is
// "torn") alone would let Repair, or a write-mode open, cut every record
// after a zeroed sector anywhere in the last segment: acknowledged entries
// lost. So, for each position:
//   two or more whole frames after the zeroed range (their CRCs chain):
//       ReadAll, Verify and a write-mode open fail with kCrcMismatch,
//       Repair refuses naming the entries around the damage, and no byte
//       of the directory changes;
//   fewer: the damage is at the tail; readers may call it torn (or fail),
//       and whatever they return is a prefix of the log that keeps every
//       entry before the damage.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/wal.h"
#include "testing/fs_dir_contents.h"
#include "testing/status_matchers.h"
#include "testing/wal_entries.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::HS;
using ::sealwal::testing::PatternEntry;

constexpr char kDir[] = "/w/wal";
constexpr char kMetadata[] = "zero-sector-metadata";
constexpr uint64_t kSegmentSize = 64 << 10;
constexpr uint64_t kEntries = 20;

struct Frame {
  uint64_t start, end;  // length word .. end of padding
  uint64_t entries;     // entries saved in this frame and before it
};

struct Log {
  std::string name;
  std::string bytes;
  std::vector<Frame> frames;
};

// Entry i's size: 100..900 bytes, so that records straddle sector
// boundaries.
size_t EntrySize(uint64_t i) { return 100 + (i * 137) % 800; }

// 20 synced saves of one entry each, each with its HardState.
Log Build() {
  auto fs = env::NewMemFileSystem();
  WalOptions o;
  o.fs = fs.get();
  o.segment_size = kSegmentSize;
  auto w = Wal::Create(kDir, kMetadata, o);
  EXPECT_TRUE(w.ok()) << w.status();
  for (uint64_t i = 1; i <= kEntries; ++i) {
    EXPECT_OK((*w)->Save(HS(1, 1, i), {PatternEntry(i, 1, EntrySize(i))}));
  }
  EXPECT_OK((*w)->Close());
  Log log;
  auto names = Wal::SegmentNames(kDir, fs.get());
  EXPECT_TRUE(names.ok() && names->size() == 1u);
  log.name = names->front();
  const std::string path = env::JoinPath(kDir, log.name);
  log.bytes = *env::ReadFileToString(fs.get(), path);
  Decoder d(fs.get(), {path});
  DecodedRecord rec;
  uint64_t entries = 0;
  for (;;) {
    const uint64_t start = d.last_valid_offset();
    auto more = d.Next(&rec);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    if (rec.type == static_cast<int64_t>(RecordType::kCrc)) d.UpdateCrc(rec.crc);
    if (rec.type == static_cast<int64_t>(RecordType::kEntry)) ++entries;
    log.frames.push_back({start, d.last_valid_offset(), entries});
  }
  EXPECT_EQ(entries, kEntries);
  return log;
}

std::map<std::string, std::string> Files(env::FileSystem* fs) {
  return ::sealwal::testing::FsDirContents(fs, kDir);
}

// Entries 1..n in order, exactly as saved.
bool IsPrefix(const WalContents& c, uint64_t n) {
  if (c.entries.size() != n) return false;
  for (uint64_t i = 0; i < n; ++i) {
    const raftpb::Entry want = PatternEntry(i + 1, 1, EntrySize(i + 1));
    if (c.entries[i].SerializeAsString() != want.SerializeAsString()) return false;
  }
  return true;
}

TEST(WalZeroSectorTest, ZeroedSectorFollowedByValidRecordsIsNeverATornTail) {
  const Log log = Build();
  const uint64_t used = log.frames.back().end;
  ASSERT_GT(used, 8u * kSectorSize);  // many sectors of records
  int mid_log = 0, tail = 0, resumed = 0;
  for (uint64_t o = 0; o < used; o += kFrameAlignment) {
    const uint64_t zero_end = std::min<uint64_t>(o + kSectorSize, log.bytes.size());
    // Frames the zeroed range touches, and the whole ones after it.
    size_t first = 0;
    while (log.frames[first].end <= o) ++first;
    size_t after = first;
    while (after < log.frames.size() && log.frames[after].start < zero_end) ++after;
    const size_t intact_after = log.frames.size() - after;
    const uint64_t entries_before = first == 0 ? 0 : log.frames[first - 1].entries;

    std::string damaged = log.bytes;
    std::fill(damaged.begin() + static_cast<std::ptrdiff_t>(o),
              damaged.begin() + static_cast<std::ptrdiff_t>(zero_end), '\0');
    if (damaged == log.bytes) continue;
    SCOPED_TRACE(absl::StrCat("zeroed [", o, ", ", zero_end, "), frames ", first, "..",
                              after - 1, ", ", intact_after, " whole frames after"));
    auto fs = env::NewMemFileSystem();
    ASSERT_OK(env::CreateDirAll(fs.get(), kDir));
    {
      auto f = fs->NewWritableFile(env::JoinPath(kDir, log.name));
      ASSERT_OK(f.status());
      ASSERT_OK((*f)->Append(damaged));
      ASSERT_OK((*f)->Close());
    }
    const auto pristine = Files(fs.get());
    WalOptions opts;
    opts.fs = fs.get();
    opts.segment_size = kSegmentSize;

    WalContents rc;
    absl::Status rs;
    {
      auto r = Wal::OpenForRead(kDir, {}, opts);
      ASSERT_OK(r.status());
      rs = (*r)->ReadAll(&rc);
    }
    const absl::Status vs = Wal::Verify(kDir, {}, opts);
    if (intact_after >= 2) {
      ++mid_log;
      // Corruption (a CRC mismatch, or an unparseable record when the zeros
      // start inside one), never a torn tail or a clean end.
      auto corruption = [](const absl::Status& s) {
        return !s.ok() && GetWalErrorClass(s) != WalErrorClass::kUnexpectedEof;
      };
      EXPECT_TRUE(corruption(rs)) << rs;
      EXPECT_TRUE(corruption(vs)) << vs;
      // The cases etcd's rule calls torn are the ones the new rule finds.
      if (rs.message().find("not a torn tail") != std::string::npos) ++resumed;
      {
        auto w = Wal::Open(kDir, {}, opts);
        ASSERT_OK(w.status());
        WalContents wc;
        EXPECT_TRUE(corruption((*w)->ReadAll(&wc)));
      }
      auto repaired = Wal::Repair(kDir, opts);
      ASSERT_FALSE(repaired.ok()) << "repair cut " << (kEntries - entries_before)
                                  << " entries that valid records follow";
      EXPECT_TRUE(corruption(repaired.status())) << repaired.status();
      if (entries_before > 0) {
        EXPECT_NE(repaired.status().message().find(
                      absl::StrCat("last intact entry before it is index ", entries_before)),
                  std::string::npos)
            << repaired.status();
      }
      EXPECT_EQ(Files(fs.get()), pristine) << "a refused repair changed the directory";
    } else {
      ++tail;
      // Damage at the tail: torn (a prefix), an error, or -- a zeroed
      // length word on the last frames -- a clean end before them.
      if (rs.ok()) {
        EXPECT_TRUE(IsPrefix(rc, rc.entries.size()) && rc.entries.size() >= entries_before);
      }
      auto repaired = Wal::Repair(kDir, opts);
      if (!repaired.ok() || !*repaired) {
        EXPECT_EQ(Files(fs.get()), pristine);
        continue;
      }
      auto r = Wal::OpenForRead(kDir, {}, opts);
      ASSERT_OK(r.status());
      WalContents after_repair;
      ASSERT_OK((*r)->ReadAll(&after_repair));
      EXPECT_FALSE(after_repair.torn_tail);
      EXPECT_TRUE(IsPrefix(after_repair, entries_before) ||
                  IsPrefix(after_repair, log.frames[first].entries))
          << after_repair.entries.size() << " entries after repair";
    }
  }
  std::cout << mid_log << " positions inside the log (" << resumed
            << " that etcd's rule calls torn), " << tail << " at the tail\n";
  // Both kinds of damage were exercised.
  EXPECT_GT(mid_log, 1000);
  EXPECT_GT(resumed, 200);
  EXPECT_GT(tail, 50);
}

}  // namespace
}  // namespace sealwal::wal
