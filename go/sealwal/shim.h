// Declarations of shim.c, the C half of the cgo binding.
#ifndef SEALWAL_GO_SHIM_H_
#define SEALWAL_GO_SHIM_H_

#include <stdint.h>

#include "sealwal/sealwal.h"

// One entry without its payload: the payload is buf[off, off+len).
typedef struct sealwal_go_entry {
  uint64_t term;
  uint64_t index;
  int32_t type;
  uint64_t off;
  uint64_t len;
} sealwal_go_entry;

void sealwal_go_set_snapshot_request(sealwal_options* o, uintptr_t handle);
// sealwal_save (submit == 0) or sealwal_submit with the completion going to
// the Go function behind `handle`.
int sealwal_go_save(sealwal_store* s, const sealwal_hardstate* hs, const sealwal_go_entry* m,
                    size_t n, const char* buf, int submit, uintptr_t handle, char** errmsg);

#endif  // SEALWAL_GO_SHIM_H_
