#!/usr/bin/env python3
"""Draws the charts of one performance record (scripts/plot.sh).

usage: plot.py RESULTS.json OUTDIR

Writes append.png, append-latency.png, recovery.png, snapshots.png and,
when the record has raftkv runs, raftkv.png. Every point is a median of
the record's rounds; error bars span the rounds' minimum to maximum.
"""
import json
import os
import statistics
import sys

import matplotlib
matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402
import bench_util  # noqa: E402

STYLE = {  # variant -> (label, colour, line style)
    "sealwal-plain-sync": ("sealwal plaintext", "tab:blue", "-"),
    "sealwal-aes-sync": ("sealwal AES-256-GCM", "tab:orange", "-"),
    "sealwal-chacha-sync": ("sealwal ChaCha20-Poly1305", "tab:green", "-"),
    "sealwal-plain-pipe": ("sealwal plaintext, pipelined", "tab:blue", "--"),
    "sealwal-aes-pipe": ("sealwal AES-256-GCM, pipelined", "tab:orange", "--"),
    "sealwal-chacha-pipe": ("sealwal ChaCha20-Poly1305, pipelined", "tab:green", "--"),
    "etcd": ("etcd wal (plaintext)", "tab:red", "-"),
    "swarmkit": ("swarmkit-style (secretbox)", "tab:purple", "-"),
    "fdatasync-append": ("write+fdatasync, appending", "grey", ":"),
    "fdatasync-overwrite": ("write+fdatasync, overwriting", "black", ":"),
}


def caption(rec):
    m = rec["machine"]
    return (f"{m['date'][:10]} {m['cpu_model']}, {m['cores']} cores, Linux {m['kernel']}, "
            f"commit {m['git_commit'][:10]}")


def save(fig, rec, title, path):
    """Titles a chart with the record's machine and commit, writes it, frees it."""
    fig.suptitle(title + caption(rec), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def append_chart(rec, out):
    rows = rec["append"]
    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.6), squeeze=False)
    for ax, s in zip(axes[0], sizes):
        for v, (label, colour, ls) in STYLE.items():
            pts = sorted((r["batch"], r) for r in rows if r["size"] == s and r["variant"] == v)
            if not pts:
                continue
            xs = [b for b, _ in pts]
            ys = [r["mb_per_s"] for _, r in pts]
            lo = [y - r["entries"] * s / 1e6 / max(r["seconds"]) for y, (_, r) in zip(ys, pts)]
            hi = [r["entries"] * s / 1e6 / min(r["seconds"]) - y for y, (_, r) in zip(ys, pts)]
            ax.errorbar(xs, ys, yerr=[lo, hi], label=label, color=colour, linestyle=ls,
                        marker="o", markersize=3, capsize=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{s} B entries" if s < 1024 else f"{s // 1024} KiB entries")
        ax.set_xlabel("entries per durable save (batch)")
        ax.set_ylabel("MB/s of entry data (whole process)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    save(fig, rec, "Append: whole-process `wal gen` against etcd's WAL and the disk's limit\n",
         os.path.join(out, "append.png"))

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, b in zip(axes, (1, 100)):
        names = [v for v in STYLE if not v.endswith("-pipe") and any(
            r["variant"] == v and r["batch"] == b and r["size"] == 1024 for r in rows)]
        p50 = [next(r["save_p50_us"] for r in rows if r["variant"] == v and r["batch"] == b
                    and r["size"] == 1024) for v in names]
        p99 = [next(r["save_p99_us"] for r in rows if r["variant"] == v and r["batch"] == b
                    and r["size"] == 1024) for v in names]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
        ax.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([STYLE[v][0] for v in names], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("microseconds")
        ax.set_title(f"1 KiB entries, batch {b}: time per durable save")
        ax.legend()
    save(fig, rec, "Synchronous save latency (sealwal: gap between `synced` lines; etcd: each Save)\n",
         os.path.join(out, "append-latency.png"))


def by_size(rows, key):
    out = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return sorted(out.items())


def spread_line(ax, groups, fn, label, **kw):
    xs = [k for k, _ in groups]
    vals = [[fn(r) for r in rs] for _, rs in groups]
    ys = [statistics.median(v) for v in vals]
    ax.errorbar(xs, ys, yerr=[[y - min(v) for y, v in zip(ys, vals)],
                              [max(v) - y for y, v in zip(ys, vals)]],
                label=label, marker="o", markersize=3, capsize=2, **kw)


def recovery_chart(rec, out):
    rows = rec["recovery"]
    warm = by_size([r for r in rows if r["cache"] == "warm"], "mib")
    cold = by_size([r for r in rows if r["cache"] == "cold"], "mib")
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    spread_line(a, warm, lambda r: r["sealwal_store_verify_s"], "sealwal store verify (AES-256-GCM), warm")
    spread_line(a, warm, lambda r: r["etcd_readall_s"], "etcd ReadAll (plaintext), warm", color="tab:red")
    if cold:
        spread_line(a, cold, lambda r: r["sealwal_store_verify_s"], "sealwal, cold cache",
                    linestyle="--", color="tab:blue")
        spread_line(a, cold, lambda r: r["etcd_readall_s"], "etcd, cold cache", linestyle="--",
                    color="tab:red")
    if "sealwal_bootstrap_s" in rows[0]:
        spread_line(a, warm, lambda r: r["sealwal_bootstrap_s"], "sealwal Bootstrap (a node's restart), warm",
                    color="tab:green")
        spread_line(b, warm, lambda r: r["sealwal_bootstrap_rss_mib"], "sealwal Bootstrap", color="tab:green")
    spread_line(b, warm, lambda r: r["sealwal_peak_rss_mib"], "sealwal store verify")
    spread_line(b, warm, lambda r: r["etcd_peak_rss_mib"], "etcd ReadAll", color="tab:red")
    for ax, title, unit in ((a, "Recovery time", "seconds (whole process)"),
                            (b, "Recovery memory", "peak RSS, MiB")):
        ax.set_xlabel("retained WAL, MiB of 1 KiB entries")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    save(fig, rec, "Recovery as the retained WAL grows\n", os.path.join(out, "recovery.png"))


def snapshot_chart(rec, out):
    snap = rec["snap"]
    cli = snap.get("cli", [])
    peer = snap.get("peer", [])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.6))
    for enc, label, colour in (("plain", "sealwal streamed, plaintext", "tab:blue"),
                               ("aes", "sealwal streamed, AES-256-GCM", "tab:orange")):
        g = by_size([r for r in cli if r["encrypt"] == enc], "mib")
        spread_line(a, g, lambda r: (r["mib"] << 20) / 1e6 / r["save_s"], label, color=colour)
        spread_line(b, g, lambda r: (r["mib"] << 20) / 1e6 / r["load_s"], label, color=colour)
        spread_line(c, g, lambda r: r["save_rss_kib"] / 1024, label + " (save)", color=colour)
        spread_line(c, g, lambda r: r["load_rss_kib"] / 1024, label + " (load)", color=colour,
                    linestyle="--")
    for enc, label, colour in (("none", "etcd snap (plaintext)", "tab:red"),
                               ("secretbox", "swarmkit-style (secretbox)", "tab:purple")):
        g = by_size([dict(r, mib=r["size"] >> 20) for r in peer if r["encrypt"] == enc], "mib")
        if not g:
            continue
        spread_line(a, g, lambda r: r["save_mb_per_s"], label, color=colour)
        spread_line(b, g, lambda r: r["load_mb_per_s"], label, color=colour)
        spread_line(c, g, lambda r: r["peak_rss_mib"], label + " (save + load)", color=colour)
    dd = by_size(snap.get("dd", []), "mib")
    if dd:
        spread_line(a, dd, lambda r: (r["mib"] << 20) / 1e6 / float(r["seconds"]), "dd conv=fdatasync",
                    color="black", linestyle=":")
    for ax, t, y in ((a, "Save", "MB/s (whole process)"), (b, "Load", "MB/s (whole process)"),
                     (c, "Peak RSS", "MiB")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("snapshot size, MiB")
        ax.set_ylabel(y)
        ax.set_title(t)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    c.set_yscale("log")
    save(fig, rec, "Snapshots: sealwal CLI against etcd's snapshotter and the swarmkit-style one\n",
         os.path.join(out, "snapshots.png"))


def raftkv_chart(rec, out):
    by = {}
    for r in rec["raftkv"]:
        by.setdefault(r["variant"], []).append(r)
    if not by:
        return
    names = [v for v in ("etcd", "sealwal-plain", "sealwal-enc", "sealwal-enc-fallocate") if v in by]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, v in enumerate(names):
        w = [r["writes_per_s"] for r in by[v]]
        m = statistics.median(w)
        a.bar(i, m, yerr=[[m - min(w)], [max(w) - m]], capsize=4)
        b.bar(i - 0.2, statistics.median(r["p50_ms"] for r in by[v]), width=0.4, color="tab:blue",
              label="p50" if i == 0 else None)
        b.bar(i + 0.2, statistics.median(r["p99_ms"] for r in by[v]), width=0.4, color="tab:orange",
              label="p99" if i == 0 else None)
    for ax in (a, b):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names)
    a.set_ylabel("committed writes/s")
    b.set_ylabel("ms")
    b.legend()
    save(fig, rec, "raftkv, 3 nodes on one machine, PUT ?wait=1\n", os.path.join(out, "raftkv.png"))


def main():
    bench_util.usage_or_exit(__doc__, 2)
    path, out = sys.argv[1], sys.argv[2]
    with open(path) as f:
        rec = json.load(f)
    os.makedirs(out, exist_ok=True)
    drawn = []
    has = {"append": bool(rec.get("append")), "recovery": bool(rec.get("recovery")),
           "snapshots": bool(rec.get("snap", {}).get("cli") or rec.get("snap", {}).get("peer")),
           "raftkv": bool(rec.get("raftkv"))}
    for name, fn in (("append", append_chart), ("recovery", recovery_chart),
                     ("snapshots", snapshot_chart), ("raftkv", raftkv_chart)):
        if has[name]:
            fn(rec, out)
            drawn.append(name)
    print(f"plot: {', '.join(drawn) or 'nothing'} -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
