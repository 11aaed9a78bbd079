#include "sealwal/snap/stream.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"

namespace sealwal::snap {
namespace {

// A stream starts writeback of each this many bytes behind it.
constexpr uint64_t kWritebackBytes = uint64_t{8} << 20;

}  // namespace

namespace internal {

// A fixed set of threads running queued jobs in FIFO order. The destructor
// runs what is queued, then joins.
class WorkerPool {
 public:
  explicit WorkerPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> l(mu_);
      queue_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::function<void()> f = std::move(queue_.front());
      queue_.pop_front();
      l.unlock();
      f();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace internal

namespace {

int WindowOf(int threads, int window) {
  const int w = window > 0 ? window : std::max(threads, 0) + 2;
  return std::max(w, 2);
}

absl::Status RandomBytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    return absl::InternalError("RAND_bytes failed while starting a snapshot stream");
  }
  return absl::OkStatus();
}

}  // namespace

// ---- StreamWriter ----------------------------------------------------------

struct StreamWriter::Slot {
  std::string in;   // plaintext of the chunk
  std::string out;  // ciphertext || tag (encrypted streams)
  char trailer[kPlainTrailerSize] = {};
  uint64_t chunk = 0;
  bool last = false;
  bool done = true;  // guarded by the writer's mu_
  absl::Status status;
  std::unique_ptr<encryption::Aead> aead;  // null for plaintext streams
};

StreamWriter::StreamWriter(env::FileSystem* fs, std::string path, StreamOptions options)
    : fs_(fs), path_(path), tmp_path_(path + std::string(kTmpSuffix)), options_(options) {}

absl::StatusOr<std::unique_ptr<StreamWriter>> StreamWriter::Create(
    env::FileSystem* fs, std::string path, uint64_t index, uint64_t term,
    std::shared_ptr<const encryption::Keyring> keys, const StreamOptions& options) {
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat("stream chunk size ", options.chunk_size,
                                                   " outside ", kMinChunkSize, "..",
                                                   kMaxChunkSize));
  }
  std::unique_ptr<StreamWriter> w(new StreamWriter(fs, std::move(path), options));
  absl::Status s = w->Init(index, term, std::move(keys));
  if (!s.ok()) {
    w->Abort();
    return s;
  }
  return w;
}

absl::Status StreamWriter::Init(uint64_t index, uint64_t term,
                                std::shared_ptr<const encryption::Keyring> keys) {
  header_.index = index;
  header_.term = term;
  header_.chunk_size = options_.chunk_size;
  SEALWAL_RETURN_IF_ERROR(RandomBytes(header_.salt.data(), header_.salt.size()));
  SEALWAL_RETURN_IF_ERROR(RandomBytes(header_.nonce_prefix.data(), header_.nonce_prefix.size()));
  encryption::SecretKey file_key;
  if (keys != nullptr) {
    std::optional<encryption::KeyId> id = keys->write_key_id();
    if (!id.has_value()) return absl::FailedPreconditionError("the keyring holds no DEK");
    header_.key_id = *id;
    SEALWAL_ASSIGN_OR_RETURN(header_.algorithm, keys->AlgorithmOf(*id));
  }
  header_bytes_ = EncodeStreamHeader(header_);
  if (keys != nullptr) {
    SEALWAL_ASSIGN_OR_RETURN(std::string info, StreamKeyInfo(header_bytes_, header_));
    const absl::string_view salt(reinterpret_cast<const char*>(header_.salt.data()),
                                 header_.salt.size());
    // The DEK's one use for this stream (counted on its usage, reserved in
    // the key file when needed); the chunks are sealed under file_key.
    SEALWAL_ASSIGN_OR_RETURN(file_key,
                             keys->DeriveStreamKeyForWriting(header_.key_id, salt, info));
  }
  const int window = WindowOf(options_.threads, options_.window);
  for (int i = 0; i < window; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->in.reserve(options_.chunk_size);
    if (!file_key.empty()) {
      slot->out.reserve(options_.chunk_size + encryption::kAeadTagSize);
      SEALWAL_ASSIGN_OR_RETURN(slot->aead, encryption::Aead::Create(header_.algorithm, file_key));
    }
    slots_.push_back(std::move(slot));
  }
  if (options_.threads > 0) pool_ = std::make_unique<internal::WorkerPool>(options_.threads);
  // Never through whatever was left or planted at the temp name.
  SEALWAL_ASSIGN_OR_RETURN(file_, env::NewTempFile(fs_, tmp_path_, 0600));
  file_bytes_ = header_bytes_.size();
  return file_->Append(header_bytes_);
}

StreamWriter::~StreamWriter() {
  if (!finished_) Abort();
  Drain();
  pool_.reset();
}

absl::Status StreamWriter::Fail(absl::Status s) {
  if (status_.ok()) status_ = std::move(s);
  return status_;
}

absl::Status StreamWriter::Append(absl::string_view data) {
  SEALWAL_RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError("snap stream: Append after Finish");
  const size_t window = slots_.size();
  while (!data.empty()) {
    if (!open_slot_) {
      if (filling_ >= kMaxChunks) {
        return Fail(absl::InvalidArgumentError(
            "snap stream: more than 2^32 chunks; use a larger chunk size"));
      }
      // Chunk filling_ reuses the slot of chunk filling_ - window: that one
      // must be written out first.
      while (filling_ >= written_ + window) SEALWAL_RETURN_IF_ERROR(WriteNext());
      slots_[filling_ % window]->in.clear();
      open_slot_ = true;
    }
    Slot& s = *slots_[filling_ % window];
    if (s.in.size() == options_.chunk_size) {
      // Full, and more data follows: it is not the last chunk.
      SEALWAL_RETURN_IF_ERROR(Dispatch(false));
      continue;
    }
    const size_t n = std::min<size_t>(data.size(), options_.chunk_size - s.in.size());
    s.in.append(data.data(), n);
    data.remove_prefix(n);
    appended_ += n;
  }
  return absl::OkStatus();
}

absl::Status StreamWriter::Dispatch(bool last) {
  Slot* s = slots_[filling_ % slots_.size()].get();
  s->chunk = filling_;
  s->last = last;
  {
    std::lock_guard<std::mutex> l(mu_);
    s->done = false;
  }
  auto work = [this, s] {
    absl::Status st;
    if (s->aead != nullptr) {
      s->out.clear();
      const auto nonce = ChunkNonce(header_.nonce_prefix, static_cast<uint32_t>(s->chunk), s->last);
      st = s->aead->Seal(absl::string_view(nonce.data(), nonce.size()), "", s->in, &s->out);
    } else {
      StoreLE64(PlainChunkChecksum(header_bytes_, static_cast<uint32_t>(s->chunk), s->last, s->in),
              s->trailer);
    }
    std::lock_guard<std::mutex> l(mu_);
    s->status = std::move(st);
    s->done = true;
    cv_.notify_all();
  };
  if (pool_ != nullptr) {
    pool_->Submit(std::move(work));
  } else {
    work();
  }
  ++filling_;
  open_slot_ = false;
  return absl::OkStatus();
}

absl::Status StreamWriter::WriteNext() {
  Slot& s = *slots_[written_ % slots_.size()];
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&s] { return s.done; });
  }
  if (!s.status.ok()) return Fail(s.status);
  absl::Status st;
  if (s.aead != nullptr) {
    st = file_->Append(s.out);
  } else {
    st = file_->Append(s.in);
    if (st.ok()) st = file_->Append(absl::string_view(s.trailer, sizeof(s.trailer)));
  }
  if (!st.ok()) return Fail(st);
  ++written_;
  file_bytes_ += s.aead != nullptr ? s.out.size() : s.in.size() + sizeof(s.trailer);
  // Let the disk write what is behind us while later chunks are sealed, so
  // that Finish's fsync is not one long wait for the whole stream.
  if (file_bytes_ - writeback_started_ >= kWritebackBytes) {
    st = file_->StartWriteback(writeback_started_, file_bytes_ - writeback_started_);
    if (!st.ok()) return Fail(st);
    writeback_started_ = file_bytes_;
  }
  return absl::OkStatus();
}

absl::StatusOr<StreamRef> StreamWriter::Finish() {
  SEALWAL_RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError("snap stream: Finish called twice");
  if (!open_slot_) {  // nothing appended: one empty last chunk
    while (filling_ >= written_ + slots_.size()) SEALWAL_RETURN_IF_ERROR(WriteNext());
    slots_[filling_ % slots_.size()]->in.clear();
    open_slot_ = true;
  }
  SEALWAL_RETURN_IF_ERROR(Dispatch(true));
  while (written_ < filling_) SEALWAL_RETURN_IF_ERROR(WriteNext());
  // Durability (docs/architecture.md, "Durability"): the data before the name.
  absl::Status s = file_->Sync();
  if (s.ok()) s = file_->Close();
  if (s.ok()) s = fs_->Rename(tmp_path_, path_);
  if (s.ok()) s = fs_->SyncDir(env::Dirname(path_));
  if (!s.ok()) return Fail(s);
  finished_ = true;
  StreamRef ref;
  ref.algorithm = header_.algorithm;
  ref.key_id = header_.key_id;
  ref.chunk_size = header_.chunk_size;
  ref.size = appended_;
  ref.salt = header_.salt;
  return ref;
}

void StreamWriter::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  for (auto& s : slots_) {
    Slot* p = s.get();
    cv_.wait(l, [p] { return p->done; });
  }
}

void StreamWriter::Abort() {
  if (finished_ || aborted_) return;
  aborted_ = true;
  Drain();
  if (file_ != nullptr) {
    file_->Close().IgnoreError();
    file_.reset();
  }
  // Best effort: a leftover .tmp is ignored by readers and purged later.
  fs_->RemoveFile(tmp_path_).IgnoreError();
  Fail(absl::FailedPreconditionError("snap stream: aborted")).IgnoreError();
}

// ---- StreamReader ----------------------------------------------------------

struct StreamReader::Slot {
  std::string buf;  // stored chunk
  std::string out;  // plaintext (encrypted streams)
  absl::string_view view;
  uint64_t chunk = 0;
  bool done = true;  // guarded by the reader's mu_
  absl::Status status;
  std::unique_ptr<encryption::Aead> aead;
};

StreamReader::StreamReader(env::FileSystem* fs, std::string path, StreamReadOptions options)
    : fs_(fs), path_(std::move(path)), options_(options) {}

StreamReader::~StreamReader() {
  {
    std::unique_lock<std::mutex> l(mu_);
    for (auto& s : slots_) {
      Slot* p = s.get();
      cv_.wait(l, [p] { return p->done; });
    }
  }
  pool_.reset();
}

absl::StatusOr<std::unique_ptr<StreamReader>> StreamReader::Open(
    env::FileSystem* fs, const std::string& path, std::shared_ptr<const encryption::Keyring> keys,
    const StreamExpectation& expect, const StreamReadOptions& options) {
  std::unique_ptr<StreamReader> r(new StreamReader(fs, path, options));
  SEALWAL_RETURN_IF_ERROR(r->Init(std::move(keys), expect));
  return r;
}

absl::Status StreamReader::Init(std::shared_ptr<const encryption::Keyring> keys,
                                const StreamExpectation& expect) {
  SEALWAL_ASSIGN_OR_RETURN(file_size_, fs_->GetFileSize(path_));
  SEALWAL_ASSIGN_OR_RETURN(file_, fs_->NewRandomAccessFile(path_));
  header_bytes_.resize(kStreamHeaderSize);
  SEALWAL_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(0, absl::MakeSpan(header_bytes_)));
  header_bytes_.resize(n);
  auto h = DecodeStreamHeader(header_bytes_);
  if (!h.ok()) return absl::DataLossError(absl::StrCat(path_, ": ", h.status().message()));
  header_ = *h;
  auto layout = LayoutFromFileSize(header_, file_size_);
  if (!layout.ok()) return absl::DataLossError(absl::StrCat(path_, ": ", layout.status().message()));
  layout_ = *layout;
  if (header_.index != expect.index || header_.term != expect.term) {
    return absl::DataLossError(absl::StrCat(path_, ": stream of snapshot ", header_.index, "/",
                                            header_.term, ", expected ", expect.index, "/",
                                            expect.term));
  }
  const StreamRef& ref = expect.ref;
  if (ref.algorithm != header_.algorithm || ref.key_id != header_.key_id ||
      ref.chunk_size != header_.chunk_size || ref.salt != header_.salt) {
    return absl::DataLossError(
        absl::StrCat(path_, ": stream header does not match the .snap's reference (another "
                            "stream, e.g. from an interrupted save?)"));
  }
  if (ref.size != layout_.size) {
    return absl::DataLossError(absl::StrCat(path_, ": stream holds ", layout_.size,
                                            " bytes, the .snap says ", ref.size,
                                            " (truncated or extended)"));
  }
  const bool encrypted = header_.algorithm != encryption::Algorithm::kNotEncrypted;
  // A keyring means an encrypted directory: a plaintext stream there can
  // only be a downgrade.
  if (!encrypted && keys != nullptr) {
    return absl::DataLossError(
        absl::StrCat(path_, ": plaintext stream where an encrypted one is required"));
  }
  if (encrypted) {
    if (keys == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, ": encrypted stream (key id ", encryption::FormatKeyId(header_.key_id),
                       "); a key is needed"));
    }
    SEALWAL_ASSIGN_OR_RETURN(std::string info, StreamKeyInfo(header_bytes_, header_));
    const absl::string_view salt(reinterpret_cast<const char*>(header_.salt.data()),
                                 header_.salt.size());
    SEALWAL_ASSIGN_OR_RETURN(file_key_, keys->DeriveStreamKey(header_.key_id, salt, info));
  }
  const int window = WindowOf(options_.threads, options_.window);
  for (int i = 0; i < window; ++i) {
    auto slot = std::make_unique<Slot>();
    if (encrypted) {
      SEALWAL_ASSIGN_OR_RETURN(slot->aead, encryption::Aead::Create(header_.algorithm, file_key_));
    }
    slots_.push_back(std::move(slot));
  }
  if (options_.threads > 0) pool_ = std::make_unique<internal::WorkerPool>(options_.threads);
  return absl::OkStatus();
}

absl::Status StreamReader::LoadChunk(uint64_t i, encryption::Aead* aead, std::string* buf,
                                     std::string* out, absl::string_view* view) const {
  const uint64_t payload = layout_.payload_size(i);
  const uint64_t stored = payload + layout_.trailer;
  buf->resize(stored);
  SEALWAL_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(layout_.offset(i), absl::MakeSpan(*buf)));
  if (n != stored) {
    return absl::DataLossError(absl::StrCat(path_, ": chunk ", i, " of ", layout_.chunks,
                                            " is short (the file shrank while being read)"));
  }
  const bool last = i + 1 == layout_.chunks;
  if (aead != nullptr) {
    out->clear();
    const auto nonce = ChunkNonce(header_.nonce_prefix, static_cast<uint32_t>(i), last);
    absl::Status s = aead->Open(absl::string_view(nonce.data(), nonce.size()), "", *buf, out);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat(
          path_, ": chunk ", i, " of ", layout_.chunks,
          " failed authentication (corrupted, truncated, reordered or spliced stream)"));
    }
    *view = *out;
  } else {
    const absl::string_view data(buf->data(), payload);
    if (PlainChunkChecksum(header_bytes_, static_cast<uint32_t>(i), last, data) !=
        LoadLE64(buf->data() + payload)) {
      return absl::DataLossError(absl::StrCat(
          path_, ": chunk ", i, " of ", layout_.chunks,
          " checksum mismatch (corrupted, truncated, reordered or spliced stream)"));
    }
    *view = data;
  }
  return absl::OkStatus();
}

void StreamReader::Submit(uint64_t i) {
  Slot* s = slots_[i % slots_.size()].get();
  s->chunk = i;
  {
    std::lock_guard<std::mutex> l(mu_);
    s->done = false;
  }
  auto work = [this, s] {
    absl::Status st = LoadChunk(s->chunk, s->aead.get(), &s->buf, &s->out, &s->view);
    std::lock_guard<std::mutex> l(mu_);
    s->status = std::move(st);
    s->done = true;
    cv_.notify_all();
  };
  if (pool_ != nullptr) {
    pool_->Submit(std::move(work));
  } else {
    work();
  }
}

absl::StatusOr<absl::string_view> StreamReader::NextChunk() {
  SEALWAL_RETURN_IF_ERROR(status_);
  current_ = absl::string_view();
  if (next_ >= layout_.chunks) return absl::string_view();
  // The chunk handed out last time is released now, so its slot may take
  // the chunk `window` ahead of it.
  while (submitted_ < layout_.chunks && submitted_ < next_ + slots_.size()) Submit(submitted_++);
  Slot& s = *slots_[next_ % slots_.size()];
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&s] { return s.done; });
  }
  if (!s.status.ok()) {
    status_ = s.status;
    return status_;
  }
  ++next_;
  return s.view;
}

absl::StatusOr<size_t> StreamReader::Read(absl::Span<char> dst) {
  size_t done = 0;
  while (done < dst.size()) {
    if (current_.empty()) {
      SEALWAL_ASSIGN_OR_RETURN(absl::string_view c, NextChunk());
      if (c.empty()) {
        if (next_ >= layout_.chunks) break;
        continue;
      }
      current_ = c;
    }
    const size_t n = std::min(current_.size(), dst.size() - done);
    std::memcpy(dst.data() + done, current_.data(), n);
    current_.remove_prefix(n);
    done += n;
  }
  return done;
}

absl::StatusOr<std::string> StreamReader::ReadChunk(uint64_t i) const {
  if (i >= layout_.chunks) {
    return absl::OutOfRangeError(
        absl::StrCat(path_, ": chunk ", i, " past the last (", layout_.chunks, " chunks)"));
  }
  std::unique_ptr<encryption::Aead> aead;
  if (header_.algorithm != encryption::Algorithm::kNotEncrypted) {
    SEALWAL_ASSIGN_OR_RETURN(aead, encryption::Aead::Create(header_.algorithm, file_key_));
  }
  std::string buf, out;
  absl::string_view view;
  SEALWAL_RETURN_IF_ERROR(LoadChunk(i, aead.get(), &buf, &out, &view));
  if (aead != nullptr) return out;
  buf.resize(view.size());
  return buf;
}

absl::Status StreamReader::VerifyEnds() const {
  SEALWAL_RETURN_IF_ERROR(ReadChunk(0).status());
  if (layout_.chunks > 1) SEALWAL_RETURN_IF_ERROR(ReadChunk(layout_.chunks - 1).status());
  return absl::OkStatus();
}

}  // namespace sealwal::snap
