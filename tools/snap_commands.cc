// `sealwal snap save|load|inspect|ls` (docs/cli.md, docs/cli-snap.md).
//
// Snapshot data is data_gen(seed, index, term) (sealwal/base/data_gen.h): the
// snapshot's own index and term are data_gen's index and term, so that
// `load --expect-seed X` can check every byte of whichever snapshot Load
// picked.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/keyring.h"
#include "sealwal/env/file_system.h"
#include "sealwal/snap/format.h"
#include "sealwal/snap/snapshotter.h"
#include "sealwal/walcrypt/wal_codec.h"
#include "tools/cli.h"
#include "tools/content_digest.h"
#include "tools/codec_args.h"

namespace sealwal::cli {
namespace {

constexpr char kSnapDescription[] =
    "etcd-compatible and streamed snapshots in a directory: save one, load the newest valid "
    "one, inspect or list them (docs/cli-snap.md).";
constexpr char kKeyFooter[] =
    "Keys as for `sealwal wal`: --key-file F (raft-dek, raft-dek-pending) or --dek-file F; a "
    "directory whose name ends in \"-encrypted\" needs one. The unlock key of a locked key "
    "file comes from --unlock-key-file U or $SEALWAL_UNLOCK_KEY, never from the command line.";

constexpr size_t kPiece = 1 << 20;

std::string Trimmed(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// The keyring the key flags name (null for a plaintext directory): the
// same as `wal` commands use (KeyringFromArgs: --key-file gives raft-dek
// and raft-dek-pending, counts persisted), or a usage/key error already
// printed (exit 2).
struct KeySetup {
  std::shared_ptr<encryption::Keyring> keys;
  int exit_code = kExitOk;
};
KeySetup KeysFromArgs(const Command& a, const std::string& dir) {
  KeySetup k;
  auto keys = KeyringFromArgs(a, dir);
  if (!keys.ok()) {
    k.exit_code = Fail(kExitUsage, keys.status().message());
    return k;
  }
  k.keys = std::move(*keys);
  return k;
}

std::string KeyIdText(encryption::KeyId id) {
  return id.value() == 0 ? "none" : encryption::FormatKeyId(id);
}

// Checks data against data_gen piece by piece.
class SeedChecker {
 public:
  SeedChecker(uint64_t seed, uint64_t index, uint64_t term) : gen_(seed, index, term) {}
  bool Check(absl::string_view piece) {
    if (mismatch_.has_value()) return false;
    buf_.resize(piece.size());
    gen_.Fill(buf_.data(), buf_.size());
    for (size_t i = 0; i < piece.size(); ++i) {
      if (piece[i] != buf_[i]) {
        mismatch_ = offset_ + i;
        return false;
      }
    }
    offset_ += piece.size();
    return true;
  }
  std::optional<uint64_t> mismatch() const { return mismatch_; }

 private:
  DataGenStream gen_;
  std::string buf_;
  uint64_t offset_ = 0;
  std::optional<uint64_t> mismatch_;
};

int SnapSave(const std::vector<std::string>& args) {
  Command a("snap save",
            "Writes one snapshot at (index I >= 1, term T) whose data is BYTES bytes of "
            "data_gen(X, I, T); DIR is created when missing. By default an inline .snap (held in "
            "memory; up to 4 GiB); --stream writes a streamed snapshot (.snap.stream and the "
            ".snap naming it) in constant memory. Prints `saved FILE` per file, then `snapshot "
            "I T`, `bytes BYTES` and `digest HEX`.");
  a.Positional("DIR", "the snapshot directory");
  a.U64("index", "the snapshot's index (at least 1)", kRequired);
  a.U64("term", "the snapshot's term", kRequired);
  a.U64("size", "data bytes", kRequired);
  a.U64("seed", "the data_gen seed", kRequired);
  a.Switch("stream", "write a streamed snapshot");
  a.U64("chunk-size", "stream chunk size, 4096..67108864 (default 1048576)");
  a.U64("threads", "stream sealing threads, 0..64 (default 2)");
  a.Option("voters", "1,2,3", "the ConfState voters (default 1)");
  a.KeyFlags();
  a.Footer(kKeyFooter);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  const std::string dir = Trimmed(a.positional()[0]);
  auto index = a.GetU64("index", std::nullopt);
  auto term = a.GetU64("term", std::nullopt);
  auto size = a.GetU64("size", std::nullopt);
  auto seed = a.GetU64("seed", std::nullopt);
  auto chunk = a.GetU64("chunk-size", snap::kDefaultChunkSize);
  auto threads = a.GetU64("threads", 2);
  for (const auto* v : {&index, &term, &size, &seed, &chunk, &threads}) {
    if (!v->ok()) return Fail(kExitUsage, v->status().message());
  }
  if (*index == 0) return Fail(kExitUsage, "--index must be at least 1 (index 0 is no snapshot)");
  if (*chunk < snap::kMinChunkSize || *chunk > snap::kMaxChunkSize) {
    return Fail(kExitUsage, absl::StrCat("--chunk-size must be ", snap::kMinChunkSize, "..",
                                         snap::kMaxChunkSize));
  }
  if (*threads > 64) return Fail(kExitUsage, "--threads must be 0..64");
  const bool stream = a.Has("stream");
  if (!stream && *size > (uint64_t{4} << 30)) {
    return Fail(kExitUsage, "an inline snapshot is held in memory: use --stream above 4 GiB");
  }
  raftpb::SnapshotMetadata md;
  md.set_index(*index);
  md.set_term(*term);
  raftpb::ConfState* cs = md.mutable_conf_state();
  for (absl::string_view v : absl::StrSplit(a.Get("voters").value_or("1"), ',', absl::SkipEmpty())) {
    uint64_t id;
    if (!absl::SimpleAtoi(v, &id)) return Fail(kExitUsage, "--voters must be a list like 1,2,3");
    cs->add_voters(id);
  }
  KeySetup k = KeysFromArgs(a, dir);
  if (k.exit_code != kExitOk) return k.exit_code;

  snap::SnapshotterOptions opts;
  opts.keys = k.keys;
  opts.create_dir = true;
  opts.stream.chunk_size = static_cast<uint32_t>(*chunk);
  opts.stream.threads = static_cast<int>(*threads);
  auto snapper = snap::Snapshotter::Open(dir, opts);
  if (!snapper.ok()) return Fail(ExitCodeFor(snapper.status()), snapper.status().message());

  ContentDigest digest;
  if (stream) {
    auto saver = (*snapper)->SaveStream(md);
    if (!saver.ok()) return Fail(KeyAwareExitCode(saver.status()), saver.status().message());
    DataGenStream gen(*seed, *index, *term);
    std::string buf(kPiece, '\0');
    for (uint64_t left = *size; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kPiece));
      gen.Fill(buf.data(), n);
      const absl::string_view piece(buf.data(), n);
      digest.AddBytes(piece);
      if (auto s = (*saver)->Append(piece); !s.ok()) return Fail(ExitCodeFor(s), s.message());
      left -= n;
    }
    if (auto s = (*saver)->Commit(); !s.ok()) return Fail(KeyAwareExitCode(s), s.message());
    std::printf("saved %s\nsaved %s\n", snap::StreamFileName(*term, *index).c_str(),
                snap::SnapFileName(*term, *index).c_str());
  } else {
    std::string data = DataGen(*seed, *index, *term, static_cast<size_t>(*size));
    if (snap::IsStreamRef(data)) {
      return Fail(kExitUsage, "this seed's data starts with the stream magic; use --stream");
    }
    digest.AddBytes(data);
    if (auto s = (*snapper)->Save(md, data); !s.ok()) return Fail(KeyAwareExitCode(s), s.message());
    std::printf("saved %s\n", snap::SnapFileName(*term, *index).c_str());
  }
  std::printf("snapshot %llu %llu\nbytes %llu\ndigest %s\n",
              static_cast<unsigned long long>(*index), static_cast<unsigned long long>(*term),
              static_cast<unsigned long long>(*size), digest.Hex().c_str());
  return kExitOk;
}

int SnapLoad(const std::vector<std::string>& args) {
  Command a("snap load",
            "Loads the newest valid snapshot as etcd's Snapshotter.Load does (a .snap that fails "
            "its CRC is renamed .broken and the next is tried; a streamed snapshot whose stream "
            "is missing or broken is skipped), reads every byte and prints its index, term, size "
            "and digest. A snapshot that does not decrypt stops the load: exit 2 for a missing "
            "key, 1 when it does not authenticate.");
  a.Positional("DIR", "the snapshot directory");
  a.KeyFlags();
  a.U64("expect-seed", "check the data against data_gen with this seed");
  a.Switch("full-check", "authenticate every chunk of a stream before choosing it");
  a.U64("threads", "stream reading threads, 0..64 (default 2)");
  a.Footer(kKeyFooter);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  const std::string dir = Trimmed(a.positional()[0]);
  std::optional<uint64_t> seed;
  if (a.Has("expect-seed")) {
    auto v = a.GetU64("expect-seed", std::nullopt);
    if (!v.ok()) return Fail(kExitUsage, v.status().message());
    seed = *v;
  }
  auto threads = a.GetU64("threads", 2);
  if (!threads.ok() || *threads > 64) return Fail(kExitUsage, "--threads must be 0..64");
  KeySetup k = KeysFromArgs(a, dir);
  if (k.exit_code != kExitOk) return k.exit_code;
  snap::SnapshotterOptions opts;
  opts.keys = k.keys;
  opts.stream_read.threads = static_cast<int>(*threads);
  if (a.Has("full-check")) opts.stream_check = snap::StreamCheck::kFull;
  auto snapper = snap::Snapshotter::Open(dir, opts);
  if (!snapper.ok()) return Fail(kExitDataError, snapper.status().message());

  snap::LoadReport report;
  auto loaded = (*snapper)->Load(&report);
  for (const auto& sk : report.skipped) {
    std::fprintf(stderr, "sealwal: warning: skipped %s: %.*s%s\n", sk.file.c_str(),
                 static_cast<int>(sk.reason.message().size()), sk.reason.message().data(),
                 sk.renamed_broken ? absl::StrCat(" (renamed to ", sk.file, ".broken)").c_str()
                                   : "");
  }
  if (!loaded.ok()) {
    // A missing key is a key error (2); tampering, a wrong key under the
    // right id and "no available snapshot" are data errors (1).
    return Fail(encryption::IsMissingKeyError(loaded.status()) ? kExitUsage : kExitDataError,
                loaded.status().message());
  }
  snap::LoadedSnapshot& l = *loaded;
  const uint64_t index = l.metadata.index(), term = l.metadata.term();
  ContentDigest digest;
  std::optional<SeedChecker> checker;
  if (seed.has_value()) checker.emplace(*seed, index, term);
  uint64_t bytes = 0;
  auto consume = [&](absl::string_view piece) {
    digest.AddBytes(piece);
    if (checker.has_value()) checker->Check(piece);
    bytes += piece.size();
  };
  if (l.streamed()) {
    for (;;) {
      auto c = l.stream->NextChunk();
      if (!c.ok()) return Fail(ExitCodeFor(c.status()), c.status().message());
      if (c->empty()) break;
      consume(*c);
    }
  } else {
    for (size_t off = 0; off < l.data.size(); off += kPiece) {
      consume(absl::string_view(l.data).substr(off, kPiece));
    }
  }
  std::printf("file %s\nkind %s\nalgorithm %s\nkey_id %s\n", l.file.c_str(),
              l.streamed() ? "stream" : "inline",
              std::string(encryption::AlgorithmName(l.algorithm)).c_str(),
              KeyIdText(l.key_id).c_str());
  if (checker.has_value() && checker->mismatch().has_value()) {
    std::fflush(stdout);
    return Fail(kExitDataError, absl::StrCat(l.file, ": data differs from data_gen(seed ", *seed,
                                             ", index ", index, ", term ", term, ") at byte ",
                                             *checker->mismatch()));
  }
  std::printf("snapshot %llu %llu\nbytes %llu\ndigest %s\n", static_cast<unsigned long long>(index),
              static_cast<unsigned long long>(term), static_cast<unsigned long long>(bytes),
              digest.Hex().c_str());
  return kExitOk;
}

// inspect (verbose) and ls (one line per snapshot): read-only.
int SnapInspect(const std::vector<std::string>& args, bool ls) {
  Command a(ls ? "snap ls" : "snap inspect",
            ls ? "One line per .snap in DIR, newest first: name, index, term, size, kind, "
                 "algorithm and key id. Read-only."
               : "Read-only: for each .snap, newest first, its index, term, voters, kind, sizes, "
                 "algorithm and key id (a stream's chunks after checking its header, size and "
                 "first and last chunks), with a warning for plaintext data; broken files, "
                 "orphan streams and temporaries are listed too. No key is needed; with one, "
                 "each .snap is also decrypted. Exit 1 when one is broken or does not "
                 "authenticate, 2 when one names a key id the key flags do not provide.");
  a.Positional("DIR", "the snapshot directory");
  a.KeyFlags();
  a.Footer(kKeyFooter);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  const std::string dir = Trimmed(a.positional()[0]);
  // Read-only and no decryption needed: an encrypted directory may be
  // inspected without its key (sealed data shows algorithm and key id).
  KeySetup k;
  if (a.Has("key-file") || a.Has("dek-file")) k = KeysFromArgs(a, dir);
  if (k.exit_code != kExitOk) return k.exit_code;
  const bool encrypted_dir = walcrypt::IsEncryptedWalDir(dir) || k.keys != nullptr;
  snap::SnapshotterOptions opts;
  opts.keys = k.keys;
  auto snapper = snap::Snapshotter::OpenForInspect(dir, opts);
  if (!snapper.ok()) return Fail(kExitDataError, snapper.status().message());
  auto names = (*snapper)->List();
  if (!names.ok()) return Fail(ExitCodeFor(names.status()), names.status().message());
  env::FileSystem* fs = env::DefaultFileSystem();
  int rc = kExitOk;
  for (const std::string& name : *names) {
    auto info = (*snapper)->Inspect(name);
    if (!info.ok()) return Fail(ExitCodeFor(info.status()), info.status().message());
    const snap::SnapFileInfo& f = *info;
    const raftpb::SnapshotMetadata& md = f.metadata;
    if (!f.status.ok()) {
      std::printf("%s broken %s: %.*s\n", name.c_str(),
                  std::string(snap::SnapErrorClassName(snap::GetSnapError(f.status))).c_str(),
                  static_cast<int>(f.status.message().size()), f.status.message().data());
      rc = kExitDataError;
      continue;
    }
    std::string kind = "inline";
    uint64_t size = f.data_size;
    encryption::Algorithm alg = f.algorithm;
    encryption::KeyId key = f.key_id;
    std::string stream_line;
    if (f.stream_ref.has_value()) {
      kind = "stream";
      size = f.stream_ref->size;
      alg = f.stream_ref->algorithm;
      key = f.stream_ref->key_id;
      auto r = snap::StreamReader::Open(
          fs, env::JoinPath(dir, snap::StreamFileName(md.term(), md.index())), k.keys,
          snap::StreamExpectation{md.index(), md.term(), *f.stream_ref}, {});
      absl::Status s = r.status();
      if (s.ok()) s = (*r)->VerifyEnds();
      if (!s.ok()) {
        stream_line = absl::StrCat("stream ", snap::StreamFileName(md.term(), md.index()),
                                   " INVALID: ", s.message());
        if (rc == kExitOk) {
          rc = absl::IsFailedPrecondition(s) || encryption::IsMissingKeyError(s) ? kExitUsage
                                                                                : kExitDataError;
        }
      } else {
        stream_line = absl::StrCat("stream ", snap::StreamFileName(md.term(), md.index()), " ",
                                   (*r)->chunk_count(), " chunks of ", (*r)->header().chunk_size,
                                   " bytes, ", (*r)->file_size(), " bytes on disk, ends verified");
      }
    } else if (f.encrypted_record) {
      if (k.keys == nullptr) kind = "sealed (inline or stream reference; give a key)";
    }
    if (ls) {
      std::printf("%s index %llu term %llu size %llu kind %s algorithm %s key_id %s\n",
                  name.c_str(), static_cast<unsigned long long>(md.index()),
                  static_cast<unsigned long long>(md.term()), static_cast<unsigned long long>(size),
                  kind.c_str(), std::string(encryption::AlgorithmName(alg)).c_str(),
                  KeyIdText(key).c_str());
      continue;
    }
    std::vector<std::string> voters;
    for (uint64_t v : md.conf_state().voters()) voters.push_back(absl::StrCat(v));
    std::printf("%s\n  index %llu term %llu voters %s\n  kind %s size %llu (file %llu bytes)\n"
                "  algorithm %s key_id %s\n",
                name.c_str(), static_cast<unsigned long long>(md.index()),
                static_cast<unsigned long long>(md.term()),
                voters.empty() ? "none" : absl::StrJoin(voters, ",").c_str(), kind.c_str(),
                static_cast<unsigned long long>(size), static_cast<unsigned long long>(f.file_size),
                std::string(encryption::AlgorithmName(alg)).c_str(), KeyIdText(key).c_str());
    if (!stream_line.empty()) std::printf("  %s\n", stream_line.c_str());
    // A .snap never holds a key: its data is sealed under a DEK that lives
    // only in the node key file (or it is plaintext).
    std::printf("  key-material none (%s)\n",
                alg == encryption::Algorithm::kNotEncrypted
                    ? "plaintext: the data is readable without any key"
                    : "the data is sealed; its DEK is in the node key file, not here");
    if (!f.decrypt_status.ok()) {
      const bool missing = encryption::IsMissingKeyError(f.decrypt_status);
      std::printf("  DOES NOT DECRYPT (%s): %.*s\n", missing ? "missing key" : "does not authenticate",
                  static_cast<int>(f.decrypt_status.message().size()),
                  f.decrypt_status.message().data());
      if (missing) {
        rc = kExitUsage;
      } else if (rc == kExitOk) {
        rc = kExitDataError;
      }
    }
    if (alg == encryption::Algorithm::kNotEncrypted) {
      std::printf("  warning: snapshot data is stored UNENCRYPTED%s\n",
                  encrypted_dir ? " in an encrypted directory" : "");
    }
  }
  if (!ls) {
    // Files that are not snapshots: orphans, temporaries, broken ones.
    auto all = fs->ListDir(dir);
    if (all.ok()) {
      for (const std::string& n : *all) {
        uint64_t t, i;
        if (snap::ParseSnapFileName(n, &t, &i)) continue;
        if (snap::ParseStreamFileName(n, &t, &i)) {
          if (!fs->FileExists(env::JoinPath(dir, snap::SnapFileName(t, i))).ok()) {
            std::printf("%s orphan stream (no .snap names it; an interrupted save)\n", n.c_str());
          }
        } else if (absl::EndsWith(n, snap::kBrokenSuffix)) {
          std::printf("%s broken (renamed by a load)\n", n.c_str());
        } else if (absl::EndsWith(n, snap::kTmpSuffix)) {
          std::printf("%s temporary (an interrupted save)\n", n.c_str());
        }
      }
    }
    if (names->empty()) std::printf("no snapshots\n");
  }
  return rc;
}

int SnapInspectCmd(const std::vector<std::string>& args) { return SnapInspect(args, false); }
int SnapLsCmd(const std::vector<std::string>& args) { return SnapInspect(args, true); }

}  // namespace

int SnapMain(const std::vector<std::string>& args) {
  return RunGroup("snap", kSnapDescription,
                  {{"save", "write a snapshot of data_gen data (inline or streamed)", SnapSave},
                   {"load", "load the newest valid snapshot and check it", SnapLoad},
                   {"inspect", "describe every snapshot file (read-only)", SnapInspectCmd},
                   {"ls", "one line per snapshot (read-only)", SnapLsCmd}},
                  args);
}

}  // namespace sealwal::cli
