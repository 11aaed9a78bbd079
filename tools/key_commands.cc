// `sealwal key init|inspect|rotate-dek|rotate-kek|lock|unlock` (docs/cli-key.md): the node key file of sealwal/pem/key_read_writer.h.
//
// Unlock keys come from --unlock-key-file or $SEALWAL_UNLOCK_KEY, never
// from argv; a new one is printed once, on stdout, as "unlock-key
// SEALWAL-1-...", by init --autolock, rotate-kek and lock.
// Exit status: 0 ok; 1 the file is damaged or missing; 2 usage or key
// error (no or wrong unlock key, a file already locked/unlocked, ...).
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "sealwal/base/status_macros.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sealwal/encryption/dek.h"
#include "sealwal/encryption/key_usage.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_read_writer.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/pem/private_key.h"
#include "sealwal/pem/unlock_key.h"
#include "tools/cli.h"

namespace sealwal::cli {
namespace {

constexpr char kKeyDescription[] =
    "The node key file: an EC P-256 private key and the DEKs (raft-dek, raft-dek-pending), "
    "optionally locked under an unlock key (autolock) (docs/cli-key.md).";
constexpr char kUnlockFooter[] =
    "The unlock key of a locked file comes from --unlock-key-file U or $SEALWAL_UNLOCK_KEY, "
    "never from the command line; a file whose kek-source header names a PKCS#11 token or a "
    "KMS plugin asks that source instead (PIN from $SEALWAL_PKCS11_PIN or "
    "$SEALWAL_PKCS11_PIN_FILE, plugin timeout $SEALWAL_KEK_TIMEOUT; docs/kek-providers.md).";
constexpr char kKekHelp[] =
    "the new unlock key is held by this KEK source, not printed: "
    "pkcs11:token=T;object=K?module-path=/abs/module.so or command:/abs/plugin [ARGS]";

// The key commands' exit contract: damage and missing files are data
// errors (1); everything about keys and usage is 2.
int KeyFail(const absl::Status& s) {
  if (absl::IsPermissionDenied(s) && absl::StrContains(s.message(), "is needed")) {
    return Fail(kExitUsage, absl::StrCat(s.message(), " (give it with --unlock-key-file U or $",
                                         pem::kUnlockKeyEnvVar, ")"));
  }
  switch (s.code()) {
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
      return Fail(kExitDataError, s.message());
    default:
      return Fail(kExitUsage, s.message());
  }
}

void WarnUnlocked(const std::string& path) {
  std::fprintf(stderr,
               "sealwal: warning: autolock is off: the private key and DEKs in %s are stored "
               "unencrypted (run `sealwal key lock`)\n",
               path.c_str());
}

// Prints a new unlock key BEFORE the file that needs it is written: if
// stdout is gone (closed pipe, full disk) the command must fail with the old
// file intact, or the only copy of the key -- and every DEK -- is lost.
absl::Status EmitNewUnlockKey(const pem::UnlockKey& key) {
  std::printf("unlock-key %.*s\n", static_cast<int>(key.text().size()), key.text().data());
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return absl::FailedPreconditionError(
        "could not print the new unlock key to stdout; nothing was changed");
  }
  std::fprintf(stderr,
               "sealwal: note: store the unlock key now; it is not shown again, and the key "
               "file cannot be opened without it\n");
  return absl::OkStatus();
}

struct Common {
  std::string path;
  std::optional<pem::UnlockKey> unlock_key;
};

// Declares the flags every key command takes (--key-file F, required, and
// --unlock-key-file U) and its footer.
void CommonFlags(Command& a) {
  a.Option("key-file", "F", "the node key file", kRequired);
  a.Option("unlock-key-file", "U", "a file holding the unlock key (else $SEALWAL_UNLOCK_KEY)");
  a.Footer(kUnlockFooter);
}

absl::StatusOr<Common> ParseCommon(const Command& a) {
  Common c;
  c.path = a.Get("key-file").value_or("");
  if (c.path.empty()) return absl::InvalidArgumentError("--key-file F is required");
  absl::StatusOr<std::optional<pem::UnlockKey>> u = UnlockKeyFromArgs(a, c.path);
  if (!u.ok()) return u.status();
  c.unlock_key = std::move(*u);
  return c;
}

absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> OpenKrw(const Common& c) {
  pem::KeyReadWriterOptions o;
  o.path = c.path;
  if (c.unlock_key.has_value()) o.unlock_key = c.unlock_key->Clone();
  return pem::KeyReadWriter::Create(std::move(o));
}

// A fresh unlock key: held by the source --kek names (opened with the
// environment's PIN and timeout), else a plain one to print.
struct FreshKek {
  pem::UnlockKey unlock_key;
  std::optional<pem::KekBinding> binding;
  std::string key_id;
};
absl::StatusOr<FreshKek> NewKek(const Command& a) {
  if (!a.Has("kek")) {
    SEALWAL_ASSIGN_OR_RETURN(pem::UnlockKey u, pem::UnlockKey::Generate());
    return FreshKek{std::move(u), std::nullopt, ""};
  }
  SEALWAL_ASSIGN_OR_RETURN(kek::KekSourceOptions ko,
                           kek::KekSourceOptionsFromEnvironment(env::DefaultFileSystem()));
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<kek::KekSource> source,
                           kek::OpenKekSource(*a.Get("kek"), ko));
  SEALWAL_ASSIGN_OR_RETURN(kek::SourcedUnlockKey k, kek::NewSourcedUnlockKey(*source));
  return FreshKek{std::move(k.unlock_key), std::move(k.binding), std::move(k.key_id)};
}

// Shows a new KEK: a plain unlock key is printed BEFORE the file that needs
// it is written (EmitNewUnlockKey); a sourced one is named.
absl::Status EmitNewKek(const FreshKek& k) {
  if (!k.binding.has_value()) return EmitNewUnlockKey(k.unlock_key);
  std::printf("kek-source %s\n", k.binding->source.c_str());
  if (!k.key_id.empty()) std::printf("kek-key-id %s\n", k.key_id.c_str());
  return absl::OkStatus();
}

// Whether the key file at `path` parses and has a kek-source header.
bool NamesKekSource(const std::string& path) {
  absl::StatusOr<std::string> text = env::ReadSecretFile(env::DefaultFileSystem(), path);
  if (!text.ok()) return false;
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(*text);
  pem::WipeString(&*text);
  return parsed.ok() && parsed->kek_binding.has_value();
}

absl::StatusOr<encryption::Algorithm> AlgorithmArg(const Command& a, encryption::Algorithm dflt) {
  if (!a.Has("algorithm")) return dflt;
  absl::StatusOr<encryption::Algorithm> alg = encryption::ParseAlgorithmName(*a.Get("algorithm"));
  if (!alg.ok() || *alg == encryption::Algorithm::kNotEncrypted) {
    return absl::InvalidArgumentError("--algorithm must be aes-256-gcm or chacha20-poly1305");
  }
  return *alg;
}

std::string DekLine(absl::string_view name, const std::optional<pem::StoredDek>& d) {
  if (!d.has_value()) return absl::StrCat(name, " none");
  return absl::StrCat(name, " ", encryption::FormatKeyId(d->dek.id), " ",
                      encryption::AlgorithmName(d->dek.algorithm), " encryptions ",
                      d->encryptions);
}

// `<name>-created <UTC time>`, `unknown` for a DEK from a version-1
// record, `none` without the DEK.
std::string CreatedLine(absl::string_view name, const std::optional<pem::StoredDek>& d) {
  std::string value = "none";
  if (d.has_value()) {
    const std::optional<absl::Time> t = d->CreatedTime();
    value = t.has_value() ? absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *t, absl::UTCTimeZone())
                          : "unknown";
  }
  return absl::StrCat(name, "-created ", value);
}

int KeyInit(const std::vector<std::string>& args) {
  Command a("key init",
            "Creates F (mode 0600; refuses an existing file, whose DEKs would be lost) with a new "
            "EC P-256 private key, or the key in --import PEM (any key OpenSSL reads), and one "
            "DEK (raft-dek, random key id). With --autolock a new unlock key locks the file and "
            "is printed once; with --kek SOURCE the new unlock key is wrapped by a PKCS#11 "
            "token or a KMS plugin instead and never shown; without either the key and DEK are "
            "stored unencrypted.");
  CommonFlags(a);
  a.Switch("autolock", "lock the new file under a new unlock key");
  a.Option("kek", "SOURCE", kKekHelp);
  a.Option("algorithm", "aes-256-gcm|chacha20-poly1305", "raft-dek's algorithm (default aes-256-gcm)");
  a.Option("import", "PEM", "take the private key from this PEM file");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<Common> c = ParseCommon(a);
  if (!c.ok()) return Fail(kExitUsage, c.status().message());
  env::FileSystem* fs = env::DefaultFileSystem();
  if (fs->FileExists(c->path).ok()) {
    return Fail(kExitUsage, absl::StrCat(c->path, " already exists; refusing to overwrite a key "
                                                  "file (its DEKs would be lost)"));
  }
  absl::StatusOr<encryption::Algorithm> alg = AlgorithmArg(a, encryption::kDefaultAlgorithm);
  if (!alg.ok()) return Fail(kExitUsage, alg.status().message());

  absl::StatusOr<pem::PrivateKey> key = absl::UnknownError("unset");
  if (a.Has("import")) {
    const std::string from = *a.Get("import");
    absl::StatusOr<std::string> pem_text = env::ReadSecretFile(fs, from);
    if (!pem_text.ok()) return KeyFail(pem_text.status());
    // A key file of ours or any key OpenSSL reads (its first key block).
    absl::StatusOr<pem::KeyFile> ours = pem::DecodeKeyFile(
        *pem_text, c->unlock_key.has_value() ? &*c->unlock_key : nullptr);
    if (ours.ok()) {
      key = std::move(ours->key);
    } else {
      std::optional<absl::string_view> pw;
      if (c->unlock_key.has_value()) pw = c->unlock_key->text();
      key = pem::PrivateKey::FromPem(*pem_text, pw);
    }
    pem::WipeString(&*pem_text);
    if (!key.ok()) {
      return KeyFail(absl::Status(key.status().code(),
                                  absl::StrCat("--import ", from, ": ", key.status().message())));
    }
  } else {
    key = pem::PrivateKey::GenerateEcP256();
    if (!key.ok()) return KeyFail(key.status());
  }
  absl::StatusOr<encryption::Dek> dek = encryption::Dek::Generate(*alg);
  if (!dek.ok()) return KeyFail(dek.status());
  pem::DekHeaders headers;
  headers.current = pem::StoredDek{std::move(*dek), 0, pem::DekCreatedAt(absl::Now())};

  std::optional<FreshKek> fresh;
  if (a.Has("autolock") || a.Has("kek")) {
    absl::StatusOr<FreshKek> k = NewKek(a);
    if (!k.ok()) return KeyFail(k.status());
    fresh = std::move(*k);
  }
  const bool locked = fresh.has_value();
  pem::KeyReadWriterOptions o;
  o.path = c->path;
  if (fresh.has_value()) {
    o.unlock_key = fresh->unlock_key.Clone();
    o.kek_binding = fresh->binding;
  }
  absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> krw = pem::KeyReadWriter::Create(std::move(o));
  if (!krw.ok()) return KeyFail(krw.status());
  if (fresh.has_value()) {
    if (absl::Status s = EmitNewKek(*fresh); !s.ok()) return KeyFail(s);
  }
  if (absl::Status s = (*krw)->Write(*key, headers); !s.ok()) return KeyFail(s);

  std::printf("key-file %s\n", c->path.c_str());
  std::printf("private-key %s\n", key->Description().c_str());
  std::printf("%s\n", DekLine(pem::kRaftDekHeader, headers.current).c_str());
  std::printf("autolock %s\n", locked ? "on" : "off");
  if (!locked) {
    std::fflush(stdout);
    WarnUnlocked(c->path);
  }
  return kExitOk;
}

int KeyInspect(const std::vector<std::string>& args) {
  Command a("key inspect",
            "Shows the key file's layout, autolock state, kek-version and "
            "raft-dek-needs-rotation; with the unlock key (or for an unlocked file) also the key "
            "type and each DEK's key id, algorithm and stored encryption counter.");
  CommonFlags(a);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<Common> c = ParseCommon(a);
  if (!c.ok() && a.Get("key-file").has_value() && !a.Has("unlock-key-file") &&
      NamesKekSource(*a.Get("key-file"))) {
    // The file's KEK source cannot be reached: show what the file shows
    // without it, as for a locked file without its unlock key.
    std::fprintf(stderr, "sealwal: warning: %.*s\n", static_cast<int>(c.status().message().size()),
                 c.status().message().data());
    c = Common{*a.Get("key-file"), std::nullopt};
  }
  if (!c.ok()) return Fail(kExitUsage, c.status().message());
  absl::StatusOr<std::string> text = env::ReadSecretFile(env::DefaultFileSystem(), c->path);
  if (!text.ok()) return KeyFail(text.status());
  absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(*text);
  if (!parsed.ok()) {
    pem::WipeString(&*text);
    return KeyFail(absl::Status(parsed.status().code(),
                                absl::StrCat(c->path, ": ", parsed.status().message())));
  }
  std::optional<pem::KeyFile> file;
  if (!parsed->locked || c->unlock_key.has_value()) {
    absl::StatusOr<pem::KeyFile> f =
        pem::DecodeKeyFile(*text, c->unlock_key.has_value() ? &*c->unlock_key : nullptr);
    if (!f.ok()) {
      pem::WipeString(&*text);
      return KeyFail(absl::Status(f.status().code(), absl::StrCat(c->path, ": ", f.status().message())));
    }
    file = std::move(*f);
  }
  pem::WipeString(&*text);
  std::printf("key-file %s\n", c->path.c_str());
  std::printf("layout %s\n", std::string(pem::LayoutName(parsed->layout)).c_str());
  std::printf("autolock %s\n", parsed->locked ? "on" : "off");
  std::printf("kek-version %llu\n", static_cast<unsigned long long>(parsed->kek_version));
  std::printf("kek-source %s\n", parsed->kek_binding.has_value() ? parsed->kek_binding->source.c_str()
                                  : parsed->locked              ? "unlock-key"
                                                                : "none");
  // What a copy of this file gives away: the DEKs and the private key,
  // wrapped under the KEK (locked) or in the clear.
  std::printf("key-material %s\n",
              parsed->kek_binding.has_value()
                  ? "none unwrapped (DEKs and private key are wrapped under a KEK whose unlock "
                    "key only the KEK source unwraps)"
              : parsed->locked
                  ? "wrapped (DEKs and private key open only with the unlock key)"
                  : "in the clear (DEKs and private key readable by anyone with the file)");
  if (file.has_value()) {
    std::printf("private-key %s\n", file->key.Description().c_str());
    std::printf("%s\n", DekLine(pem::kRaftDekHeader, file->headers.current).c_str());
    std::printf("%s\n", DekLine(pem::kRaftDekPendingHeader, file->headers.pending).c_str());
  } else {
    std::printf("private-key locked (give the unlock key to see more)\n");
    std::printf("raft-dek %s\n", parsed->current.has_value() ? "wrapped" : "none");
    std::printf("raft-dek-pending %s\n", parsed->pending.has_value() ? "wrapped" : "none");
  }
  // The creation times sit inside the wrapped records: `locked` without
  // the unlock key.
  if (file.has_value()) {
    std::printf("%s\n", CreatedLine(pem::kRaftDekHeader, file->headers.current).c_str());
    std::printf("%s\n", CreatedLine(pem::kRaftDekPendingHeader, file->headers.pending).c_str());
  } else {
    std::printf("raft-dek-created %s\n", parsed->current.has_value() ? "locked" : "none");
    std::printf("raft-dek-pending-created %s\n", parsed->pending.has_value() ? "locked" : "none");
  }
  std::printf("raft-dek-needs-rotation %s\n", parsed->needs_rotation ? "true" : "false");
  // The current DEK's stored count (an upper bound of what it has sealed,
  // raised in blocks before use) and whether it should be rotated: the
  // count reached the rotation threshold (2^30) or the file asks for it.
  if (file.has_value() && file->headers.current.has_value()) {
    const uint64_t n = file->headers.current->encryptions;
    std::printf("encryptions %llu\n", static_cast<unsigned long long>(n));
    std::printf("needs-rotation %s\n",
                n >= encryption::kDefaultRotationThreshold || parsed->needs_rotation ? "true"
                                                                                     : "false");
  } else if (file.has_value()) {
    std::printf("encryptions none\nneeds-rotation %s\n", parsed->needs_rotation ? "true" : "false");
  } else {
    std::printf("encryptions locked\nneeds-rotation %s\n",
                parsed->needs_rotation ? "true" : "unknown");
  }
  std::fflush(stdout);
  if (!parsed->locked) WarnUnlocked(c->path);
  return kExitOk;
}

int KeyRotateDek(const std::vector<std::string>& args) {
  Command a("key rotate-dek",
            "Starts a DEK rotation: a new random DEK becomes raft-dek-pending and "
            "raft-dek-needs-rotation is cleared (if a rotation is under way, another is queued "
            "instead). The process writing the store finishes the rotation on its next saves. "
            "Prints the resulting raft-dek, raft-dek-pending and raft-dek-needs-rotation lines.");
  CommonFlags(a);
  a.Option("algorithm", "A", "the new DEK's algorithm (default that of raft-dek)");
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<Common> c = ParseCommon(a);
  if (!c.ok()) return Fail(kExitUsage, c.status().message());
  absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> krw = OpenKrw(*c);
  if (!krw.ok()) return KeyFail(krw.status());
  std::string report;
  absl::Status s = (*krw)->ViewAndUpdateHeaders(
      [&](const pem::DekHeaders& h) -> absl::StatusOr<pem::DekHeaders> {
        pem::DekHeaders out = h.Clone();
        const encryption::Algorithm dflt =
            h.current.has_value() ? h.current->dek.algorithm : encryption::kDefaultAlgorithm;
        absl::StatusOr<encryption::Algorithm> alg = AlgorithmArg(a, dflt);
        if (!alg.ok()) return alg.status();
        if (h.pending.has_value()) {
          // A rotation is under way: queue another one after it (what
          // swarmkit does with raft-dek-needs-rotation).
          out.needs_rotation = true;
          report = absl::StrCat(DekLine(pem::kRaftDekPendingHeader, h.pending),
                                "\nraft-dek-needs-rotation true\n");
          return out;
        }
        absl::StatusOr<encryption::Dek> dek = encryption::Dek::Generate(*alg);
        if (!dek.ok()) return dek.status();
        if (h.current.has_value() && dek->id == h.current->dek.id) {
          return absl::InternalError("new DEK drew the current key id; run again");
        }
        std::optional<pem::StoredDek>& slot = h.current.has_value() ? out.pending : out.current;
        slot = pem::StoredDek{std::move(*dek), 0, pem::DekCreatedAt(absl::Now())};
        out.needs_rotation = false;
        report = absl::StrCat(DekLine(pem::kRaftDekHeader, out.current), "\n",
                              DekLine(pem::kRaftDekPendingHeader, out.pending),
                              "\nraft-dek-needs-rotation false\n");
        return out;
      });
  if (!s.ok()) return KeyFail(s);
  std::printf("%s", report.c_str());
  return kExitOk;
}

// rotate-kek, lock and unlock: one ViewAndRotateKEK each.
enum class KekOp { kRotate, kLock, kUnlock };

int KeyKek(const std::vector<std::string>& args, KekOp op) {
  Command a(op == KekOp::kRotate ? "key rotate-kek" : op == KekOp::kLock ? "key lock" : "key unlock",
            op == KekOp::kRotate
                ? "For a locked file: a new unlock key; the private key and every DEK header are "
                  "re-wrapped under the new KEK (kek-version + 1) in one atomic write, and "
                  "raft-dek-needs-rotation is set. Prints the new unlock key, or with --kek "
                  "SOURCE has a PKCS#11 token or KMS plugin hold it; the old one stops working. "
                  "Moves a file between any two KEK sources (unlock key, token, KMS)."
            : op == KekOp::kLock
                ? "For an unlocked file: a new unlock key (printed, or held by --kek SOURCE) "
                  "locks it (kek-version + 1) and raft-dek-needs-rotation is set. Refuses an "
                  "already locked file (use rotate-kek)."
                : "For a locked file, with its unlock key: stores the key and DEKs unwrapped "
                  "(kek-version + 1) and warns that autolock is off.");
  CommonFlags(a);
  if (op != KekOp::kUnlock) a.Option("kek", "SOURCE", kKekHelp);
  if (std::optional<int> rc = a.Parse(args)) return *rc;
  absl::StatusOr<Common> c = ParseCommon(a);
  if (!c.ok()) return Fail(kExitUsage, c.status().message());
  if (op == KekOp::kLock) {
    // Say "already locked" without needing its unlock key first.
    absl::StatusOr<std::string> text = env::ReadSecretFile(env::DefaultFileSystem(), c->path);
    if (!text.ok()) return KeyFail(text.status());
    absl::StatusOr<pem::ParsedKeyFile> parsed = pem::ParseKeyFile(*text);
    pem::WipeString(&*text);
    if (parsed.ok() && parsed->locked) {
      return Fail(kExitUsage, absl::StrCat(c->path, " is already locked (use `sealwal key "
                                                    "rotate-kek` for a new unlock key)"));
    }
    c->unlock_key.reset();  // an unlocked file needs none
  }
  absl::StatusOr<std::unique_ptr<pem::KeyReadWriter>> krw = OpenKrw(*c);
  if (!krw.ok()) return KeyFail(krw.status());
  std::optional<FreshKek> fresh;
  if (op != KekOp::kUnlock) {
    absl::StatusOr<FreshKek> k = NewKek(a);
    if (!k.ok()) return KeyFail(k.status());
    fresh = std::move(*k);
  }
  uint64_t version = 0;
  absl::Status s = (*krw)->ViewAndRotateKEK(
      [&](const pem::KekState& st, const pem::DekHeaders& h) -> absl::StatusOr<pem::KekUpdate> {
        if (op == KekOp::kLock && st.locked) {
          return absl::FailedPreconditionError(
              "the key file is already locked (use `sealwal key rotate-kek` for a new unlock key)");
        }
        if (op != KekOp::kLock && !st.locked) {
          return absl::FailedPreconditionError(
              "the key file is not locked (use `sealwal key lock`)");
        }
        pem::KekUpdate u;
        if (fresh.has_value()) {
          SEALWAL_RETURN_IF_ERROR(EmitNewKek(*fresh));  // before the write, see above
          u.unlock_key = fresh->unlock_key.Clone();
          u.kek_binding = fresh->binding;
        }
        u.version = st.version + 1;
        u.headers = h.Clone();
        // DEKs that sat unwrapped on disk are treated as exposed: rotate
        // them once the file is locked (as swarmkit does). After a KEK
        // rotation too: a copy of the file from before it opens with the
        // old unlock key, so the DEKs are only safe again once replaced.
        if (op != KekOp::kUnlock && h.current.has_value()) u.headers.needs_rotation = true;
        version = u.version;
        return u;
      });
  if (!s.ok()) return KeyFail(s);
  std::printf("key-file %s\n", c->path.c_str());
  std::printf("kek-version %llu\n", static_cast<unsigned long long>(version));
  std::printf("autolock %s\n", op == KekOp::kUnlock ? "off" : "on");
  if (!fresh.has_value()) {
    std::fflush(stdout);
    WarnUnlocked(c->path);
  }
  return kExitOk;
}

}  // namespace

int KeyMain(const std::vector<std::string>& args) {
  // A closed stdout must be an error we see (EPIPE), not a silent death
  // after the key file changed.
  std::signal(SIGPIPE, SIG_IGN);
  return RunGroup(
      "key", kKeyDescription,
      {{"init", "create a key file (--autolock: locked)", KeyInit},
       {"inspect", "show a key file's state and DEKs", KeyInspect},
       {"rotate-dek", "start a DEK rotation (a new raft-dek-pending)", KeyRotateDek},
       {"rotate-kek", "a new unlock key for a locked file",
        [](const std::vector<std::string>& a) { return KeyKek(a, KekOp::kRotate); }},
       {"lock", "lock an unlocked file under a new unlock key",
        [](const std::vector<std::string>& a) { return KeyKek(a, KekOp::kLock); }},
       {"unlock", "store the key and DEKs unwrapped",
        [](const std::vector<std::string>& a) { return KeyKek(a, KekOp::kUnlock); }}},
      args);
}

}  // namespace sealwal::cli
