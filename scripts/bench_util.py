"""What the benchmark drivers share (scripts/bench_*.py, plot.py)."""
import os
import statistics
import sys
import time


def usage_or_exit(doc, min_args):
    """Prints `doc` (a driver's docstring, its usage) and exits on -h/--help
    (status 0) or with fewer than `min_args` arguments (status 2)."""
    if len(sys.argv) > min_args and sys.argv[1] not in ("-h", "--help"):
        return
    asked = len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help")
    print(doc.strip(), file=sys.stdout if asked else sys.stderr)
    sys.exit(0 if asked else 2)


def fdatasync_loop(path, chunk, saves, overwrite=True):
    """The device's limit for a WAL: `saves` times one write of `chunk`,
    each followed by fdatasync, overwriting a file already written and
    synced (no size change to journal) or, with overwrite=False, appending
    to an empty one. Returns (seconds of the loop, [each write + fdatasync
    in µs]) and removes the file."""
    flags = os.O_WRONLY | os.O_CREAT
    if overwrite:
        with open(path, "wb") as f:
            for _ in range(saves):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    else:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    lat = []
    try:
        t0 = time.perf_counter()
        for _ in range(saves):
            s = time.perf_counter()
            os.write(fd, chunk)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - s) * 1e6)
        return time.perf_counter() - t0, lat
    finally:
        os.close(fd)
        os.remove(path)


def dd_mb_per_s(rows):
    """{MiB: median MB/s over the rounds} of bench_snap.sh's dd rows."""
    by = {}
    for r in rows:
        by.setdefault(r["mib"], []).append((r["mib"] << 20) / 1e6 / float(r["seconds"]))
    return {m: statistics.median(v) for m, v in by.items()}
