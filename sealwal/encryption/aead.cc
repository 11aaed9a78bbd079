#include "sealwal/encryption/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::encryption {
namespace {

// EVP's length arguments are ints; feed larger buffers in slices of this.
constexpr size_t kMaxEvpChunk = size_t{1} << 30;

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Drains OpenSSL's per-thread error queue into a status, so that a later,
// unrelated failure on this thread does not report our stale error.
absl::Status OpenSslError(absl::string_view what) {
  const unsigned long code = ERR_get_error();
  char buf[256] = "no OpenSSL error queued";
  if (code != 0) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

// EVP_CipherUpdate over `n` bytes in int-sized slices. `out` null feeds AAD.
bool UpdateChunked(EVP_CIPHER_CTX* ctx, unsigned char* out, const unsigned char* in, size_t n,
                   size_t* written) {
  size_t done = 0;
  while (done < n) {
    const size_t len = std::min(n - done, kMaxEvpChunk);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + *written, &outl, in + done,
                         static_cast<int>(len)) != 1) {
      return false;
    }
    if (out != nullptr) *written += static_cast<size_t>(outl);
    done += len;
  }
  return true;
}

class EvpAead final : public Aead {
 public:
  EvpAead(Algorithm algorithm, EVP_CIPHER_CTX* ctx) : algorithm_(algorithm), ctx_(ctx) {}
  // EVP_CIPHER_CTX_free cleanses the key schedule it holds.
  ~EvpAead() override { EVP_CIPHER_CTX_free(ctx_); }

  Algorithm algorithm() const override { return algorithm_; }

  absl::Status Seal(absl::string_view nonce, absl::string_view aad, absl::string_view plaintext,
                    std::string* out) override {
    if (nonce.size() != kAeadNonceSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("AEAD nonce must be ", kAeadNonceSize, " bytes, got ", nonce.size()));
    }
    const size_t old_size = out->size();
    out->resize(old_size + plaintext.size() + kAeadTagSize);
    unsigned char* dst = reinterpret_cast<unsigned char*>(out->data()) + old_size;
    size_t written = 0;
    int final_len = 0;
    // Cipher and key stay as Create set them; only the nonce is new.
    const bool ok =
        EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, U8(nonce), /*enc=*/1) == 1 &&
        UpdateChunked(ctx_, nullptr, U8(aad), aad.size(), &written) &&
        UpdateChunked(ctx_, dst, U8(plaintext), plaintext.size(), &written) &&
        EVP_CipherFinal_ex(ctx_, dst + written, &final_len) == 1 &&
        written + static_cast<size_t>(final_len) == plaintext.size() &&
        GetTag(dst + plaintext.size());
    if (!ok) {
      out->resize(old_size);
      return OpenSslError(absl::StrCat(AlgorithmName(algorithm_), " seal failed"));
    }
    return absl::OkStatus();
  }

  absl::Status Open(absl::string_view nonce, absl::string_view aad,
                    absl::string_view ciphertext_and_tag, std::string* out) override {
    SEALWAL_RETURN_IF_ERROR(CheckOpenArgs(nonce, ciphertext_and_tag.size()));
    const size_t n = ciphertext_and_tag.size() - kAeadTagSize;
    const size_t old_size = out->size();
    out->resize(old_size + n);
    unsigned char* dst = reinterpret_cast<unsigned char*>(out->data()) + old_size;
    absl::Status s = OpenTo(nonce, aad, ciphertext_and_tag, dst);
    if (!s.ok()) out->resize(old_size);  // OpenTo wiped what it wrote
    return s;
  }

  absl::Status OpenInPlace(absl::string_view nonce, absl::string_view aad,
                           absl::Span<char> ciphertext_and_tag) override {
    SEALWAL_RETURN_IF_ERROR(CheckOpenArgs(nonce, ciphertext_and_tag.size()));
    // EVP allows the output to be exactly the input (not a shifted copy).
    return OpenTo(nonce, aad,
                  absl::string_view(ciphertext_and_tag.data(), ciphertext_and_tag.size()),
                  reinterpret_cast<unsigned char*>(ciphertext_and_tag.data()));
  }

 private:
  absl::Status CheckOpenArgs(absl::string_view nonce, size_t sealed_size) const {
    if (nonce.size() != kAeadNonceSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("AEAD nonce must be ", kAeadNonceSize, " bytes, got ", nonce.size()));
    }
    if (sealed_size < kAeadTagSize) {
      return absl::DataLossError(absl::StrCat("ciphertext of ", sealed_size,
                                              " bytes is shorter than the ", kAeadTagSize,
                                              "-byte tag"));
    }
    return absl::OkStatus();
  }

  // Verifies and decrypts into dst (size - 16 bytes; dst may be exactly the
  // ciphertext). On failure dst is wiped: it held unauthenticated plaintext.
  absl::Status OpenTo(absl::string_view nonce, absl::string_view aad,
                      absl::string_view ciphertext_and_tag, unsigned char* dst) {
    const size_t n = ciphertext_and_tag.size() - kAeadTagSize;
    const absl::string_view ciphertext = ciphertext_and_tag.substr(0, n);
    // The expected tag goes in with the nonce, as a parameter of the one
    // init call: OpenSSL 3 turns every EVP_CIPHER_CTX_ctrl into a parameter
    // lookup by name, which cost as much as decrypting a small record.
    // OpenSSL copies the tag now, before dst (maybe the ciphertext) is
    // written; the const_cast is for its untyped API.
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                          const_cast<char*>(ciphertext_and_tag.data() + n),
                                          kAeadTagSize),
        OSSL_PARAM_construct_end()};
    size_t written = 0;
    int final_len = 0;
    const bool setup_ok =
        EVP_CipherInit_ex2(ctx_, nullptr, nullptr, U8(nonce), /*enc=*/0, params) == 1 &&
        UpdateChunked(ctx_, nullptr, U8(aad), aad.size(), &written) &&
        UpdateChunked(ctx_, dst, U8(ciphertext), n, &written);
    if (!setup_ok) {
      OPENSSL_cleanse(dst, n);
      return OpenSslError(absl::StrCat(AlgorithmName(algorithm_), " open failed"));
    }
    if (EVP_CipherFinal_ex(ctx_, dst + written, &final_len) != 1) {
      // Tag mismatch. The plaintext written so far is unauthenticated: it
      // must not reach the caller, not even in spare capacity.
      OPENSSL_cleanse(dst, n);
      ERR_clear_error();
      return absl::DataLossError(
          absl::StrCat(AlgorithmName(algorithm_), " authentication failed"));
    }
    return absl::OkStatus();
  }

  // The tag of the message just sealed, asked for as a parameter (the
  // ctrl API would translate to the same parameter, at extra cost).
  bool GetTag(unsigned char* tag) {
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagSize),
        OSSL_PARAM_construct_end()};
    return EVP_CIPHER_CTX_get_params(ctx_, params) == 1;
  }

  const Algorithm algorithm_;
  EVP_CIPHER_CTX* const ctx_;
};

// kNotEncrypted: copies, authenticates nothing (see the header).
class PassThroughAead final : public Aead {
 public:
  Algorithm algorithm() const override { return Algorithm::kNotEncrypted; }
  absl::Status Seal(absl::string_view, absl::string_view, absl::string_view plaintext,
                    std::string* out) override {
    out->append(plaintext.data(), plaintext.size());
    return absl::OkStatus();
  }
  absl::Status Open(absl::string_view, absl::string_view, absl::string_view ciphertext,
                    std::string* out) override {
    out->append(ciphertext.data(), ciphertext.size());
    return absl::OkStatus();
  }
  absl::Status OpenInPlace(absl::string_view, absl::string_view, absl::Span<char>) override {
    return absl::OkStatus();  // all of the bytes (no tag) are the plaintext already
  }
};

}  // namespace

encryptionpb::EncryptedRecord::Algorithm ToProto(Algorithm algorithm) {
  return static_cast<encryptionpb::EncryptedRecord::Algorithm>(algorithm);
}

absl::StatusOr<Algorithm> AlgorithmFromProto(int proto_value) {
  switch (proto_value) {
    case encryptionpb::EncryptedRecord::NOT_ENCRYPTED:
      return Algorithm::kNotEncrypted;
    case encryptionpb::EncryptedRecord::AES_256_GCM:
      return Algorithm::kAes256Gcm;
    case encryptionpb::EncryptedRecord::CHACHA20_POLY1305:
      return Algorithm::kChaCha20Poly1305;
    case encryptionpb::EncryptedRecord::NACL_SECRETBOX_SALSA20_POLY1305:
      return absl::DataLossError(
          "algorithm 1 (swarmkit's NACL_SECRETBOX_SALSA20_POLY1305) is not supported");
    case encryptionpb::EncryptedRecord::FERNET_AES_128_CBC:
      return absl::DataLossError("algorithm 2 (swarmkit's FERNET_AES_128_CBC) is not supported");
    default:
      return absl::DataLossError(absl::StrCat("unknown encryption algorithm ", proto_value));
  }
}

absl::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kNotEncrypted:
      return "not-encrypted";
    case Algorithm::kAes256Gcm:
      return "aes-256-gcm";
    case Algorithm::kChaCha20Poly1305:
      return "chacha20-poly1305";
  }
  return "invalid-algorithm";
}

absl::StatusOr<Algorithm> ParseAlgorithmName(absl::string_view name) {
  for (Algorithm a :
       {Algorithm::kAes256Gcm, Algorithm::kChaCha20Poly1305, Algorithm::kNotEncrypted}) {
    if (name == AlgorithmName(a)) return a;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown algorithm \"", name, "\" (want aes-256-gcm or chacha20-poly1305)"));
}

absl::StatusOr<std::unique_ptr<Aead>> Aead::Create(Algorithm algorithm, const SecretKey& key) {
  const EVP_CIPHER* cipher = nullptr;
  switch (algorithm) {
    case Algorithm::kNotEncrypted:
      if (!key.empty()) {
        return absl::InvalidArgumentError("a not-encrypted AEAD takes no key");
      }
      return std::unique_ptr<Aead>(new PassThroughAead());
    case Algorithm::kAes256Gcm:
      cipher = EVP_aes_256_gcm();
      break;
    case Algorithm::kChaCha20Poly1305:
      cipher = EVP_chacha20_poly1305();
      break;
  }
  if (cipher == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid algorithm ", static_cast<int>(algorithm)));
  }
  if (key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(AlgorithmName(algorithm), " needs a ",
                                                   kAeadKeySize, "-byte key, got ",
                                                   key.size(), " bytes"));
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  // The one expensive step (provider fetch, key schedule, GHASH tables)
  // happens here, once per object; both ciphers default to 12-byte IVs.
  if (EVP_CipherInit_ex(ctx, cipher, nullptr, U8(key.bytes()), nullptr, /*enc=*/1) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return OpenSslError(absl::StrCat("cannot set up ", AlgorithmName(algorithm)));
  }
  return std::unique_ptr<Aead>(new EvpAead(algorithm, ctx));
}

}  // namespace sealwal::encryption
