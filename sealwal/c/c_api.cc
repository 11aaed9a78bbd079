// sealwal/c/c_api.cc: include/sealwal/sealwal.h over storage::RaftStorage.
// Each function converts its arguments, calls the facade and turns the
// absl::Status into a code and a malloc'd message. No C++ exception leaves
// this file: an allocation failure is SEALWAL_ERR_RESOURCE_EXHAUSTED.
#include "sealwal/sealwal.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sealwal/base/status_macros.h"
#include "sealwal/env/file_system.h"
#include "sealwal/kek/key_file_kek.h"
#include "sealwal/pem/unlock_key.h"
#include "sealwal/proto/raftpb.pb.h"
#include "sealwal/storage/raft_storage.h"

namespace {

using sealwal::raftpb::Entry;
using sealwal::raftpb::HardState;
using sealwal::raftpb::SnapshotMetadata;
using sealwal::storage::RaftStorage;

// Entries an iterator reads from disk at a time: bounds its memory.
constexpr uint64_t kIterBatch = 64;

char* CopyMessage(absl::string_view m) {
  char* p = static_cast<char*>(std::malloc(m.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, m.data(), m.size());
  p[m.size()] = '\0';
  return p;
}

int Report(const absl::Status& s, char** errmsg) {
  if (s.ok()) return SEALWAL_OK;
  if (errmsg != nullptr) *errmsg = CopyMessage(s.message());
  return static_cast<int>(s.code());
}

// Runs fn (returning absl::Status) with exceptions turned into codes.
template <typename Fn>
int Guard(char** errmsg, Fn&& fn) {
  try {
    return Report(fn(), errmsg);
  } catch (const std::bad_alloc&) {
    return Report(absl::ResourceExhaustedError("out of memory"), errmsg);
  } catch (const std::exception& e) {
    return Report(absl::InternalError(absl::StrCat("unexpected exception: ", e.what())), errmsg);
  } catch (...) {
    return Report(absl::InternalError("unexpected exception"), errmsg);
  }
}

absl::Status NullArgument(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(what, " is NULL"));
}

HardState ToHardState(const sealwal_hardstate* hs) {
  HardState out;
  if (hs != nullptr) {
    out.set_term(hs->term);
    out.set_vote(hs->vote);
    out.set_commit(hs->commit);
  }
  return out;
}

absl::StatusOr<std::vector<Entry>> ToEntries(const sealwal_entry* es, size_t n) {
  if (n > 0 && es == nullptr) return NullArgument("entries");
  std::vector<Entry> out(n);
  for (size_t i = 0; i < n; ++i) {
    const sealwal_entry& e = es[i];
    if (e.data_len > 0 && e.data == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", i, ": data is NULL"));
    }
    if (!sealwal::raftpb::EntryType_IsValid(e.type)) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", i, ": unknown type ", e.type));
    }
    out[i].set_term(e.term);
    out[i].set_index(e.index);
    out[i].set_type(static_cast<sealwal::raftpb::EntryType>(e.type));
    // etcd writes no Data field for an empty entry; keep it absent too.
    if (e.data_len > 0) out[i].set_data(static_cast<const char*>(e.data), e.data_len);
  }
  return out;
}

absl::StatusOr<SnapshotMetadata> ParseMetadata(const void* data, size_t len) {
  if (len > 0 && data == nullptr) return NullArgument("metadata");
  SnapshotMetadata m;
  if (len > static_cast<size_t>(INT32_MAX) ||
      !m.ParseFromArray(data, static_cast<int>(len))) {
    return absl::InvalidArgumentError("snapshot metadata: not a protobuf raftpb.SnapshotMetadata");
  }
  return m;
}

}  // namespace

struct sealwal_options {
  bool create_if_missing = false;
  bool encrypted = true;
  bool read_only = false;
  std::optional<sealwal::pem::UnlockKey> unlock_key;
  std::string metadata;
  uint64_t segment_size = sealwal::wal::kDefaultSegmentSize;
  sealwal::wal::Preallocation preallocation = sealwal::wal::Preallocation::kZeroFill;
  size_t pipeline_depth = 16;
  uint64_t max_encryptions = sealwal::keyrotator::RotationPolicy{}.max_encryptions;
  uint64_t max_age_seconds = 0;
  sealwal_snapshot_request_fn request_fn = nullptr;
  void* request_arg = nullptr;
};

struct sealwal_store {
  std::unique_ptr<RaftStorage> storage;
  // The log Bootstrap returned (null before).
  std::unique_ptr<sealwal::storage::LogView> log;
};

struct sealwal_recovery {
  std::optional<sealwal::snap::LoadedSnapshot> snapshot;
  std::string snapshot_metadata;  // encoded raftpb.SnapshotMetadata
  size_t inline_read = 0;         // bytes of an inline snapshot read so far
  HardState hardstate;
  std::string metadata;
  bool repaired_torn_tail = false;
};

struct sealwal_entry_iter {
  const sealwal::storage::LogView* log;
  uint64_t next;  // the next index to return
  uint64_t hi;
  std::vector<Entry> batch;
  size_t pos = 0;
};

struct sealwal_snapshot_writer {
  std::unique_ptr<sealwal::storage::SnapshotWriter> writer;
};

extern "C" {

void sealwal_free(void* p) { std::free(p); }

const char* sealwal_version(void) { return SEALWAL_VERSION_STRING; }

sealwal_options* sealwal_options_create(void) { return new (std::nothrow) sealwal_options(); }
void sealwal_options_destroy(sealwal_options* o) { delete o; }  // UnlockKey wipes itself

void sealwal_options_set_create_if_missing(sealwal_options* o, int v) {
  if (o != nullptr) o->create_if_missing = v != 0;
}
void sealwal_options_set_encrypted(sealwal_options* o, int v) {
  if (o != nullptr) o->encrypted = v != 0;
}
int sealwal_options_set_unlock_key(sealwal_options* o, const char* text, size_t len,
                                   char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (o == nullptr) return NullArgument("options");
    if (text == nullptr && len > 0) return NullArgument("unlock key");
    absl::StatusOr<sealwal::pem::UnlockKey> key =
        sealwal::pem::UnlockKey::Parse(absl::string_view(text == nullptr ? "" : text, len));
    if (!key.ok()) return key.status();
    o->unlock_key = std::move(*key);
    return absl::OkStatus();
  });
}
void sealwal_options_set_metadata(sealwal_options* o, const void* data, size_t len) {
  if (o == nullptr) return;
  if (data == nullptr) len = 0;
  o->metadata.assign(static_cast<const char*>(data), len);
}
void sealwal_options_set_read_only(sealwal_options* o, int v) {
  if (o != nullptr) o->read_only = v != 0;
}
void sealwal_options_set_segment_size(sealwal_options* o, uint64_t bytes) {
  if (o != nullptr) o->segment_size = bytes;
}
void sealwal_options_set_preallocation(sealwal_options* o, int mode) {
  if (o == nullptr) return;
  if (mode == SEALWAL_PREALLOC_ZERO_FILL) o->preallocation = sealwal::wal::Preallocation::kZeroFill;
  if (mode == SEALWAL_PREALLOC_FALLOCATE) o->preallocation = sealwal::wal::Preallocation::kFallocate;
}
void sealwal_options_set_pipeline_depth(sealwal_options* o, size_t depth) {
  if (o != nullptr) o->pipeline_depth = depth;
}
void sealwal_options_set_rotation_max_encryptions(sealwal_options* o, uint64_t n) {
  if (o != nullptr) o->max_encryptions = n;
}
void sealwal_options_set_rotation_max_age_seconds(sealwal_options* o, uint64_t seconds) {
  if (o != nullptr) o->max_age_seconds = seconds;
}
void sealwal_options_set_snapshot_request(sealwal_options* o, sealwal_snapshot_request_fn fn,
                                          void* arg) {
  if (o == nullptr) return;
  o->request_fn = fn;
  o->request_arg = arg;
}

int sealwal_open(const char* data_dir, const sealwal_options* o, sealwal_store** out,
                 char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (data_dir == nullptr) return NullArgument("data_dir");
    if (o == nullptr) return NullArgument("options");
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (*data_dir == '\0') return absl::InvalidArgumentError("data_dir is empty");
    if (o->pipeline_depth == 0) return absl::InvalidArgumentError("pipeline depth must be >= 1");
    sealwal::storage::StorageOptions so;
    so.data_dir = data_dir;
    if (o->unlock_key.has_value()) {
      so.unlock_key = o->unlock_key->Clone();
    } else {
      // node.key may name a KEK source (a token or KMS plugin) that holds
      // its unlock key: ask it, with the PIN and timeout of the environment.
      SEALWAL_ASSIGN_OR_RETURN(
          sealwal::kek::KekSourceOptions ko,
          sealwal::kek::KekSourceOptionsFromEnvironment(sealwal::env::DefaultFileSystem()));
      SEALWAL_ASSIGN_OR_RETURN(
          so.unlock_key,
          sealwal::kek::UnlockKeyFromKekSource(
              sealwal::env::DefaultFileSystem(),
              sealwal::env::JoinPath(data_dir, sealwal::storage::kKeyFileName), ko));
    }
    so.create_if_missing = o->create_if_missing;
    so.encrypted = o->encrypted;
    so.metadata = o->metadata;
    so.read_only = o->read_only;
    so.segment_size = o->segment_size;
    so.preallocation = o->preallocation;
    so.pipeline_depth = o->pipeline_depth;
    so.rotation.max_encryptions = o->max_encryptions;
    if (o->max_age_seconds > 0) {
      so.rotation.max_age = absl::Seconds(static_cast<int64_t>(
          std::min<uint64_t>(o->max_age_seconds, uint64_t{INT64_MAX})));
    }
    if (o->request_fn != nullptr) {
      so.request_snapshot = [fn = o->request_fn, arg = o->request_arg](uint64_t min_index) {
        fn(arg, min_index);
      };
    }
    absl::StatusOr<std::unique_ptr<RaftStorage>> st = RaftStorage::Open(std::move(so));
    if (!st.ok()) return st.status();
    auto store = std::make_unique<sealwal_store>();
    store->storage = std::move(*st);
    *out = store.release();
    return absl::OkStatus();
  });
}

int sealwal_close(sealwal_store* s, char** errmsg) {
  if (s == nullptr) return SEALWAL_OK;
  int code = Guard(errmsg, [&]() -> absl::Status {
    // Close waits for submitted batches (their completions fire first).
    return s->storage->Close();
  });
  s->log.reset();
  delete s;
  return code;
}

int sealwal_encrypted(const sealwal_store* s) {
  return s != nullptr && s->storage->encrypted() ? 1 : 0;
}

int sealwal_bootstrap(sealwal_store* s, sealwal_recovery** out, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    absl::StatusOr<sealwal::storage::BootstrapState> st = s->storage->Bootstrap();
    if (!st.ok()) return st.status();
    auto r = std::make_unique<sealwal_recovery>();
    if (st->snapshot.has_value()) {
      r->snapshot_metadata = st->snapshot->metadata.SerializeAsString();
      r->snapshot = std::move(st->snapshot);
    }
    r->hardstate = st->hardstate;
    r->metadata = std::move(st->metadata);
    r->repaired_torn_tail = st->repaired_torn_tail;
    s->log = std::move(st->log);
    *out = r.release();
    return absl::OkStatus();
  });
}

void sealwal_recovery_destroy(sealwal_recovery* r) { delete r; }

int sealwal_recovery_has_snapshot(const sealwal_recovery* r) {
  return r != nullptr && r->snapshot.has_value() ? 1 : 0;
}
void sealwal_recovery_snapshot_metadata(const sealwal_recovery* r, const void** data,
                                        size_t* len) {
  if (data != nullptr) *data = r != nullptr ? r->snapshot_metadata.data() : nullptr;
  if (len != nullptr) *len = r != nullptr ? r->snapshot_metadata.size() : 0;
}
uint64_t sealwal_recovery_snapshot_index(const sealwal_recovery* r) {
  return r != nullptr && r->snapshot ? r->snapshot->metadata.index() : 0;
}
uint64_t sealwal_recovery_snapshot_term(const sealwal_recovery* r) {
  return r != nullptr && r->snapshot ? r->snapshot->metadata.term() : 0;
}
uint64_t sealwal_recovery_snapshot_size(const sealwal_recovery* r) {
  return r != nullptr && r->snapshot ? r->snapshot->size() : 0;
}
int sealwal_recovery_read_snapshot(sealwal_recovery* r, void* buf, size_t cap, size_t* n,
                                   char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (r == nullptr) return NullArgument("recovery");
    if (n == nullptr) return NullArgument("n");
    *n = 0;
    if (cap > 0 && buf == nullptr) return NullArgument("buf");
    if (!r->snapshot.has_value() || cap == 0) return absl::OkStatus();
    sealwal::snap::LoadedSnapshot& snap = *r->snapshot;
    if (snap.streamed()) {
      absl::StatusOr<size_t> got =
          snap.stream->Read(absl::MakeSpan(static_cast<char*>(buf), cap));
      if (!got.ok()) return got.status();
      *n = *got;
      return absl::OkStatus();
    }
    size_t take = std::min(cap, snap.data.size() - r->inline_read);
    std::memcpy(buf, snap.data.data() + r->inline_read, take);
    r->inline_read += take;
    *n = take;
    return absl::OkStatus();
  });
}
sealwal_hardstate sealwal_recovery_hardstate(const sealwal_recovery* r) {
  sealwal_hardstate hs{0, 0, 0};
  if (r != nullptr) {
    hs.term = r->hardstate.term();
    hs.vote = r->hardstate.vote();
    hs.commit = r->hardstate.commit();
  }
  return hs;
}
void sealwal_recovery_metadata(const sealwal_recovery* r, const void** data, size_t* len) {
  if (data != nullptr) *data = r != nullptr ? r->metadata.data() : nullptr;
  if (len != nullptr) *len = r != nullptr ? r->metadata.size() : 0;
}
int sealwal_recovery_repaired_torn_tail(const sealwal_recovery* r) {
  return r != nullptr && r->repaired_torn_tail ? 1 : 0;
}

uint64_t sealwal_log_first_index(const sealwal_store* s) {
  return s != nullptr && s->log != nullptr ? s->log->FirstIndex() : 0;
}
uint64_t sealwal_log_last_index(const sealwal_store* s) {
  return s != nullptr && s->log != nullptr ? s->log->LastIndex() : 0;
}
int sealwal_log_term(const sealwal_store* s, uint64_t i, uint64_t* term, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (term == nullptr) return NullArgument("term");
    if (s->log == nullptr) return absl::FailedPreconditionError("the store is not bootstrapped");
    absl::StatusOr<uint64_t> t = s->log->Term(i);
    if (!t.ok()) return t.status();
    *term = *t;
    return absl::OkStatus();
  });
}
int sealwal_log_entries(const sealwal_store* s, uint64_t lo, uint64_t hi, sealwal_entry_iter** out,
                        char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    if (s->log == nullptr) return absl::FailedPreconditionError("the store is not bootstrapped");
    const uint64_t first = s->log->FirstIndex();
    const uint64_t last = s->log->LastIndex();
    if (lo < first) {
      return absl::OutOfRangeError(
          absl::StrCat("compacted: entry ", lo, " is below the first index ", first));
    }
    if (lo > hi || hi > last + 1) {
      return absl::OutOfRangeError(
          absl::StrCat("unavailable: entries [", lo, ", ", hi, ") past the last index ", last));
    }
    *out = new sealwal_entry_iter{s->log.get(), lo, hi, {}, 0};
    return absl::OkStatus();
  });
}
int sealwal_entry_iter_next(sealwal_entry_iter* it, int* has, sealwal_entry* e, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (it == nullptr) return NullArgument("iterator");
    if (has == nullptr || e == nullptr) return NullArgument("has/e");
    *has = 0;
    if (it->pos == it->batch.size()) {
      it->batch.clear();
      it->pos = 0;
      if (it->next >= it->hi) return absl::OkStatus();
      const uint64_t end = it->next + std::min(kIterBatch, it->hi - it->next);
      absl::StatusOr<std::vector<Entry>> got = it->log->Entries(it->next, end);
      if (!got.ok()) {
        it->next = it->hi;  // an error ends the iteration
        return got.status();
      }
      it->batch = std::move(*got);
      it->next = end;
      if (it->batch.empty()) return absl::OkStatus();
    }
    const Entry& x = it->batch[it->pos++];
    e->term = x.term();
    e->index = x.index();
    e->type = static_cast<int32_t>(x.type());
    e->data = x.data().data();
    e->data_len = x.data().size();
    *has = 1;
    return absl::OkStatus();
  });
}
void sealwal_entry_iter_destroy(sealwal_entry_iter* it) { delete it; }

int sealwal_save(sealwal_store* s, const sealwal_hardstate* hs, const sealwal_entry* entries,
                 size_t n, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    absl::StatusOr<std::vector<Entry>> es = ToEntries(entries, n);
    if (!es.ok()) return es.status();
    return s->storage->SaveEntries(ToHardState(hs), *es);
  });
}

int sealwal_submit(sealwal_store* s, const sealwal_hardstate* hs, const sealwal_entry* entries,
                   size_t n, sealwal_done_fn done, void* arg, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (done == nullptr) return NullArgument("done");
    absl::StatusOr<std::vector<Entry>> es = ToEntries(entries, n);
    if (!es.ok()) return es.status();
    return s->storage->SubmitEntries(ToHardState(hs), *es, [done, arg](absl::Status st) {
      std::string m(st.message());
      done(arg, static_cast<int>(st.code()), m.c_str());
    });
  });
}

int sealwal_flush(sealwal_store* s, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    return s->storage->Flush();
  });
}

int sealwal_save_snapshot(sealwal_store* s, const void* metadata, size_t metadata_len,
                          const void* data, size_t data_len, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (data_len > 0 && data == nullptr) return NullArgument("data");
    absl::StatusOr<SnapshotMetadata> m = ParseMetadata(metadata, metadata_len);
    if (!m.ok()) return m.status();
    return s->storage->SaveSnapshot(
        *m, absl::string_view(static_cast<const char*>(data), data == nullptr ? 0 : data_len));
  });
}

int sealwal_snapshot_begin(sealwal_store* s, const void* metadata, size_t metadata_len,
                           sealwal_snapshot_writer** out, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (out == nullptr) return NullArgument("out");
    *out = nullptr;
    absl::StatusOr<SnapshotMetadata> m = ParseMetadata(metadata, metadata_len);
    if (!m.ok()) return m.status();
    absl::StatusOr<std::unique_ptr<sealwal::storage::SnapshotWriter>> w =
        s->storage->SaveSnapshotStream(*m);
    if (!w.ok()) return w.status();
    *out = new sealwal_snapshot_writer{std::move(*w)};
    return absl::OkStatus();
  });
}
int sealwal_snapshot_write(sealwal_snapshot_writer* w, const void* data, size_t len,
                           char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (w == nullptr) return NullArgument("writer");
    if (len > 0 && data == nullptr) return NullArgument("data");
    if (len == 0) return absl::OkStatus();
    return w->writer->Append(absl::string_view(static_cast<const char*>(data), len));
  });
}
int sealwal_snapshot_commit(sealwal_snapshot_writer* w, char** errmsg) {
  if (w == nullptr) return Report(NullArgument("writer"), errmsg);
  int code = Guard(errmsg, [&]() -> absl::Status { return w->writer->Commit(); });
  delete w;  // after a failed commit this aborts what is left
  return code;
}
void sealwal_snapshot_abort(sealwal_snapshot_writer* w) { delete w; }

int sealwal_gc(sealwal_store* s, size_t keep, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    if (keep == 0) return absl::InvalidArgumentError("gc must keep at least one snapshot");
    return s->storage->GC(keep);
  });
}

void sealwal_request_rotation(sealwal_store* s) {
  if (s != nullptr) s->storage->RequestRotation();
}

int sealwal_poll(sealwal_store* s, char** errmsg) {
  return Guard(errmsg, [&]() -> absl::Status {
    if (s == nullptr) return NullArgument("store");
    return s->storage->Poll();
  });
}

uint32_t sealwal_write_key_id(const sealwal_store* s) {
  if (s == nullptr) return 0;
  std::optional<sealwal::encryption::KeyId> k = s->storage->write_key();
  return k.has_value() ? k->value() : 0;
}

}  // extern "C"
