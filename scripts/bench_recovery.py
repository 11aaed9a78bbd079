#!/usr/bin/env python3
"""Whole-process recovery benchmark (scripts/bench.sh recovery).

Writes an encrypted store of N entries of 1 KiB with `sealwal store gen`
and the same log with etcd's WAL (etcdwal-peer bench-append), then runs, in
alternation, `sealwal store verify DATADIR` (one pass: CRC chain, every
payload decrypted and authenticated, content hashed) and etcd's ReadAll of
the plaintext WAL (`etcdwal-peer bench-read`), each as its own process, and
reports wall time, entry data per second and peak RSS (wait4's ru_maxrss),
the medians, and the ratio per pair. The first pair warms the page cache
and is not counted.

usage: bench_recovery.py SEALWAL PEER WORKDIR OUT.jsonl [ENTRIES] [ROUNDS]
"""
import json
import os
import statistics
import subprocess
import sys
import time


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


def main():
    sealwal, peer, work, out = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 1100000
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    store, etcd = os.path.join(work, "recovery-store"), os.path.join(work, "recovery-etcd")
    subprocess.run(["rm", "-rf", store, etcd], check=True)
    print(f"bench: writing {n} x 1 KiB entries (sealwal store gen, etcd bench-append)",
          file=sys.stderr)
    subprocess.run([sealwal, "store", "init", store], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    subprocess.run([sealwal, "store", "gen", store, "--entries", str(n), "--size", "1024",
                    "--batch", "1000", "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([peer, "bench-append", "--dir", etcd, "--entries", str(n), "--size", "1024",
                    "--batch", "1000"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    ours, theirs, rss, rss_etcd, cpu = [], [], [], [], []
    with open(out, "a") as f:
        for i in range(rounds + 1):
            print(f"bench: recovery pair {i}/{rounds}", file=sys.stderr)
            a, m, c = run([sealwal, "store", "verify", store])
            b, me, _ = run([peer, "bench-read", "--dir", etcd])
            if i == 0:
                continue
            ours.append(a); theirs.append(b); rss.append(m); rss_etcd.append(me); cpu.append(c)
            f.write(json.dumps({"op": "recovery", "entries": n, "entry_bytes": n * 1024,
                                "sealwal_store_verify_s": a, "sealwal_peak_rss_mib": m,
                                "sealwal_cpu_s": c, "etcd_readall_s": b,
                                "etcd_peak_rss_mib": me}) + "\n")
    data = n * 1024
    gbs = data / statistics.median(ours) / 1e9
    ratio = statistics.median(b / a for a, b in zip(ours, theirs))
    limit = 64 + n * 16 / 2**20
    print(f"recovery, {n} x 1 KiB encrypted, whole process, median of {rounds}:")
    print(f"  sealwal store verify   {statistics.median(ours):.2f} s  {gbs:.2f} GB/s of entry data"
          f"  peak RSS {max(rss):.0f} MiB (bound {limit:.0f})  CPU {statistics.median(cpu):.2f} s")
    print(f"  etcd ReadAll (plain)   {statistics.median(theirs):.2f} s  "
          f"{data / statistics.median(theirs) / 1e9:.2f} GB/s  peak RSS {max(rss_etcd):.0f} MiB")
    print(f"  ratio (etcd time / ours, per pair, median) {ratio:.2f}x")
    subprocess.run(["rm", "-rf", store, etcd], check=True)


if __name__ == "__main__":
    main()
