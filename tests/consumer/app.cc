// Writes a WAL with the installed library and reads it back.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "wal/wal.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = std::string(argv[1]) + "/wal-v3";
  auto w = sealwal::wal::Wal::Create(dir, "consumer");
  if (!w.ok()) return std::fprintf(stderr, "%s\n", w.status().ToString().c_str()), 1;
  raftpb::Entry e;
  e.set_index(1);
  e.set_term(1);
  e.set_data("hello");
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  if (!(*w)->Save(hs, {&e, 1}).ok() || !(*w)->Close().ok()) return 1;
  auto r = sealwal::wal::Wal::OpenForRead(dir, {});
  if (!r.ok()) return 1;
  auto c = (*r)->ReadAll();
  if (!c.ok() || c->entries.size() != 1 || c->entries[0].data() != "hello") return 1;
  std::printf("consumer ok: %s\n", c->metadata.c_str());
  return 0;
}
