/* tests/c_api_test.c: drives include/sealwal/sealwal.h from C99, the way a
 * consensus implementation in another language does: create an encrypted
 * store, save entries (synchronous and pipelined), snapshots (inline and
 * streamed), recover it, read the log, rotate the DEK through the snapshot
 * request, and check the errors a caller gets for bad arguments, a wrong
 * unlock key and out-of-range reads. Built twice: against libsealwal.a and
 * against libsealwal.so. Usage: c_api_test WORKDIR (created, must not
 * exist). Exit 0 when every check passes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sealwal/sealwal.h"

static int failures = 0;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                         \
      return;                                                             \
    }                                                                     \
  } while (0)

/* A call that must succeed; prints the library's message otherwise. */
#define OK(call)                                                                      \
  do {                                                                                \
    char* err_ = NULL;                                                                \
    int code_ = (call);                                                               \
    if (code_ != SEALWAL_OK) {                                                        \
      fprintf(stderr, "%s:%d: %s: code %d: %s\n", __FILE__, __LINE__, #call, code_,   \
              err_ != NULL ? err_ : "(no message)");                                  \
      sealwal_free(err_);                                                             \
      failures++;                                                                     \
      return;                                                                         \
    }                                                                                 \
  } while (0)

static const char kUnlockKey[] = "SEALWAL-1-";  /* completed in main */
static char unlock_text[128];
static char other_text[128];

/* The text form of an unlock key: "SEALWAL-1-" + 43 base64url characters of
 * 32 bytes (the last character carries 4 bits). */
static void make_unlock_key(char* out, unsigned char seed) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char bytes[33] = {0};
  size_t i, o = 0;
  for (i = 0; i < 32; i++) bytes[i] = (unsigned char)(seed * 31u + i * 7u);
  strcpy(out, kUnlockKey);
  o = strlen(out);
  for (i = 0; i < 33; i += 3) {
    unsigned v = ((unsigned)bytes[i] << 16) | ((unsigned)bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = b64[(v >> 18) & 63];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = b64[(v >> 6) & 63];
    out[o++] = b64[v & 63];
  }
  /* 32 bytes are 43 characters; the 44th came from the padding byte. */
  out[strlen(kUnlockKey) + 43] = '\0';
}

/* A protobuf raftpb.SnapshotMetadata{conf_state{voters: 1}, index, term}. */
static size_t put_varint(unsigned char* p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}
static size_t snapshot_metadata(unsigned char* p, uint64_t index, uint64_t term) {
  size_t n = 0;
  p[n++] = 0x0a; /* conf_state, length 2: voters = 1 */
  p[n++] = 2;
  p[n++] = 0x08;
  p[n++] = 1;
  p[n++] = 0x10;
  n += put_varint(p + n, index);
  p[n++] = 0x18;
  n += put_varint(p + n, term);
  return n;
}

static char dir[512];

/* Payload of entry i: "value-<i>" repeated to a length depending on i. */
static size_t payload(uint64_t i, char* buf, size_t cap) {
  size_t len = 10 + (size_t)(i * 37 % 500), n = 0;
  char word[32];
  int w = snprintf(word, sizeof word, "value-%llu;", (unsigned long long)i);
  while (n < len && n < cap) {
    buf[n] = word[n % (size_t)w];
    n++;
  }
  return n;
}

static int save_range(sealwal_store* s, uint64_t lo, uint64_t hi, uint64_t term, char** err) {
  static char bufs[64][600];
  sealwal_entry es[64];
  size_t n = 0;
  uint64_t i;
  sealwal_hardstate hs;
  for (i = lo; i < hi; i++) {
    es[n].term = term;
    es[n].index = i;
    es[n].type = SEALWAL_ENTRY_NORMAL;
    es[n].data = bufs[n];
    es[n].data_len = payload(i, bufs[n], sizeof bufs[n]);
    n++;
  }
  hs.term = term;
  hs.vote = 1;
  hs.commit = hi - 1;
  return sealwal_save(s, &hs, es, n, err);
}

static sealwal_options* options(const char* key) {
  sealwal_options* o = sealwal_options_create();
  char* err = NULL;
  sealwal_options_set_create_if_missing(o, 1);
  sealwal_options_set_segment_size(o, 64 * 1024);
  sealwal_options_set_metadata(o, "c-api", 5);
  if (key != NULL && sealwal_options_set_unlock_key(o, key, strlen(key), &err) != SEALWAL_OK) {
    fprintf(stderr, "unlock key: %s\n", err);
    sealwal_free(err);
  }
  return o;
}

/* Checks entries [lo, hi) of the recovered log. */
static void check_log(sealwal_store* s, uint64_t lo, uint64_t hi) {
  sealwal_entry_iter* it = NULL;
  sealwal_entry e;
  int has = 0;
  uint64_t want = lo;
  char buf[600];
  OK(sealwal_log_entries(s, lo, hi, &it, &err_));
  for (;;) {
    OK(sealwal_entry_iter_next(it, &has, &e, &err_));
    if (!has) break;
    CHECK(e.index == want);
    CHECK(e.data_len == payload(want, buf, sizeof buf));
    CHECK(memcmp(e.data, buf, e.data_len) == 0);
    want++;
  }
  sealwal_entry_iter_destroy(it);
  CHECK(want == hi);
}

static void test_create_save_recover(void) {
  sealwal_options* o = options(unlock_text);
  sealwal_store* s = NULL;
  sealwal_recovery* r = NULL;
  unsigned char md[64];
  size_t mdn;
  char data[5000];
  sealwal_snapshot_writer* w = NULL;
  uint64_t term = 0, t;
  size_t got, total;
  sealwal_hardstate hs;

  OK(sealwal_open(dir, o, &s, &err_));
  CHECK(sealwal_encrypted(s) == 1);
  CHECK(sealwal_write_key_id(s) != 0);
  OK(sealwal_bootstrap(s, &r, &err_));
  CHECK(sealwal_recovery_has_snapshot(r) == 0);
  sealwal_recovery_destroy(r);
  OK(save_range(s, 1, 50, 1, &err_));
  OK(save_range(s, 50, 100, 2, &err_));

  /* An inline snapshot at 60, then a streamed one at 90 (5000 bytes). */
  mdn = snapshot_metadata(md, 60, 2);
  OK(sealwal_save_snapshot(s, md, mdn, "inline-60", 9, &err_));
  mdn = snapshot_metadata(md, 90, 2);
  memset(data, 'S', sizeof data);
  OK(sealwal_snapshot_begin(s, md, mdn, &w, &err_));
  OK(sealwal_snapshot_write(w, data, 3000, &err_));
  OK(sealwal_snapshot_write(w, data + 3000, 2000, &err_));
  OK(sealwal_snapshot_commit(w, &err_));
  OK(save_range(s, 100, 120, 2, &err_));
  OK(sealwal_close(s, &err_));

  /* Recover: the streamed snapshot, its data, the HardState, the log. */
  s = NULL;
  OK(sealwal_open(dir, o, &s, &err_));
  OK(sealwal_bootstrap(s, &r, &err_));
  CHECK(sealwal_recovery_has_snapshot(r) == 1);
  CHECK(sealwal_recovery_snapshot_index(r) == 90);
  CHECK(sealwal_recovery_snapshot_term(r) == 2);
  CHECK(sealwal_recovery_snapshot_size(r) == 5000);
  {
    const void* p;
    size_t n;
    sealwal_recovery_snapshot_metadata(r, &p, &n);
    CHECK(n == mdn && memcmp(p, md, n) == 0);
    sealwal_recovery_metadata(r, &p, &n);
    CHECK(n == 5 && memcmp(p, "c-api", 5) == 0);
  }
  total = 0;
  for (;;) {
    char chunk[777];
    OK(sealwal_recovery_read_snapshot(r, chunk, sizeof chunk, &got, &err_));
    if (got == 0) break;
    CHECK(memcmp(chunk, data, got) == 0);
    total += got;
  }
  CHECK(total == 5000);
  hs = sealwal_recovery_hardstate(r);
  CHECK(hs.term == 2 && hs.vote == 1 && hs.commit == 119);
  sealwal_recovery_destroy(r);
  CHECK(sealwal_log_first_index(s) == 91);
  CHECK(sealwal_log_last_index(s) == 119);
  OK(sealwal_log_term(s, 90, &term, &err_));
  CHECK(term == 2);
  check_log(s, 91, 120);
  if (failures) return;
  check_log(s, 100, 105);
  if (failures) return;
  {
    char* err = NULL;
    CHECK(sealwal_log_term(s, 10, &t, &err) == SEALWAL_ERR_OUT_OF_RANGE);
    CHECK(err != NULL && strncmp(err, "compacted:", 10) == 0);
    sealwal_free(err);
    err = NULL;
    sealwal_entry_iter* it = NULL;
    CHECK(sealwal_log_entries(s, 100, 500, &it, &err) == SEALWAL_ERR_OUT_OF_RANGE);
    CHECK(it == NULL);
    CHECK(err != NULL && strncmp(err, "unavailable:", 12) == 0);
    sealwal_free(err);
  }
  /* A leader change overwrites from 110. */
  OK(save_range(s, 110, 115, 3, &err_));
  CHECK(sealwal_log_last_index(s) == 114);
  OK(sealwal_log_term(s, 112, &term, &err_));
  CHECK(term == 3);
  OK(sealwal_close(s, &err_));
  sealwal_options_destroy(o);
}

struct done_log {
  int calls;
  int in_order;
  int last_arg;
  int errors;
};
static struct done_log dl;
static int done_args[32];

static void on_done(void* arg, int code, const char* msg) {
  int k = *(int*)arg;
  (void)msg;
  if (k != dl.last_arg + 1) dl.in_order = 0;
  dl.last_arg = k;
  if (code != SEALWAL_OK) dl.errors++;
  dl.calls++;
}

static void test_submit_in_order(void) {
  sealwal_options* o = options(unlock_text);
  /* etcd's reservation for the segments made from here on. */
  sealwal_options_set_preallocation(o, SEALWAL_PREALLOC_FALLOCATE);
  sealwal_store* s = NULL;
  sealwal_recovery* r = NULL;
  uint64_t first, i;
  int k;
  char buf[600];
  OK(sealwal_open(dir, o, &s, &err_));
  OK(sealwal_bootstrap(s, &r, &err_));
  sealwal_recovery_destroy(r);
  first = sealwal_log_last_index(s) + 1;
  dl.calls = 0;
  dl.in_order = 1;
  dl.last_arg = 0;
  dl.errors = 0;
  for (k = 1; k <= 20; k++) {
    sealwal_entry e;
    sealwal_hardstate hs;
    i = first + (uint64_t)k - 1;
    e.term = 3;
    e.index = i;
    e.type = SEALWAL_ENTRY_NORMAL;
    e.data = buf;
    e.data_len = payload(i, buf, sizeof buf);
    hs.term = 3;
    hs.vote = 1;
    hs.commit = i;
    done_args[k] = k;
    OK(sealwal_submit(s, &hs, &e, 1, on_done, &done_args[k], &err_));
  }
  OK(sealwal_flush(s, &err_));
  CHECK(dl.calls == 20);
  CHECK(dl.in_order == 1);
  CHECK(dl.errors == 0);
  CHECK(sealwal_log_last_index(s) == first + 19);
  {
    /* A gap is refused, queues nothing and calls no completion. */
    sealwal_entry e = {3, first + 100, SEALWAL_ENTRY_NORMAL, "x", 1};
    char* err = NULL;
    CHECK(sealwal_submit(s, NULL, &e, 1, on_done, &done_args[1], &err) != SEALWAL_OK);
    CHECK(err != NULL);
    sealwal_free(err);
    OK(sealwal_flush(s, &err_));
    CHECK(dl.calls == 20);
  }
  OK(sealwal_close(s, &err_));
  sealwal_options_destroy(o);
}

static void test_errors(void) {
  sealwal_options* o = sealwal_options_create();
  sealwal_store* s = NULL;
  char* err = NULL;
  unsigned char junk[3] = {0xff, 0xff, 0xff};

  /* A wrong unlock key: PERMISSION_DENIED, and the message holds no key. */
  CHECK(sealwal_options_set_unlock_key(o, other_text, strlen(other_text), &err) == SEALWAL_OK);
  CHECK(sealwal_open(dir, o, &s, &err) == SEALWAL_ERR_PERMISSION_DENIED);
  CHECK(s == NULL);
  CHECK(err != NULL && strstr(err, other_text + 10) == NULL && strstr(err, unlock_text + 10) == NULL);
  sealwal_free(err);
  err = NULL;
  /* No unlock key for a locked key file: PERMISSION_DENIED too. */
  sealwal_options_destroy(o);
  o = sealwal_options_create();
  CHECK(sealwal_open(dir, o, &s, &err) == SEALWAL_ERR_PERMISSION_DENIED);
  sealwal_free(err);
  err = NULL;
  /* An unlock key that does not parse. */
  CHECK(sealwal_options_set_unlock_key(o, "SEALWAL-1-short", 15, &err) ==
        SEALWAL_ERR_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "short") == NULL);
  sealwal_free(err);
  err = NULL;
  /* No store and no create_if_missing: NOT_FOUND. */
  {
    char missing[600];
    snprintf(missing, sizeof missing, "%s-missing", dir);
    CHECK(sealwal_open(missing, o, &s, &err) == SEALWAL_ERR_NOT_FOUND);
    sealwal_free(err);
    err = NULL;
  }
  /* NULL arguments. */
  CHECK(sealwal_open(NULL, o, &s, &err) == SEALWAL_ERR_INVALID_ARGUMENT);
  sealwal_free(err);
  err = NULL;
  CHECK(sealwal_save(NULL, NULL, NULL, 0, NULL) == SEALWAL_ERR_INVALID_ARGUMENT);
  CHECK(sealwal_close(NULL, NULL) == SEALWAL_OK);
  sealwal_options_destroy(o);

  /* Bad snapshot metadata, a save before bootstrap, entries with a NULL
   * payload or unknown type: refused, the store still works. */
  o = options(unlock_text);
  OK(sealwal_open(dir, o, &s, &err_));
  {
    sealwal_entry e = {1, 1, SEALWAL_ENTRY_NORMAL, NULL, 4};
    sealwal_recovery* r = NULL;
    CHECK(sealwal_save(s, NULL, NULL, 0, NULL) == SEALWAL_ERR_FAILED_PRECONDITION);
    OK(sealwal_bootstrap(s, &r, &err_));
    sealwal_recovery_destroy(r);
    CHECK(sealwal_bootstrap(s, &r, NULL) == SEALWAL_ERR_FAILED_PRECONDITION);
    CHECK(sealwal_save_snapshot(s, junk, sizeof junk, "x", 1, &err) ==
          SEALWAL_ERR_INVALID_ARGUMENT);
    sealwal_free(err);
    err = NULL;
    e.index = sealwal_log_last_index(s) + 1;
    CHECK(sealwal_save(s, NULL, &e, 1, NULL) == SEALWAL_ERR_INVALID_ARGUMENT);
    e.data = "abcd";
    e.type = 7;
    CHECK(sealwal_save(s, NULL, &e, 1, NULL) == SEALWAL_ERR_INVALID_ARGUMENT);
    CHECK(sealwal_gc(s, 0, NULL) == SEALWAL_ERR_INVALID_ARGUMENT);
    e.type = SEALWAL_ENTRY_NORMAL;
    OK(sealwal_save(s, NULL, &e, 1, &err_));
  }
  OK(sealwal_close(s, &err_));
  sealwal_options_destroy(o);
}

/* The rotation: a request, the store asks for a snapshot, the answer makes
 * the old DEK leave. */
static uint64_t requested_at = 0;
static int requests = 0;
static void on_request(void* arg, uint64_t min_index) {
  (void)arg;
  requested_at = min_index;
  requests++;
}

static void test_rotation(void) {
  sealwal_options* o = options(unlock_text);
  sealwal_store* s = NULL;
  sealwal_recovery* r = NULL;
  uint32_t before, after;
  uint64_t last;
  unsigned char md[64];
  size_t mdn;
  int round;
  sealwal_options_set_snapshot_request(o, on_request, NULL);
  OK(sealwal_open(dir, o, &s, &err_));
  OK(sealwal_bootstrap(s, &r, &err_));
  sealwal_recovery_destroy(r);
  before = sealwal_write_key_id(s);
  sealwal_request_rotation(s);
  last = sealwal_log_last_index(s);
  for (round = 0; round < 4 && requests == 0; round++) {
    OK(save_range(s, last + 1, last + 11, 3, &err_));
    last += 10;
  }
  CHECK(requests == 1);
  CHECK(requested_at > 0 && requested_at <= last + 1);
  after = sealwal_write_key_id(s);
  CHECK(after != before && after != 0);
  /* Answer with a snapshot at the last index (>= the minimum asked). */
  OK(save_range(s, last + 1, requested_at + 5, 3, &err_));
  last = requested_at + 4;
  mdn = snapshot_metadata(md, last, 3);
  OK(sealwal_save_snapshot(s, md, mdn, "after-rotation", 14, &err_));
  OK(sealwal_gc(s, 1, &err_));
  OK(save_range(s, last + 1, last + 3, 3, &err_));
  OK(sealwal_close(s, &err_));
  sealwal_options_destroy(o);
  /* The old DEK is out of the key file: the store opens, recovers from the
   * new snapshot, and writes under the new key. */
  o = options(unlock_text);
  s = NULL;
  OK(sealwal_open(dir, o, &s, &err_));
  OK(sealwal_bootstrap(s, &r, &err_));
  CHECK(sealwal_recovery_snapshot_index(r) == last);
  sealwal_recovery_destroy(r);
  CHECK(sealwal_write_key_id(s) == after);
  OK(sealwal_close(s, &err_));
  sealwal_options_destroy(o);
  {
    /* The rotation finished: no pending DEK and no request left in the
     * key file (the old DEK went with the promotion). */
    char path[600];
    FILE* f;
    static char content[1 << 16];
    size_t n;
    snprintf(path, sizeof path, "%s/node.key", dir);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    n = fread(content, 1, sizeof content - 1, f);
    fclose(f);
    content[n] = '\0';
    CHECK(strstr(content, "raft-dek:") != NULL);
    CHECK(strstr(content, "raft-dek-pending") == NULL);
    CHECK(strstr(content, "raft-dek-needs-rotation") == NULL);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: c_api_test WORKDIR\n");
    return 2;
  }
  make_unlock_key(unlock_text, 1);
  make_unlock_key(other_text, 2);
  snprintf(dir, sizeof dir, "%s/store", argv[1]);
  mkdir(argv[1], 0700);
  printf("sealwal %s\n", sealwal_version());
  test_create_save_recover();
  if (!failures) test_submit_in_order();
  if (!failures) test_errors();
  if (!failures) test_rotation();
  if (failures) {
    fprintf(stderr, "c_api_test: %d failure(s)\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
