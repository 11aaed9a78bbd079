"""What the benchmark drivers share (scripts/bench_*.py, plot.py)."""
import sys


def usage_or_exit(doc, min_args):
    """Prints `doc` (a driver's docstring, its usage) and exits on -h/--help
    (status 0) or with fewer than `min_args` arguments (status 2)."""
    if len(sys.argv) > min_args and sys.argv[1] not in ("-h", "--help"):
        return
    asked = len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help")
    print(doc.strip(), file=sys.stdout if asked else sys.stderr)
    sys.exit(0 if asked else 2)
