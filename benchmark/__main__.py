"""``python -m benchmark experiment=... model=... method=... dataset=...``."""

from benchmark.run import main

main()
