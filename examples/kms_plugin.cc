// sealwal_example_kms_plugin: a reference KEK plugin (docs/kek-providers.md),
// the smallest "KMS" that speaks sealwal's plugin protocol: a 32-byte master
// key in a file stands in for the key a real KMS keeps on its side.
//
//   sealwal key init --key-file node.key
//       --kek "command:/path/to/sealwal_example_kms_plugin /path/to/master.key"
//
// One JSON request on stdin, one JSON answer on stdout, exit 0; on failure
// {"version":1,"error":"..."} and exit 1. wrap seals the plaintext with
// AES-256-GCM under the master key, binding the request's aad (answer:
// 12-byte nonce || ciphertext || tag); unwrap reverses it and fails for
// another aad; key-id names the master key file. The master key file is
// created (0600, O_EXCL) on the first wrap when it does not exist.
//
// A plugin for a real KMS does the same with the KMS's encrypt/decrypt
// calls (AWS KMS Encrypt with EncryptionContext = aad, Vault transit with
// context = aad, ...). This file is a test double, not a KMS: its master key
// sits on the same disk as what it protects.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "sealwal/proto/kek_plugin.pb.h"

namespace {

using sealwal::kekpluginpb::Request;
using sealwal::kekpluginpb::Response;

constexpr size_t kKeySize = 32, kNonceSize = 12, kTagSize = 16;

int Answer(const Response& r, int status) {
  std::string out;
  google::protobuf::util::JsonPrintOptions po;
  po.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(r, &out, po);
  std::cout << out << "\n";
  return status;
}

int Error(const std::string& what) {
  Response r;
  r.set_version(1);
  r.set_error(what);
  return Answer(r, 1);
}

bool ReadMasterKey(const std::string& path, bool create, std::string* key) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && create) {
    key->resize(kKeySize);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key->data()), kKeySize) != 1) return false;
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    const bool ok = fd >= 0 && write(fd, key->data(), kKeySize) == kKeySize && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    return ok;
  }
  if (fd < 0) return false;
  key->resize(kKeySize + 1);
  const ssize_t n = read(fd, key->data(), key->size());
  close(fd);
  if (n != static_cast<ssize_t>(kKeySize)) return false;
  key->resize(kKeySize);
  return true;
}

// AES-256-GCM: seal (nonce || ct || tag) or open it; false on any failure.
bool Gcm(bool seal, const std::string& key, const std::string& aad, const std::string& in,
         std::string* out) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  auto u = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  std::string nonce(kNonceSize, '\0');
  std::string body = in;
  std::string tag(kTagSize, '\0');
  if (seal) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceSize) != 1) return false;
  } else {
    if (in.size() < kNonceSize + kTagSize) return false;
    nonce = in.substr(0, kNonceSize);
    body = in.substr(kNonceSize, in.size() - kNonceSize - kTagSize);
    tag = in.substr(in.size() - kTagSize);
  }
  int n = 0;
  std::string res(body.size(), '\0');
  auto* r = reinterpret_cast<unsigned char*>(res.data());
  const bool ok =
      ctx != nullptr &&
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(nonce), seal) == 1 &&
      EVP_CipherUpdate(ctx.get(), nullptr, &n, u(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_CipherUpdate(ctx.get(), r, &n, u(body), static_cast<int>(body.size())) == 1 &&
      (seal || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) == 1) &&
      EVP_CipherFinal_ex(ctx.get(), r + n, &n) == 1 &&
      (!seal || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag.data()) == 1);
  if (!ok) return false;
  *out = seal ? nonce + res + tag : res;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s MASTER_KEY_FILE  (a sealwal KEK plugin: JSON on stdin)\n",
                 argv[0]);
    return argc == 2 ? 0 : 2;
  }
  const std::string key_path = argv[1];
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  Request req;
  if (!google::protobuf::util::JsonStringToMessage(input, &req).ok()) {
    return Error("the request is not JSON of protocol version 1");
  }
  if (req.version() != 1) return Error("unsupported protocol version");
  Response r;
  r.set_version(1);
  std::string key;
  if (req.op() == "key-id") {
    r.set_key_id("example-kms:" + key_path);
    return Answer(r, 0);
  }
  if (req.op() != "wrap" && req.op() != "unwrap") return Error("unknown op " + req.op());
  const bool wrap = req.op() == "wrap";
  if (!ReadMasterKey(key_path, wrap, &key)) return Error("cannot read the master key file");
  std::string out;
  if (!Gcm(wrap, key, req.aad(), wrap ? req.plaintext() : req.wrapped(), &out)) {
    return Error(wrap ? "wrap failed" : "unwrap failed: not wrapped by this key, or another aad");
  }
  if (wrap) {
    r.set_wrapped(out);
    r.set_key_id("example-kms:" + key_path);
  } else {
    r.set_plaintext(out);
  }
  return Answer(r, 0);
}
