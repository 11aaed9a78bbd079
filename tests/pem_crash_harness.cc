// A child process for tests/pem_crash_test.cc: drives a node key file
// through an endless cycle of KEK changes and header updates, and can
// SIGKILL itself just before its k-th mutating file operation.
//
//   pem_crash_harness init F          writes state 0 (unlocked, two DEKs)
//   pem_crash_harness run F N [K]     from the file's current state s, does
//                                     steps s+1 .. s+N; with K, raise(SIGKILL)
//                                     before mutating file operation K (0-based)
//   pem_crash_harness check F         prints the state the file is in, or
//                                     "bad <reason>" and exits 1
//
// Step i (i >= 1), by i % 4:
//   1  lock with unlock key U(i)        kek-version i
//   2  rotate the KEK to U(i)           kek-version i
//   3  header update: raft-dek encryptions = i (kek-version stays i - 1)
//   0  unlock                           kek-version i
// raft-dek (id 0x11) and raft-dek-pending (id 0x22) are the same two DEKs
// throughout, so "no DEK lost" is "both decode to the expected keys".
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sealwal/env/file_system.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"

namespace {

using namespace sealwal;  // NOLINT: a test harness

pem::UnlockKey U(uint64_t i) {
  std::string s;
  for (int b = 0; b < 32; ++b) s.push_back(static_cast<char>(i * 131 + b * 7 + 1));
  return *pem::UnlockKey::FromBytes(s);
}

pem::StoredDek Dek(uint32_t id, uint64_t encryptions) {
  return pem::StoredDek{
      *encryption::Dek::FromParts(encryption::KeyId(id), encryption::Algorithm::kAes256Gcm,
                                  *encryption::SecretKey::FromBytes(std::string(32, char(id)))),
      encryptions};
}

struct State {
  std::optional<uint64_t> key;  // U(key) opens it; nullopt: unlocked
  uint64_t version;
  uint64_t encryptions;
};

State StateAfter(uint64_t i) {
  if (i == 0) return {std::nullopt, 0, 0};
  uint64_t enc = 0;
  for (uint64_t j = i; j >= 1; --j) {
    if (j % 4 == 3) {
      enc = j;
      break;
    }
  }
  switch (i % 4) {
    case 1:
    case 2: return {i, i, enc};
    case 3: return {i - 1, i - 1, enc};
    default: return {std::nullopt, i, enc};
  }
}

pem::DekHeaders HeadersFor(const State& s) {
  pem::DekHeaders h;
  h.current = Dek(0x11, s.encryptions);
  h.pending = Dek(0x22, 0);
  return h;
}

// Forwards to the POSIX file system, counting mutating operations; the
// process SIGKILLs itself before operation number kill_at.
class KillingFileSystem final : public env::FileSystem {
 public:
  explicit KillingFileSystem(int64_t kill_at) : kill_at_(kill_at) {}
  void Tick() {
    if (kill_at_ >= 0 && ops_ == kill_at_) raise(SIGKILL);
    ++ops_;
  }

  class File final : public env::WritableFile {
   public:
    File(KillingFileSystem* fs, std::unique_ptr<env::WritableFile> f) : fs_(fs), f_(std::move(f)) {}
    absl::Status Append(absl::string_view d) override { fs_->Tick(); return f_->Append(d); }
    absl::Status Flush() override { return f_->Flush(); }
    absl::Status Sync() override { fs_->Tick(); return f_->Sync(); }
    absl::Status Fallocate(uint64_t o, uint64_t n) override { fs_->Tick(); return f_->Fallocate(o, n); }
    absl::Status Truncate(uint64_t n) override { fs_->Tick(); return f_->Truncate(n); }
    absl::Status Seek(uint64_t o) override { return f_->Seek(o); }
    uint64_t Position() const override { return f_->Position(); }
    absl::Status Close() override { fs_->Tick(); return f_->Close(); }

   private:
    KillingFileSystem* fs_;
    std::unique_ptr<env::WritableFile> f_;
  };

  absl::StatusOr<std::unique_ptr<env::SequentialFile>> NewSequentialFile(
      const std::string& p) override {
    return base_->NewSequentialFile(p);
  }
  absl::StatusOr<std::unique_ptr<env::RandomAccessFile>> NewRandomAccessFile(
      const std::string& p) override {
    return base_->NewRandomAccessFile(p);
  }
  absl::StatusOr<std::unique_ptr<env::WritableFile>> NewWritableFile(
      const std::string& p, const env::WritableFileOptions& o) override {
    Tick();
    auto f = base_->NewWritableFile(p, o);
    if (!f.ok()) return f.status();
    return std::unique_ptr<env::WritableFile>(new File(this, std::move(*f)));
  }
  absl::Status FileExists(const std::string& p) override { return base_->FileExists(p); }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& p) override { return base_->GetFileSize(p); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& d) override {
    return base_->ListDir(d);
  }
  absl::Status CreateDir(const std::string& d, mode_t m) override { Tick(); return base_->CreateDir(d, m); }
  absl::Status RemoveDir(const std::string& d) override { Tick(); return base_->RemoveDir(d); }
  absl::Status RemoveFile(const std::string& p) override { Tick(); return base_->RemoveFile(p); }
  absl::Status Rename(const std::string& a, const std::string& b) override {
    Tick();
    return base_->Rename(a, b);
  }
  absl::Status SyncDir(const std::string& d) override { Tick(); return base_->SyncDir(d); }
  absl::StatusOr<std::unique_ptr<env::FileLock>> LockFile(const std::string& p) override {
    return base_->LockFile(p);
  }

 private:
  env::FileSystem* const base_ = env::DefaultFileSystem();
  const int64_t kill_at_;
  int64_t ops_ = 0;
};

// The state the file is in, or an error saying why it is none.
absl::StatusOr<uint64_t> Check(const std::string& path) {
  absl::StatusOr<std::string> text = env::ReadFileToString(env::DefaultFileSystem(), path);
  if (!text.ok()) return text.status();
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(*text);
  if (!parsed.ok()) return parsed.status();
  const uint64_t v = parsed->kek_version;
  std::string why;
  for (uint64_t i : {v, v + 1}) {
    if (i == v + 1 && i % 4 != 3) continue;
    const State s = StateAfter(i);
    std::optional<pem::UnlockKey> k;
    if (s.key.has_value()) k = U(*s.key);
    absl::StatusOr<pem::KeyFile> f = pem::DecodeKeyFile(*text, k.has_value() ? &*k : nullptr);
    if (!f.ok()) {
      absl::StrAppend(&why, "state ", i, ": ", f.status().message(), "; ");
      continue;
    }
    const pem::DekHeaders want = HeadersFor(s);
    const bool same = f->locked == s.key.has_value() && f->kek_version == s.version &&
                      f->headers.current.has_value() && f->headers.pending.has_value() &&
                      f->headers.current->dek.id == want.current->dek.id &&
                      f->headers.current->dek.key == want.current->dek.key &&
                      f->headers.current->encryptions == want.current->encryptions &&
                      f->headers.pending->dek.id == want.pending->dek.id &&
                      f->headers.pending->dek.key == want.pending->dek.key;
    if (same) return i;
    absl::StrAppend(&why, "state ", i, ": contents differ; ");
  }
  return absl::DataLossError(why);
}

int Run(const std::string& path, uint64_t steps, int64_t kill_at) {
  absl::StatusOr<uint64_t> cur = Check(path);
  if (!cur.ok()) {
    std::fprintf(stderr, "harness: %s\n", std::string(cur.status().message()).c_str());
    return 1;
  }
  KillingFileSystem fs(kill_at);
  pem::KeyReadWriterOptions o;
  o.fs = &fs;
  o.path = path;
  const State s0 = StateAfter(*cur);
  if (s0.key.has_value()) o.unlock_key = U(*s0.key);
  auto krw = *pem::KeyReadWriter::Create(std::move(o));
  for (uint64_t i = *cur + 1; i <= *cur + steps; ++i) {
    const State s = StateAfter(i);
    absl::Status st;
    if (i % 4 == 3) {
      st = krw->ViewAndUpdateHeaders([&](const pem::DekHeaders&) {
        return absl::StatusOr<pem::DekHeaders>(HeadersFor(s));
      });
    } else {
      st = krw->ViewAndRotateKEK([&](const pem::KekState&, const pem::DekHeaders&) {
        pem::KekUpdate u;
        if (s.key.has_value()) u.unlock_key = U(*s.key);
        u.version = s.version;
        u.headers = HeadersFor(s);
        return absl::StatusOr<pem::KekUpdate>(std::move(u));
      });
    }
    if (!st.ok()) {
      std::fprintf(stderr, "harness: step %llu: %s\n", static_cast<unsigned long long>(i),
                   std::string(st.message()).c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string cmd = argv[1];
  const std::string path = argv[2];
  if (cmd == "init") {
    pem::KeyReadWriterOptions o;
    o.path = path;
    auto krw = *pem::KeyReadWriter::Create(std::move(o));
    absl::Status s = krw->Write(*pem::PrivateKey::GenerateEcP256(), HeadersFor(StateAfter(0)));
    return s.ok() ? 0 : 1;
  }
  if (cmd == "check") {
    absl::StatusOr<uint64_t> s = Check(path);
    if (!s.ok()) {
      std::printf("bad %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*s));
    return 0;
  }
  if (cmd == "run" && argc >= 4) {
    uint64_t steps = 0;
    int64_t kill_at = -1;
    if (!absl::SimpleAtoi(argv[3], &steps)) return 2;
    if (argc >= 5 && !absl::SimpleAtoi(argv[4], &kill_at)) return 2;
    return Run(path, steps, kill_at);
  }
  return 2;
}
