"""``python -m benchmark.perf``: the bench CLI (``make bench``; see ``bench.py``)."""

import sys

from benchmark.perf.bench import main

if __name__ == "__main__":
    sys.exit(main())
