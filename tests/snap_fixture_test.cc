// etcd interop for snapshots: the etcd-3.4.23 fixtures' snap directories
// load as their manifests record (the newest-corrupt fallback and its
// .broken rename included), and .snap files we write are read by etcd's own
// code through the etcdwal-peer driver (check-dir against a manifest of
// what we wrote, and dump).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/snap/snapshotter.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::snap {
namespace {

using testing::Field;
using testing::RunCommand;
using testing::ShellQuote;

std::vector<uint64_t> Voters(const google::protobuf::Value& v) {
  std::vector<uint64_t> out;
  for (const auto& x : v.list_value().values()) out.push_back(static_cast<uint64_t>(x.number_value()));
  return out;
}

void ExpectMatches(const google::protobuf::Struct& want, const LoadedSnapshot& got,
                   bool check_data) {
  EXPECT_EQ(got.file, Field(want, "file").string_value());
  EXPECT_EQ(got.metadata.index(), static_cast<uint64_t>(Field(want, "index").number_value()));
  EXPECT_EQ(got.metadata.term(), static_cast<uint64_t>(Field(want, "term").number_value()));
  std::vector<uint64_t> voters(got.metadata.conf_state().voters().begin(),
                               got.metadata.conf_state().voters().end());
  EXPECT_EQ(voters, Voters(Field(want, "voters")));
  if (check_data) {
    EXPECT_EQ(got.data.size(), static_cast<size_t>(Field(want, "data_len").number_value()));
    EXPECT_EQ(testing::Sha256Hex(got.data), Field(want, "data_sha256").string_value());
  }
}

TEST(SnapFixtureTest, EtcdSnapDirsLoadAsTheirManifestsSay) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  for (const std::string fixture : {"basic", "snap-newest-corrupt", "secretbox"}) {
    SCOPED_TRACE(fixture);
    const std::string root = testing::FixturesDir() + "/" + fixture;
    const auto manifest = testing::LoadJson(root + "/manifest.json");
    const auto& snap = Field(manifest, "snap").struct_value();
    testing::TempDir tmp;
    const std::string dir = tmp.Sub("snap");
    testing::CopyDir(root + "/" + Field(manifest, "snap_dir").string_value(), dir);
    SnapshotterOptions o;
    ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(dir, o));
    // secretbox: swarmkit's encrypted data is not ours to decrypt; its
    // metadata still reads, the data stays sealed.
    const bool plain = !testing::HasField(snap, "decrypt");
    // Per file, read-only.
    for (const auto& pf : Field(snap, "per_file").list_value().values()) {
      const auto& f = pf.struct_value();
      ASSERT_OK_AND_ASSIGN(SnapFileInfo info, s->Inspect(Field(f, "file").string_value()));
      const std::string err = Field(f, "expect_error").string_value();
      if (err.empty()) {
        EXPECT_OK(info.status);
        EXPECT_EQ(info.metadata.index(), static_cast<uint64_t>(Field(f, "index").number_value()));
      } else {
        EXPECT_EQ(SnapErrorClassName(GetSnapError(info.status)), err);
      }
    }
    // Load, which renames broken files as etcd does.
    const auto& load = Field(snap, "load").struct_value();
    LoadReport report;
    ASSERT_OK_AND_ASSIGN(LoadedSnapshot l, s->Load(&report));
    ExpectMatches(load, l, plain);
    std::vector<std::string> broken;
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, env::DefaultFileSystem()->ListDir(dir));
    for (const auto& n : names) {
      if (absl::EndsWith(n, ".broken")) broken.push_back(n);
    }
    std::vector<std::string> want_broken;
    if (testing::HasField(load, "broken_after")) {
      for (const auto& b : Field(load, "broken_after").list_value().values()) {
        want_broken.push_back(b.string_value());
      }
    }
    EXPECT_EQ(broken, want_broken);
  }
}

TEST(SnapFixtureTest, EtcdReadsWhatWeWrite) {
  const std::string peer = testing::PeerBinary();
  SEALWAL_SKIP_WITHOUT_PEER(peer);
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("snap");
  SnapshotterOptions o;
  o.create_dir = true;
  ASSERT_OK_AND_ASSIGN(auto s, Snapshotter::Open(dir, o));
  struct Case {
    uint64_t index, term;
    std::vector<uint64_t> voters;
    size_t size;
  };
  const std::vector<Case> cases = {{500, 2, {1, 2, 3}, 10000}, {900, 3, {1, 2, 3, 4}, 20000},
                                   {1000, 3, {1}, 1}, {5000, 7, {1, 2, 3, 4, 5}, 1 << 20}};
  std::string per_file = "[";
  for (const Case& c : cases) {
    raftpb::SnapshotMetadata md;
    md.set_index(c.index);
    md.set_term(c.term);
    for (uint64_t v : c.voters) md.mutable_conf_state()->add_voters(v);
    const std::string data = DataGen(42, c.index, c.term, c.size);
    ASSERT_OK(s->Save(md, data));
    std::string voters;
    for (uint64_t v : c.voters) absl::StrAppend(&voters, voters.empty() ? "" : ",", v);
    absl::StrAppend(&per_file, per_file.size() > 1 ? "," : "", "{\"file\":\"",
                    SnapFileName(c.term, c.index), "\",\"expect_error\":\"\",\"index\":", c.index,
                    ",\"term\":", c.term, ",\"voters\":[", voters, "],\"data_len\":", c.size,
                    ",\"data_sha256\":\"", testing::Sha256Hex(data), "\"}");
  }
  per_file += "]";
  // etcd lists names ascending; Load picks the newest (the last case).
  std::string files;
  for (const Case& c : cases) {
    absl::StrAppend(&files, files.empty() ? "" : ",", "\"", SnapFileName(c.term, c.index), "\"");
  }
  const std::string last = per_file.substr(per_file.rfind("{\"file\""));
  const std::string manifest = absl::StrCat(
      "{\"format\":\"etcdwal-peer-fixture/v1\",\"name\":\"sealwal-written\",\"snap_dir\":\".\","
      "\"snap\":{\"files\":[", files, "],\"per_file\":", per_file, ",\"load\":",
      last.substr(0, last.size() - 1), "}}");
  testing::WriteFileOrDie(tmp.Sub("manifest.json"), manifest);
  auto r = RunCommand(absl::StrCat(ShellQuote(peer), " check-dir --dir ", ShellQuote(dir),
                                   " --manifest ", ShellQuote(tmp.Sub("manifest.json")),
                                   " --snap-only"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("PASS"));
  // And a deliberately wrong expectation fails, so the check has teeth.
  std::string wrong = manifest;
  wrong.replace(wrong.rfind(testing::Sha256Hex(DataGen(42, 5000, 7, 1 << 20))), 4, "0000");
  testing::WriteFileOrDie(tmp.Sub("wrong.json"), wrong);
  auto w = RunCommand(absl::StrCat(ShellQuote(peer), " check-dir --dir ", ShellQuote(dir),
                                   " --manifest ", ShellQuote(tmp.Sub("wrong.json")),
                                   " --snap-only"));
  EXPECT_EQ(w.exit_code, 1) << w.out << w.err;
  // dump: etcd's Load picks the same file with the same data.
  auto d = RunCommand(absl::StrCat(ShellQuote(peer), " dump --dir ", ShellQuote(dir)));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto dump = testing::LoadJsonString(d.out);
  const auto& load = Field(Field(dump, "snap").struct_value(), "load").struct_value();
  EXPECT_EQ(Field(load, "file").string_value(), SnapFileName(7, 5000));
  EXPECT_EQ(Field(load, "data_sha256").string_value(),
            testing::Sha256Hex(DataGen(42, 5000, 7, 1 << 20)));
  // A CRC-broken file of ours is broken for etcd too.
  std::string b = testing::ReadFileOrDie(dir + "/" + SnapFileName(7, 5000));
  b[b.size() / 2] ^= 1;
  testing::WriteFileOrDie(dir + "/" + SnapFileName(7, 5000), b);
  auto d2 = RunCommand(absl::StrCat(ShellQuote(peer), " dump --dir ", ShellQuote(dir)));
  const auto dump2 = testing::LoadJsonString(d2.out);
  const auto& load2 = Field(Field(dump2, "snap").struct_value(), "load").struct_value();
  EXPECT_EQ(Field(load2, "file").string_value(), SnapFileName(3, 1000));
}

}  // namespace
}  // namespace sealwal::snap
