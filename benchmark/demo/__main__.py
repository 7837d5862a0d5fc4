"""``python -m benchmark.demo``: run the demo experiments (see ``benchmark.demo``)."""

from benchmark.demo import main

raise SystemExit(main())
