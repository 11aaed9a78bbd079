#!/usr/bin/env python3
"""Whole-process recovery benchmark (scripts/bench.sh recovery).

Writes an encrypted store of N entries of 1 KiB with `sealwal store gen`
and the same log with etcd's WAL (etcdwal-peer bench-append), then runs, in
alternation, `sealwal store verify DATADIR` (one pass: CRC chain, every
payload decrypted and authenticated, content hashed) and etcd's ReadAll of
the plaintext WAL (`etcdwal-peer bench-read`), each as its own process, and
reports wall time, entry data per second and peak RSS (wait4's ru_maxrss),
the medians, and the ratio per pair. The first pair warms the page cache
and is not counted. Beside them it times a node's restart on the same
store: `sealwal store gen DATADIR --entries 0` opens it for writing,
Bootstraps it (newest snapshot, HardState, the log indexed) and closes.

For each size of entry data (SIZES_MIB, default 64,256,1024,2048) the
warm pairs are followed by one cold pair, each side run after the page
cache was dropped (when /proc/sys/vm/drop_caches is writable).

usage: bench_recovery.py SEALWAL PEER WORKDIR OUT.jsonl [SIZES_MIB] [ROUNDS]
"""
import json
import os
import statistics
import subprocess
import sys
import time
import bench_util


def run(cmd):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {code}")
    return dt, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def drop_caches():
    """Empties the page cache when permitted (root, writable /proc/sys)."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def main():
    bench_util.usage_or_exit(__doc__, 4)
    sealwal, peer, work, out = sys.argv[1:5]
    sizes = [int(x) for x in (sys.argv[5] if len(sys.argv) > 5 else "64,256,1024,2048").split(",")]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    store, etcd = os.path.join(work, "recovery-store"), os.path.join(work, "recovery-etcd")
    summary = []
    for mib in sizes:
        n = mib * 1024  # 1 KiB entries
        subprocess.run(["rm", "-rf", store, etcd], check=True)
        print(f"bench: recovery {mib} MiB: writing {n} x 1 KiB entries (sealwal store gen, "
              "etcd bench-append)", file=sys.stderr)
        subprocess.run([sealwal, "store", "init", store], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run([sealwal, "store", "gen", store, "--entries", str(n), "--size", "1024",
                        "--batch", "1000", "--seed", "1", "--pipeline", "16"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([peer, "bench-append", "--dir", etcd, "--entries", str(n), "--size",
                        "1024", "--batch", "1000"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["sync"], check=True)
        # A node's restart: open the store for writing and Bootstrap it
        # (newest snapshot, HardState, the log indexed), then close.
        boot_cmd = [sealwal, "store", "gen", store, "--entries", "0", "--size", "1024",
                    "--batch", "1", "--seed", "1"]
        pairs = []  # (cache, ours, our rss, cpu, theirs, their rss, boot s, boot rss)
        for i in range(rounds + 1):  # pair 0 warms the page cache and is not counted
            print(f"bench: recovery {mib} MiB warm pair {i}/{rounds}", file=sys.stderr)
            a, m, c = run([sealwal, "store", "verify", store])
            b, me, _ = run([peer, "bench-read", "--dir", etcd])
            bt, bm, _ = run(boot_cmd)
            if i:
                pairs.append(("warm", a, m, c, b, me, bt, bm))
        # Cold: each side reads from the disk, not the page cache.
        if drop_caches():
            print(f"bench: recovery {mib} MiB cold pair", file=sys.stderr)
            a, m, c = run([sealwal, "store", "verify", store])
            drop_caches()
            b, me, _ = run([peer, "bench-read", "--dir", etcd])
            drop_caches()
            bt, bm, _ = run(boot_cmd)
            pairs.append(("cold", a, m, c, b, me, bt, bm))
        with open(out, "a") as f:
            for cache, a, m, c, b, me, bt, bm in pairs:
                f.write(json.dumps({"op": "recovery", "cache": cache, "mib": mib, "entries": n,
                                    "entry_bytes": n * 1024, "sealwal_store_verify_s": a,
                                    "sealwal_peak_rss_mib": m, "sealwal_cpu_s": c,
                                    "sealwal_bootstrap_s": bt, "sealwal_bootstrap_rss_mib": bm,
                                    "etcd_readall_s": b, "etcd_peak_rss_mib": me}) + "\n")
        warm = [p for p in pairs if p[0] == "warm"]
        ours = statistics.median(p[1] for p in warm)
        theirs = statistics.median(p[4] for p in warm)
        summary.append((mib, ours, max(p[2] for p in warm), theirs, max(p[5] for p in warm),
                        statistics.median(p[4] / p[1] for p in warm),
                        next((p for p in pairs if p[0] == "cold"), None)))
        subprocess.run(["rm", "-rf", store, etcd], check=True)
    print(f"recovery, 1 KiB entries, whole processes, warm: median of {rounds} pairs; cold: one pair")
    print(f"{'MiB':>6} {'sealwal s':>10} {'GB/s':>6} {'RSS MiB':>8} {'etcd s':>8} {'RSS MiB':>8}"
          f" {'etcd/ours':>9} {'cold ours':>9} {'cold etcd':>9}")
    for mib, a, m, b, me, ratio, cold in summary:
        c = f"{cold[1]:9.2f} {cold[4]:9.2f}" if cold else f"{'-':>9} {'-':>9}"
        print(f"{mib:>6} {a:10.2f} {mib * 2**20 / a / 1e9:6.2f} {m:8.0f} {b:8.2f} {me:8.0f}"
              f" {ratio:9.2f} {c}")


if __name__ == "__main__":
    main()
