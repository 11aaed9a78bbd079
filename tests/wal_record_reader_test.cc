// RecordReader (sealwal/wal/record_reader.h): records in order with their
// (segment, offset); the end of a read told apart -- EOF, a torn tail, a
// CRC mismatch (record or segment chain), an I/O error -- and reported
// through the Reporter with the bytes not returned.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/wal/wal.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::wal {
namespace {

using End = RecordReader::End;

class CountingReporter : public RecordReader::Reporter {
 public:
  void Corruption(size_t bytes, const absl::Status& status) override {
    ++calls;
    this->bytes = bytes;
    this->status = status;
  }
  int calls = 0;
  size_t bytes = 0;
  absl::Status status;
};

// Three segments (cut by SwitchWriteKey) of a plaintext WAL.
std::string WriteWal(const testing::TempDir& tmp) {
  const std::string dir = tmp.Sub("wal");
  WalOptions o;
  o.preallocation = Preallocation::kFallocate;
  o.segment_size = 64 * 1024;
  auto w = Wal::Create(dir, "meta", o);
  EXPECT_OK(w.status());
  uint64_t index = 1;
  for (int seg = 0; seg < 3; ++seg) {
    for (int i = 0; i < 4; ++i, ++index) {
      raftpb::Entry e;
      e.set_index(index);
      e.set_term(1);
      e.set_data(std::string(100 + i, 'x'));
      raftpb::HardState hs;
      hs.set_term(1);
      hs.set_commit(index);
      EXPECT_OK((*w)->Save(hs, {e}));
    }
    if (seg < 2) {
      EXPECT_OK((*w)->SwitchWriteKey());
    }
  }
  EXPECT_OK((*w)->Close());
  return dir;
}

struct Seen {
  std::vector<Record> records;  // data not kept
  End end;
  absl::Status status;
};

Seen ReadAllRecords(RecordReader* r) {
  Seen s;
  Record rec;
  while (r->ReadRecord(&rec)) {
    rec.data = {};
    s.records.push_back(rec);
  }
  s.end = r->end();
  s.status = r->status();
  return s;
}

std::string SegmentPath(const std::string& dir, int i) {
  auto names = Wal::SegmentNames(dir, env::DefaultFileSystem());
  EXPECT_OK(names.status());
  return dir + "/" + (*names)[static_cast<size_t>(i)];
}

TEST(RecordReaderTest, RecordsComeWithTheirPositions) {
  testing::TempDir tmp;
  const std::string dir = WriteWal(tmp);
  CountingReporter rep;
  ASSERT_OK_AND_ASSIGN(auto r, RecordReader::OpenAll(dir, env::DefaultFileSystem(), &rep));
  EXPECT_EQ(r->paths().size(), 3u);
  Seen s = ReadAllRecords(r.get());
  EXPECT_EQ(s.end, End::kEof);
  EXPECT_OK(s.status);
  EXPECT_EQ(rep.calls, 0);
  // Each segment: crc, metadata, (state), then entries and states; offsets
  // start at 0 in each segment and grow by whole 8-byte-aligned frames.
  std::vector<int> crc_records_per_segment(3, 0);
  for (size_t i = 0; i < s.records.size(); ++i) {
    const Record& rec = s.records[i];
    ASSERT_LT(rec.position.segment, 3u);
    EXPECT_EQ(rec.position.offset % 8, 0u);
    if (rec.type == static_cast<int64_t>(RecordType::kCrc)) {
      EXPECT_EQ(rec.position.offset, 0u);
      ++crc_records_per_segment[rec.position.segment];
    } else {
      ASSERT_GT(i, 0u);
      const Record& prev = s.records[i - 1];
      EXPECT_EQ(rec.position.segment, prev.position.segment);
      EXPECT_GT(rec.position.offset, prev.position.offset);
    }
  }
  EXPECT_EQ(crc_records_per_segment, (std::vector<int>{1, 1, 1}));
  // Open at a position reads from the segment that covers it.
  ASSERT_OK_AND_ASSIGN(auto from, RecordReader::Open(dir, {5, 1}, env::DefaultFileSystem()));
  EXPECT_EQ(from->paths().size(), 2u);
  Record first;
  ASSERT_TRUE(from->ReadRecord(&first));
  EXPECT_EQ(first.position, (RecordPosition{1, 0}));
}

TEST(RecordReaderTest, TornTailIsNotCorruption) {
  testing::TempDir tmp;
  const std::string dir = WriteWal(tmp);
  const std::string last = SegmentPath(dir, 2);
  std::string bytes = testing::ReadFileOrDie(last);
  // Cut the last segment inside its last record.
  ASSERT_OK_AND_ASSIGN(auto whole, RecordReader::OpenAll(dir, env::DefaultFileSystem()));
  const Seen all = ReadAllRecords(whole.get());
  const uint64_t last_offset = all.records.back().position.offset;
  bytes.resize(static_cast<size_t>(last_offset + 20));
  testing::WriteFileOrDie(last, bytes);

  CountingReporter rep;
  ASSERT_OK_AND_ASSIGN(auto r, RecordReader::OpenAll(dir, env::DefaultFileSystem(), &rep));
  const Seen s = ReadAllRecords(r.get());
  EXPECT_EQ(s.end, End::kTornTail);
  EXPECT_EQ(GetWalErrorClass(s.status), WalErrorClass::kUnexpectedEof);
  EXPECT_EQ(s.records.size(), all.records.size() - 1);
  EXPECT_EQ(r->last_valid_offset(), last_offset);
  EXPECT_EQ(rep.calls, 1);
  EXPECT_EQ(rep.bytes, 20u);
  EXPECT_EQ(rep.status, s.status);
  // A finished reader stays finished.
  Record rec;
  EXPECT_FALSE(r->ReadRecord(&rec));
  EXPECT_EQ(rep.calls, 1);
}

// Reading `dir` stops at a CRC mismatch in the middle segment (etcd's text
// `etcd_text`), reported once with `bytes` not returned; no record
// after the middle segment is returned.
void ExpectCrcMismatch(const std::string& dir, const std::string& etcd_text, size_t bytes) {
  CountingReporter rep;
  ASSERT_OK_AND_ASSIGN(auto r, RecordReader::OpenAll(dir, env::DefaultFileSystem(), &rep));
  const Seen s = ReadAllRecords(r.get());
  EXPECT_EQ(s.end, End::kCorruption);
  EXPECT_EQ(GetWalErrorClass(s.status), WalErrorClass::kCrcMismatch);
  EXPECT_EQ(EtcdErrorText(s.status), etcd_text);
  EXPECT_EQ(rep.calls, 1);
  EXPECT_EQ(rep.bytes, bytes);
  EXPECT_EQ(rep.status, s.status);
  for (const Record& seen : s.records) EXPECT_LE(seen.position.segment, 1u);
}

TEST(RecordReaderTest, RecordCrcMismatchAndBrokenChainAreCorruption) {
  testing::TempDir tmp;
  const std::string dir = WriteWal(tmp);
  const std::string middle = SegmentPath(dir, 1);
  const std::string original = testing::ReadFileOrDie(middle);
  ASSERT_OK_AND_ASSIGN(auto whole, RecordReader::OpenAll(dir, env::DefaultFileSystem()));
  const Seen all = ReadAllRecords(whole.get());
  ASSERT_EQ(all.end, End::kEof);

  // A flipped byte in an entry's payload in the middle segment.
  uint64_t entry_offset = 0;
  for (const Record& rec : all.records) {
    if (rec.position.segment == 1 && rec.type == static_cast<int64_t>(RecordType::kEntry)) {
      entry_offset = rec.position.offset;
      break;
    }
  }
  ASSERT_GT(entry_offset, 0u);
  std::string bytes = original;
  bytes[static_cast<size_t>(entry_offset + 8 + 40)] ^= 0x01;
  testing::WriteFileOrDie(middle, bytes);
  ExpectCrcMismatch(dir, "walpb: crc mismatch", original.size() - entry_offset);

  // The middle segment's crc record no longer continues the chain.
  bytes = original;
  // The crc record is the varint after 0x08 0x04 0x10 in the first frame.
  ASSERT_EQ(bytes[8], 0x08);
  ASSERT_EQ(bytes[9], 0x04);
  ASSERT_EQ(bytes[10], 0x10);
  bytes[11] = static_cast<char>(bytes[11] ^ 0x01);
  testing::WriteFileOrDie(middle, bytes);
  // Reported from the crc record at offset 0.
  ExpectCrcMismatch(dir, "wal: crc mismatch", original.size());
}

TEST(RecordReaderTest, IoErrorIsToldApart) {
  testing::TempDir tmp;
  const std::string dir = WriteWal(tmp);
  CountingReporter rep;
  ASSERT_OK_AND_ASSIGN(auto r, RecordReader::OpenAll(dir, env::DefaultFileSystem(), &rep));
  // The second segment disappears under the reader.
  ASSERT_EQ(::unlink(SegmentPath(dir, 1).c_str()), 0);
  const Seen s = ReadAllRecords(r.get());
  EXPECT_EQ(s.end, End::kIoError);
  EXPECT_FALSE(s.status.ok());
  EXPECT_EQ(GetWalErrorClass(s.status), WalErrorClass::kOther);
  EXPECT_EQ(rep.calls, 1);
  EXPECT_EQ(rep.bytes, 0u);
  for (const Record& seen : s.records) EXPECT_EQ(seen.position.segment, 0u);
}

}  // namespace
}  // namespace sealwal::wal
