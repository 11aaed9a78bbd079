// Interop with etcd 3.4.23: every WAL check recorded in the fixtures'
// manifests (what etcd's own code returned) must come out the same from our
// reader, and replaying the recorded writer ops must give etcd's bytes.
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/env/file_system.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using testing::Field;
using testing::HasField;

uint64_t U64(const Value& v) { return static_cast<uint64_t>(v.number_value()); }

std::string U64le(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

void ExpectResult(const WalContents& c, const Struct& want) {
  if (HasField(want, "metadata_hex")) {
    EXPECT_EQ(absl::BytesToHexString(c.metadata), Field(want, "metadata_hex").string_value());
  }
  const Struct& hs = Field(want, "hardstate").struct_value();
  EXPECT_EQ(c.hardstate.term(), U64(Field(hs, "term")));
  EXPECT_EQ(c.hardstate.vote(), U64(Field(hs, "vote")));
  EXPECT_EQ(c.hardstate.commit(), U64(Field(hs, "commit")));
  ASSERT_EQ(c.entries.size(), U64(Field(want, "entry_count")));
  if (!c.entries.empty()) {
    EXPECT_EQ(c.entries.front().index(), U64(Field(want, "first_index")));
    EXPECT_EQ(c.entries.back().index(), U64(Field(want, "last_index")));
    EXPECT_EQ(c.entries.back().term(), U64(Field(want, "last_term")));
  }
  std::string data, full;
  for (const auto& e : c.entries) {
    data += e.data();
    full += U64le(e.index()) + U64le(e.term()) + U64le(static_cast<uint64_t>(e.type())) +
            U64le(e.data().size()) + e.data();
  }
  EXPECT_EQ(data.size(), U64(Field(want, "entries_data_bytes")));
  EXPECT_EQ(testing::Sha256Hex(data), Field(want, "entries_data_sha256").string_value());
  EXPECT_EQ(testing::Sha256Hex(full), Field(want, "entries_full_sha256").string_value());
}

void ExpectError(const absl::Status& s, const Struct& check) {
  const std::string want = Field(check, "expect_error").string_value();
  EXPECT_EQ(std::string(WalErrorClassName(GetWalErrorClass(s))), want) << s;
  if (HasField(check, "error_text") && !want.empty()) {
    EXPECT_EQ(EtcdErrorText(s), Field(check, "error_text").string_value()) << s;
  }
}

void RunCheck(const std::string& wal_dir, const Struct& check) {
  const std::string mode = Field(check, "mode").string_value();
  const Struct& at = Field(check, "open_at").struct_value();
  const SnapshotPosition snap{U64(Field(at, "index")), U64(Field(at, "term"))};
  SCOPED_TRACE(absl::StrCat(Field(check, "name").string_value(), " (", mode, ")"));
  testing::TempDir tmp;
  const std::string copy = tmp.Sub("wal");
  testing::CopyDir(wal_dir, copy);

  absl::Status s;
  WalContents c;
  if (mode == "read" || mode == "write" || mode == "repair") {
    if (mode == "repair") {
      // etcd's Repair returns true unless the tail is corrupt beyond a tear.
      absl::StatusOr<bool> r = Wal::Repair(copy);
      EXPECT_EQ(r.ok(), Field(check, "repaired").bool_value()) << r.status();
    }
    auto w = mode == "read" ? Wal::OpenForRead(copy, snap) : Wal::Open(copy, snap);
    s = w.ok() ? (*w)->ReadAll(&c) : w.status();
  } else if (mode == "verify") {
    s = Wal::Verify(copy, snap);
  } else if (mode == "valid_snapshots") {
    auto snaps = Wal::ValidSnapshotEntries(copy);
    s = snaps.status();
    if (snaps.ok()) {
      const auto& want = Field(check, "snapshots").list_value().values();
      ASSERT_EQ(snaps->size(), static_cast<size_t>(want.size()));
      for (int i = 0; i < want.size(); ++i) {
        EXPECT_EQ((*snaps)[i].index, U64(Field(want[i].struct_value(), "index")));
        EXPECT_EQ((*snaps)[i].term, U64(Field(want[i].struct_value(), "term")));
      }
    }
  } else {
    FAIL() << "unknown mode " << mode;
  }
  ExpectError(s, check);
  if (HasField(check, "result") &&
      (s.ok() || GetWalErrorClass(s) == WalErrorClass::kSnapshotNotFound)) {
    ExpectResult(c, Field(check, "result").struct_value());
  }
}

class WalFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WalFixtureTest, ManifestChecks) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  const std::string dir = testing::FixturesDir() + "/" + GetParam();
  const Struct m = testing::LoadJson(dir + "/manifest.json");
  if (!HasField(m, "wal_checks")) GTEST_SKIP() << "no WAL in this fixture";
  int ran = 0;
  for (const Value& v : Field(m, "wal_checks").list_value().values()) {
    const Struct& check = v.struct_value();
    // swarmkit's secretbox (XSalsa20-Poly1305) is not an algorithm we
    // decrypt; its undecrypted checks still run.
    if (HasField(check, "decrypt")) continue;
    RunCheck(dir + "/" + Field(m, "wal_dir").string_value(), check);
    ++ran;
  }
  EXPECT_GT(ran, 0);
}

INSTANTIATE_TEST_SUITE_P(Etcd3423, WalFixtureTest,
                         ::testing::Values("basic", "torn-truncated", "torn-zeroed", "crc-flip",
                                           "secretbox"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

// Replays the writer plan recorded in a manifest through our Wal.
absl::Status Replay(const Struct& m, const std::string& wal_dir, uint64_t seed) {
  std::unique_ptr<Wal> w;
  for (const Value& v : Field(m, "ops").list_value().values()) {
    const Struct& op = v.struct_value();
    const std::string kind = Field(op, "op").string_value();
    if (kind == "create") {
      WalOptions o;
      o.segment_size = U64(Field(op, "segment_size_bytes"));
      auto c = Wal::Create(wal_dir, Field(op, "metadata").string_value(), o);
      if (!c.ok()) return c.status();
      w = std::move(*c);
    } else if (kind == "save") {
      raftpb::HardState hs;
      const Struct& h = Field(op, "hardstate").struct_value();
      hs.set_term(U64(Field(h, "term")));
      hs.set_vote(U64(Field(h, "vote")));
      hs.set_commit(U64(Field(h, "commit")));
      std::vector<raftpb::Entry> ents;
      if (HasField(op, "entries")) {
        for (const Value& ev : Field(op, "entries").list_value().values()) {
          const auto& a = ev.list_value().values();
          raftpb::Entry e;
          e.set_index(U64(a[0]));
          e.set_term(U64(a[1]));
          e.set_type(static_cast<raftpb::EntryType>(U64(a[2])));
          const uint64_t len = U64(a[3]);
          if (a.size() > 4) {
            e.set_data(absl::HexStringToBytes(a[4].string_value()));
          } else if (len > 0) {
            e.set_data(DataGen(seed, e.index(), e.term(), len));
          }
          ents.push_back(std::move(e));
        }
      }
      if (absl::Status s = w->Save(hs, ents); !s.ok()) return s;
    } else if (kind == "save_snapshot") {
      if (absl::Status s = w->SaveSnapshot({U64(Field(op, "index")), U64(Field(op, "term"))});
          !s.ok()) {
        return s;
      }
    } else if (kind == "close") {
      if (absl::Status s = w->Close(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

class WalReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WalReplayTest, SegmentsAreByteIdenticalToEtcd) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  const std::string dir = testing::FixturesDir() + "/" + GetParam();
  const Struct m = testing::LoadJson(dir + "/manifest.json");
  testing::TempDir tmp;
  const std::string ours = tmp.Sub("wal");
  ASSERT_OK(Replay(m, ours, U64(Field(m, "data_seed"))));
  auto names = env::DefaultFileSystem()->ListDir(ours);
  ASSERT_OK(names);
  std::vector<std::string> want;
  for (const Value& v : Field(m, "wal_files").list_value().values()) {
    want.push_back(v.string_value());
  }
  ASSERT_EQ(*names, want);  // same cut points, same names, no stray .tmp
  for (const auto& n : want) {
    const std::string a = testing::ReadFileOrDie(ours + "/" + n);
    const std::string b = testing::ReadFileOrDie(dir + "/wal/" + n);
    EXPECT_EQ(a.size(), b.size()) << n;
    EXPECT_TRUE(a == b) << n << " differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Etcd3423, WalReplayTest, ::testing::Values("basic"));

}  // namespace
}  // namespace sealwal::wal
