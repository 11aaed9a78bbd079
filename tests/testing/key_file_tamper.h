// tests/testing/key_file_tamper.h: what someone with write access to a node
// key file but without its unlock key can do to it (issue 16 item 3), for
// the tests that show each edit refused: split the file into its parts,
// edit headers or blocks, and join it back with the unkeyed digest
// recomputed (docs/format.md §11). The file id and MAC of a version-2 file
// info are kept as they were, since they cannot be recomputed without the
// unlock key; rewriting the info as version 1 drops them.
//
// Also writes a locked file as a sealwal before file info version 2 did
// (version 1, DEK records sealed with the header name alone), which the
// holder of the unlock key can do: the legacy files that must stay readable.
#ifndef SEALWAL_TESTS_TESTING_KEY_FILE_TAMPER_H_
#define SEALWAL_TESTS_TESTING_KEY_FILE_TAMPER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "sealwal/encryption/associated_data.h"
#include "sealwal/encryption/encrypter.h"
#include "sealwal/pem/key_file.h"
#include "sealwal/pem/key_file_digest.h"
#include "sealwal/pem/pem_block.h"
#include "sealwal/pem/unlock_key.h"

namespace sealwal::testing {

// A sealwal-layout key file, taken apart. Test data only: not wiped.
struct KeyFileParts {
  std::vector<pem::PemHeader> dek_headers;
  std::string info;  // the raw file info
  std::string key_label;
  std::vector<pem::PemHeader> key_headers;
  std::string key_der;

  // Removes the DEK header `name`; false when there is none.
  bool Remove(absl::string_view name) {
    for (auto it = dek_headers.begin(); it != dek_headers.end(); ++it) {
      if (it->name == name) {
        dek_headers.erase(it);
        return true;
      }
    }
    return false;
  }
  // The value of DEK header `name`; "" when there is none.
  std::string Get(absl::string_view name) const {
    for (const pem::PemHeader& h : dek_headers) {
      if (h.name == name) return h.value;
    }
    return "";
  }
  void Set(absl::string_view name, absl::string_view value) {
    for (pem::PemHeader& h : dek_headers) {
      if (h.name == name) {
        h.value = std::string(value);
        return;
      }
    }
    dek_headers.emplace_back(std::string(name), std::string(value));
  }
};

// Splits a sealwal-layout file; empty parts (no key DER) when `text` is not one.
inline KeyFileParts SplitKeyFile(absl::string_view text) {
  KeyFileParts p;
  absl::StatusOr<std::vector<pem::PemBlock>> blocks = pem::ParsePemBlocks(text);
  if (!blocks.ok() || blocks->size() != 2) return p;
  p.dek_headers = (*blocks)[0].headers;
  p.info = pem::DecodeCanonicalBase64((*blocks)[0].body_base64, "info").value_or("");
  p.key_label = (*blocks)[1].label;
  p.key_headers = (*blocks)[1].headers;
  p.key_der = pem::DecodeCanonicalBase64((*blocks)[1].body_base64, "key").value_or("");
  return p;
}

// Joins `p` back with file info `version`: the version byte set, the digest
// recomputed, the rest of a version-2 info (file id, MAC) kept, cut to 34
// bytes for version 1.
inline std::string JoinKeyFile(KeyFileParts p, uint8_t version) {
  std::string info = p.info;
  if (info.size() < pem::kFileInfoV1Size) info.resize(pem::kFileInfoV1Size);
  if (version == pem::kFileInfoVersion1) info.resize(pem::kFileInfoV1Size);
  info[0] = static_cast<char>(version);
  const std::array<unsigned char, 32> digest = pem::KeyFileDigest(
      version, static_cast<uint8_t>(info[1]), p.dek_headers, p.key_label, p.key_der);
  info.replace(2, 32, reinterpret_cast<const char*>(digest.data()), digest.size());
  return pem::FormatPemBlock(pem::kDekBlockLabel, p.dek_headers, info) +
         pem::FormatPemBlock(p.key_label, p.key_headers, p.key_der);
}

// The key block alone: the file with its DEK block dropped (a bare key).
inline std::string KeyBlockOf(absl::string_view text) {
  KeyFileParts p = SplitKeyFile(text);
  return pem::FormatPemBlock(p.key_label, p.key_headers, p.key_der);
}

// `text` (a locked file that `unlock_key` opens) as a sealwal before file
// info version 2 wrote it: version 1, each DEK record sealed with the
// header name alone as its associated data's extra. "" on failure.
inline std::string AsLockedVersion1(absl::string_view text, const pem::UnlockKey& unlock_key) {
  absl::StatusOr<pem::KeyFile> f = pem::DecodeKeyFile(text, &unlock_key);
  absl::StatusOr<pem::Kek> kek = unlock_key.DeriveKek();
  if (!f.ok() || !kek.ok()) return "";
  encryption::EncrypterOptions opts;
  opts.algorithm = encryption::Algorithm::kAes256Gcm;
  absl::StatusOr<std::unique_ptr<encryption::AeadEncrypter>> wrapper =
      encryption::AeadEncrypter::Create(kek->id, kek->key, opts);
  if (!wrapper.ok()) return "";
  KeyFileParts p = SplitKeyFile(text);
  for (pem::PemHeader& h : p.dek_headers) {
    const std::optional<pem::StoredDek>* d = h.name == pem::kRaftDekHeader ? &f->headers.current
                                             : h.name == pem::kRaftDekPendingHeader
                                                 ? &f->headers.pending
                                                 : nullptr;
    if (d == nullptr || !d->has_value()) continue;
    encryption::AadContext ctx;
    ctx.purpose = encryption::Purpose::kDek;
    ctx.index = f->kek_version;
    ctx.extra = h.name;
    absl::StatusOr<encryptionpb::EncryptedRecord> rec =
        (*wrapper)->Encrypt(ctx, pem::EncodeDekPlaintext(**d));
    if (!rec.ok()) return "";
    h.value = absl::Base64Escape(rec->SerializeAsString());
  }
  return JoinKeyFile(std::move(p), pem::kFileInfoVersion1);
}

}  // namespace sealwal::testing

#endif  // SEALWAL_TESTS_TESTING_KEY_FILE_TAMPER_H_
