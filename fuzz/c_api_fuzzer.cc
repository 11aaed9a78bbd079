// Hostile arguments through the C API (include/sealwal/sealwal.h), where it
// parses what a caller hands it: unlock-key text, protobuf snapshot
// metadata, entries with any index, type and payload, log ranges, and the
// streamed snapshot calls in any order. One encrypted store per process
// (in /dev/shm when there is one, so that fsync costs nothing) lives
// across inputs; it is closed and recovered after every input that saved
// a snapshot or ran GC, and every 64 inputs, so that whatever the calls
// left on disk is read back too. Any call may fail; none
// may crash, leak or leave the store unable to recover.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "sealwal/sealwal.h"

namespace {

constexpr char kKey[] = "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

struct Harness {
  std::string dir;
  sealwal_options* options = nullptr;
  sealwal_store* store = nullptr;
  int inputs = 0;

  Harness() {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    dir = std::string(base) + "/sealwal-c-api-fuzz-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    options = sealwal_options_create();
    sealwal_options_set_create_if_missing(options, 1);
    sealwal_options_set_segment_size(options, 16 * 1024);
    sealwal_options_set_unlock_key(options, kKey, sizeof(kKey) - 1, nullptr);
    Reopen();
  }
  ~Harness() {
    sealwal_close(store, nullptr);
    sealwal_options_destroy(options);
    std::filesystem::remove_all(dir);
  }

  // Closes and recovers the store; a store that cannot recover is a bug.
  void Reopen() {
    sealwal_close(store, nullptr);
    store = nullptr;
    char* err = nullptr;
    sealwal_recovery* r = nullptr;
    if (sealwal_open(dir.c_str(), options, &store, &err) != SEALWAL_OK ||
        sealwal_bootstrap(store, &r, &err) != SEALWAL_OK) {
      std::fprintf(stderr, "c_api_fuzzer: the store does not recover: %s\n", err ? err : "?");
      std::abort();
    }
    char buf[4096];
    size_t n = 0;
    while (sealwal_recovery_read_snapshot(r, buf, sizeof buf, &n, nullptr) == SEALWAL_OK && n > 0) {
    }
    sealwal_recovery_destroy(r);
  }
};

Harness& H() {
  static Harness* h = new Harness();
  return *h;
}

void Free(char* err) { sealwal_free(err); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = H();
  FuzzedDataProvider in(data, size);
  // An input that recorded a snapshot or deleted files is recovered at once,
  // so that a store it left unrecoverable is caught by that input alone.
  bool reopen = false;
  for (int op = 0; op < 16 && in.remaining_bytes() > 0; ++op) {
    char* err = nullptr;
    const uint64_t last = sealwal_log_last_index(h.store);
    const int kind = in.ConsumeIntegralInRange<int>(0, 7);
    reopen |= kind == 2 || kind == 3 || kind == 5;
    switch (kind) {
      case 0: {  // unlock-key text
        std::string text = in.ConsumeRandomLengthString(80);
        sealwal_options* o = sealwal_options_create();
        sealwal_options_set_unlock_key(o, text.data(), text.size(), &err);
        sealwal_options_destroy(o);
        break;
      }
      case 1: {  // entries near the end of the log, any type and payload
        const size_t n = in.ConsumeIntegralInRange<size_t>(0, 8);
        const uint64_t first = last + 1 - std::min<uint64_t>(last, in.ConsumeIntegralInRange<uint64_t>(0, 3));
        std::vector<std::string> payloads(n);
        std::vector<sealwal_entry> es(n);
        for (size_t i = 0; i < n; ++i) {
          payloads[i] = in.ConsumeRandomLengthString(512);
          es[i].term = in.ConsumeIntegralInRange<uint64_t>(0, 5);
          es[i].index = first + i + (in.ConsumeBool() && in.ConsumeBool() ? 1 : 0);
          es[i].type = in.ConsumeIntegralInRange<int32_t>(-1, 3);
          es[i].data = payloads[i].data();
          es[i].data_len = payloads[i].size();
        }
        sealwal_hardstate hs{in.ConsumeIntegralInRange<uint64_t>(0, 5),
                             in.ConsumeIntegralInRange<uint64_t>(0, 3),
                             in.ConsumeIntegralInRange<uint64_t>(0, last + n)};
        sealwal_save(h.store, in.ConsumeBool() ? &hs : nullptr, es.data(), n, &err);
        break;
      }
      case 2: {  // an inline snapshot with hostile metadata bytes
        std::string md = in.ConsumeRandomLengthString(64);
        std::string body = in.ConsumeRandomLengthString(256);
        sealwal_save_snapshot(h.store, md.data(), md.size(), body.data(), body.size(), &err);
        break;
      }
      case 3: {  // a streamed snapshot, committed or abandoned
        std::string md = in.ConsumeRandomLengthString(64);
        sealwal_snapshot_writer* w = nullptr;
        if (sealwal_snapshot_begin(h.store, md.data(), md.size(), &w, &err) == SEALWAL_OK) {
          std::string body = in.ConsumeRandomLengthString(2048);
          sealwal_snapshot_write(w, body.data(), body.size(), nullptr);
          if (in.ConsumeBool()) {
            sealwal_snapshot_commit(w, nullptr);
          } else {
            sealwal_snapshot_abort(w);
          }
        }
        break;
      }
      case 4: {  // log reads over any range
        const uint64_t lo = in.ConsumeIntegralInRange<uint64_t>(0, last + 3);
        const uint64_t hi = in.ConsumeIntegralInRange<uint64_t>(0, last + 3);
        uint64_t term = 0;
        sealwal_log_term(h.store, lo, &term, nullptr);
        sealwal_entry_iter* it = nullptr;
        if (sealwal_log_entries(h.store, lo, hi, &it, &err) == SEALWAL_OK) {
          int has = 1;
          sealwal_entry e;
          while (has && sealwal_entry_iter_next(it, &has, &e, nullptr) == SEALWAL_OK) {
          }
          sealwal_entry_iter_destroy(it);
        }
        break;
      }
      case 5:
        sealwal_gc(h.store, in.ConsumeIntegralInRange<size_t>(0, 3), &err);
        break;
      case 6:
        sealwal_request_rotation(h.store);
        sealwal_poll(h.store, &err);
        break;
      case 7: {  // NULL and empty arguments
        sealwal_save(h.store, nullptr, nullptr, in.ConsumeIntegralInRange<size_t>(0, 2), &err);
        Free(err);
        err = nullptr;
        sealwal_save_snapshot(h.store, nullptr, in.ConsumeIntegralInRange<size_t>(0, 2), nullptr, 0,
                              &err);
        break;
      }
    }
    Free(err);
  }
  if (reopen || ++h.inputs % 64 == 0) h.Reopen();
  return 0;
}
