"""``python -m benchmark experiment=... model=... method=... dataset=...``."""

from benchmark.runs.redact import guard_stderr
from benchmark.run import main

guard_stderr()  # Hydra writes a failed job's overrides to stderr itself
main()
