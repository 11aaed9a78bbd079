// sealwal/wal/payload_codec.h: the hook through which entry data and metadata pass
// on their way to and from disk. The WAL's framing never looks inside a
// payload, so encryption (sealwal/walcrypt/wal_codec.h) plugs in here without
// touching the framing code. Without a codec the WAL stores payloads as is
// (a plaintext etcd WAL).
//
// Only Entry.Data and the metadata record's data go through the codec;
// index, term, type, HardState, crc and snapshot records stay readable so
// that recovery can walk the log (docs/security.md).
#ifndef SEALWAL_WAL_PAYLOAD_CODEC_H_
#define SEALWAL_WAL_PAYLOAD_CODEC_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace sealwal::wal {

// Where a payload lives; a codec binds it into the ciphertext so that a
// payload moved to another place fails to decode.
struct PayloadContext {
  enum class Kind { kEntry, kMetadata };
  Kind kind = Kind::kEntry;
  uint64_t index = 0;  // entry index (0 for metadata)
  uint64_t term = 0;   // entry term (0 for metadata)
  int32_t entry_type = 0;
};

class PayloadCodec {
 public:
  virtual ~PayloadCodec() = default;

  // True for a codec that seals payloads (walcrypt::WalCodec). The WAL uses
  // it only to check the directory's name (wal.h, "Directory names"): a
  // codec that encrypts needs a directory whose name ends in "-encrypted",
  // and such a directory needs a codec that encrypts. The default, false,
  // is for codecs that merely transform payloads (tests); the WAL treats
  // them as plaintext.
  virtual bool encrypts() const { return false; }

  // With a codec, every entry's payload goes through it, empty ones
  // included, and Decode is called for every entry (with "" when the stored
  // entry has no data field): a codec that authenticates must reject that,
  // so that a stripped payload cannot read back as an empty entry.
  //
  // Replaces *out with the stored form of `plain`. Called by the writing
  // thread only. An error fails the Save (and makes the WAL refuse further
  // writes, since part of the batch may be framed already).
  virtual absl::Status Encode(const PayloadContext& ctx, absl::string_view plain,
                              std::string* out) = 0;

  // Encodes a whole batch: outs[i] = Encode(ctxs[i], plains[i]) for every
  // i, as if called in order. A codec may spread the work over threads
  // (the WAL calls this for each Save's entries, then frames them). On
  // error the WAL refuses the batch; outs are then unspecified.
  virtual absl::Status EncodeBatch(absl::Span<const PayloadContext> ctxs,
                                   absl::Span<const absl::string_view> plains,
                                   std::string* outs) {
    for (size_t i = 0; i < ctxs.size(); ++i) {
      absl::Status s = Encode(ctxs[i], plains[i], &outs[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Replaces *out with the plaintext of `stored`. Must be safe to call from
  // several threads at once (ReadAll decodes entries in parallel). Returns
  // kDataLoss when the payload fails authentication, kNotFound when it
  // names a key the codec does not hold.
  virtual absl::Status Decode(const PayloadContext& ctx, absl::string_view stored,
                              std::string* out) const = 0;

  // Decodes many payloads on one thread, as Decode does, keeping whatever
  // per-call setup it can between calls (a decrypter keeps its cipher
  // context instead of taking it from a shared pool for every record).
  // Not thread-safe: one per thread. Must not outlive its codec.
  class DecodeSession {
   public:
    virtual ~DecodeSession() = default;
    virtual absl::Status Decode(const PayloadContext& ctx, absl::string_view stored,
                                std::string* out) = 0;
    // As Decode, but may decode in place: on success *plain views the
    // payload, inside `stored` (whose bytes it overwrote) or in *scratch.
    // The bytes of `stored` are unspecified afterwards, whatever the
    // outcome. The default decodes into *scratch.
    virtual absl::Status DecodeInPlace(const PayloadContext& ctx, absl::Span<char> stored,
                                       std::string* scratch, absl::string_view* plain) {
      absl::Status s = Decode(ctx, absl::string_view(stored.data(), stored.size()), scratch);
      if (s.ok()) *plain = *scratch;
      return s;
    }
  };
  // The default forwards every call to Decode.
  virtual std::unique_ptr<DecodeSession> NewDecodeSession() const {
    class Forwarding final : public DecodeSession {
     public:
      explicit Forwarding(const PayloadCodec* codec) : codec_(codec) {}
      absl::Status Decode(const PayloadContext& ctx, absl::string_view stored,
                          std::string* out) override {
        return codec_->Decode(ctx, stored, out);
      }

     private:
      const PayloadCodec* const codec_;
    };
    return std::make_unique<Forwarding>(this);
  }
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_PAYLOAD_CODEC_H_
