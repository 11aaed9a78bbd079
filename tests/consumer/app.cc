// Writes a WAL with the installed library and reads it back, with the
// consumer's own `raftpb` protos in the same translation unit: the entry's
// data is one of the consumer's raftpb::Entry messages, and sealwal's
// sealwal::raftpb::Entry carries it.
#include <cstdio>
#include <string>

#include "own_raft.pb.h"
#include "sealwal/wal/wal.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  raftpb::Entry mine;  // the consumer's own type
  mine.set_index(7);
  mine.set_data("hello");
  const std::string dir = std::string(argv[1]) + "/wal-v3";
  auto w = sealwal::wal::Wal::Create(dir, "consumer");
  if (!w.ok()) return std::fprintf(stderr, "create: %s\n", w.status().ToString().c_str()), 1;
  sealwal::raftpb::Entry e;
  e.set_index(1);
  e.set_term(1);
  e.set_data(mine.SerializeAsString());
  sealwal::raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  if (!(*w)->Save(hs, {&e, 1}).ok() || !(*w)->Close().ok()) {
    return std::fprintf(stderr, "save failed\n"), 1;
  }
  auto r = sealwal::wal::Wal::OpenForRead(dir, {});
  if (!r.ok()) return std::fprintf(stderr, "open: %s\n", r.status().ToString().c_str()), 1;
  auto c = (*r)->ReadAll();
  if (!c.ok() || c->entries.size() != 1) return std::fprintf(stderr, "read failed\n"), 1;
  raftpb::Entry back;
  if (!back.ParseFromString(c->entries[0].data()) || back.index() != 7 || back.data() != "hello") {
    return std::fprintf(stderr, "entry did not round-trip\n"), 1;
  }
  std::printf("consumer ok (C++%ld): %s\n", __cplusplus / 100 % 100, c->metadata.c_str());
  return 0;
}
