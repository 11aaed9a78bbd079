// sealwal/snap/stream.h: streaming snapshots (`%016x-%016x.snap.stream`), written
// and read chunk by chunk in constant memory, whatever their size.
//
// Byte layout: sealwal/snap/format.h and docs/format.md §12. In short: an 80-byte
// header (magic, version, algorithm, key id, index, term, chunk size,
// 32-byte salt, 7-byte nonce prefix, CRC-32C), then chunks of `chunk_size`
// plaintext bytes each (the last one shorter), each followed by a 16-byte
// AEAD tag (encrypted) or an 8-byte XXH3-64 (plaintext). Encrypted chunks use
// a per-file key, HKDF-SHA256(DEK, salt, AAD of the header), and the nonce
// nonce_prefix || chunk counter (u32 BE) || last-chunk flag, the
// construction of Tink's streaming AEAD, so that:
//   - truncation at a chunk boundary fails (the new last chunk was sealed
//     with flag 0) and anywhere else fails (the size is not a valid layout,
//     or the tag is cut),
//   - reordered chunks fail (the counter is in the nonce),
//   - a chunk spliced from another stream fails (another salt, another
//     key), as does a whole stream of another snapshot (index and term are
//     in the key derivation) or an edited header (all of it is too).
// Plaintext streams detect the same accidents with their seeded XXH3-64,
// but authenticate nothing: anyone who can write the file can forge it.
//
// Nonces never repeat under a key: each file has its own key (a random
// 32-byte salt), and within a file each counter value is sealed once.
//
// Key usage: a writer uses the DEK once, to derive the file key; that use
// counts one message on the DEK's usage counter
// (Keyring::DeriveStreamKeyForWriting, reserved in the key file when the
// keyring persists counts). Chunks are sealed under the file key, so they
// do not count against the DEK.
//
// Memory: a writer or reader holds `window` chunks in flight (default
// threads + 2), each at most two chunk buffers, so with the default 1 MiB
// chunks and 2 threads about 8 MiB, independent of the stream's size.
//
// Threads: chunks are sealed / opened on `threads` worker threads owned by
// the writer or reader; the caller's thread writes (or hands out) chunks in
// order. With threads = 0 everything runs on the caller's thread.
//
// Durability (docs/architecture.md, "Durability"): the writer writes `<path>.tmp`, and
// Finish() syncs it, closes it, renames it to `<path>` and syncs the
// directory. A crash before that leaves only the .tmp file, which readers
// never look at. A stream is only part of a snapshot once a .snap names it
// (sealwal/snap/snapshotter.h writes that reference after Finish).
//
// Errors: kDataLoss for anything wrong with the bytes (header, size,
// checksum, authentication), naming the chunk; kNotFound for a key id the
// keyring does not hold or a missing file; kFailedPrecondition for misuse
// (Append after Finish, an encrypted stream without a keyring); I/O errors
// as sealwal/env/file_system.h reports them. All errors are sticky: after one, the
// object returns it from every later call.
//
// Thread-safety: a StreamWriter or StreamReader is used by one thread at a
// time, except StreamReader::ReadChunk, which may run on several threads
// at once (also while another thread reads sequentially).
#ifndef SEALWAL_SNAP_STREAM_H_
#define SEALWAL_SNAP_STREAM_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sealwal/encryption/aead.h"
#include "sealwal/env/file_system.h"
#include "sealwal/snap/format.h"
#include "sealwal/encryption/keyring.h"

namespace sealwal::snap {

struct StreamOptions {
  // Plaintext bytes per chunk: kMinChunkSize .. kMaxChunkSize.
  uint32_t chunk_size = kDefaultChunkSize;
  // Worker threads sealing / opening chunks; 0 = the caller's thread.
  int threads = 2;
  // Chunks in flight (memory bound); 0 = threads + 2. At least 2.
  int window = 0;
};

namespace internal {
class WorkerPool;
}  // namespace internal

// Writes one stream. Create -> Append* -> Finish. Destroying an unfinished
// writer aborts it (the .tmp file is removed, best effort).
class StreamWriter {
 public:
  // Starts `path`.tmp for the snapshot at (index, term). With a keyring the
  // stream is sealed under its write key's derived key; without one it is
  // plaintext. `fs` must outlive the writer; the keyring is shared.
  // Errors: kInvalidArgument for a bad chunk size; kFailedPrecondition for
  // an empty keyring; the usage counter's error (kResourceExhausted at
  // 2^32, a failed reservation) before anything is written; I/O errors.
  static absl::StatusOr<std::unique_ptr<StreamWriter>> Create(
      env::FileSystem* fs, std::string path, uint64_t index, uint64_t term,
      std::shared_ptr<const encryption::Keyring> keys, const StreamOptions& options = {});
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Appends plaintext. Returns once `data` is copied into chunk buffers
  // (it may wait for a slot when `window` chunks are in flight).
  absl::Status Append(absl::string_view data);
  // Seals the last chunk, writes everything, syncs, renames to `path` and
  // syncs the directory. Returns what a .snap must record about the stream.
  absl::StatusOr<StreamRef> Finish();
  // Stops and removes the .tmp file. Idempotent; no effect after Finish.
  void Abort();

  uint64_t bytes_appended() const { return appended_; }
  const std::string& path() const { return path_; }

 private:
  struct Slot;
  StreamWriter(env::FileSystem* fs, std::string path, StreamOptions options);
  absl::Status Init(uint64_t index, uint64_t term, std::shared_ptr<const encryption::Keyring> keys);
  absl::Status Fail(absl::Status s);
  // Hands the filled current chunk to the workers (last: the final one).
  absl::Status Dispatch(bool last);
  // Waits for chunk `written_` to be sealed and writes it.
  absl::Status WriteNext();
  void Drain();

  env::FileSystem* const fs_;
  const std::string path_;
  const std::string tmp_path_;
  const StreamOptions options_;
  StreamHeader header_;
  std::string header_bytes_;
  std::unique_ptr<env::WritableFile> file_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<internal::WorkerPool> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t filling_ = 0;     // the chunk being filled (its slot: filling_ % window)
  uint64_t written_ = 0;     // chunks written to the file so far
  uint64_t appended_ = 0;
  // Bytes of the file written so far, and how far writeback was started.
  uint64_t file_bytes_ = 0;
  uint64_t writeback_started_ = 0;
  bool open_slot_ = false;   // chunk `filling_` has a slot in use
  bool finished_ = false;
  bool aborted_ = false;
  absl::Status status_;
};

struct StreamReadOptions {
  int threads = 2;  // worker threads; 0 = the caller's thread
  int window = 0;   // chunks prefetched; 0 = threads + 2. At least 2.
};

// What the opener knows the stream must be: the snapshot's index and term
// and the StreamRef of the .snap naming it. Every field is checked, so a
// stream of another snapshot, another save (salt), algorithm, key or chunk
// size, and a file truncated or extended by whole chunks, is refused.
struct StreamExpectation {
  uint64_t index = 0;
  uint64_t term = 0;
  StreamRef ref;  // algorithm, key id, chunk size, plaintext size, salt
};

// Reads one stream, sequentially (NextChunk / Read, prefetched on worker
// threads) or by chunk number (ReadChunk). Every byte handed out has been
// authenticated (or checksummed) first.
class StreamReader {
 public:
  // Opens `path` and checks its header against `expect` (mandatory) and
  // that its size is a valid layout holding exactly expect.ref.size bytes.
  // A header for another snapshot, one that disagrees with the reference,
  // or a file truncated or extended is kDataLoss. With `keys`, a plaintext
  // stream is kDataLoss too (in an encrypted directory it can only be a
  // downgrade). An encrypted stream needs `keys` (kFailedPrecondition
  // without, kNotFound when its key id is not held). Reads no chunk: see
  // VerifyEnds.
  static absl::StatusOr<std::unique_ptr<StreamReader>> Open(
      env::FileSystem* fs, const std::string& path, std::shared_ptr<const encryption::Keyring> keys,
      const StreamExpectation& expect, const StreamReadOptions& options = {});
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  const StreamHeader& header() const { return header_; }
  const StreamLayout& layout() const { return layout_; }
  uint64_t size() const { return layout_.size; }
  uint64_t chunk_count() const { return layout_.chunks; }
  uint64_t file_size() const { return file_size_; }

  // The next chunk's plaintext, valid until the next call on this reader;
  // an empty view after the last chunk (or for an empty stream).
  absl::StatusOr<absl::string_view> NextChunk();
  // Copies up to dst.size() bytes; 0 at the end.
  absl::StatusOr<size_t> Read(absl::Span<char> dst);
  // Chunk i's plaintext, read and opened on the calling thread.
  // kOutOfRange past the last chunk. Thread-safe.
  absl::StatusOr<std::string> ReadChunk(uint64_t i) const;
  // Opens the first and the last chunk (cheap evidence that the stream is
  // complete and under the right key).
  absl::Status VerifyEnds() const;

 private:
  struct Slot;
  StreamReader(env::FileSystem* fs, std::string path, StreamReadOptions options);
  absl::Status Init(std::shared_ptr<const encryption::Keyring> keys,
                    const StreamExpectation& expect);
  // Reads and opens chunk i with `aead` (null for plaintext) into *buf /
  // *out; *view is the plaintext.
  absl::Status LoadChunk(uint64_t i, encryption::Aead* aead, std::string* buf, std::string* out,
                         absl::string_view* view) const;
  void Submit(uint64_t i);

  env::FileSystem* const fs_;
  const std::string path_;
  const StreamReadOptions options_;
  StreamHeader header_;
  std::string header_bytes_;
  StreamLayout layout_;
  uint64_t file_size_ = 0;
  encryption::SecretKey file_key_;  // the derived per-file key (encrypted only)
  std::unique_ptr<env::RandomAccessFile> file_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<internal::WorkerPool> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;       // the next chunk NextChunk returns
  uint64_t submitted_ = 0;  // chunks handed to workers so far
  absl::string_view current_;  // the rest of the chunk Read is copying from
  absl::Status status_;
};

}  // namespace sealwal::snap

#endif  // SEALWAL_SNAP_STREAM_H_
