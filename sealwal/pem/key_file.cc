#include "sealwal/pem/key_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/pem/key_file_digest.h"
#include "sealwal/pem/pem_block.h"

namespace sealwal::pem {
namespace {

using encryption::Algorithm;
using encryption::KeyId;

constexpr absl::string_view kDigestDomain{"sealwal/v1/pem-digest\0", 22};
constexpr absl::string_view kMacDomain{"sealwal/v2/key-file-mac\0", 24};
constexpr uint8_t kFlagLocked = 0x01;
// The file info bytes the MAC covers: version, flags, digest, file id.
constexpr size_t kMacCoveredSize = kFileInfoV1Size + kFileIdSize;

bool IsKeyLabel(absl::string_view label) {
  return label == "PRIVATE KEY" || absl::EndsWith(label, " PRIVATE KEY");
}

bool IsDekHeader(absl::string_view name) {
  return name == kKekVersionHeader || name == kRaftDekHeader || name == kRaftDekPendingHeader ||
         name == kNeedsRotationHeader || name == kKekSourceHeader || name == kKekWrappedHeader;
}

// Headers OpenSSL itself interprets on a traditional key block.
bool IsOpenSslHeader(absl::string_view name) { return name == "Proc-Type" || name == "DEK-Info"; }

// The file MAC over the first kMacCoveredSize bytes of a version-2 file
// info (docs/format.md §11); all zeros if OpenSSL fails, which never
// matches.
std::array<unsigned char, 32> FileMac(const encryption::SecretKey& mac_key,
                                      absl::string_view covered) {
  std::array<unsigned char, 32> out{};
  std::string in;
  in.reserve(kMacDomain.size() + covered.size());
  in.append(kMacDomain.data(), kMacDomain.size());
  in.append(covered.data(), covered.size());
  unsigned int n = 0;
  if (HMAC(EVP_sha256(), mac_key.bytes().data(), static_cast<int>(mac_key.size()),
           reinterpret_cast<const unsigned char*>(in.data()), in.size(), out.data(), &n) ==
          nullptr ||
      n != out.size()) {
    out.fill(0);
  }
  return out;
}

// Checks a version-2 file's MAC under `unlock_key`. `key_proven`: the
// unlock key is known to be the file's (a DEK record's KEK id matched, or
// the private key opened), so a mismatch is an altered file, not a wrong
// key.
absl::Status CheckFileMac(const ParsedKeyFile& parsed, const UnlockKey& unlock_key,
                          bool key_proven) {
  if (parsed.file_info.size() != kFileInfoV2Size) {
    return absl::InternalError("a version-2 file info of the wrong size");  // ParseKeyFile checked
  }
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey mac_key, unlock_key.DeriveFileMacKey());
  const std::array<unsigned char, 32> want =
      FileMac(mac_key, absl::string_view(parsed.file_info).substr(0, kMacCoveredSize));
  if (CRYPTO_memcmp(want.data(), parsed.file_info.data() + kMacCoveredSize, want.size()) == 0) {
    return absl::OkStatus();
  }
  if (!key_proven) {
    return absl::PermissionDeniedError(
        "wrong unlock key, or the file was altered: the key file MAC does not match, and the "
        "file has no DEK header to tell which");
  }
  return absl::DataLossError(
      "key file MAC mismatch: the file was altered (its headers, key block or file info are not "
      "what the holder of the unlock key wrote)");
}

}  // namespace

std::array<unsigned char, 32> KeyFileDigest(uint8_t version, uint8_t flags,
                                            const std::vector<PemHeader>& dek_headers,
                                            absl::string_view key_label,
                                            absl::string_view key_der) {
  // Fed piece by piece: an unlocked key's DER is never copied into a
  // growing buffer (whose outgrown copies would be freed unwiped).
  std::array<unsigned char, 32> out{};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  auto feed = [&](absl::string_view piece) {
    EVP_DigestUpdate(md.get(), piece.data(), piece.size());
  };
  if (md == nullptr || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) {
    return out;  // all zeros: never matches a real digest, so the file is refused
  }
  const char vf[2] = {static_cast<char>(version), static_cast<char>(flags)};
  feed(kDigestDomain);
  feed(absl::string_view(vf, 2));
  for (const PemHeader& h : dek_headers) {
    feed(h.name);
    feed(": ");
    feed(h.value);
    feed("\n");
  }
  feed(key_label);
  feed("\n");
  feed(key_der);
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(md.get(), out.data(), &n) != 1) out.fill(0);
  return out;
}

namespace {

// The associated data of a DEK record: extra = header name || file id (the
// id is empty in a version-1 or swarmkit file). `*extra` holds the bytes
// the returned context borrows.
encryption::AadContext DekAad(absl::string_view header, uint64_t kek_version,
                              absl::string_view file_id, std::string* extra) {
  *extra = absl::StrCat(header, file_id);
  encryption::AadContext ctx;
  ctx.purpose = encryption::Purpose::kDek;
  ctx.index = kek_version;
  ctx.extra = *extra;
  return ctx;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetLe(absl::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

// Parses a DEK header value: canonical base64 of a canonically serialized
// EncryptedRecord.
absl::StatusOr<encryptionpb::EncryptedRecord> ParseRecordHeader(absl::string_view name,
                                                             absl::string_view value) {
  SEALWAL_ASSIGN_OR_RETURN(std::string raw, DecodeCanonicalBase64(value, absl::StrCat("header ", name)));
  encryptionpb::EncryptedRecord rec;
  const bool parsed = rec.ParseFromString(raw);
  std::string again = parsed ? rec.SerializeAsString() : std::string();
  const bool canonical = parsed && again == raw;
  WipeString(&raw);
  WipeString(&again);
  if (!parsed) return absl::DataLossError(absl::StrCat("header ", name, " is not a record"));
  if (!canonical) {
    return absl::DataLossError(absl::StrCat("header ", name, " is not a canonical record"));
  }
  return rec;
}

// Opens one record into its DekPlaintext bytes.
absl::StatusOr<std::string> OpenRecord(const encryptionpb::EncryptedRecord& rec,
                                       absl::string_view name, bool locked,
                                       uint64_t kek_version, absl::string_view file_id,
                                       const Kek* kek) {
  if (!locked) {
    if (rec.algorithm() != encryptionpb::EncryptedRecord::NOT_ENCRYPTED || rec.key_id() != 0 ||
        !rec.nonce().empty()) {
      return absl::DataLossError(absl::StrCat(
          "header ", name, " is a wrapped record, but the key file is not locked"));
    }
    return rec.data();
  }
  if (rec.algorithm() == encryptionpb::EncryptedRecord::NOT_ENCRYPTED) {
    return absl::DataLossError(
        absl::StrCat("header ", name, " is stored unwrapped in a locked key file"));
  }
  if (rec.algorithm() != encryptionpb::EncryptedRecord::AES_256_GCM) {
    return absl::DataLossError(absl::StrCat(
        "header ", name, " is wrapped with algorithm ", static_cast<int>(rec.algorithm()),
        ", which sealwal cannot open (swarmkit's secretbox/fernet DEKs are not supported)"));
  }
  if (rec.nonce().size() != encryption::kAeadNonceSize) {
    return absl::DataLossError(absl::StrCat("header ", name, " has a malformed nonce"));
  }
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<encryption::Aead> aead,
                   encryption::Aead::Create(Algorithm::kAes256Gcm, kek->key));
  std::string extra;
  SEALWAL_ASSIGN_OR_RETURN(
      std::string aad,
      encryption::AssociatedData(DekAad(name, kek_version, file_id, &extra), kek->id));
  std::string plain;
  absl::Status s = aead->Open(rec.nonce(), aad, rec.data(), &plain);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat(
        "header ", name, " does not authenticate under this unlock key's KEK at kek-version ",
        kek_version, " (the header was altered, moved from another key file, or its file info ",
        "was rewritten)"));
  }
  return plain;
}

// What a binding must be to be written, and what one read must be.
absl::Status CheckKekBinding(const KekBinding& b) {
  if (b.source.empty() || b.source.size() > kMaxKekSourceSize) {
    return absl::InvalidArgumentError(absl::StrCat("kek-source must be 1..", kMaxKekSourceSize,
                                                   " characters"));
  }
  for (char c : b.source) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("kek-source has a non-printable character");
    }
  }
  if (b.source.front() == ' ' || b.source.back() == ' ') {
    return absl::InvalidArgumentError("kek-source starts or ends with a space");
  }
  if (b.wrapped.empty() || b.wrapped.size() > kMaxKekWrappedSize) {
    return absl::InvalidArgumentError(absl::StrCat("kek-wrapped must be 1..", kMaxKekWrappedSize,
                                                   " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kSealwal: return "sealwal (two PEM blocks)";
    case Layout::kSwarmkit: return "swarmkit (headers on the key block; rewritten on next write)";
    case Layout::kBareKey: return "bare private key (no DEK headers)";
  }
  return "unknown";
}

DekHeaders DekHeaders::Clone() const {
  DekHeaders h;
  if (current.has_value()) h.current = current->Clone();
  if (pending.has_value()) h.pending = pending->Clone();
  h.needs_rotation = needs_rotation;
  return h;
}

ParsedKeyFile::~ParsedKeyFile() {
  WipeString(&key_pem);
  // An unlocked file's DEK records carry the DEKs in the clear.
  if (current.has_value()) WipeString(current->mutable_data());
  if (pending.has_value()) WipeString(pending->mutable_data());
}

std::string EncodeDekPlaintext(const StoredDek& d) {
  std::string out;
  out.reserve(kDekPlaintextSize);
  out.push_back(static_cast<char>(kDekPlaintextVersion));
  out.push_back(static_cast<char>(encryption::ToProto(d.dek.algorithm)));
  PutLe(&out, d.dek.id.value(), 4);
  PutLe(&out, d.encryptions, 8);
  out.append(d.dek.key.bytes().data(), d.dek.key.size());
  PutLe(&out, d.created, 8);
  return out;
}

absl::StatusOr<StoredDek> DecodeDekPlaintext(absl::string_view b, absl::string_view header) {
  auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("header ", header, ": ", what));
  };
  if (b.empty()) return bad("DEK is 0 bytes");
  const uint8_t version = static_cast<uint8_t>(b[0]);
  if (version != kDekPlaintextVersion && version != kDekPlaintextVersion1) {
    return bad(absl::StrCat("unknown DEK format version ", static_cast<int>(version)));
  }
  // Each version has exactly one size: a record cut short or padded never
  // passes as the other version.
  const size_t want = version == kDekPlaintextVersion ? kDekPlaintextSize : kDekPlaintextV1Size;
  if (b.size() != want) {
    return bad(absl::StrCat("DEK version ", static_cast<int>(version), " is ", b.size(),
                            " bytes, want ", want));
  }
  absl::StatusOr<Algorithm> alg = encryption::AlgorithmFromProto(static_cast<uint8_t>(b[1]));
  if (!alg.ok() || *alg == Algorithm::kNotEncrypted) {
    return bad(absl::StrCat("unknown DEK algorithm ", static_cast<int>(static_cast<uint8_t>(b[1]))));
  }
  const KeyId id(static_cast<uint32_t>(GetLe(b.substr(2), 4)));
  const uint64_t encryptions = GetLe(b.substr(6), 8);
  uint64_t created = 0;  // version 1: unknown
  if (version == kDekPlaintextVersion) {
    created = GetLe(b.substr(46), 8);
    // DekCreatedAt never writes more (absl::Time's unix seconds are int64).
    if (created > static_cast<uint64_t>(INT64_MAX)) {
      return bad(absl::StrCat("DEK creation time ", created, " is out of range"));
    }
  }
  SEALWAL_ASSIGN_OR_RETURN(encryption::SecretKey key, encryption::SecretKey::FromBytes(b.substr(14, 32)));
  absl::StatusOr<encryption::Dek> dek = encryption::Dek::FromParts(id, *alg, std::move(key));
  if (!dek.ok()) return bad(dek.status().message());
  return StoredDek{std::move(*dek), encryptions, created};
}

absl::StatusOr<ParsedKeyFile> ParseKeyFile(absl::string_view text) {
  if (!absl::StrContains(text, "-----BEGIN ")) {
    return absl::DataLossError(text.empty() ? "the key file is empty"
                                            : "not a PEM key file (no \"-----BEGIN\" line)");
  }
  SEALWAL_ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ParsePemBlocks(text));
  ParsedKeyFile out;
  const PemBlock* dek_block = nullptr;
  const PemBlock* key_block = nullptr;
  if (blocks.size() == 2 && blocks[0].label == kDekBlockLabel && IsKeyLabel(blocks[1].label)) {
    out.layout = Layout::kSealwal;
    dek_block = &blocks[0];
    key_block = &blocks[1];
  } else if (blocks.size() == 1 && IsKeyLabel(blocks[0].label)) {
    key_block = &blocks[0];
    out.layout = Layout::kBareKey;
    for (const PemHeader& h : key_block->headers) {
      if (IsDekHeader(h.name)) out.layout = Layout::kSwarmkit;
    }
  } else {
    std::string found;
    for (const PemBlock& b : blocks) absl::StrAppend(&found, found.empty() ? "" : ", ", b.label);
    return absl::DataLossError(absl::StrCat(
        "not a sealwal key file: expected a ", kDekBlockLabel,
        " block followed by a private key block, found ",
        blocks.empty() ? "no PEM block" : absl::StrCat("blocks [", found, "]")));
  }

  // Sort the headers: DEK headers (from whichever block carries them) and
  // the ones OpenSSL interprets on the key block.
  std::vector<PemHeader> dek_headers;
  std::vector<PemHeader> key_headers;
  if (dek_block != nullptr) {
    for (const PemHeader& h : dek_block->headers) {
      if (!IsDekHeader(h.name)) {
        return absl::DataLossError(absl::StrCat("unknown header \"", h.name, "\" in the ",
                                                kDekBlockLabel, " block"));
      }
      dek_headers.push_back(h);
    }
  }
  for (const PemHeader& h : key_block->headers) {
    if (IsDekHeader(h.name) && out.layout == Layout::kSwarmkit) {
      dek_headers.push_back(h);
    } else if (IsOpenSslHeader(h.name)) {
      key_headers.push_back(h);
    } else {
      return absl::DataLossError(
          absl::StrCat("unexpected header \"", h.name, "\" on the private key block"));
    }
  }
  out.key_label = key_block->label;
  out.locked = key_block->label == "ENCRYPTED PRIVATE KEY";
  for (const PemHeader& h : key_headers) {
    if (h.name == "Proc-Type" && absl::StrContains(h.value, "ENCRYPTED")) out.locked = true;
  }

  bool have_version = false;
  std::optional<std::string> kek_source, kek_wrapped;
  for (const PemHeader& h : dek_headers) {
    auto dup = [&](bool seen) {
      return seen ? absl::DataLossError(absl::StrCat("header ", h.name, " appears twice"))
                  : absl::OkStatus();
    };
    if (h.name == kKekVersionHeader) {
      SEALWAL_RETURN_IF_ERROR(dup(have_version));
      have_version = true;
      const bool canonical = !h.value.empty() && h.value.size() <= 20 &&
                             (h.value == "0" || h.value[0] != '0');
      if (!canonical || !absl::SimpleAtoi(h.value, &out.kek_version) ||
          absl::StrCat(out.kek_version) != h.value) {
        return absl::DataLossError("header kek-version is not a decimal number");
      }
    } else if (h.name == kKekSourceHeader) {
      SEALWAL_RETURN_IF_ERROR(dup(kek_source.has_value()));
      kek_source = h.value;
    } else if (h.name == kKekWrappedHeader) {
      SEALWAL_RETURN_IF_ERROR(dup(kek_wrapped.has_value()));
      SEALWAL_ASSIGN_OR_RETURN(kek_wrapped, DecodeCanonicalBase64(h.value, "header kek-wrapped"));
    } else if (h.name == kRaftDekHeader) {
      SEALWAL_RETURN_IF_ERROR(dup(out.current.has_value()));
      SEALWAL_ASSIGN_OR_RETURN(out.current, ParseRecordHeader(h.name, h.value));
    } else if (h.name == kRaftDekPendingHeader) {
      SEALWAL_RETURN_IF_ERROR(dup(out.pending.has_value()));
      SEALWAL_ASSIGN_OR_RETURN(out.pending, ParseRecordHeader(h.name, h.value));
    } else {  // kNeedsRotationHeader
      SEALWAL_RETURN_IF_ERROR(dup(out.needs_rotation));
      if (h.value != "true" && h.value != "false") {
        return absl::DataLossError("header raft-dek-needs-rotation is neither true nor false");
      }
      out.needs_rotation = h.value == "true";
    }
  }

  if (kek_source.has_value() != kek_wrapped.has_value()) {
    return absl::DataLossError("headers kek-source and kek-wrapped come together; one is missing");
  }
  if (kek_source.has_value()) {
    if (out.layout != Layout::kSealwal || !out.locked) {
      return absl::DataLossError(
          "header kek-source is only valid in a locked key file of sealwal's layout");
    }
    KekBinding b{std::move(*kek_source), std::move(*kek_wrapped)};
    if (absl::Status s = CheckKekBinding(b); !s.ok()) {
      return absl::DataLossError(absl::StrCat("header ", s.message()));
    }
    out.kek_binding = std::move(b);
  }

  SEALWAL_ASSIGN_OR_RETURN(std::string der,
                   DecodeCanonicalBase64(key_block->body_base64, "the private key block"));
  if (der.empty()) {
    return absl::DataLossError("the private key block is empty");
  }
  if (out.layout == Layout::kSealwal) {
    absl::Status s = [&]() -> absl::Status {
      if (!have_version) return absl::DataLossError("header kek-version is missing");
      SEALWAL_ASSIGN_OR_RETURN(std::string info,
                       DecodeCanonicalBase64(dek_block->body_base64, "the file info"));
      if (info.size() < kFileInfoV1Size) return absl::DataLossError("the file info is truncated");
      const uint8_t version = static_cast<uint8_t>(info[0]);
      const uint8_t flags = static_cast<uint8_t>(info[1]);
      // The digest comes first: it covers the version byte, so a damaged
      // version reads as damage, not as "a newer sealwal". Every format
      // version keeps these first 34 bytes and their digest.
      const std::array<unsigned char, 32> want =
          KeyFileDigest(version, flags, dek_headers, key_block->label, der);
      if (CRYPTO_memcmp(want.data(), info.data() + 2, want.size()) != 0) {
        return absl::DataLossError(
            "key file checksum mismatch: the file was damaged (SHA-256 in the file info does "
            "not match its headers and key)");
      }
      if (version != kFileInfoVersion1 && version != kFileInfoVersion2) {
        return absl::FailedPreconditionError(absl::StrCat(
            "key file format version ", static_cast<int>(version),
            " is not one this sealwal reads (versions ", kFileInfoVersion1, " and ",
            kFileInfoVersion2, "); a newer sealwal?"));
      }
      const size_t want_size = version == kFileInfoVersion2 ? kFileInfoV2Size : kFileInfoV1Size;
      if (info.size() != want_size) {
        return absl::DataLossError(absl::StrCat("the file info is ", info.size(),
                                                " bytes, want ", want_size));
      }
      if ((flags & ~kFlagLocked) != 0) {
        return absl::DataLossError("the file info has unknown flags");
      }
      if (((flags & kFlagLocked) != 0) != out.locked) {
        return absl::DataLossError("the file info's lock flag disagrees with the key block");
      }
      // Version 2 carries a MAC under the unlock key: an unlocked file has
      // none to check it with.
      if (version == kFileInfoVersion2 && !out.locked) {
        return absl::DataLossError("a version-2 file info in an unlocked key file");
      }
      out.info_version = version;
      if (version == kFileInfoVersion2) out.file_id = info.substr(kFileInfoV1Size, kFileIdSize);
      out.file_info = std::move(info);
      return absl::OkStatus();
    }();
    if (!s.ok()) {
      WipeString(&der);
      return s;
    }
  }
  out.key_pem = FormatPemBlock(key_block->label, key_headers, der);
  WipeString(&der);
  return out;
}

namespace {

// OpenDekHeaders; `key_proven`: DecodeKeyFile opened the private key with
// `unlock_key` already.
absl::StatusOr<DekHeaders> OpenDekHeadersImpl(const ParsedKeyFile& parsed,
                                              const UnlockKey* unlock_key, bool key_proven) {
  DekHeaders out;
  out.needs_rotation = parsed.needs_rotation;
  struct Slot {
    absl::string_view name;
    const std::optional<encryptionpb::EncryptedRecord>* record;
    std::optional<StoredDek>* dek;
  };
  const Slot slots[] = {{kRaftDekHeader, &parsed.current, &out.current},
                        {kRaftDekPendingHeader, &parsed.pending, &out.pending}};
  std::optional<Kek> kek;
  if (parsed.locked && (parsed.current.has_value() || parsed.pending.has_value())) {
    if (unlock_key == nullptr) {
      return absl::PermissionDeniedError(
          "the key file is locked: an unlock key is needed");
    }
    SEALWAL_ASSIGN_OR_RETURN(kek, unlock_key->DeriveKek());
    // The wrong unlock key derives a KEK with another id: say so before
    // trying to decrypt. Some ids matching and some not is damage.
    int matching = 0, wrapped = 0;
    for (const Slot& s : slots) {
      if (!s.record->has_value() ||
          (*s.record)->algorithm() == encryptionpb::EncryptedRecord::NOT_ENCRYPTED) {
        continue;
      }
      ++wrapped;
      if ((*s.record)->key_id() == kek->id.value()) ++matching;
    }
    if (wrapped > 0 && matching == 0) {
      return absl::PermissionDeniedError(
          "wrong unlock key: it is not the key this file is locked with");
    }
    // Records, none wrapped: damage whatever the key (OpenRecord says so).
    key_proven = key_proven || matching > 0 || wrapped == 0;
  }
  // The MAC before any record is used: a file whose headers were edited
  // (a record dropped, needs-rotation stripped) is refused as a whole.
  if (parsed.locked && parsed.info_version == kFileInfoVersion2 && unlock_key != nullptr) {
    SEALWAL_RETURN_IF_ERROR(CheckFileMac(parsed, *unlock_key, key_proven));
  }
  for (const Slot& s : slots) {
    if (!s.record->has_value()) continue;
    if (kek.has_value() && (*s.record)->algorithm() != encryptionpb::EncryptedRecord::NOT_ENCRYPTED &&
        (*s.record)->key_id() != kek->id.value()) {
      return absl::DataLossError(
          absl::StrCat("header ", s.name, " names another KEK than the file's other DEK header"));
    }
    SEALWAL_ASSIGN_OR_RETURN(std::string plain, OpenRecord(**s.record, s.name, parsed.locked,
                                                   parsed.kek_version, parsed.file_id,
                                                   kek.has_value() ? &*kek : nullptr));
    absl::StatusOr<StoredDek> dek = DecodeDekPlaintext(plain, s.name);
    WipeString(&plain);
    if (!dek.ok()) return dek.status();
    *s.dek = std::move(*dek);
  }
  if (out.current.has_value() && out.pending.has_value() &&
      out.current->dek.id == out.pending->dek.id) {
    return absl::DataLossError("raft-dek and raft-dek-pending have the same key id");
  }
  return out;
}

}  // namespace

absl::StatusOr<DekHeaders> OpenDekHeaders(const ParsedKeyFile& parsed,
                                          const UnlockKey* unlock_key) {
  return OpenDekHeadersImpl(parsed, unlock_key, /*key_proven=*/false);
}

absl::Status CheckUnlockKeyGiven(const ParsedKeyFile& parsed, const UnlockKey* unlock_key) {
  if (parsed.locked && unlock_key == nullptr) {
    return absl::PermissionDeniedError("the key file is locked: an unlock key is needed");
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyFile> DecodeKeyFile(absl::string_view text, const UnlockKey* unlock_key) {
  SEALWAL_ASSIGN_OR_RETURN(ParsedKeyFile parsed, ParseKeyFile(text));
  SEALWAL_RETURN_IF_ERROR(CheckUnlockKeyGiven(parsed, unlock_key));
  std::optional<absl::string_view> password;
  if (parsed.locked) password = unlock_key->text();
  // Without DEK records only the private key tells a wrong unlock key from
  // an altered file (a MAC mismatch): it is opened first then.
  const bool no_records = !parsed.current.has_value() && !parsed.pending.has_value();
  std::optional<absl::StatusOr<PrivateKey>> early;
  if (parsed.locked && no_records) {
    early = PrivateKey::FromPem(parsed.key_pem, password);
    if (!early->ok()) return early->status();
  }
  SEALWAL_ASSIGN_OR_RETURN(DekHeaders headers,
                           OpenDekHeadersImpl(parsed, unlock_key, early.has_value()));
  absl::StatusOr<PrivateKey> key = early.has_value()
                                       ? std::move(*early)
                                       : PrivateKey::FromPem(parsed.key_pem, password);
  if (!key.ok()) {
    if (absl::IsPermissionDenied(key.status()) &&
        (headers.current.has_value() || headers.pending.has_value())) {
      // The unlock key opened the DEK headers, so it is the right one.
      return absl::DataLossError(absl::StrCat(
          "the private key block is damaged (the unlock key opens the DEK headers but not "
          "the key): ",
          key.status().message()));
    }
    return key.status();
  }
  return KeyFile{std::move(*key), std::move(headers), parsed.kek_version, parsed.locked,
                 parsed.layout, parsed.kek_binding, parsed.file_id};
}

absl::StatusOr<std::string> EncodeKeyFile(const PrivateKey& key, const DekHeaders& headers,
                                          uint64_t kek_version, const UnlockKey* unlock_key,
                                          const KekBinding* binding,
                                          const std::string* file_id) {
  if (binding != nullptr) {
    if (unlock_key == nullptr) {
      return absl::InvalidArgumentError("a KEK source needs a locked key file");
    }
    SEALWAL_RETURN_IF_ERROR(CheckKekBinding(*binding));
  }
  if (headers.current.has_value() && headers.pending.has_value() &&
      headers.current->dek.id == headers.pending->dek.id) {
    return absl::InvalidArgumentError("raft-dek and raft-dek-pending have the same key id");
  }
  // What DecodeDekPlaintext would refuse is never written.
  for (const std::optional<StoredDek>* d : {&headers.current, &headers.pending}) {
    if (d->has_value() && (*d)->created > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError("a DEK's creation time is out of range");
    }
  }
  const bool locked = unlock_key != nullptr;
  // A locked file is version 2, with its id (kept, or made now).
  std::string id;
  if (locked) {
    if (file_id != nullptr && !file_id->empty()) {
      if (file_id->size() != kFileIdSize) {
        return absl::InvalidArgumentError(
            absl::StrCat("a key file id is ", kFileIdSize, " bytes, got ", file_id->size()));
      }
      id = *file_id;
    } else {
      id.resize(kFileIdSize);
      if (RAND_bytes(reinterpret_cast<unsigned char*>(id.data()), static_cast<int>(id.size())) !=
          1) {
        return absl::InternalError("RAND_bytes failed making a key file id");
      }
    }
  }
  const uint8_t info_version = locked ? kFileInfoVersion2 : kFileInfoVersion1;
  std::optional<Kek> kek;
  std::unique_ptr<encryption::AeadEncrypter> wrapper;
  if (locked) {
    SEALWAL_ASSIGN_OR_RETURN(kek, unlock_key->DeriveKek());
    encryption::EncrypterOptions opts;
    opts.algorithm = Algorithm::kAes256Gcm;
    SEALWAL_ASSIGN_OR_RETURN(wrapper, encryption::AeadEncrypter::Create(kek->id, kek->key, opts));
  }
  std::vector<PemHeader> dek_headers;
  dek_headers.push_back(PemHeader{std::string(kKekVersionHeader), absl::StrCat(kek_version)});
  if (binding != nullptr) {
    dek_headers.push_back(PemHeader{std::string(kKekSourceHeader), binding->source});
    dek_headers.push_back(
        PemHeader{std::string(kKekWrappedHeader), absl::Base64Escape(binding->wrapped)});
  }
  auto add = [&](absl::string_view name, const StoredDek& d) -> absl::Status {
    std::string plain = EncodeDekPlaintext(d);
    encryptionpb::EncryptedRecord rec;
    if (locked) {
      std::string extra;
      absl::StatusOr<encryptionpb::EncryptedRecord> r =
          wrapper->Encrypt(DekAad(name, kek_version, id, &extra), plain);
      WipeString(&plain);
      if (!r.ok()) return r.status();
      rec = std::move(*r);
    } else {
      rec.set_algorithm(encryptionpb::EncryptedRecord::NOT_ENCRYPTED);
      rec.set_data(plain);
      WipeString(&plain);
    }
    std::string raw = rec.SerializeAsString();
    if (!locked) WipeString(rec.mutable_data());
    dek_headers.push_back(PemHeader{std::string(name), absl::Base64Escape(raw)});
    WipeString(&raw);
    return absl::OkStatus();
  };
  absl::Status s = absl::OkStatus();
  if (headers.current.has_value()) s = add(kRaftDekHeader, *headers.current);
  if (s.ok() && headers.pending.has_value()) s = add(kRaftDekPendingHeader, *headers.pending);
  if (headers.needs_rotation) {
    dek_headers.push_back(PemHeader{std::string(kNeedsRotationHeader), "true"});
  }
  auto wipe_headers = [&] {
    for (PemHeader& h : dek_headers) WipeString(&h.value);
  };
  if (!s.ok()) {
    wipe_headers();
    return s;
  }
  std::optional<absl::string_view> password;
  if (locked) password = unlock_key->text();
  absl::StatusOr<std::string> key_pem = key.ToPkcs8Pem(password);
  if (!key_pem.ok()) {
    wipe_headers();
    return key_pem.status();
  }
  // The key's label and DER, for the digest, from OpenSSL's own output.
  absl::StatusOr<std::vector<PemBlock>> kb = ParsePemBlocks(*key_pem);
  absl::StatusOr<std::string> der =
      kb.ok() && kb->size() == 1 ? DecodeCanonicalBase64((*kb)[0].body_base64, "key")
                                 : absl::InternalError("OpenSSL wrote an unexpected key block");
  if (!der.ok()) {
    wipe_headers();
    WipeString(&*key_pem);
    return absl::InternalError(absl::StrCat("re-reading the PKCS#8 output: ", der.status().message()));
  }
  if (kb.ok()) {
    for (PemBlock& b : *kb) WipeString(&b.body_base64);
  }
  const uint8_t flags = locked ? kFlagLocked : 0;
  const std::array<unsigned char, 32> digest =
      KeyFileDigest(info_version, flags, dek_headers, (*kb)[0].label, *der);
  WipeString(&*der);
  std::string info;
  info.push_back(static_cast<char>(info_version));
  info.push_back(static_cast<char>(flags));
  info.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  if (locked) {
    info.append(id);
    absl::StatusOr<encryption::SecretKey> mac_key = unlock_key->DeriveFileMacKey();
    if (!mac_key.ok()) {
      wipe_headers();
      WipeString(&*key_pem);
      return mac_key.status();
    }
    const std::array<unsigned char, 32> mac = FileMac(*mac_key, info);
    info.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  }
  std::string out = FormatPemBlock(kDekBlockLabel, dek_headers, info);
  wipe_headers();
  out += *key_pem;
  WipeString(&*key_pem);
  return out;
}

}  // namespace sealwal::pem
