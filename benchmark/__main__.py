"""``python -m benchmark experiment=... model=... method=... dataset=...``.

A job that already finished is answered before torch, torchvision or any registry is imported
(``benchmark.fastpath``); every other command goes through Hydra (``benchmark.run.cli``), which prints
a user error as one block and an interrupt as one line.
"""

import os
import sys

from benchmark.runs.redact import guard_stderr

guard_stderr()  # Hydra writes a failed job's overrides to stderr itself
from benchmark import errors  # noqa: E402
from benchmark.fastpath import answer_finished  # noqa: E402

ARGV = sys.argv[1:]
if answer_finished(ARGV):
    sys.exit(0)
if any(a.lstrip("+~").split("=", 1)[0] == "plugins" for a in ARGV):
    from benchmark.plugins import load_plugins, plugins_on_command_line

    try:
        load_plugins(plugins_on_command_line(ARGV))  # before composition: method=<a plugin's method>
    except Exception as err:  # noqa: BLE001  (a plugin that does not import: one block, as every user error)
        found = errors.user_error(err)
        if found is None or errors.verbose(ARGV) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(errors.format_error(found), file=sys.stderr)
        sys.exit(errors.EXIT_USER_ERROR)
from benchmark.run import cli  # noqa: E402

sys.exit(cli(ARGV))
