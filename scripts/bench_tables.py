#!/usr/bin/env python3
"""Prints a performance record's tables in Markdown (for docs/performance.md).

usage: bench_tables.py RESULTS.json
       bench_tables.py --targets RESULTS.json...   (the targets of several
                                                    records, a later one's figure wins)

Every figure is the median of the record's rounds; "spread" is
(max - min) / median over those rounds.
"""
import json
import statistics
import sys
import bench_record  # the targets' definitions, applied to each record's figures
import bench_util

VARIANTS = [("sealwal-plain-sync", "plain"), ("sealwal-aes-sync", "AES"),
            ("sealwal-chacha-sync", "ChaCha"), ("sealwal-plain-pipe", "plain pipe"),
            ("sealwal-aes-pipe", "AES pipe"), ("sealwal-chacha-pipe", "ChaCha pipe"),
            ("etcd", "etcd"), ("swarmkit", "swarmkit-style"),
            ("fdatasync-append", "fdatasync append"), ("fdatasync-overwrite", "fdatasync overwrite")]
med = statistics.median


def size_name(s):
    return f"{s} B" if s < 1024 else f"{s // 1024} KiB"


def append(rec):
    rows = {(r["variant"], r["size"], r["batch"]): r for r in rec["append"]}
    cells = sorted({(r["size"], r["batch"]) for r in rec["append"]})
    print("MB/s of entry data, whole processes; in brackets: the ratio to etcd's WAL in the same run.\n")
    print("| entry | batch | " + " | ".join(n for _, n in VARIANTS) + " |")
    print("|---|---:|" + "---:|" * len(VARIANTS))
    worst = 0.0
    for s, b in cells:
        e = rows.get(("etcd", s, b))
        out = []
        for v, _ in VARIANTS:
            r = rows.get((v, s, b))
            if not r:
                out.append("")
                continue
            worst = max(worst, r["spread"])
            ratio = f" ({r['mb_per_s'] / e['mb_per_s']:.2f})" if e and v != "etcd" else ""
            out.append(f"{r['mb_per_s']:.1f}{ratio}")
        print(f"| {size_name(s)} | {b} | " + " | ".join(out) + " |")
    print(f"\nLargest spread of any cell over the rounds: {worst:.0%}.\n")
    print("Time per durable save, 1 KiB entries, p50 / p99 in µs. Synchronous sealwal: the gap "
          "between `synced` lines of the process; etcd: each `Save()`; fdatasync: each write + "
          "fdatasync. Pipelined (depth 16): submit-to-durable latency of the in-process "
          "`BM_WalSubmit` loop, since completions reach the process's output in bursts.\n")
    batches = sorted({b for _, b in cells})
    submit = rec.get("wal_inprocess", {})
    print("| variant | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---:|" * len(batches))
    for v, n in VARIANTS:
        out = []
        for b in batches:
            r = rows.get((v, 1024, b))
            if v == "sealwal-plain-pipe":
                g = submit.get(f"BM_WalSubmit/{b}")
                out.append(f"{g['p50_us']['median']:.0f} / {g['p99_us']['median']:.0f}"
                           if g and "p50_us" in g else "")
            elif v.endswith("-pipe"):
                out.append("")
            else:
                out.append(f"{r['save_p50_us']:.0f} / {r['save_p99_us']:.0f}" if r else "")
        if any(out):
            print(f"| {n} | " + " | ".join(out) + " |")


def recovery(rec):
    rows = rec["recovery"]
    print("| retained WAL | sealwal `store verify` | GB/s | peak RSS | etcd ReadAll | peak RSS | "
          "etcd time / ours | cold: sealwal | cold: etcd | Bootstrap (warm / cold), peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mib in sorted({r["mib"] for r in rows}):
        w = [r for r in rows if r["mib"] == mib and r["cache"] == "warm"]
        c = [r for r in rows if r["mib"] == mib and r["cache"] == "cold"]
        a = med(r["sealwal_store_verify_s"] for r in w)
        b = med(r["etcd_readall_s"] for r in w)
        cold = (f"{c[0]['sealwal_store_verify_s']:.2f} s | {c[0]['etcd_readall_s']:.2f} s" if c
                else "– | –")
        boot = "–"
        if "sealwal_bootstrap_s" in w[0]:
            boot = (f"{med(r['sealwal_bootstrap_s'] for r in w):.2f} s / "
                    f"{c[0]['sealwal_bootstrap_s']:.2f} s, " if c else
                    f"{med(r['sealwal_bootstrap_s'] for r in w):.2f} s, ")
            boot += f"{max(r['sealwal_bootstrap_rss_mib'] for r in w):.0f} MiB"
        print(f"| {mib} MiB | {a:.2f} s | {mib * 2**20 / a / 1e9:.2f} | "
              f"{max(r['sealwal_peak_rss_mib'] for r in w):.0f} MiB | {b:.2f} s | "
              f"{max(r['etcd_peak_rss_mib'] for r in w):.0f} MiB | "
              f"{med(r['etcd_readall_s'] / r['sealwal_store_verify_s'] for r in w):.2f} | {cold} | {boot} |")


def snapshots(rec):
    snap = rec["snap"]
    cli, peer = snap.get("cli", []), snap.get("peer", [])
    dd = bench_util.dd_mb_per_s(snap.get("dd", []))  # median over the rounds
    print("| size | what | save MB/s | load MB/s | peak RSS save / load | save / dd |")
    print("|---:|---|---:|---:|---:|---:|")
    for mib in sorted({r["mib"] for r in cli} | {r["size"] >> 20 for r in peer}):
        for enc, name in (("plain", "sealwal streamed, plaintext"), ("aes", "sealwal streamed, AES-256-GCM")):
            rs = [r for r in cli if r["mib"] == mib and r["encrypt"] == enc]
            if rs:
                sv = (mib << 20) / 1e6 / med(r["save_s"] for r in rs)
                ld = (mib << 20) / 1e6 / med(r["load_s"] for r in rs)
                d = f"{sv / dd[mib]:.2f}" if mib in dd else ""
                print(f"| {mib} MiB | {name} | {sv:.0f} | {ld:.0f} | "
                      f"{max(r['save_rss_kib'] for r in rs) / 1024:.0f} / "
                      f"{max(r['load_rss_kib'] for r in rs) / 1024:.0f} MiB | {d} |")
        for enc, name in (("none", "etcd snap"), ("secretbox", "swarmkit-style")):
            rs = [r for r in peer if r["size"] >> 20 == mib and r["encrypt"] == enc]
            if rs:
                sv = med(r["save_mb_per_s"] for r in rs)
                d = f"{sv / dd[mib]:.2f}" if mib in dd else ""
                print(f"| {mib} MiB | {name} (one process saves, then loads) | {sv:.0f} | "
                      f"{med(r['load_mb_per_s'] for r in rs):.0f} | "
                      f"{max(r['peak_rss_mib'] for r in rs):.0f} MiB (both) | {d} |")
        if mib in dd:
            print(f"| {mib} MiB | dd conv=fdatasync | {dd[mib]:.0f} | | | 1.00 |")


def crypto(rec):
    enc = rec.get("encryption_inprocess", {})
    speeds = {}
    for r in rec.get("openssl_speed", []):
        v = r["kbytes_per_s"].rstrip("k")
        try:
            speeds.setdefault((r.get("alg", "aes-256-gcm"), r.get("dir", "encrypt"), r["size"]),
                              []).append(float(v) * 1e3)
        except ValueError:
            pass
    print("| operation | record | sealwal MB/s | ns/record | openssl speed MB/s | sealwal / openssl |")
    print("|---|---:|---:|---:|---:|---:|")
    for bm, op in (("BM_Seal", "encrypt"), ("BM_Open", "decrypt")):
        for alg, evp, name in ((0, "aes-256-gcm", "AES-256-GCM"), (1, "chacha20-poly1305", "ChaCha20-Poly1305")):
            for size in (64, 1024, 16384):
                g = enc.get(f"{bm}/{alg}/{size}")
                if not g:
                    continue
                ours = g["bytes_per_second"]["median"] / 1e6
                ns = g["cpu_time"]["median"]
                o = speeds.get((evp, op, size))
                theirs = med(o) / 1e6 if o else None
                r = f"{ours / theirs:.2f}" if theirs else ""
                t = f"{theirs:.0f}" if theirs else ""
                print(f"| {'seal' if op == 'encrypt' else 'open'} {name} | {size} B | {ours:.0f} | "
                      f"{ns:.0f} | {t} | {r} |")


def raftkv(rec):
    by = {}
    for r in rec["raftkv"]:
        by.setdefault(r["variant"], []).append(r)
    if not by:
        return
    e = med(r["writes_per_s"] for r in by.get("etcd", [{"writes_per_s": 0}])) or None
    print("| storage | writes/s | spread | p50 ms | p99 ms | / etcd | nodes' CPU µs per write |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for v, rs in by.items():
        w = [r["writes_per_s"] for r in rs]
        m = med(w)
        cpu = [r["nodes_cpu_s"] * 1e6 / r["writes"] for r in rs if "nodes_cpu_s" in r and r["writes"]]
        print(f"| {v} | {m:.0f} | {(max(w) - min(w)) / m:.0%} | {med(r['p50_ms'] for r in rs):.2f} | "
              f"{med(r['p99_ms'] for r in rs):.2f} | {m / e:.2f} | {med(cpu) if cpu else float('nan'):.0f} |"
              if e else "")


def targets(rec):
    print("| issue | target | this run | goal | |")
    print("|---|---|---:|---:|---|")
    for t in rec["targets"]:
        print(f"| {t['issue']} | {t['target']} | {t['value']:.2f} | ≥ {t['goal']} | "
              f"{'met' if t['met'] else '**not met**'} |")


def merged_targets(paths):
    """One targets table over several records, computed from their figures
    by bench_record.py's current definitions: a later record's figure for
    the same target replaces an earlier one's; the last column names it."""
    rows = {}
    for path in paths:
        with open(path) as f:
            for t in bench_record.targets(json.load(f)):
                rows[(t["issue"], t["target"])] = (t, path.rsplit("/", 1)[-1])
    print("| issue | target | figure | goal | | record |")
    print("|---|---|---:|---:|---|---|")
    for t, name in rows.values():
        print(f"| {t['issue']} | {t['target']} | {t['value']:.2f} | ≥ {t['goal']} | "
              f"{'met' if t['met'] else '**not met**'} | {name} |")


def main():
    bench_util.usage_or_exit(__doc__, 1)
    if sys.argv[1] == "--targets":
        merged_targets(sys.argv[2:])
        return
    with open(sys.argv[1]) as f:
        rec = json.load(f)
    m = rec["machine"]
    print(f"Record `{sys.argv[1]}`: {m['date']}, {m['cpu_model']}, {m['cores']} cores, "
          f"{m['memory_bytes'] / 2**30:.0f} GiB, Linux {m['kernel']}, commit {m['git_commit'][:10]}"
          f"{' (dirty)' if m['git_dirty'] else ''}; `{rec['command']}`.\n")
    for title, fn in (("Targets", targets), ("Append", append), ("Recovery", recovery),
                      ("Snapshots", snapshots), ("Crypto cost", crypto), ("raftkv", raftkv)):
        print(f"### {title}\n")
        fn(rec)
        print()


if __name__ == "__main__":
    main()
