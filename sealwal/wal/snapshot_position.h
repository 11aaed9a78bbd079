// sealwal/wal/snapshot_position.h: a snapshot position as the WAL records it
// (walpb.Snapshot {index, term}). Header-only and free of the WAL library,
// so that snapshot code (sealwal/snap/) can name positions without
// depending on wal.h.
//
// Ownership: a plain value. Thread-safety: as any value type (no shared
// state). Errors: none.
#ifndef SEALWAL_WAL_SNAPSHOT_POSITION_H_
#define SEALWAL_WAL_SNAPSHOT_POSITION_H_

#include <cstdint>

namespace sealwal::wal {

// A snapshot position as recorded in the WAL (walpb.Snapshot).
struct SnapshotPosition {
  uint64_t index = 0;
  uint64_t term = 0;
  bool operator==(const SnapshotPosition&) const = default;
};

}  // namespace sealwal::wal

#endif  // SEALWAL_WAL_SNAPSHOT_POSITION_H_
