#!/usr/bin/env python3
"""Whole-process append matrix (scripts/bench.sh append).

For entry sizes 64 B, 1 KiB, 16 KiB, 256 KiB and batch sizes 1, 10, 100,
1000 it runs, each as its own process, in an order that changes every
round:
  sealwal `wal gen`: plaintext, AES-256-GCM and ChaCha20-Poly1305 key
      files, synchronous saves and --pipeline 16;
  etcd's WAL and the swarmkit-style WAL (secretbox-sealed entry data) in
      etcd's own Go code (`etcdwal-peer bench-append`);
  the machine's limit: one write + fdatasync per batch of the same bytes,
      appending to a new file and overwriting a pre-written one.
Both sides pay their WAL's creation (sealwal zero-fills its first 64 MB
segment, etcd fallocates it) and runs are long enough to cross segment
marks. sealwal's time is the whole process's wall time, data generation
included; the peer's is its wall time minus the random data it makes before
creating the WAL (its `datagen_seconds`). Save latency: for sealwal the
gap between consecutive `synced` lines (for synchronous saves that is one
Save; for the pipeline the gap between completions), for the peer each
Save() call, for the limit each write + fdatasync.

usage: bench_append.py SEALWAL PEER WORKDIR OUT.jsonl [ROUNDS] [SIZES] [BATCHES]
(SIZES and BATCHES: comma-separated; defaults 64,1024,16384,262144 and
1,10,100,1000)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import bench_util

DEPTH = 16
BYTES_CAP = 128 << 20  # data per run at most (at least one batch)
SAVES = {1: 500, 10: 500, 100: 1000, 1000: 200}  # batches per run before the cap


def entries_for(size, batch):
    n = batch * SAVES.get(batch, 200)
    cap = (BYTES_CAP // size) // batch * batch
    return max(batch, min(n, cap))


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[(len(xs) - 1) * p // 100]


def fail(cmd, code, err):
    sys.exit(f"bench: {' '.join(cmd)} exited {code}: {err[-300:]}")


def run_gen(cmd):
    """Runs `wal gen`; returns (wall seconds, [gaps between synced lines, us])."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stamps = []
    for line in p.stdout:
        if line.startswith(b"synced "):
            stamps.append(time.perf_counter())
    err = p.stderr.read().decode()
    code = p.wait()
    wall = time.perf_counter() - t0
    if code != 0:
        fail(cmd, code, err)
    gaps = [(b - a) * 1e6 for a, b in zip([t0] + stamps, stamps)]
    return wall, gaps[1:] if len(gaps) > 1 else gaps  # the first gap holds start-up


def run_peer(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        fail(cmd, r.returncode, r.stderr.decode())
    j = json.loads(r.stdout)
    return wall - j.get("datagen_seconds", 0.0), j


def main():
    bench_util.usage_or_exit(__doc__, 4)
    sealwal, peer, work, out = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    sizes = [int(x) for x in (sys.argv[6] if len(sys.argv) > 6 else "64,1024,16384,262144").split(",")]
    batches = [int(x) for x in (sys.argv[7] if len(sys.argv) > 7 else "1,10,100,1000").split(",")]
    os.makedirs(work, exist_ok=True)
    keys = {}
    for alg, name in (("aes-256-gcm", "aes"), ("chacha20-poly1305", "chacha")):
        k = os.path.join(work, f"append-{name}.key")
        if os.path.exists(k):
            os.remove(k)
        subprocess.run([sealwal, "key", "init", "--key-file", k, "--algorithm", alg], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        keys[name] = k
    wal = os.path.join(work, "append-wal")

    def gen(size, batch, n, cipher, pipe):
        def job():
            shutil.rmtree(wal, ignore_errors=True)
            cmd = [sealwal, "wal", "gen", wal, "--entries", str(n), "--size", str(size),
                   "--batch", str(batch), "--seed", "3"]
            if pipe:
                cmd += ["--pipeline", str(DEPTH)]
            if cipher:
                cmd += ["--key-file", keys[cipher]]
            secs, lat = run_gen(cmd)
            shutil.rmtree(wal, ignore_errors=True)
            return secs, lat
        return job

    def etcd(size, batch, n, enc):
        def job():
            shutil.rmtree(wal, ignore_errors=True)
            cmd = [peer, "bench-append", "--dir", wal, "--entries", str(n), "--size", str(size),
                   "--batch", str(batch)]
            if enc:
                cmd += ["--encrypt", "secretbox"]
            secs, j = run_peer(cmd)
            shutil.rmtree(wal, ignore_errors=True)
            return secs, [j["save_p50_us"], j["save_p99_us"]]
        return job

    def bare(size, batch, n, overwrite):
        saves = (n + batch - 1) // batch
        return lambda: bench_util.fdatasync_loop(os.path.join(work, "append-bare.bin"),
                                                 os.urandom(size * batch), saves, overwrite)

    variants = [("sealwal-plain-sync", lambda s, b, n: gen(s, b, n, None, False)),
                ("sealwal-aes-sync", lambda s, b, n: gen(s, b, n, "aes", False)),
                ("sealwal-chacha-sync", lambda s, b, n: gen(s, b, n, "chacha", False)),
                ("sealwal-plain-pipe", lambda s, b, n: gen(s, b, n, None, True)),
                ("sealwal-aes-pipe", lambda s, b, n: gen(s, b, n, "aes", True)),
                ("sealwal-chacha-pipe", lambda s, b, n: gen(s, b, n, "chacha", True)),
                ("etcd", lambda s, b, n: etcd(s, b, n, False)),
                ("swarmkit", lambda s, b, n: etcd(s, b, n, True)),
                ("fdatasync-append", lambda s, b, n: bare(s, b, n, False)),
                ("fdatasync-overwrite", lambda s, b, n: bare(s, b, n, True))]
    cells = [(s, b) for s in sizes for b in batches]
    res = {}  # (variant, size, batch) -> [(seconds, latency figures)]
    for r in range(rounds):
        print(f"bench: append round {r + 1}/{rounds} ({len(cells)} cells x {len(variants)})",
              file=sys.stderr)
        for i, (s, b) in enumerate(cells):
            n = entries_for(s, b)
            jobs = [(name, make(s, b, n)) for name, make in variants]
            shift = (r + i) % len(jobs)
            order = jobs[shift:] + jobs[:shift]
            for name, job in (order if r % 2 == 0 else order[::-1]):
                res.setdefault((name, s, b), []).append(job())

    with open(out, "a") as f:
        for (name, s, b), runs in sorted(res.items(), key=lambda x: (x[0][1], x[0][2], x[0][0])):
            n = entries_for(s, b)
            secs = [x[0] for x in runs]
            if name in ("etcd", "swarmkit"):  # the peer reports p50/p99 itself
                p50 = statistics.median(x[1][0] for x in runs)
                p99 = statistics.median(x[1][1] for x in runs)
            else:
                p50 = statistics.median(pct(x[1], 50) for x in runs)
                p99 = statistics.median(pct(x[1], 99) for x in runs)
            med = statistics.median(secs)
            f.write(json.dumps({
                "op": "append", "variant": name, "size": s, "batch": b, "entries": n,
                "seconds": secs, "seconds_median": med, "entries_per_s": n / med,
                "mb_per_s": n * s / 1e6 / med,
                "spread": (max(secs) - min(secs)) / med if med else 0.0,
                "save_p50_us": p50, "save_p99_us": p99}) + "\n")
    print(f"\nAppend (whole processes; entries/s, median of {rounds}; ratio to etcd)",
          file=sys.stderr)
    for s, b in cells:
        e = statistics.median(x[0] for x in res[("etcd", s, b)])
        line = [f"{s:>7} B b{b:<5}"]
        for name, _ in variants:
            m = statistics.median(x[0] for x in res[(name, s, b)])
            line.append(f"{name.replace('sealwal-', '')}={entries_for(s, b) / m:,.0f} ({e / m:.2f})")
        print("  ".join(line), file=sys.stderr)


if __name__ == "__main__":
    main()
