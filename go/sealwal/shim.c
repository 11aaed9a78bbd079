// The C half of the cgo binding: trampolines from the library's callbacks
// into Go, and the entry arrays cgo's pointer rules do not let Go build.
// (cgo forbids Go memory holding Go pointers from reaching C, so Go passes
// one buffer of payloads plus offsets, and sealwal_entry is built here.)
#include "shim.h"

#include <stdlib.h>

#include "_cgo_export.h"

static void request_trampoline(void* arg, uint64_t min_index) {
  sealwalGoSnapshotRequest((uintptr_t)arg, min_index);
}

static void done_trampoline(void* arg, int code, const char* msg) {
  sealwalGoDone((uintptr_t)arg, code, (char*)msg);
}

void sealwal_go_set_snapshot_request(sealwal_options* o, uintptr_t handle) {
  sealwal_options_set_snapshot_request(o, request_trampoline, (void*)handle);
}

int sealwal_go_save(sealwal_store* s, const sealwal_hardstate* hs, const sealwal_go_entry* m,
                    size_t n, const char* buf, int submit, uintptr_t handle, char** errmsg) {
  sealwal_entry small[16];
  sealwal_entry* es = small;
  size_t i;
  int code;
  if (n > sizeof small / sizeof small[0]) {
    es = malloc(n * sizeof *es);
    if (es == NULL) return SEALWAL_ERR_RESOURCE_EXHAUSTED;
  }
  for (i = 0; i < n; i++) {
    es[i].term = m[i].term;
    es[i].index = m[i].index;
    es[i].type = m[i].type;
    es[i].data = m[i].len > 0 ? buf + m[i].off : NULL;
    es[i].data_len = (size_t)m[i].len;
  }
  if (submit) {
    code = sealwal_submit(s, hs, es, n, done_trampoline, (void*)handle, errmsg);
  } else {
    code = sealwal_save(s, hs, es, n, errmsg);
  }
  if (es != small) free(es);
  return code;
}
