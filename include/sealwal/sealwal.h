/* sealwal/sealwal.h: the C API of sealwal's storage facade (C99).
 *
 * One store is one Raft node's data directory: its write-ahead log, its
 * snapshots and, for an encrypted store, its key file (docs/architecture.md).
 * These functions wrap sealwal::storage::RaftStorage
 * (sealwal/storage/raft_storage.h), whose comments hold the full contract:
 * durability, snapshot order, key rotation.
 *
 * A session:
 *   sealwal_options_create, sealwal_options_set_...    how to open
 *   sealwal_open                                      the store
 *   sealwal_bootstrap                                 once: the recovered
 *     state (snapshot metadata and data, HardState, the log after the
 *     snapshot, read through sealwal_log_...)
 *   sealwal_save / sealwal_submit + sealwal_flush     entries + HardState
 *   sealwal_save_snapshot / sealwal_snapshot_begin... a snapshot
 *   sealwal_gc                                        drop what is not needed
 *   sealwal_close                                     close and free
 *
 * Errors: every function that can fail returns an int status code, 0
 * (SEALWAL_OK) on success, otherwise one of SEALWAL_ERR_* (the codes of
 * absl::StatusCode, with the same meaning). When `errmsg` is not NULL and
 * the call fails, *errmsg receives a NUL-terminated message allocated by
 * the library, which the caller frees with sealwal_free; on success
 * *errmsg is left untouched. A message never holds key bytes.
 *
 * Ownership: every object a sealwal_*_create / sealwal_open /
 * sealwal_bootstrap / sealwal_log_entries / sealwal_snapshot_begin returns
 * is owned by the caller and released with its own destroy / close /
 * abort function. Pointers passed in (paths, data, entries) are borrowed
 * for the duration of the call only: the library copies what it keeps.
 * Pointers the library hands out (entry data, metadata bytes) are valid
 * until the next call on the object that returned them, or its release, as
 * each function says.
 *
 * Thread-safety: a sealwal_store is not thread-safe: one thread at a time
 * calls it (the consensus layer's storage thread), except the sealwal_log_*
 * functions, which any thread may call while the store is open (each
 * iterator by one thread at a time). Callbacks run on the threads their
 * setters state and must not call back into the store. Distinct stores
 * are independent. An options object is read by sealwal_open only and may
 * be destroyed or reused once it returns.
 *
 * Security: unlock keys passed in are copied into memory the library wipes
 * when the options object is destroyed; the library enforces every rule
 * of docs/security.md whichever API is used.
 */
#ifndef SEALWAL_SEALWAL_H_
#define SEALWAL_SEALWAL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SEALWAL_EXPORT __attribute__((visibility("default")))
#else
#define SEALWAL_EXPORT
#endif

/* Status codes: absl::StatusCode's values. */
enum {
  SEALWAL_OK = 0,
  SEALWAL_ERR_CANCELLED = 1,
  SEALWAL_ERR_UNKNOWN = 2,
  SEALWAL_ERR_INVALID_ARGUMENT = 3, /* bad arguments, bad bytes passed in */
  SEALWAL_ERR_DEADLINE_EXCEEDED = 4,
  SEALWAL_ERR_NOT_FOUND = 5,        /* no store; a DEK the key file lacks */
  SEALWAL_ERR_ALREADY_EXISTS = 6,
  SEALWAL_ERR_PERMISSION_DENIED = 7, /* missing or wrong unlock key */
  SEALWAL_ERR_RESOURCE_EXHAUSTED = 8,
  SEALWAL_ERR_FAILED_PRECONDITION = 9, /* call out of order, read-only store */
  SEALWAL_ERR_ABORTED = 10,
  SEALWAL_ERR_OUT_OF_RANGE = 11,    /* log: "compacted:" / "unavailable:" */
  SEALWAL_ERR_UNIMPLEMENTED = 12,
  SEALWAL_ERR_INTERNAL = 13,
  SEALWAL_ERR_UNAVAILABLE = 14,
  SEALWAL_ERR_DATA_LOSS = 15,       /* corruption; a failed write or fsync */
  SEALWAL_ERR_UNAUTHENTICATED = 16
};

/* raftpb.EntryType */
enum { SEALWAL_ENTRY_NORMAL = 0, SEALWAL_ENTRY_CONF_CHANGE = 1, SEALWAL_ENTRY_CONF_CHANGE_V2 = 2 };

typedef struct sealwal_options sealwal_options;
typedef struct sealwal_store sealwal_store;
typedef struct sealwal_recovery sealwal_recovery;
typedef struct sealwal_entry_iter sealwal_entry_iter;
typedef struct sealwal_snapshot_writer sealwal_snapshot_writer;

/* raftpb.HardState. */
typedef struct sealwal_hardstate {
  uint64_t term;
  uint64_t vote;
  uint64_t commit;
} sealwal_hardstate;

/* raftpb.Entry. `data` is borrowed (see each function); data_len 0 with
 * data NULL or not is an empty payload. */
typedef struct sealwal_entry {
  uint64_t term;
  uint64_t index;
  int32_t type; /* SEALWAL_ENTRY_* */
  const void* data;
  size_t data_len;
} sealwal_entry;

/* Frees a message (errmsg) or buffer the library allocated. NULL is fine. */
SEALWAL_EXPORT void sealwal_free(void* p);

/* The library's version, "MAJOR.MINOR.PATCH"; static storage. */
SEALWAL_EXPORT const char* sealwal_version(void);

/* ---- options ---------------------------------------------------------- */

/* Defaults: open an existing store, read-write, no unlock key. */
SEALWAL_EXPORT sealwal_options* sealwal_options_create(void);
/* Wipes the unlock key copy and frees. NULL is fine. */
SEALWAL_EXPORT void sealwal_options_destroy(sealwal_options* o);

/* Make a new store when the directory holds none (default 0). */
SEALWAL_EXPORT void sealwal_options_set_create_if_missing(sealwal_options* o, int v);
/* A new store is encrypted (default 1) or plaintext (0). */
SEALWAL_EXPORT void sealwal_options_set_encrypted(sealwal_options* o, int v);
/* The unlock key in its text form ("SEALWAL-1-..."; the SEALWAL_UNLOCK_KEY
 * variable's format). A new store's key file is locked under it. Returns
 * SEALWAL_ERR_INVALID_ARGUMENT (and keeps no copy) when it does not parse;
 * the message does not echo the text. */
SEALWAL_EXPORT int sealwal_options_set_unlock_key(sealwal_options* o, const char* text,
                                                  size_t len, char** errmsg);
/* The WAL metadata of a new store (copied). */
SEALWAL_EXPORT void sealwal_options_set_metadata(sealwal_options* o, const void* data,
                                                 size_t len);
/* Opened to read only: no repair, no writes (default 0). */
SEALWAL_EXPORT void sealwal_options_set_read_only(sealwal_options* o, int v);
/* WAL segment size in bytes (default 64 MiB). */
SEALWAL_EXPORT void sealwal_options_set_segment_size(sealwal_options* o, uint64_t bytes);
/* How WAL segments are reserved: SEALWAL_PREALLOC_ZERO_FILL (default:
 * zeros written and fsynced before use, so that each fdatasync has no
 * file-system metadata to journal; costs one extra write of every segment)
 * or SEALWAL_PREALLOC_FALLOCATE (fallocate only, as etcd does). Other
 * values are ignored. */
enum { SEALWAL_PREALLOC_ZERO_FILL = 0, SEALWAL_PREALLOC_FALLOCATE = 1 };
SEALWAL_EXPORT void sealwal_options_set_preallocation(sealwal_options* o, int mode);
/* Batches in flight at most with sealwal_submit (default 16, >= 1). */
SEALWAL_EXPORT void sealwal_options_set_pipeline_depth(sealwal_options* o, size_t depth);
/* Rotate the DEK once it has sealed this many messages (default 2^30). */
SEALWAL_EXPORT void sealwal_options_set_rotation_max_encryptions(sealwal_options* o,
                                                                 uint64_t n);
/* Rotate the DEK once it is older than this many seconds (0: off). */
SEALWAL_EXPORT void sealwal_options_set_rotation_max_age_seconds(sealwal_options* o,
                                                                 uint64_t seconds);
/* The key rotator's snapshot request: "please save a snapshot at an index
 * >= min_index" (sealwal_save_snapshot or the streamed form, later). It is
 * called on the thread that called sealwal_save / sealwal_submit /
 * sealwal_save_snapshot / sealwal_gc, inside that call, and must not call
 * into the store: record the request and answer it afterwards. `arg` is
 * passed back as is. */
typedef void (*sealwal_snapshot_request_fn)(void* arg, uint64_t min_index);
SEALWAL_EXPORT void sealwal_options_set_snapshot_request(sealwal_options* o,
                                                         sealwal_snapshot_request_fn fn,
                                                         void* arg);

/* ---- store ------------------------------------------------------------ */

/* Opens (or with create_if_missing creates) the store in `data_dir`.
 * Without an unlock key, when the store's node.key names a KEK source (a
 * PKCS#11 token or a KMS plugin, docs/kek-providers.md), that source is
 * asked for it, with the PIN from SEALWAL_PKCS11_PIN or
 * SEALWAL_PKCS11_PIN_FILE and the plugin timeout SEALWAL_KEK_TIMEOUT.
 * SEALWAL_ERR_NOT_FOUND when there is none and create_if_missing is off;
 * SEALWAL_ERR_PERMISSION_DENIED for a missing or wrong unlock key (nothing
 * is modified). On success *out is the store (close with sealwal_close). */
SEALWAL_EXPORT int sealwal_open(const char* data_dir, const sealwal_options* o,
                                sealwal_store** out, char** errmsg);
/* Waits for submitted batches, closes the WAL and frees the store (also
 * on error, and also when s is a failed store). Returns the first error
 * of the store. NULL is fine (returns SEALWAL_OK). */
SEALWAL_EXPORT int sealwal_close(sealwal_store* s, char** errmsg);

/* 1 when the store is encrypted, 0 when plaintext. */
SEALWAL_EXPORT int sealwal_encrypted(const sealwal_store* s);

/* Once, before any save: recovers the store (raft_storage.h: Bootstrap).
 * *out is the recovered state, owned by the caller
 * (sealwal_recovery_destroy); the log itself stays with the store
 * (sealwal_log_*). */
SEALWAL_EXPORT int sealwal_bootstrap(sealwal_store* s, sealwal_recovery** out, char** errmsg);
SEALWAL_EXPORT void sealwal_recovery_destroy(sealwal_recovery* r);
/* 1 when recovery starts from a snapshot, 0 when from an empty log. */
SEALWAL_EXPORT int sealwal_recovery_has_snapshot(const sealwal_recovery* r);
/* The snapshot's raftpb.SnapshotMetadata, protobuf-encoded (index, term,
 * conf state). Valid until sealwal_recovery_destroy. Length 0 without a
 * snapshot. */
SEALWAL_EXPORT void sealwal_recovery_snapshot_metadata(const sealwal_recovery* r,
                                                       const void** data, size_t* len);
/* The snapshot's index and term (0, 0 without one). */
SEALWAL_EXPORT uint64_t sealwal_recovery_snapshot_index(const sealwal_recovery* r);
SEALWAL_EXPORT uint64_t sealwal_recovery_snapshot_term(const sealwal_recovery* r);
/* The snapshot data's size in bytes. */
SEALWAL_EXPORT uint64_t sealwal_recovery_snapshot_size(const sealwal_recovery* r);
/* Reads the snapshot's data in order, up to `cap` bytes into `buf`;
 * *n = bytes read, 0 at the end. Every chunk is authenticated before it is
 * returned; a chunk that fails is SEALWAL_ERR_DATA_LOSS. */
SEALWAL_EXPORT int sealwal_recovery_read_snapshot(sealwal_recovery* r, void* buf, size_t cap,
                                                  size_t* n, char** errmsg);
/* The recovered HardState (zeros when none was saved). */
SEALWAL_EXPORT sealwal_hardstate sealwal_recovery_hardstate(const sealwal_recovery* r);
/* The WAL metadata, valid until sealwal_recovery_destroy. */
SEALWAL_EXPORT void sealwal_recovery_metadata(const sealwal_recovery* r, const void** data,
                                              size_t* len);
/* 1 when a torn WAL tail was truncated (the batch being written at a
 * crash, which was never acknowledged). */
SEALWAL_EXPORT int sealwal_recovery_repaired_torn_tail(const sealwal_recovery* r);

/* ---- the log (Raft's Storage interface), after sealwal_bootstrap -------
 * Served from disk (16 bytes per entry in memory). Saved entries appear
 * once durable; sealwal_gc compacts it. These may be called from any
 * thread while the store is open. Out of range is SEALWAL_ERR_OUT_OF_RANGE
 * with a message starting "compacted:" or "unavailable:". Before
 * sealwal_bootstrap: SEALWAL_ERR_FAILED_PRECONDITION (the index functions
 * return 0). */
SEALWAL_EXPORT uint64_t sealwal_log_first_index(const sealwal_store* s);
SEALWAL_EXPORT uint64_t sealwal_log_last_index(const sealwal_store* s);
/* Entry i's term (the snapshot's term for first_index - 1). */
SEALWAL_EXPORT int sealwal_log_term(const sealwal_store* s, uint64_t i, uint64_t* term,
                                    char** errmsg);
/* An iterator over entries [lo, hi), read in bounded batches. Destroy it
 * before closing the store. */
SEALWAL_EXPORT int sealwal_log_entries(const sealwal_store* s, uint64_t lo, uint64_t hi,
                                       sealwal_entry_iter** out, char** errmsg);
/* The next entry: returns SEALWAL_OK and sets *has = 1 and *e (its data
 * valid until the next call on the iterator or its destruction), or
 * *has = 0 at the end; an error ends the iteration. */
SEALWAL_EXPORT int sealwal_entry_iter_next(sealwal_entry_iter* it, int* has, sealwal_entry* e,
                                           char** errmsg);
SEALWAL_EXPORT void sealwal_entry_iter_destroy(sealwal_entry_iter* it);

/* ---- saving ----------------------------------------------------------- */

/* Appends `n` entries (consecutive indexes; an index at or below the last
 * one overwrites from there, as Raft's leader changes need) and the
 * HardState (`hs` NULL: none) and returns once they are durable (when Raft
 * needs them to be: entries, or a term or vote change). Then runs any due
 * key-rotation step. After a failed write or fsync the store is failed for
 * good: every later call returns that error. */
SEALWAL_EXPORT int sealwal_save(sealwal_store* s, const sealwal_hardstate* hs,
                                const sealwal_entry* entries, size_t n, char** errmsg);

/* The pipelined form: seals and queues the batch and returns; `done` is
 * called exactly once per accepted batch, in submission order, on the
 * store's I/O thread, with SEALWAL_OK once the batch is durable or the
 * error that lost it (`msg` valid during the call only). A refused batch
 * returns its error and `done` is not called. At most pipeline_depth
 * batches are in flight; past that sealwal_submit blocks. `done` must not
 * call into the store. Every other store call first waits for the
 * submissions before it. */
typedef void (*sealwal_done_fn)(void* arg, int code, const char* msg);
SEALWAL_EXPORT int sealwal_submit(sealwal_store* s, const sealwal_hardstate* hs,
                                  const sealwal_entry* entries, size_t n, sealwal_done_fn done,
                                  void* arg, char** errmsg);
/* Waits until every submitted batch has completed; returns the store's
 * first error. */
SEALWAL_EXPORT int sealwal_flush(sealwal_store* s, char** errmsg);

/* Saves a snapshot whose data is in memory: `metadata` is a protobuf-
 * encoded raftpb.SnapshotMetadata (SEALWAL_ERR_INVALID_ARGUMENT when it
 * does not parse). Made durable, then recorded in the WAL, then the WAL
 * releases what is below it. */
SEALWAL_EXPORT int sealwal_save_snapshot(sealwal_store* s, const void* metadata,
                                         size_t metadata_len, const void* data, size_t data_len,
                                         char** errmsg);
/* The streamed form, for snapshots larger than memory: begin, write the
 * data in pieces, then commit (durable and recorded) or abort (nothing is
 * left behind). Exactly one of commit / abort releases the writer; it must
 * be released before the store is closed, and no other store call may run
 * while it is open. */
SEALWAL_EXPORT int sealwal_snapshot_begin(sealwal_store* s, const void* metadata,
                                          size_t metadata_len, sealwal_snapshot_writer** out,
                                          char** errmsg);
SEALWAL_EXPORT int sealwal_snapshot_write(sealwal_snapshot_writer* w, const void* data,
                                          size_t len, char** errmsg);
SEALWAL_EXPORT int sealwal_snapshot_commit(sealwal_snapshot_writer* w, char** errmsg);
SEALWAL_EXPORT void sealwal_snapshot_abort(sealwal_snapshot_writer* w);

/* Keeps the `keep` newest snapshots (>= 1) and the WAL segments they need;
 * removes the rest, then runs any due rotation step. */
SEALWAL_EXPORT int sealwal_gc(sealwal_store* s, size_t keep, char** errmsg);

/* Asks for a DEK rotation (a no-op for a plaintext store). It proceeds
 * inside later saves: a snapshot request comes, and once a snapshot at or
 * after it is saved the old DEK leaves the key file. */
SEALWAL_EXPORT void sealwal_request_rotation(sealwal_store* s);

/* Notices an operator's request in the key file (`sealwal store rotate`)
 * and runs any due rotation step, as a save does: for an idle node, whose
 * saves are rare, call it now and then (every second or so; it costs a
 * stat of the key file when nothing is due). */
SEALWAL_EXPORT int sealwal_poll(sealwal_store* s, char** errmsg);

/* The DEK new data is sealed under (its 32-bit id), or 0 for plaintext. */
SEALWAL_EXPORT uint32_t sealwal_write_key_id(const sealwal_store* s);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SEALWAL_SEALWAL_H_ */
