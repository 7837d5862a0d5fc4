"""``python -m benchmark experiment=... model=... method=... dataset=...``."""

import sys

from benchmark.plugins import load_plugins, plugins_on_command_line
from benchmark.runs.redact import guard_stderr
from benchmark.run import main

guard_stderr()  # Hydra writes a failed job's overrides to stderr itself
load_plugins(plugins_on_command_line(sys.argv[1:]))  # before composition: method=<a plugin's method>
main()
