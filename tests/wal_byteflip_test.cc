// wal_byteflip_test: flip every byte (XOR 0xFF) of a small WAL, one at a
// time, and hold every reader to what "harmless" may mean.
//
// The WAL's segment is parsed first into frames: [start, start+8) length
// word, then the record, then 0-7 pad bytes; after the last frame of the
// last segment comes the zero length word that ends the log ("terminator",
// 8 bytes) and then preallocated zeros ("beyond"). For a flip at offset o:
//
//   pad or beyond   provably harmless: readers never look at these bytes
//                   (etcd does not check padding either). Read mode returns
//                   exactly the original log with no torn flag; write mode
//                   returns it too and re-zeroes everything past the last
//                   record, so a flip beyond is wiped and a flip in padding
//                   stays; Repair has nothing to do.
//   terminator      the end marker is no longer zero: read mode either
//                   reports an error or, taking it for a torn write, returns
//                   the whole original log flagged torn_tail. Write mode
//                   refuses (changing nothing); a "torn" verdict is
//                   repaired by truncating after the last record.
//   record i        (its length word or record bytes) damaged: read mode
//                   either reports an error or returns exactly the log as
//                   it was before record i with torn_tail set (what etcd
//                   calls an unexpected EOF: e.g. a length that now runs
//                   past the end of the file). Never OK without the torn
//                   flag, never other entries. Write mode always refuses
//                   and changes nothing; Repair truncates only a "torn"
//                   verdict in the last segment (keeping a .broken copy)
//                   and otherwise refuses, changing nothing.
//                   One exception, exact: the top byte of a length word only
//                   encodes the pad size, so with it flipped the record
//                   itself still decodes intact and the damage shows at the
//                   next frame (a torn view may then include record i), or,
//                   for the very last record, nowhere at all: its zero pad
//                   then reads as the end of the log, which is the original
//                   log, and write mode accepts it like a pad flip.
//
// Verify must agree with read mode (both tolerate a torn tail, as etcd's).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/env/file_system.h"
#include "sealwal/env/mem_file_system.h"
#include "gtest/gtest.h"
#include "testing/fs_dir_contents.h"
#include "testing/status_matchers.h"
#include "testing/wal_entries.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/format.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

using ::sealwal::testing::HS;

constexpr char kDir[] = "/w/wal";
constexpr char kMetadata[] = "byteflip-metadata";
constexpr uint64_t kSegmentSize = 4096;

raftpb::Entry E(uint64_t index, uint64_t term, size_t size) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  std::string data = absl::StrCat("entry", index, ":");
  while (data.size() < size) data += static_cast<char>('A' + (data.size() * 13 + index) % 26);
  e.set_data(std::move(data));
  return e;
}

struct State {
  bool has_metadata = false;
  std::vector<raftpb::Entry> entries;
  raftpb::HardState hs;
};

bool Same(const WalContents& c, const State& s) {
  if (c.has_metadata != s.has_metadata) return false;
  if (c.metadata != (s.has_metadata ? kMetadata : "")) return false;
  if (c.hardstate.SerializeAsString() != s.hs.SerializeAsString()) return false;
  if (c.entries.size() != s.entries.size()) return false;
  for (size_t i = 0; i < s.entries.size(); ++i) {
    if (c.entries[i].SerializeAsString() != s.entries[i].SerializeAsString()) return false;
  }
  return true;
}

std::string Show(const WalContents& c) {
  std::string s = absl::StrCat("meta=", c.metadata, " hs{", c.hardstate.term(), ",",
                               c.hardstate.vote(), ",", c.hardstate.commit(), "} torn=",
                               c.torn_tail, " [");
  for (const auto& e : c.entries) absl::StrAppend(&s, e.index(), "/", e.term(), " ");
  return s + "]";
}

struct Frame {
  size_t file;
  uint64_t start, rec_end, end;  // word at start, record to rec_end, pad to end
  State after;                   // what ReadAll from {0,0} has seen after it
};

struct Layout {
  std::vector<std::string> names;
  std::vector<std::string> bytes;
  std::vector<Frame> frames;
  std::vector<uint64_t> records_end;  // per file: end of its last frame
  size_t first_snapshot_frame = SIZE_MAX;
  State full;
};

// Parses the original WAL: frames per file and the state after each.
Layout Parse(env::FileSystem* fs) {
  Layout l;
  auto names = Wal::SegmentNames(kDir, fs);
  EXPECT_TRUE(names.ok()) << names.status();
  l.names = *names;
  State st;
  for (size_t f = 0; f < l.names.size(); ++f) {
    const std::string path = env::JoinPath(kDir, l.names[f]);
    l.bytes.push_back(*env::ReadFileToString(fs, path));
    Decoder d(fs, {path});
    DecodedRecord rec;
    for (;;) {
      const uint64_t start = d.last_valid_offset();
      auto more = d.Next(&rec);
      EXPECT_TRUE(more.ok()) << more.status();
      if (!more.ok() || !*more) break;
      if (rec.type == static_cast<int64_t>(RecordType::kCrc)) d.UpdateCrc(rec.crc);
      if (rec.type == static_cast<int64_t>(RecordType::kEntry)) {
        raftpb::Entry e;
        EXPECT_TRUE(e.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size())));
        st.entries.resize(e.index() - 1);
        st.entries.push_back(e);
      } else if (rec.type == static_cast<int64_t>(RecordType::kSnapshot)) {
        l.first_snapshot_frame = std::min(l.first_snapshot_frame, l.frames.size());
      } else if (rec.type == static_cast<int64_t>(RecordType::kMetadata)) {
        EXPECT_EQ(rec.data, kMetadata);
        st.has_metadata = true;
      } else if (rec.type == static_cast<int64_t>(RecordType::kState)) {
        EXPECT_TRUE(st.hs.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size())));
      }
      uint64_t word, rec_bytes, pad;
      std::memcpy(&word, l.bytes[f].data() + start, 8);
      DecodeFrameLength(word, &rec_bytes, &pad);
      EXPECT_EQ(start + 8 + rec_bytes + pad, d.last_valid_offset());
      l.frames.push_back({f, start, start + 8 + rec_bytes, d.last_valid_offset(), st});
    }
    l.records_end.push_back(d.last_valid_offset());
  }
  l.full = st;
  return l;
}

// Builds the WAL the flips work on.
std::unique_ptr<env::FileSystem> BuildWal(bool two_segments) {
  auto fs = env::NewMemFileSystem();
  WalOptions o;
  o.fs = fs.get();
  o.segment_size = kSegmentSize;
  auto w = Wal::Create(kDir, kMetadata, o);
  EXPECT_TRUE(w.ok()) << w.status();
  EXPECT_OK((*w)->Save(HS(1, 1, 0), {E(1, 1, 10), E(2, 1, 30), E(3, 1, 5)}));
  EXPECT_OK((*w)->Save(HS(1, 1, 2), {E(4, 1, 700)}));  // crosses a sector boundary
  EXPECT_OK((*w)->SaveSnapshot({2, 1}));
  EXPECT_OK((*w)->Save(HS(2, 2, 3), {E(4, 2, 20), E(5, 2, 1)}));  // overrides 4
  if (two_segments) {
    EXPECT_OK((*w)->Save(HS(2, 2, 4), {E(6, 2, 1800)}));
    EXPECT_OK((*w)->Save(HS(2, 2, 5), {E(7, 2, 1800)}));
    EXPECT_OK((*w)->Save(HS(2, 2, 6), {E(8, 2, 100)}));  // cuts
    EXPECT_OK((*w)->Save(HS(2, 2, 7), {E(9, 2, 40)}));
    EXPECT_EQ((*w)->stats().cuts, 1u);
  }
  EXPECT_OK((*w)->Save(HS(2, 2, two_segments ? 8 : 4), {}));  // commit only
  EXPECT_OK((*w)->Close());
  return fs;
}

enum class Region { kRecord, kPad, kTerminator, kBeyond };

std::unique_ptr<env::FileSystem> WithFiles(const Layout& l, size_t file,
                                           const std::string& flipped) {
  auto fs = env::NewMemFileSystem();
  EXPECT_OK(env::CreateDirAll(fs.get(), kDir));
  for (size_t f = 0; f < l.names.size(); ++f) {
    auto w = fs->NewWritableFile(env::JoinPath(kDir, l.names[f]));
    EXPECT_OK(w.status());
    EXPECT_OK((*w)->Append(f == file ? flipped : l.bytes[f]));
    EXPECT_OK((*w)->Close());
  }
  return fs;
}

std::map<std::string, std::string> Files(env::FileSystem* fs) {
  return ::sealwal::testing::FsDirContents(fs, kDir);
}

struct Counts {
  int harmless = 0, read_errors = 0, read_torn = 0, repaired = 0, repair_refused = 0;
};

void FlipEveryByte(bool two_segments) {
  std::unique_ptr<env::FileSystem> src = BuildWal(two_segments);
  const Layout l = Parse(src.get());
  ASSERT_EQ(l.names.size(), two_segments ? 2u : 1u);
  const size_t last = l.names.size() - 1;
  ASSERT_EQ(l.bytes[last].size(), kSegmentSize);  // preallocated tail
  if (two_segments) {
    ASSERT_EQ(l.bytes[0].size(), l.records_end[0]);  // closed segment: no slack
  }
  Counts n;
  for (size_t file = 0; file < l.names.size(); ++file) {
    const std::string& orig = l.bytes[file];
    for (uint64_t o = 0; o < orig.size(); ++o) {
      // Where is o?
      Region region = Region::kBeyond;
      size_t frame = SIZE_MAX;  // global index of the damaged frame
      for (size_t i = 0; i < l.frames.size(); ++i) {
        const Frame& fr = l.frames[i];
        if (fr.file != file || o < fr.start || o >= fr.end) continue;
        region = o < fr.rec_end ? Region::kRecord : Region::kPad;
        frame = i;
      }
      if (frame == SIZE_MAX) {
        ASSERT_EQ(file, last) << o;  // closed segments are frames only
        region = o < l.records_end[file] + 8 ? Region::kTerminator : Region::kBeyond;
      }
      // The state just before the damaged record.
      const State& before =
          region == Region::kRecord ? (frame == 0 ? State{} : l.frames[frame - 1].after) : l.full;
      // The top byte of a length word only says how much padding follows:
      // flipped, the record itself still decodes (intact) and the damage
      // shows at the next frame -- or nowhere, when the record is the last
      // one and the zero pad now reads as the end of the log.
      const bool pad_flag_byte = region == Region::kRecord && o == l.frames[frame].start + 7;
      const bool last_frame = frame + 1 == l.frames.size();
      // Acceptable read-mode views of a torn log: before the damaged record,
      // or (pad flag byte) just after it.
      auto torn_view_ok = [&](const WalContents& c) {
        if (region != Region::kRecord) return Same(c, l.full);
        return Same(c, before) || (pad_flag_byte && Same(c, l.frames[frame].after));
      };
      // How much of the file a successful write-mode open keeps.
      const uint64_t valid_end =
          region == Region::kRecord ? l.frames[frame].rec_end : l.records_end[file];
      std::string flipped = orig;
      flipped[o] = static_cast<char>(flipped[o] ^ 0xFF);
      SCOPED_TRACE(absl::StrCat(l.names[file], " offset ", o, " region ",
                                static_cast<int>(region), " frame ", frame));

      std::unique_ptr<env::FileSystem> fs = WithFiles(l, file, flipped);
      WalOptions opts;
      opts.fs = fs.get();
      opts.segment_size = kSegmentSize;
      const auto pristine = Files(fs.get());

      // Read mode.
      WalContents rc;
      absl::Status rs;
      {
        auto r = Wal::OpenForRead(kDir, {}, opts);
        ASSERT_TRUE(r.ok()) << r.status();
        rs = (*r)->ReadAll(&rc);
      }
      EXPECT_EQ(Files(fs.get()), pristine) << "read mode wrote";
      const absl::Status vs = Wal::Verify(kDir, {}, opts);
      EXPECT_EQ(vs.ok(), rs.ok()) << "Verify " << vs << " vs ReadAll " << rs;
      switch (region) {
        case Region::kPad:
        case Region::kBeyond:
          ASSERT_TRUE(rs.ok()) << rs;
          EXPECT_FALSE(rc.torn_tail);
          EXPECT_TRUE(Same(rc, l.full)) << Show(rc);
          break;
        case Region::kTerminator:
          if (rs.ok()) {
            EXPECT_TRUE(rc.torn_tail);
            EXPECT_TRUE(Same(rc, l.full)) << Show(rc);
          }
          break;
        case Region::kRecord:
          if (rs.ok() && !rc.torn_tail) {
            EXPECT_TRUE(pad_flag_byte && last_frame && file == last)
                << "damage read back as a clean log: " << Show(rc);
            EXPECT_TRUE(Same(rc, l.full)) << Show(rc);
          } else if (rs.ok()) {
            EXPECT_TRUE(torn_view_ok(rc)) << Show(rc);
          }
          break;
      }
      if (!rs.ok()) {
        ++n.read_errors;
        EXPECT_NE(rs.code(), absl::StatusCode::kOk);
        EXPECT_NE(GetWalErrorClass(rs), WalErrorClass::kNone);
      } else if (rc.torn_tail) {
        ++n.read_torn;
      } else {
        ++n.harmless;
      }

      // Write mode.
      WalContents wc;
      absl::Status ws;
      {
        auto w = Wal::Open(kDir, {}, opts);
        ASSERT_TRUE(w.ok()) << w.status();
        ws = (*w)->ReadAll(&wc);
        if (ws.ok()) {
          ASSERT_OK((*w)->Close());
        }
      }
      const bool harmless = region == Region::kPad || region == Region::kBeyond ||
                            (pad_flag_byte && last_frame && file == last);
      if (region == Region::kPad || region == Region::kBeyond) {
        ASSERT_TRUE(ws.ok()) << ws;
      }
      if (ws.ok()) {
        ASSERT_TRUE(harmless) << "write mode accepted damage: " << Show(wc);
        EXPECT_TRUE(Same(wc, l.full)) << Show(wc);
        // Everything past the last record is zero again; the rest is as it was.
        auto after = Files(fs.get());
        std::string want = flipped.substr(0, valid_end);
        want.resize(orig.size(), '\0');
        EXPECT_TRUE(after[l.names[file]] == want) << "write-mode open left the file wrong";
        continue;
      }
      EXPECT_EQ(Files(fs.get()), pristine) << "a refused write-mode open wrote";

      // Repair.
      auto rep = Wal::Repair(kDir, opts);
      if (!rep.ok()) {
        ++n.repair_refused;
        EXPECT_NE(GetWalErrorClass(ws), WalErrorClass::kUnexpectedEof)
            << "torn tail not repaired: " << rep.status();
        EXPECT_EQ(Files(fs.get()), pristine) << "a refused Repair wrote";
        continue;
      }
      if (!*rep) {
        // Nothing to do in the last segment: the damage is elsewhere, and
        // must stay reported.
        EXPECT_NE(file, last);
        EXPECT_EQ(Files(fs.get()), pristine);
        auto w = Wal::Open(kDir, {}, opts);
        ASSERT_TRUE(w.ok());
        EXPECT_FALSE((*w)->ReadAll().ok());
        continue;
      }
      ++n.repaired;
      EXPECT_EQ(file, last);
      EXPECT_EQ(GetWalErrorClass(ws), WalErrorClass::kUnexpectedEof) << ws;
      // The cut-off tail is kept.
      auto files = Files(fs.get());
      EXPECT_EQ(files[l.names[file] + ".broken"], flipped);
      // The repaired log is the read-mode view, and it appends again.
      auto w = Wal::Open(kDir, {}, opts);
      ASSERT_TRUE(w.ok()) << w.status();
      WalContents after;
      const absl::Status as = (*w)->ReadAll(&after);
      EXPECT_TRUE(torn_view_ok(after)) << Show(after);
      if (!as.ok()) {
        // Torn before the snapshot record at {0,0}: nothing left to open at,
        // as etcd (the .broken copy keeps the rest).
        EXPECT_EQ(GetWalErrorClass(as), WalErrorClass::kSnapshotNotFound) << as;
        EXPECT_LE(frame, l.first_snapshot_frame);
        continue;
      }
      const uint64_t next = after.entries.empty() ? 1 : after.entries.back().index() + 1;
      ASSERT_OK((*w)->Save(HS(9, 9, 0), {E(next, 9, 50)}));
      ASSERT_OK((*w)->Close());
      auto r = Wal::OpenForRead(kDir, {}, opts);
      ASSERT_TRUE(r.ok());
      ASSERT_OK_AND_ASSIGN(WalContents again, (*r)->ReadAll());
      EXPECT_FALSE(again.torn_tail);
      ASSERT_EQ(again.entries.size(), after.entries.size() + 1);
      EXPECT_EQ(again.entries.back().index(), next);
    }
  }
  std::cout << "flips: harmless " << n.harmless << ", read errors " << n.read_errors
            << ", read as torn " << n.read_torn << "; repaired " << n.repaired
            << ", repair refused " << n.repair_refused << "\n";
  EXPECT_GT(n.harmless, 0);
  EXPECT_GT(n.read_errors, 0);
}

TEST(WalByteFlipTest, EveryByteOfOneSegmentIsReportedOrHarmless) { FlipEveryByte(false); }

TEST(WalByteFlipTest, EveryByteOfTwoSegmentsIsReportedOrHarmless) { FlipEveryByte(true); }

}  // namespace
}  // namespace sealwal::wal
