// `sealwal store migrate` and storage::Migrate (sealwal/storage/migrate.h):
//   - etcd 3.4's `basic` fixture as DATADIR/wal-v3 + snap-v3 migrates to
//     encrypted and back: the same `store verify` lines and `wal dump` jsonl,
//     byte-identical WAL segments, no plaintext entry bytes in the
//     encrypted WAL;
//   - a store made by `store init --plaintext` + `store gen` (snapshots,
//     several segments) round trips, locked under a given unlock key;
//   - a crash (power loss or process death) at every write step of a
//     migration, both ways, over the fault-injection file system: the store
//     Open sees is always exactly one, with identical content, and
//     re-running Migrate finishes;
//   - a wrong or missing unlock key, a torn tail and a writer holding the
//     WAL are refused with everything left untouched; --help.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/mem_file_system.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/keyring_loader.h"
#include "sealwal/storage/migrate.h"
#include "sealwal/storage/raft_storage.h"
#include "sealwal/wal/record_reader.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "testing/fault_injection_file_system.h"
#include "testing/status_matchers.h"
#include "testing/test_util.h"

namespace sealwal::storage {
namespace {

using ::sealwal::testing::CommandResult;
using ::sealwal::testing::ExpectOneErrorLine;
using ::sealwal::testing::LineValue;
using ::sealwal::testing::RunCommand;
using ::sealwal::testing::ShellQuote;
using ::sealwal::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kCli = SEALWAL_CLI_BIN;
constexpr char kUnlock[] = "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

// ---------------------------------------------------------------------------
// The command line.

class MigrateCliTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args, const std::string& unlock = "") {
    return RunCommand((unlock.empty() ? std::string("env -u SEALWAL_UNLOCK_KEY ")
                                      : "SEALWAL_UNLOCK_KEY=" + ShellQuote(unlock) + " ") +
                      "SEALWAL_RESERVATION_BLOCK=64 " + ShellQuote(kCli) + " " + args);
  }
  // The lines of `store verify` that describe the content.
  std::string VerifyLines(const std::string& unlock = "") {
    CommandResult v = Run("store verify " + ShellQuote(dir_), unlock);
    EXPECT_EQ(v.exit_code, 0) << v.err;
    return absl::StrCat("hardstate ", LineValue(v.out, "hardstate"), "\nentries ",
                        LineValue(v.out, "entries"), "\nsnapshot ", LineValue(v.out, "snapshot"),
                        "\ndigest ", LineValue(v.out, "digest"), "\n");
  }
  std::string Dump(const std::string& wal_dir, const std::string& extra = "") {
    CommandResult d = Run("wal dump " + ShellQuote(wal_dir) + " --format jsonl" + extra);
    EXPECT_EQ(d.exit_code, 0) << d.err;
    return d.out;
  }
  // Every file of DATADIR and its subdirectories, path -> bytes.
  std::map<std::string, std::string> Tree() {
    std::map<std::string, std::string> all;
    for (const std::string& n : testing::ListDirNames(dir_)) {
      const std::string p = dir_ + "/" + n;
      if (std::filesystem::is_directory(p)) {
        for (auto& [name, bytes] : testing::DirContents(p)) all[n + "/" + name] = bytes;
      } else {
        all[n] = testing::ReadFileOrDie(p);
      }
    }
    return all;
  }
  void LayOutFixture(const std::string& name) {
    const std::string src = testing::FixturesDir() + "/" + name;
    std::filesystem::create_directories(dir_);
    testing::CopyDir(src + "/wal", dir_ + "/wal-v3");
    if (!testing::ListDirNames(src + "/snap").empty()) {
      testing::CopyDir(src + "/snap", dir_ + "/snap-v3");
    }
  }

  testing::TempDir tmp_;
  const std::string dir_ = tmp_.Sub("node");
};

TEST_F(MigrateCliTest, Help) {
  for (const char* args : {"store migrate --help", "store migrate -h",
                                  "store migrate DIR --encrypt --help"}) {
    CommandResult r = Run(std::string(args));
    EXPECT_EQ(r.exit_code, 0) << args;
    EXPECT_THAT(r.out, StartsWith("usage: sealwal store")) << args;
    EXPECT_THAT(r.out, StartsWith("usage: sealwal store migrate [OPTIONS] DATADIR")) << args;
    EXPECT_THAT(r.out, HasSubstr("--encrypt")) << args;
    EXPECT_THAT(r.out, HasSubstr("--decrypt")) << args;
    EXPECT_EQ(r.err, "") << args;
  }
  for (const char* args : {"store migrate", "store migrate D", "store migrate D --encrypt --decrypt",
                                  "store migrate D --encrypt --bogus 1"}) {
    CommandResult r = Run(std::string(args));
    EXPECT_EQ(r.exit_code, 2) << args;
    ExpectOneErrorLine(r);
  }
}

TEST_F(MigrateCliTest, EtcdFixtureRoundTripIsIdentical) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  LayOutFixture("basic");
  const std::map<std::string, std::string> original = Tree();
  ASSERT_FALSE(original.empty());
  const std::string lines = VerifyLines();
  // verify reads every retained entry: the fixture still has its first segment.
  EXPECT_THAT(lines, HasSubstr("entries 1..1000"));
  EXPECT_THAT(lines, HasSubstr("snapshot 900 3"));
  const std::string dump = Dump(dir_ + "/wal-v3");
  ASSERT_FALSE(dump.empty());

  CommandResult enc = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_EQ(LineValue(enc.out, "kind"), "encrypted");
  EXPECT_EQ(LineValue(enc.out, "key-file"), "created unlocked");
  EXPECT_EQ(LineValue(enc.out, "segments"), "5");
  EXPECT_EQ(LineValue(enc.out, "snapshots"), "2");
  EXPECT_EQ(LineValue(enc.out, "entry-records"), "1020");  // 281..300 written twice
  EXPECT_EQ(testing::ListDirNames(dir_),
            (std::vector<std::string>{"node.key", "node.key.lock", "snap-v3-encrypted",
                                      "wal-v3-encrypted"}));
  EXPECT_EQ(VerifyLines(), lines);
  // The encrypted WAL reads back (through node.key) as the same log.
  EXPECT_EQ(Dump(dir_ + "/wal-v3-encrypted", " --key-file " + ShellQuote(dir_ + "/node.key")),
            dump);
  // Same segment names; no entry's plaintext is left in them.
  std::string sealed;
  for (auto& [name, bytes] : original) {
    if (!absl::StartsWith(name, "wal-v3/")) continue;
    const std::string twin = dir_ + "/wal-v3-encrypted/" + name.substr(7);
    sealed += testing::ReadFileOrDie(twin);
  }
  int checked = 0;
  for (absl::string_view line : absl::StrSplit(dump, '\n')) {
    const size_t at = line.find("\"data_b64\":\"");
    if (!absl::StrContains(line, "\"record\":\"entry\"") || at == absl::string_view::npos) continue;
    absl::string_view b64 = line.substr(at + 12);
    b64 = b64.substr(0, b64.find('"'));
    std::string data;
    ASSERT_TRUE(absl::Base64Unescape(b64, &data));
    if (data.size() < 24) continue;
    ++checked;
    EXPECT_EQ(sealed.find(data.substr(0, 24)), std::string::npos) << line.substr(0, 60);
  }
  EXPECT_GT(checked, 900);
  // Migrating again is refused: it is already encrypted.
  CommandResult again = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
  EXPECT_EQ(again.exit_code, 2);
  ExpectOneErrorLine(again);

  CommandResult dec = Run("store migrate " + ShellQuote(dir_) + " --decrypt");
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(LineValue(dec.out, "kind"), "plaintext");
  EXPECT_EQ(VerifyLines(), lines);
  EXPECT_EQ(Dump(dir_ + "/wal-v3"), dump);
  // Byte for byte: every segment and snapshot as etcd wrote it; node.key stays.
  std::map<std::string, std::string> back = Tree();
  EXPECT_TRUE(back.count("node.key"));
  back.erase("node.key");
  back.erase("node.key.lock");
  EXPECT_EQ(back.size(), original.size());
  for (auto& [name, bytes] : original) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_TRUE(back[name] == bytes) << name << " differs after the round trip";
  }
}

TEST_F(MigrateCliTest, GeneratedStoreRoundTripLockedUnderTheGivenKey) {
  ASSERT_EQ(Run("store init " + ShellQuote(dir_) + " --plaintext").exit_code, 0);
  CommandResult gen = Run("store gen " + ShellQuote(dir_) +
                          " --entries 700 --size 200 --batch 9 --seed 5 --snapshot-every 150 "
                          "--segment-size 16384");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const std::string lines = VerifyLines();
  // (`wal dump` needs --from once gen's GC removed segment 0.)
  std::map<std::string, std::string> wal_before = testing::DirContents(dir_ + "/wal-v3");
  ASSERT_GT(wal_before.size(), 3u);

  CommandResult enc = Run("store migrate " + ShellQuote(dir_) + " --encrypt", kUnlock);
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_EQ(enc.err, "");
  EXPECT_EQ(LineValue(enc.out, "key-file"), "created locked");
  EXPECT_EQ(LineValue(enc.out, "snapshots"), "2");
  EXPECT_EQ(VerifyLines(kUnlock), lines);
  CommandResult v = Run("store verify " + ShellQuote(dir_) + " --expect-seed 5", kUnlock);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  // Locked: without the unlock key nothing opens, and decrypt is refused
  // with nothing touched.
  const std::map<std::string, std::string> enc_tree = Tree();
  CommandResult no_key = Run("store migrate " + ShellQuote(dir_) + " --decrypt");
  EXPECT_EQ(no_key.exit_code, 2);
  ExpectOneErrorLine(no_key);
  CommandResult wrong = Run("store migrate " + ShellQuote(dir_) + " --decrypt",
                            "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA");
  EXPECT_EQ(wrong.exit_code, 2);
  ExpectOneErrorLine(wrong);
  EXPECT_TRUE(Tree() == enc_tree);
  // The inspect view: every retained file under the one DEK of node.key.
  CommandResult ins = Run("store inspect " + ShellQuote(dir_), kUnlock);
  EXPECT_EQ(ins.exit_code, 0) << ins.err;
  EXPECT_EQ(LineValue(ins.out, "keys-present"), "true");

  CommandResult dec = Run("store migrate " + ShellQuote(dir_) + " --decrypt", kUnlock);
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(VerifyLines(), lines);
  EXPECT_TRUE(testing::DirContents(dir_ + "/wal-v3") == wal_before);
  // The store goes on: gen continues on the migrated store.
  CommandResult more = Run("store gen " + ShellQuote(dir_) +
                           " --entries 20 --size 200 --batch 9 --seed 5 --segment-size 16384");
  EXPECT_EQ(more.exit_code, 0) << more.err;
  EXPECT_EQ(Run("store verify " + ShellQuote(dir_) + " --expect-seed 5").exit_code, 0);
}

TEST_F(MigrateCliTest, WrongKeyForAnExistingKeyFileTouchesNothing) {
  ASSERT_EQ(Run("store init " + ShellQuote(dir_) + " --plaintext").exit_code, 0);
  ASSERT_EQ(Run("store gen " + ShellQuote(dir_) + " --entries 30 --size 50 --batch 4 --seed 2")
                .exit_code,
            0);
  // An existing, locked node.key (made by `key init`) is used as is; the
  // wrong unlock key changes nothing.
  CommandResult ki = Run("key init --key-file " + ShellQuote(dir_ + "/node.key") + " --autolock");
  ASSERT_EQ(ki.exit_code, 0) << ki.err;
  const std::string unlock = LineValue(ki.out, "unlock-key");
  ASSERT_THAT(unlock, StartsWith("SEALWAL-1-"));
  const std::map<std::string, std::string> before = Tree();
  CommandResult wrong = Run("store migrate " + ShellQuote(dir_) + " --encrypt",
                            "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA");
  EXPECT_EQ(wrong.exit_code, 2);
  ExpectOneErrorLine(wrong);
  CommandResult none = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
  EXPECT_EQ(none.exit_code, 2);
  ExpectOneErrorLine(none);
  std::map<std::string, std::string> after = Tree();
  after.erase("node.key.lock");
  std::map<std::string, std::string> b = before;
  b.erase("node.key.lock");
  EXPECT_TRUE(after == b);
  CommandResult ok = Run("store migrate " + ShellQuote(dir_) + " --encrypt", unlock);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(LineValue(ok.out, "key-file"), "existing");
  EXPECT_EQ(Run("store verify " + ShellQuote(dir_) + " --expect-seed 2", unlock).exit_code, 0);
  // Decrypting a plaintext store is refused.
  ASSERT_EQ(Run("store migrate " + ShellQuote(dir_) + " --decrypt", unlock).exit_code, 0);
  CommandResult twice = Run("store migrate " + ShellQuote(dir_) + " --decrypt", unlock);
  EXPECT_EQ(twice.exit_code, 2);
  ExpectOneErrorLine(twice);
}

TEST_F(MigrateCliTest, FilesItWouldNotCarryOverAreRefusedUntouched) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  LayOutFixture("basic");
  // etcd keeps its backend in member/snap/db; a .broken copy; neither can
  // be carried over, and deleting them with the old directory would lose them.
  for (const char* f : {"snap-v3/db", "wal-v3/0000000000000004-000000000000037b.wal.broken"}) {
    testing::WriteFileOrDie(dir_ + "/" + f, "something");
    const std::map<std::string, std::string> before = Tree();
    CommandResult r = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
    EXPECT_EQ(r.exit_code, 2) << f;
    ExpectOneErrorLine(r);
    EXPECT_THAT(r.err, HasSubstr(f));
    EXPECT_TRUE(Tree() == before) << f;
    std::filesystem::remove(dir_ + "/" + f);
  }
  // Leftover temp files are not carried over (listed as skipped).
  testing::WriteFileOrDie(dir_ + "/wal-v3/0.tmp", std::string(4096, '\0'));
  CommandResult ok = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(LineValue(ok.out, "skipped"), "wal-v3/0.tmp");
}

TEST_F(MigrateCliTest, DecryptWithoutTheFilesDekIsAKeyErrorAndTouchesNothing) {
  ASSERT_EQ(Run("store init " + ShellQuote(dir_)).exit_code, 0);
  ASSERT_EQ(Run("store gen " + ShellQuote(dir_) +
                " --entries 50 --size 80 --batch 5 --seed 6 --snapshot-every 20")
                .exit_code,
            0);
  // Another key file (another DEK) in place of the store's.
  std::filesystem::remove(dir_ + "/node.key");
  ASSERT_EQ(Run("key init --key-file " + ShellQuote(dir_ + "/node.key")).exit_code, 0);
  const std::map<std::string, std::string> before = Tree();
  CommandResult r = Run("store migrate " + ShellQuote(dir_) + " --decrypt");
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("key id"));
  EXPECT_TRUE(Tree() == before);
  // No key file at all.
  std::filesystem::remove(dir_ + "/node.key");
  CommandResult none = Run("store migrate " + ShellQuote(dir_) + " --decrypt");
  EXPECT_EQ(none.exit_code, 2);
  ExpectOneErrorLine(none);
  EXPECT_THAT(testing::ListDirNames(dir_),
              ::testing::ElementsAre("node.key.lock", "snap-v3-encrypted", "wal-v3-encrypted"));
}

TEST_F(MigrateCliTest, TornTailIsRefusedUntouched) {
  SEALWAL_SKIP_WITHOUT_FIXTURES();
  LayOutFixture("torn-truncated");
  const std::map<std::string, std::string> before = Tree();
  CommandResult r = Run("store migrate " + ShellQuote(dir_) + " --encrypt");
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("torn"));
  EXPECT_TRUE(Tree() == before);
  EXPECT_EQ(testing::ListDirNames(dir_), (std::vector<std::string>{"wal-v3"}));
}

// ---------------------------------------------------------------------------
// The library, over the in-memory and fault-injection file systems.

constexpr char kMetadata[] = "node=1 cluster=migrate";

pem::UnlockKey TestUnlockKey() {
  auto k = pem::UnlockKey::FromBytes(std::string(32, '\x42'));
  EXPECT_OK(k.status());
  return std::move(*k);
}

StorageOptions StoreOptions(env::FileSystem* fs, bool encrypted) {
  StorageOptions o;
  o.fs = fs;
  o.data_dir = "/data/node";
  o.create_if_missing = true;
  o.encrypted = encrypted;
  o.metadata = kMetadata;
  if (encrypted) o.unlock_key = TestUnlockKey();
  o.segment_size = 8 * 1024;
  o.preallocation = wal::Preallocation::kFallocate;
  o.reservation_block = 16;
  return o;
}

raftpb::SnapshotMetadata Meta(uint64_t index, uint64_t term) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(term);
  m.mutable_conf_state()->add_voters(1);
  m.mutable_conf_state()->add_voters(2);
  return m;
}

// A store with entries 1..60 in several segments (entries 41..45 of term 1
// overwritten by term 2, empty entries among them), an inline snapshot at
// 20 and a streamed one at 50.
absl::Status MakeStore(env::FileSystem* fs, bool encrypted) {
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(StoreOptions(fs, encrypted)));
  SEALWAL_RETURN_IF_ERROR(s->Bootstrap().status());
  auto batch = [&](uint64_t lo, uint64_t hi, uint64_t term) {
    std::vector<raftpb::Entry> es;
    for (uint64_t i = lo; i <= hi; ++i) {
      raftpb::Entry& e = es.emplace_back();
      e.set_index(i);
      e.set_term(term);
      e.set_type(i % 7 == 0 ? raftpb::EntryConfChange : raftpb::EntryNormal);
      if (i % 11 != 0) e.set_data(DataGen(9, i, term, 100 + (i * 37) % 400));
    }
    raftpb::HardState hs;
    hs.set_term(term);
    hs.set_vote(1);
    hs.set_commit(hi);
    return s->SaveEntries(hs, es);
  };
  for (uint64_t i = 1; i <= 45; i += 5) SEALWAL_RETURN_IF_ERROR(batch(i, i + 4, 1));
  SEALWAL_RETURN_IF_ERROR(s->SaveSnapshot(Meta(20, 1), DataGen(3, 20, 1, 5000)));
  SEALWAL_RETURN_IF_ERROR(batch(41, 50, 2));
  SEALWAL_ASSIGN_OR_RETURN(auto w, s->SaveSnapshotStream(Meta(50, 2)));
  SEALWAL_RETURN_IF_ERROR(w->Append(DataGen(3, 50, 2, 3000)));
  SEALWAL_RETURN_IF_ERROR(w->Append(DataGen(4, 50, 2, 2500)));
  SEALWAL_RETURN_IF_ERROR(w->Commit());
  SEALWAL_RETURN_IF_ERROR(batch(51, 60, 2));
  return s->Close();
}

// What the store holds, as Open shows it: kind, metadata, HardState,
// snapshot (index, term, conf, data) and the entries after it.
absl::StatusOr<std::string> Content(env::FileSystem* fs, bool* encrypted) {
  StorageOptions o = StoreOptions(fs, true);
  o.create_if_missing = false;
  o.read_only = true;
  SEALWAL_ASSIGN_OR_RETURN(auto s, RaftStorage::Open(std::move(o)));
  SEALWAL_ASSIGN_OR_RETURN(BootstrapState b, s->Bootstrap());
  *encrypted = s->encrypted();
  std::string out = absl::StrCat("meta ", b.metadata, "\nhs ", b.hardstate.ShortDebugString(), "\n");
  if (b.snapshot.has_value()) {
    absl::StrAppend(&out, "snap ", b.snapshot->metadata.ShortDebugString(), " streamed ",
                    b.snapshot->streamed(), "\n");
    SEALWAL_ASSIGN_OR_RETURN(std::string data, ReadSnapshotData(*b.snapshot));
    absl::StrAppend(&out, "data ", absl::BytesToHexString(data).substr(0, 64), " ", data.size(),
                    "\n");
  }
  const uint64_t first = b.log->FirstIndex(), last = b.log->LastIndex();
  if (last >= first) {
    SEALWAL_ASSIGN_OR_RETURN(std::vector<raftpb::Entry> es, b.log->Entries(first, last + 1));
    for (raftpb::Entry& e : es) {
      // An encrypted store reads an entry saved without data back with
      // empty (present) data: the same content.
      if (e.data().empty()) e.clear_data();
      absl::StrAppend(&out, e.ShortDebugString(), "\n");
    }
  }
  return out;
}

// Every record of every segment of the store's WAL, payloads opened:
// overwritten entries included, segment boundaries marked.
absl::StatusOr<std::string> AllRecords(env::FileSystem* fs, bool encrypted) {
  const std::string dir =
      encrypted ? "/data/node/wal-v3-encrypted" : "/data/node/wal-v3";
  std::unique_ptr<walcrypt::WalCodec> codec;
  if (encrypted) {
    pem::KeyReadWriterOptions ko;
    ko.fs = fs;
    ko.path = "/data/node/node.key";
    ko.unlock_key = TestUnlockKey();
    SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<pem::KeyReadWriter> krw,
                             pem::KeyReadWriter::Create(std::move(ko)));
    pem::LoadKeyringOptions lo;
    lo.persist_counts = false;
    SEALWAL_ASSIGN_OR_RETURN(pem::LoadedKeyring ring, pem::LoadKeyring(std::move(krw), lo));
    SEALWAL_ASSIGN_OR_RETURN(codec, walcrypt::WalCodec::ForKeyring(ring.keyring));
  }
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<wal::RecordReader> r, wal::RecordReader::OpenAll(dir, fs));
  SEALWAL_ASSIGN_OR_RETURN(std::vector<std::string> names, wal::Wal::SegmentNames(dir, fs));
  std::string out = absl::StrJoin(names, ",") + "\n";
  wal::Record rec;
  uint64_t seg = UINT64_MAX;
  std::string plain;
  while (r->ReadRecord(&rec)) {
    if (rec.position.segment != seg) {
      seg = rec.position.segment;
      absl::StrAppend(&out, "segment ", seg, "\n");
    }
    absl::StrAppend(&out, rec.type, " ");
    if (rec.type == static_cast<int64_t>(wal::RecordType::kEntry)) {
      raftpb::Entry e;
      if (!e.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
        return absl::DataLossError("entry");
      }
      if (codec != nullptr) {
        wal::PayloadContext ctx{wal::PayloadContext::Kind::kEntry, e.index(), e.term(),
                                static_cast<int32_t>(e.type())};
        SEALWAL_RETURN_IF_ERROR(codec->Decode(ctx, e.data(), &plain));
        if (plain.empty()) {
          e.clear_data();
        } else {
          e.set_data(plain);
        }
      }
      absl::StrAppend(&out, e.ShortDebugString(), "\n");
    } else if (rec.type == static_cast<int64_t>(wal::RecordType::kMetadata)) {
      if (codec != nullptr) {
        SEALWAL_RETURN_IF_ERROR(codec->Decode(wal::PayloadContext{wal::PayloadContext::Kind::kMetadata},
                                              rec.data, &plain));
        absl::StrAppend(&out, plain, "\n");
      } else {
        absl::StrAppend(&out, rec.data, "\n");
      }
    } else if (rec.type != static_cast<int64_t>(wal::RecordType::kCrc)) {
      absl::StrAppend(&out, absl::BytesToHexString(rec.data), "\n");
    } else {
      absl::StrAppend(&out, "\n");
    }
  }
  if (r->end() != wal::RecordReader::End::kEof) return r->status();
  return out;
}

MigrateOptions Opts(env::FileSystem* fs, bool encrypt) {
  MigrateOptions o;
  o.data_dir = "/data/node";
  o.fs = fs;
  o.direction = encrypt ? MigrateDirection::kEncrypt : MigrateDirection::kDecrypt;
  o.unlock_key = TestUnlockKey();
  o.reservation_block = 16;
  return o;
}

TEST(MigrateLibTest, RoundTripKeepsEveryRecordAndLocksOutWriters) {
  std::unique_ptr<env::FileSystem> fs = env::NewMemFileSystem();
  ASSERT_OK(MakeStore(fs.get(), false));
  bool enc = true;
  ASSERT_OK_AND_ASSIGN(std::string content, Content(fs.get(), &enc));
  EXPECT_FALSE(enc);
  EXPECT_THAT(content, HasSubstr("streamed 1"));
  ASSERT_OK_AND_ASSIGN(std::string records, AllRecords(fs.get(), false));
  EXPECT_THAT(records, HasSubstr("segment 1"));
  // A writer holding the WAL: refused, nothing made.
  {
    StorageOptions o = StoreOptions(fs.get(), false);
    ASSERT_OK_AND_ASSIGN(auto writer, RaftStorage::Open(std::move(o)));
    ASSERT_OK(writer->Bootstrap().status());
    EXPECT_THAT(Migrate(Opts(fs.get(), true)).status(), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(fs->FileExists("/data/node/node.key"), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(fs->FileExists("/data/node/wal-v3-encrypted.tmp"),
                StatusIs(absl::StatusCode::kNotFound));
    ASSERT_OK(writer->Close());
  }
  ASSERT_OK_AND_ASSIGN(MigrateResult r, Migrate(Opts(fs.get(), true)));
  EXPECT_TRUE(r.created_key_file);
  EXPECT_EQ(r.snapshots.size(), 2u);
  EXPECT_EQ(r.entries, 65u);
  ASSERT_OK_AND_ASSIGN(std::string content2, Content(fs.get(), &enc));
  EXPECT_TRUE(enc);
  EXPECT_EQ(content2, content);
  ASSERT_OK_AND_ASSIGN(std::string records2, AllRecords(fs.get(), true));
  EXPECT_EQ(records2, records);
  EXPECT_THAT(Migrate(Opts(fs.get(), true)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The key file was locked under the unlock key.
  MigrateOptions nokey = Opts(fs.get(), false);
  nokey.unlock_key.reset();
  EXPECT_THAT(Migrate(nokey).status(), StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK(Migrate(Opts(fs.get(), false)).status());
  ASSERT_OK_AND_ASSIGN(std::string content3, Content(fs.get(), &enc));
  EXPECT_FALSE(enc);
  EXPECT_EQ(content3, content);
  ASSERT_OK_AND_ASSIGN(std::string records3, AllRecords(fs.get(), false));
  EXPECT_EQ(records3, records);
}

TEST(MigrateLibTest, ADamagedJournalStopsOpen) {
  std::unique_ptr<env::FileSystem> fs = env::NewMemFileSystem();
  ASSERT_OK(MakeStore(fs.get(), false));
  ASSERT_OK(env::WriteFileAtomically(fs.get(), "/data/node/migrate.journal", "garbage\n"));
  bool enc = false;
  EXPECT_THAT(Content(fs.get(), &enc).status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(Migrate(Opts(fs.get(), true)).status(), StatusIs(absl::StatusCode::kDataLoss));
}

// ENOSPC part-way (every write budget from the first write on): the
// migration fails, the old store is exactly as it was, nothing is left.
TEST(MigrateLibTest, NoSpaceLeavesTheOldStoreAsItWas) {
  std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
  env::FaultInjectionFileSystem fault(mem.get());
  ASSERT_OK(env::CreateDirAll(&fault, "/data"));
  ASSERT_OK(MakeStore(&fault, false));
  bool enc = true;
  ASSERT_OK_AND_ASSIGN(const std::string want, Content(&fault, &enc));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> names, fault.ListDir("/data/node"));
  int failures = 0;
  for (uint64_t limit = 0; limit < 400000; limit += 3000) {
    fault.ResetState();
    fault.SetWriteLimit(fault.bytes_written() + limit);
    absl::StatusOr<MigrateResult> r = Migrate(Opts(&fault, true));
    fault.ClearWriteLimit();
    if (r.ok()) break;
    ++failures;
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kResourceExhausted)) << limit;
    ASSERT_OK_AND_ASSIGN(std::string got, Content(&fault, &enc));
    EXPECT_FALSE(enc) << limit;
    EXPECT_EQ(got, want) << limit;
    EXPECT_EQ(*fault.ListDir("/data/node"), names) << limit;
  }
  EXPECT_GT(failures, 3);
  ASSERT_OK_AND_ASSIGN(std::string got, Content(&fault, &enc));
  EXPECT_TRUE(enc);
  EXPECT_EQ(got, want);
}

// A crash at every write step. Param: (encrypt?, power loss?).
class MigrateCrashTest : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(MigrateCrashTest, EveryCrashPointLeavesExactlyOneStoreAndARerunFinishes) {
  const bool encrypt = std::get<0>(GetParam());
  const bool power_loss = std::get<1>(GetParam());
  // The reference content (the store before any migration).
  std::string want, want_records;
  {
    std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
    ASSERT_OK(MakeStore(mem.get(), !encrypt));
    bool enc = false;
    ASSERT_OK_AND_ASSIGN(want, Content(mem.get(), &enc));
    ASSERT_OK_AND_ASSIGN(want_records, AllRecords(mem.get(), enc));
  }
  int64_t n = 0;
  int crashes = 0, saw_new = 0, saw_old = 0;
  for (;; ++n) {
    ASSERT_LT(n, 5000) << "the migration never completes";
    std::unique_ptr<env::FileSystem> mem = env::NewMemFileSystem();
    env::FaultInjectionFileSystem fault(mem.get());
    ASSERT_OK(env::CreateDirAll(&fault, "/data"));
    ASSERT_OK(fault.SyncDir("/"));
    ASSERT_OK(MakeStore(&fault, !encrypt));
    fault.CrashAfterOps(n);
    absl::Status st = Migrate(Opts(&fault, encrypt)).status();
    const bool crashed = fault.crashed();
    if (!crashed) {
      ASSERT_OK(st) << "no crash at " << n;
    }
    if (power_loss) {
      ASSERT_OK(fault.DropUnsyncedData());
    }
    fault.Reactivate();
    const std::string where = absl::StrCat("crash after ", n, " ops",
                                           power_loss ? " (power loss)" : " (process crash)");
    // Exactly one store, with the same content: the old or the new kind.
    bool enc = false;
    absl::StatusOr<std::string> got = Content(&fault, &enc);
    ASSERT_OK(got.status()) << where;
    EXPECT_EQ(*got, want) << where;
    if (enc == encrypt) {
      ++saw_new;
    } else {
      ++saw_old;
      // Before the commit point: no journal, and the new kind's final
      // directories do not exist.
      EXPECT_THAT(fault.FileExists("/data/node/migrate.journal"),
                  StatusIs(absl::StatusCode::kNotFound))
          << where;
    }
    // A writing open works too (and finishes a committed migration).
    if (crashed && n % 3 == 0) {
      StorageOptions o = StoreOptions(&fault, true);
      o.create_if_missing = false;
      absl::StatusOr<std::unique_ptr<RaftStorage>> w = RaftStorage::Open(std::move(o));
      ASSERT_OK(w.status()) << where;
      ASSERT_OK((*w)->Bootstrap().status()) << where;
      ASSERT_OK((*w)->Close()) << where;
    }
    // Re-running finishes the migration.
    absl::StatusOr<MigrateResult> again = Migrate(Opts(&fault, encrypt));
    if (crashed && enc != encrypt) {
      ASSERT_OK(again.status()) << where;
    } else if (crashed && again.ok()) {
      // The journal was still there: the re-run finished its move.
      EXPECT_TRUE(again->resumed && again->already) << where;
    } else {
      // Already of the target kind (or a writing open above finished it).
      EXPECT_THAT(again.status(), StatusIs(absl::StatusCode::kFailedPrecondition)) << where;
    }
    ASSERT_OK_AND_ASSIGN(std::string final_content, Content(&fault, &enc));
    EXPECT_TRUE(enc == encrypt) << where;
    EXPECT_EQ(final_content, want) << where;
    absl::StatusOr<std::string> recs = AllRecords(&fault, enc);
    ASSERT_OK(recs.status()) << where;
    EXPECT_EQ(*recs, want_records) << where;
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, fault.ListDir("/data/node"));
    for (const std::string& name : names) {
      EXPECT_FALSE(absl::EndsWith(name, ".tmp") || name == "migrate.journal")
          << where << ": " << name << " left behind";
    }
    if (::testing::Test::HasFailure()) return;
    if (crashed) ++crashes;
    if (!crashed) break;
  }
  std::cout << "crash points: " << n << " (old store seen " << saw_old << ", new " << saw_new
            << ")\n";
  EXPECT_GT(crashes, 20);
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Directions, MigrateCrashTest, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<bool, bool>>& i) {
      return absl::StrCat(std::get<0>(i.param) ? "Encrypt" : "Decrypt",
                          std::get<1>(i.param) ? "PowerLoss" : "ProcessCrash");
    });

}  // namespace
}  // namespace sealwal::storage
