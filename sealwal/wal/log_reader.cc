// LogReader (log_reader.h) and what it shares with the Wal (log_index.h):
// the slot index, the re-read path with its CRC recheck, the LRU cache, and
// the two sinks of the recovery pass (materialized for ReadAll, indexed for
// the LogReader, with the scan-time payload check on decode threads).
#include "sealwal/wal/log_reader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "sealwal/base/crc32c.h"
#include "sealwal/base/endian.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/wal/decoder.h"
#include "sealwal/wal/log_index.h"
#include "sealwal/wal/metadata_check.h"
#include "sealwal/wal/wal.h"

namespace sealwal::wal {
namespace {

// Entries read from disk per chunk, and the longest single read.
constexpr size_t kMaxChunkEntries = 4096;
constexpr uint64_t kMaxSpanBytes = 8 << 20;
// Bytes between two live frames that are still read in one go rather than
// skipped with a second read.
constexpr uint64_t kMaxGapBytes = 64 << 10;

absl::Status Changed(uint64_t index, absl::string_view what) {
  return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kCrcMismatch,
                  absl::StrCat("wal: entry ", index, " changed on disk since the scan (", what,
                               ")"));
}

// Decodes ents[0, n) in place on up to `threads` threads (one decode
// session each). On failure returns PayloadDecodeError for the first failed
// entry in order and sets *failed to its position.
absl::Status DecodeEntryRange(const PayloadCodec* codec, int threads_wanted, raftpb::Entry* ents,
                              size_t n, size_t* failed) {
  *failed = SIZE_MAX;
  auto decode_range = [&](size_t begin, size_t end, size_t* fail_at, absl::Status* st) {
    std::string plain;
    std::unique_ptr<PayloadCodec::DecodeSession> session = codec->NewDecodeSession();
    for (size_t i = begin; i < end; ++i) {
      raftpb::Entry& e = ents[i];
      // With a codec every entry carries a payload, empty ones too (see
      // RecordWriter::AppendEntry): a missing one was stripped and must not
      // read as "".
      PayloadContext ctx{PayloadContext::Kind::kEntry, e.index(), e.term(),
                         static_cast<int32_t>(e.type())};
      absl::Status s = session->Decode(ctx, e.data(), &plain);
      if (!s.ok()) {
        *fail_at = i;
        *st = s;
        return;
      }
      e.mutable_data()->swap(plain);
    }
  };
  const size_t threads = std::clamp<size_t>(static_cast<size_t>(std::max(1, threads_wanted)), 1,
                                            std::max<size_t>(1, n / 256));
  std::vector<size_t> fail_at(threads, SIZE_MAX);
  std::vector<absl::Status> st(threads);
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t) {
    workers.emplace_back(decode_range, n * t / threads, n * (t + 1) / threads, &fail_at[t],
                         &st[t]);
  }
  decode_range(0, n / threads, &fail_at[0], &st[0]);
  for (auto& th : workers) th.join();
  for (size_t t = 0; t < threads; ++t) {
    if (fail_at[t] != SIZE_MAX) {
      *failed = fail_at[t];
      return PayloadDecodeError(st[t], absl::StrCat("entry ", ents[fail_at[t]].index()));
    }
  }
  return absl::OkStatus();
}

// Index, term and type of a raftpb.Entry as its writers lay it out (only
// known fields, each with its wire type); false for anything else, which
// the caller hands to the full protobuf parser for the verdict.
bool FastParseEntry(absl::string_view b, uint64_t* index, uint64_t* term, int32_t* type,
                    absl::string_view* data, bool* has_data) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(b.data()),
                                            static_cast<int>(b.size()));
  *index = *term = 0;
  *type = 0;
  *has_data = false;
  *data = {};
  uint64_t v;
  while (in.CurrentPosition() < static_cast<int>(b.size())) {
    const uint32_t tag = in.ReadTag();
    switch (tag) {
      case 0x08:
        if (!in.ReadVarint64(&v) || !raftpb::EntryType_IsValid(static_cast<int>(v)) ||
            v > 0x7fffffff) {
          return false;
        }
        *type = static_cast<int32_t>(v);
        break;
      case 0x10:
        if (!in.ReadVarint64(term)) return false;
        break;
      case 0x18:
        if (!in.ReadVarint64(index)) return false;
        break;
      case 0x22: {
        uint32_t len;
        if (!in.ReadVarint32(&len) || len > b.size() - in.CurrentPosition()) return false;
        *data = b.substr(in.CurrentPosition(), len);
        *has_data = true;
        if (!in.Skip(static_cast<int>(len))) return false;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// A walpb.Record's type, crc and data.
bool ParseWalRecord(absl::string_view b, int64_t* type, uint32_t* crc, absl::string_view* data) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(b.data()),
                                            static_cast<int>(b.size()));
  bool has_data = false;
  uint64_t v;
  while (in.CurrentPosition() < static_cast<int>(b.size())) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0x08) {
      if (!in.ReadVarint64(&v)) return false;
      *type = static_cast<int64_t>(v);
    } else if (tag == 0x10) {
      if (!in.ReadVarint64(&v)) return false;
      *crc = static_cast<uint32_t>(v);
    } else if (tag == 0x1a) {
      uint32_t len;
      if (!in.ReadVarint32(&len) || len > b.size() - in.CurrentPosition()) return false;
      *data = b.substr(in.CurrentPosition(), len);
      has_data = true;
      if (!in.Skip(static_cast<int>(len))) return false;
    } else if (tag == 0 ||
               !google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return has_data;
}

class MaterializingSink final : public EntrySink {
 public:
  MaterializingSink(SnapshotPosition start, const PayloadCodec* codec, int threads,
                    std::vector<raftpb::Entry>* ents)
      : start_(start), codec_(codec), threads_(threads), ents_(ents) {}

  absl::Status Parse(const Record& rec, uint64_t* index, uint64_t* term) override {
    if (!pending_.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
      return EntryParseError();
    }
    *index = pending_.index();
    *term = pending_.term();
    return absl::OkStatus();
  }
  absl::Status Add(const Record&, uint64_t index, uint32_t, uint32_t) override {
    ents_->resize(static_cast<size_t>(index - start_.index - 1));
    ents_->push_back(std::move(pending_));
    pending_.Clear();
    return absl::OkStatus();
  }
  absl::Status Decode() override {
    size_t failed;
    absl::Status s = DecodeEntryRange(codec_, threads_, ents_->data(), ents_->size(), &failed);
    if (!s.ok()) ents_->resize(failed);
    return s;
  }

 private:
  const SnapshotPosition start_;
  const PayloadCodec* const codec_;
  const int threads_;
  std::vector<raftpb::Entry>* const ents_;
  raftpb::Entry pending_;
};

class IndexSink final : public EntrySink {
 public:
  IndexSink(LogState* state, const PayloadCodec* codec, int threads, bool verify,
            EntryVisitor* visitor)
      // A visitor sees plaintext, so with a codec it implies verification.
      : state_(state), codec_(codec),
        verify_(codec != nullptr && (verify || visitor != nullptr)), visitor_(visitor),
        threads_(std::max(1, threads)) {
    if (verify_ || visitor_ != nullptr) {
      for (int t = 0; t < threads_; ++t) workers_.emplace_back([this] { Work(); });
      batch_ = NewBatch();
    }
  }
  ~IndexSink() override { Stop(); }

  absl::Status Parse(const Record& rec, uint64_t* index, uint64_t* term) override {
    if (FastParseEntry(rec.data, index, term, &type_, &data_, &has_data_)) {
      last_term_ = *term;
      return absl::OkStatus();
    }
    if (!full_.ParseFromArray(rec.data.data(), static_cast<int>(rec.data.size()))) {
      return EntryParseError();
    }
    *index = full_.index();
    *term = full_.term();
    type_ = static_cast<int32_t>(full_.type());
    data_ = full_.data();
    has_data_ = full_.has_data();
    last_term_ = *term;
    return absl::OkStatus();
  }

  absl::Status Add(const Record& rec, uint64_t index, uint32_t frame_bytes,
                   uint32_t prev_crc) override {
    uint64_t where;
    {
      absl::MutexLock l(&state_->mu);
      const uint32_t seg = state_->SegmentSlot(rec.position.segment, {});
      where = (uint64_t{seg} << kSlotOffsetBits) | rec.position.offset;
      // The term is the one Parse just read.
      state_->Put(index, last_term_, seg, rec.position.offset, frame_bytes, prev_crc);
    }
    if (batch_ != nullptr) {
      if (visitor_ != nullptr && added_any_ && index <= last_added_) {
        // A later entry overwrites the tail: the visitor forgets it, in order.
        batch_->items.push_back(Item{index, 0, 0, 0, 0, 0, false, Item::kTruncate});
      }
      Item it{index, last_term_, where, type_, batch_->bytes.size(), data_.size(), has_data_,
              Item::kEntry};
      batch_->bytes.append(data_.data(), data_.size());
      batch_->items.push_back(it);
      if (batch_->bytes.size() >= kBatchBytes || batch_->items.size() >= kBatchItems) Submit();
    }
    added_any_ = true;
    last_added_ = index;
    return absl::OkStatus();
  }

  absl::Status Decode() override {
    Stop();
    if (!verify_) return absl::OkStatus();
    absl::Status first;
    uint64_t first_index = UINT64_MAX;
    {
      absl::MutexLock l(&state_->mu);
      for (const Failure& f : failures_) {
        if (f.index < first_index && state_->IsLiveAt(f.index, f.where)) {
          first_index = f.index;
          first = f.status;
        }
      }
      if (first_index != UINT64_MAX) {
        state_->TruncateFrom(first_index);
        return PayloadDecodeError(first, absl::StrCat("entry ", first_index));
      }
    }
    if (!overflow_) return absl::OkStatus();
    // Too many failures to keep, none of the kept ones live: find the first
    // live one by reading the live entries again (only after a flood of
    // undecodable entries that were later overwritten).
    const uint64_t last = state_->LastIndex();
    for (uint64_t i = state_->FirstIndex(); i <= last; ++i) {
      auto e = state_->Entries(i, i + 1, UINT64_MAX);
      if (!e.ok()) {
        if (GetWalErrorClass(e.status()) != WalErrorClass::kDecryptFailed) return e.status();
        absl::MutexLock l(&state_->mu);
        state_->TruncateFrom(i);
        return e.status();
      }
    }
    return absl::OkStatus();
  }

 private:
  static constexpr size_t kBatchBytes = 1 << 20;
  static constexpr size_t kBatchItems = 2048;
  static constexpr size_t kMaxFailures = 4096;

  struct Item {
    // kEntry: data at `off` in Batch::bytes (stored, then decoded in place);
    // kEntryInPlain: decoded plaintext at `off` in Batch::plain.
    enum Kind : uint8_t { kEntry, kEntryInPlain, kTruncate, kFailed };
    uint64_t index;
    uint64_t term;
    uint64_t where;
    int32_t type;
    size_t off;
    size_t len;
    bool has_data;
    Kind kind;
  };
  struct Batch {
    uint64_t seq = 0;  // submission order: visits follow it
    std::string bytes;
    std::string plain;
    std::vector<Item> items;
  };
  struct Failure {
    uint64_t index;
    uint64_t where;
    absl::Status status;
  };

  std::unique_ptr<Batch> NewBatch() {
    std::unique_lock<std::mutex> l(qmu_);
    if (!free_.empty()) {
      auto b = std::move(free_.back());
      free_.pop_back();
      return b;
    }
    auto b = std::make_unique<Batch>();
    b->bytes.reserve(kBatchBytes + 64 * 1024);
    return b;
  }

  void Submit() {
    batch_->seq = next_seq_++;
    {
      std::unique_lock<std::mutex> l(qmu_);
      // At most two batches waiting per thread: memory stays bounded.
      room_.wait(l, [&] { return queue_.size() < 2 * static_cast<size_t>(threads_); });
      queue_.push_back(std::move(batch_));
    }
    work_.notify_one();
    batch_ = NewBatch();
  }

  void Stop() {
    if (workers_.empty()) return;
    if (batch_ != nullptr && !batch_->items.empty()) Submit();
    batch_.reset();
    {
      std::unique_lock<std::mutex> l(qmu_);
      done_ = true;
    }
    work_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // Decodes (or, without a codec, takes as stored) each entry of `b`, in
  // place: the batch's stored bytes are not needed afterwards, and copying
  // the plaintext out showed in profiles. A plaintext the codec could not
  // leave in place (odd encodings) is copied to b->plain for the visitor.
  void DecodeBatch(PayloadCodec::DecodeSession* session, Batch* b, std::string* scratch) {
    b->plain.clear();
    for (Item& it : b->items) {
      if (it.kind != Item::kEntry || !verify_) continue;  // no codec: visited as stored
      PayloadContext ctx{PayloadContext::Kind::kEntry, it.index, it.term, it.type};
      absl::Span<char> stored = it.has_data ? absl::MakeSpan(b->bytes.data() + it.off, it.len)
                                            : absl::Span<char>();
      absl::string_view plain;
      absl::Status s = session->DecodeInPlace(ctx, stored, scratch, &plain);
      if (!s.ok()) {
        it.kind = Item::kFailed;
        std::unique_lock<std::mutex> l(qmu_);
        if (failures_.size() < kMaxFailures) {
          failures_.push_back(Failure{it.index, it.where, s});
        } else {
          overflow_ = true;
        }
        continue;
      }
      if (visitor_ == nullptr) continue;
      if (!plain.empty() && plain.data() >= b->bytes.data() &&
          plain.data() + plain.size() <= b->bytes.data() + b->bytes.size()) {
        it.off = static_cast<size_t>(plain.data() - b->bytes.data());
        it.len = plain.size();
      } else {
        it.kind = Item::kEntryInPlain;
        it.off = b->plain.size();
        it.len = plain.size();
        b->plain.append(plain.data(), plain.size());
      }
    }
  }

  // Hands b's entries to the visitor once every earlier batch was visited.
  void VisitBatch(const Batch& b) {
    {
      std::unique_lock<std::mutex> l(vmu_);
      turn_.wait(l, [&] { return next_visit_ == b.seq; });
    }
    for (const Item& it : b.items) {
      if (it.kind == Item::kTruncate) {
        visitor_->Truncate(it.index);
      } else if (it.kind == Item::kEntry || it.kind == Item::kEntryInPlain) {
        const std::string& src = it.kind == Item::kEntry ? b.bytes : b.plain;
        visitor_->Visit(EntryView{it.index, it.term, it.type,
                                  absl::string_view(src.data() + it.off, it.len)});
      }
    }
    {
      std::unique_lock<std::mutex> l(vmu_);
      ++next_visit_;
    }
    turn_.notify_all();
  }

  void Work() {
    std::unique_ptr<PayloadCodec::DecodeSession> session =
        verify_ ? codec_->NewDecodeSession() : nullptr;
    std::string scratch;
    for (;;) {
      std::unique_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> l(qmu_);
        work_.wait(l, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        b = std::move(queue_.front());
        queue_.pop_front();
      }
      room_.notify_one();
      DecodeBatch(session.get(), b.get(), &scratch);
      if (visitor_ != nullptr) VisitBatch(*b);
      b->bytes.clear();
      b->plain.clear();
      b->items.clear();
      std::unique_lock<std::mutex> l(qmu_);
      free_.push_back(std::move(b));
    }
  }

  LogState* const state_;
  const PayloadCodec* const codec_;
  const bool verify_;
  EntryVisitor* const visitor_;
  const int threads_;
  raftpb::Entry full_;
  uint64_t last_term_ = 0;  // Parse's, for Add
  int32_t type_ = 0;
  absl::string_view data_;
  bool has_data_ = false;
  bool added_any_ = false;
  uint64_t last_added_ = 0;
  uint64_t next_seq_ = 0;
  std::unique_ptr<Batch> batch_;
  std::vector<std::thread> workers_;
  std::mutex qmu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::unique_ptr<Batch>> queue_;
  std::vector<std::unique_ptr<Batch>> free_;
  bool done_ = false;
  std::vector<Failure> failures_;
  bool overflow_ = false;
  std::mutex vmu_;
  std::condition_variable turn_;
  uint64_t next_visit_ = 0;
};

}  // namespace

absl::Status EntryParseError() {
  return WalError(absl::StatusCode::kDataLoss, WalErrorClass::kOther,
                  "wal: entry record does not parse as raftpb.Entry");
}

std::unique_ptr<EntrySink> NewMaterializingSink(SnapshotPosition start, const PayloadCodec* codec,
                                                int decode_threads,
                                                std::vector<raftpb::Entry>* ents) {
  return std::make_unique<MaterializingSink>(start, codec, decode_threads, ents);
}

std::unique_ptr<EntrySink> NewIndexSink(LogState* state, const PayloadCodec* codec,
                                        int decode_threads, bool verify_payloads,
                                        EntryVisitor* visitor) {
  return std::make_unique<IndexSink>(state, codec, decode_threads, verify_payloads, visitor);
}

// --- SlotArray ---

void SlotArray::push_back(const EntrySlot& s) {
  if (end_ / kBlock >= blocks_.size()) {
    blocks_.push_back(std::unique_ptr<EntrySlot[]>(new EntrySlot[kBlock]));
  }
  blocks_[end_ / kBlock][end_ % kBlock] = s;
  ++end_;
}

void SlotArray::Truncate(size_t n) {
  if (n >= size()) return;
  end_ = begin_ + n;
  // Keep the block end_ points into; free the ones after it.
  const size_t keep = (end_ + kBlock - 1) / kBlock;
  if (blocks_.size() > keep + 1) blocks_.resize(keep + 1);
}

size_t SlotArray::bytes() const {
  size_t live = 0;
  for (const auto& b : blocks_) live += b != nullptr ? 1 : 0;
  return live * kBlock * sizeof(EntrySlot) + blocks_.capacity() * sizeof(blocks_[0]);
}

void SlotArray::DropFront(size_t n) {
  n = std::min(n, size());
  const size_t old_block = begin_ / kBlock;
  begin_ += n;
  for (size_t b = old_block; b < begin_ / kBlock && b < blocks_.size(); ++b) blocks_[b].reset();
}

// --- LogState ---

LogState::LogState(env::FileSystem* fs, const PayloadCodec* codec, int decode_threads,
                   const LogReaderOptions& options, SnapshotPosition snap)
    : fs_(fs), codec_(codec), decode_threads_(decode_threads), options_(options),
      first_(snap.index + 1), prev_term_(snap.term) {}

uint32_t LogState::SegmentSlot(uint64_t seq, const std::string& path) {
  if (last_segment_ < segments_.size() && segments_[last_segment_].seq == seq) {
    return static_cast<uint32_t>(last_segment_);
  }
  for (size_t i = segments_.size(); i-- > 0;) {
    if (segments_[i].seq == seq) {
      last_segment_ = i;
      return static_cast<uint32_t>(i);
    }
  }
  segments_.push_back(Segment{seq, path, nullptr});
  last_segment_ = segments_.size() - 1;
  return static_cast<uint32_t>(last_segment_);
}

void LogState::Put(uint64_t index, uint64_t term, uint32_t seg, uint64_t offset,
                   uint32_t frame_bytes, uint32_t prev_crc) {
  if (index < first_ || index > LastLocked() + 1) {
    // Before the start, or after a gap (a snapshot saved past the last
    // entry): the log restarts at `index`.
    TruncateFrom(first_);
    first_ = index;
    prev_term_ = 0;
  } else if (index <= LastLocked()) {
    TruncateFrom(index);
  }
  slots_.push_back(EntrySlot{(uint64_t{seg} << kSlotOffsetBits) | offset, frame_bytes, prev_crc});
  if (runs_.empty() || runs_.back().term != term) runs_.push_back(TermRun{index, term});
}

void LogState::TruncateFrom(uint64_t index) {
  if (index > LastLocked()) return;
  ++truncations_;
  slots_.Truncate(static_cast<size_t>(index - first_));
  while (!runs_.empty() && runs_.back().first_index >= index) runs_.pop_back();
  CacheEraseIf([](uint64_t i, uint64_t bound) { return i >= bound; }, index);
}

void LogState::Publish(uint64_t seq, const std::string& path,
                       const std::vector<AppendedEntry>& ents) {
  absl::MutexLock l(&mu);
  const uint32_t seg = SegmentSlot(seq, path);
  for (const AppendedEntry& e : ents) {
    Put(e.index, e.term, seg, e.offset, e.frame_bytes, e.prev_crc);
  }
}

bool LogState::IsLiveAt(uint64_t index, uint64_t where) const {
  return index >= first_ && index <= LastLocked() && slots_[index - first_].where == where;
}

uint64_t LogState::FirstIndex() const {
  absl::MutexLock l(&mu);
  return first_;
}

uint64_t LogState::LastIndex() const {
  absl::MutexLock l(&mu);
  return LastLocked();
}

uint64_t LogState::TermLocked(uint64_t i) const {
  if (i + 1 == first_) return prev_term_;
  auto it = std::upper_bound(runs_.begin(), runs_.end(), i,
                             [](uint64_t v, const TermRun& r) { return v < r.first_index; });
  return it == runs_.begin() ? 0 : std::prev(it)->term;
}

absl::StatusOr<uint64_t> LogState::Term(uint64_t i) const {
  absl::MutexLock l(&mu);
  if (i + 1 < first_) {
    return absl::OutOfRangeError(
        absl::StrCat("compacted: term of index ", i, " requested, the log starts at ", first_));
  }
  if (i > LastLocked()) {
    return absl::OutOfRangeError(absl::StrCat("unavailable: term of index ", i,
                                              " requested, the last index is ", LastLocked()));
  }
  return TermLocked(i);
}

absl::Status LogState::CompactTo(uint64_t index) {
  absl::MutexLock l(&mu);
  if (index > LastLocked()) {
    return absl::OutOfRangeError(absl::StrCat("unavailable: cannot compact to ", index,
                                              ", the last index is ", LastLocked()));
  }
  if (index < first_) return absl::OkStatus();
  prev_term_ = TermLocked(index);
  ++truncations_;
  slots_.DropFront(static_cast<size_t>(index + 1 - first_));
  first_ = index + 1;
  // Keep the run that holds first_ and the ones after it.
  size_t keep_from = 0;
  while (keep_from + 1 < runs_.size() && runs_[keep_from + 1].first_index <= first_) ++keep_from;
  runs_.erase(runs_.begin(), runs_.begin() + static_cast<long>(keep_from));
  if (slots_.size() == 0) runs_.clear();
  CacheEraseIf([](uint64_t i, uint64_t bound) { return i <= bound; }, index);
  return absl::OkStatus();
}

absl::Status LogState::RestartAfter(uint64_t index, uint64_t term) {
  absl::MutexLock l(&mu);
  if (index <= LastLocked()) {
    return absl::InvalidArgumentError(absl::StrCat("wal: RestartAfter(", index,
                                                   ") inside the log; use CompactTo"));
  }
  TruncateFrom(first_);
  runs_.clear();
  first_ = index + 1;
  prev_term_ = term;
  return absl::OkStatus();
}

LogReader::Stats LogState::stats() const {
  absl::MutexLock l(&mu);
  LogReader::Stats s = stats_;
  s.index_bytes = slots_.bytes() + runs_.capacity() * sizeof(TermRun);
  s.cached_bytes = cached_bytes_;
  return s;
}

const raftpb::Entry* LogState::CacheFind(uint64_t index) {
  if (cache_.empty()) return nullptr;
  auto it = cache_.find(index);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.entry;
}

void LogState::CacheInsert(const raftpb::Entry& e, size_t bytes) {
  if (options_.cache_bytes == 0 || bytes > options_.cache_bytes / 4) return;
  if (cache_.count(e.index()) != 0) return;
  lru_.push_front(e.index());
  cache_.emplace(e.index(), Cached{e, bytes, lru_.begin()});
  cached_bytes_ += bytes;
  while (cached_bytes_ > options_.cache_bytes && !lru_.empty()) {
    auto it = cache_.find(lru_.back());
    cached_bytes_ -= it->second.bytes;
    cache_.erase(it);
    lru_.pop_back();
  }
}

void LogState::CacheEraseIf(bool (*pred)(uint64_t, uint64_t), uint64_t bound) {
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (pred(it->first, bound)) {
      cached_bytes_ -= it->second.bytes;
      lru_.erase(it->second.lru);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<std::vector<raftpb::Entry>> LogState::Entries(uint64_t lo, uint64_t hi,
                                                             uint64_t max_bytes) {
  for (;;) {
    bool restart = false;
    auto r = EntriesOnce(lo, hi, max_bytes, &restart);
    if (!restart) return r;
  }
}

// Frames are read and checked under the mutex; payloads are decoded with
// it released, so that one caller's reads overlap another's decoding (a
// streaming reader keeps two calls in flight). Should entries leave the
// index meanwhile (a Save overriding them, CompactTo), the call starts
// over: a result never mixes entries from before and after a truncation.
absl::StatusOr<std::vector<raftpb::Entry>> LogState::EntriesOnce(uint64_t lo, uint64_t hi,
                                                                 uint64_t max_bytes,
                                                                 bool* restart) {
  absl::MutexLock l(&mu);
  if (lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat("wal: Entries(", lo, ", ", hi, "): lo > hi"));
  }
  if (lo < first_) {
    return absl::OutOfRangeError(
        absl::StrCat("compacted: entry ", lo, " requested, the log starts at ", first_));
  }
  if (hi > LastLocked() + 1) {
    return absl::OutOfRangeError(absl::StrCat("unavailable: entries up to ", hi - 1,
                                              " requested, the last index is ", LastLocked()));
  }
  const uint64_t generation = truncations_;
  std::vector<raftpb::Entry> out;
  std::vector<raftpb::Entry> chunk;
  uint64_t total = 0;
  uint64_t i = lo;
  // raft's limitSize: the first entry always, then while the sum fits.
  auto fits = [&](size_t bytes) { return out.empty() || total + bytes <= max_bytes; };
  while (i < hi) {
    if (const raftpb::Entry* c = CacheFind(i)) {
      ++stats_.cache_hits;
      const size_t bytes = c->ByteSizeLong();
      if (!fits(bytes)) break;
      total += bytes;
      out.push_back(*c);
      ++i;
      continue;
    }
    // A run of misses, sized by the stored frames against what is left of
    // max_bytes (a frame is never smaller than its plaintext entry with
    // the codecs we ship; should it be, the loop simply reads again).
    const uint64_t budget = max_bytes > total ? max_bytes - total : 0;
    uint64_t j = i;
    uint64_t est = 0;
    while (j < hi && j - i < kMaxChunkEntries) {
      if (j > i && !cache_.empty() && cache_.count(j) != 0) break;
      est += slots_[j - first_].frame_bytes;
      ++j;
      if (est > budget) break;
    }
    chunk.clear();
    SEALWAL_RETURN_IF_ERROR(ReadRange(i, j, &chunk));
    stats_.cache_misses += j - i;
    if (codec_ != nullptr) {
      // Decode without the mutex (the codec is thread-safe through its
      // sessions; nothing here touches the index), then take it back.
      mu.Unlock();
      size_t failed;
      absl::Status s =
          DecodeEntryRange(codec_, decode_threads_, chunk.data(), chunk.size(), &failed);
      mu.Lock();
      if (truncations_ != generation) {
        *restart = true;
        return out;
      }
      SEALWAL_RETURN_IF_ERROR(s);
    }
    bool full = false;
    for (raftpb::Entry& e : chunk) {
      const size_t bytes = e.ByteSizeLong();
      CacheInsert(e, bytes);
      if (!fits(bytes)) {
        full = true;
        break;
      }
      total += bytes;
      out.push_back(std::move(e));
      ++i;
    }
    if (full) break;
  }
  return out;
}

absl::Status LogState::ReadRange(uint64_t lo, uint64_t hi, std::vector<raftpb::Entry>* out) {
  out->reserve(out->size() + static_cast<size_t>(hi - lo));
  uint64_t i = lo;
  while (i < hi) {
    const EntrySlot& s0 = slots_[i - first_];
    const uint32_t seg = static_cast<uint32_t>(s0.where >> kSlotOffsetBits);
    const uint64_t start = s0.where & kSlotOffsetMask;
    uint64_t end = start + s0.frame_bytes;
    uint64_t j = i + 1;
    for (; j < hi; ++j) {
      const EntrySlot& s = slots_[j - first_];
      const uint64_t off = s.where & kSlotOffsetMask;
      if ((s.where >> kSlotOffsetBits) != seg || off < end || off - end > kMaxGapBytes ||
          off + s.frame_bytes - start > kMaxSpanBytes) {
        break;
      }
      end = off + s.frame_bytes;
    }
    Segment& sg = segments_[seg];
    if (sg.file == nullptr) {
      SEALWAL_ASSIGN_OR_RETURN(sg.file, fs_->NewRandomAccessFile(sg.path));
    }
    read_buf_.resize(static_cast<size_t>(end - start));
    size_t got = 0;
    while (got < read_buf_.size()) {
      ++stats_.disk_reads;
      SEALWAL_ASSIGN_OR_RETURN(
          size_t n, sg.file->ReadAt(start + got, absl::Span<char>(read_buf_.data() + got,
                                                                  read_buf_.size() - got)));
      if (n == 0) break;
      got += n;
    }
    for (uint64_t k = i; k < j; ++k) {
      const EntrySlot& s = slots_[k - first_];
      const uint64_t off = (s.where & kSlotOffsetMask) - start;
      if (off + s.frame_bytes > got) return Changed(k, "the segment is shorter");
      absl::string_view frame(read_buf_.data() + off, s.frame_bytes);
      uint64_t rec_bytes, pad;
      DecodeFrameLength(LoadLE64(frame.data()), &rec_bytes, &pad);
      if (kFrameSizeBytes + rec_bytes + pad != s.frame_bytes) return Changed(k, "frame length");
      int64_t type = 0;
      uint32_t crc = 0;
      absl::string_view data;
      if (!ParseWalRecord(frame.substr(kFrameSizeBytes, static_cast<size_t>(rec_bytes)), &type,
                          &crc, &data) ||
          type != static_cast<int64_t>(RecordType::kEntry)) {
        return Changed(k, "record");
      }
      if (crc32c::Extend(s.prev_crc, data) != crc) return Changed(k, "crc mismatch");
      raftpb::Entry& e = out->emplace_back();
      if (!e.ParseFromArray(data.data(), static_cast<int>(data.size())) || e.index() != k) {
        return Changed(k, "entry");
      }
    }
    i = j;
  }
  return absl::OkStatus();
}

// --- LogReader ---

LogReader::LogReader(std::shared_ptr<LogState> state) : state_(std::move(state)) {}
LogReader::~LogReader() = default;

absl::Status LogReader::Open(const std::string& dir, SnapshotPosition snap,
                             const WalOptions& wal_options, const LogReaderOptions& options,
                             std::unique_ptr<LogReader>* out) {
  out->reset();
  SEALWAL_ASSIGN_OR_RETURN(std::unique_ptr<Wal> w, Wal::OpenForRead(dir, snap, wal_options));
  return w->ReadAllIndexed(options, out);
}

uint64_t LogReader::FirstIndex() const { return state_->FirstIndex(); }
uint64_t LogReader::LastIndex() const { return state_->LastIndex(); }
absl::StatusOr<uint64_t> LogReader::Term(uint64_t i) const { return state_->Term(i); }
absl::StatusOr<std::vector<raftpb::Entry>> LogReader::Entries(uint64_t lo, uint64_t hi,
                                                              uint64_t max_bytes) const {
  return state_->Entries(lo, hi, max_bytes);
}
absl::Status LogReader::CompactTo(uint64_t index) { return state_->CompactTo(index); }
absl::Status LogReader::RestartAfter(uint64_t index, uint64_t term) {
  return state_->RestartAfter(index, term);
}
bool LogReader::has_metadata() const { return state_->recovered.has_metadata; }
const std::string& LogReader::metadata() const { return state_->recovered.metadata; }
const raftpb::HardState& LogReader::hardstate() const { return state_->recovered.hardstate; }
bool LogReader::torn_tail() const { return state_->recovered.torn_tail; }
const std::string& LogReader::torn_detail() const { return state_->recovered.torn_detail; }
LogReader::Stats LogReader::stats() const { return state_->stats(); }

}  // namespace sealwal::wal
