"""Keep secrets (the W&B API key, tokens, passwords) out of every file and log line a run writes.

A secret is the value of a config key whose name looks like one (``api_key``, ``token``,
``password``, ``secret``, ``credential``, ``auth``, ``private_key`` as a word of the key, e.g.
``logger.api_key``, ``paths.access_token``, ``apiKey``; not ``author`` or ``tokenizer``), the W&B
key in the environment (``ENV_SECRETS``: ``WANDB_API_KEY``), or the value of such a key given on
the command line (``+logger.api_key=...``). ``public_config`` is the one
function that makes a config safe to write or send: it drops secret-looking keys and replaces
secret values found anywhere else. It is applied to the config the Hydra entry passes on, to the
config ``evaluate`` hashes and writes (``run_config.json``, ``summary.json``), to the W&B config,
and to the files Hydra writes into the run folder (``.hydra/config.yaml``, ``overrides.yaml``,
``hydra.yaml``, the sweep's ``multirun.yaml``). ``RedactFilter`` masks secret values in log records
(``run.log`` and the console, Hydra's own launcher lines included; see ``conf/config.yaml``);
``guard_stderr`` masks what Hydra prints itself (``--cfg``, ``--info``, a failed job's overrides).
Secrets shorter than ``MIN_SECRET_LEN`` characters are only dropped by key, never masked as values
or text (masking ``1`` or ``default`` wherever it appears would change configs and garble logs).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

REMOVED = "<removed>"
MIN_SECRET_LEN = 8
ENV_SECRETS = ("WANDB_API_KEY",)
_WORD = r"(?:^|_)(api_?key|token|secret|passw(?:or)?d|credentials?|auth|private_?key)(?:_|$)"
SECRET_KEY = re.compile(_WORD, re.IGNORECASE)
_remembered: set[str] = set()


def is_secret_key(name) -> bool:
    """Whether a config key or environment variable name looks like it holds a secret."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).replace("-", "_").replace(".", "_").lower()
    return SECRET_KEY.search(words) is not None


def _collect(value, out: set[str], secret: bool = False) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, out, secret or is_secret_key(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, out, secret)
    elif secret and value is not None and str(value) not in ("", "None", "null"):
        out.add(str(value))


def secret_values(config: dict | None = None, argv: list[str] | None = None, environ=None) -> set[str]:
    """Secret strings: secret-key values of ``config``, of ``key=value`` overrides in ``argv``, and
    of the ``ENV_SECRETS`` variables; plus those ``remember`` was given in this process."""
    out = set(_remembered)
    _collect(config or {}, out)
    for arg in argv or []:
        key, sep, value = str(arg).partition("=")
        if sep and value and is_secret_key(key.lstrip("+~").split(".")[-1]):
            out.add(value.strip("'\""))
    environ = os.environ if environ is None else environ
    out.update(environ[name] for name in ENV_SECRETS if environ.get(name))
    return out


def remember(values) -> None:
    """Add secrets for this process's ``RedactFilter``s and later ``secret_values`` calls."""
    _remembered.update(str(v) for v in values if v)


def redact_text(text: str, secrets) -> str:
    """``text`` with every secret of at least ``MIN_SECRET_LEN`` characters replaced by ``<removed>``."""
    for secret in sorted((s for s in secrets if len(s) >= MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(secret, REMOVED)
    return text


_YAML_ITEM = re.compile(r"^(?P<key>\s*(?:-\s+)?[^\s:#='\"]+):(?P<sep>[ \t]+)(?P<value>\S[^\n]*)$", re.MULTILINE)
_OVERRIDE = re.compile(r"(?P<key>[+~]*[A-Za-z0-9_.-]+)=(?P<value>[^,\s\]'\"]+)")


def redact_config_text(text: str, secrets) -> str:
    """``redact_text``, and also the values of secret-looking keys in YAML lines (``api_key: ...``)
    and in overrides (``+logger.api_key=...``), whatever their length: for config printed as text
    (Hydra's ``--cfg`` and ``--info``), where a secret from a config file is not known as a value."""
    text = redact_text(text, secrets)
    text = _YAML_ITEM.sub(lambda m: f"{m['key']}:{m['sep']}{REMOVED}"
                          if is_secret_key(m["key"].strip(" -")) else m[0], text)
    return _OVERRIDE.sub(lambda m: f"{m['key']}={REMOVED}"
                         if is_secret_key(m["key"].lstrip("+~").split(".")[-1]) else m[0], text)


def public_config(value, secret=None):
    """A copy of a nested config without secret-looking keys, and with secret values masked.

    ``secret``: one secret string or a collection of them (values to mask wherever they appear).
    """
    secrets = {secret} if isinstance(secret, str) else set(secret or ())
    secrets = {s for s in secrets if len(s) >= MIN_SECRET_LEN}
    if isinstance(value, dict):
        return {k: public_config(v, secrets) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple)):
        return [public_config(v, secrets) for v in value]
    if isinstance(value, str) and secrets:
        return REMOVED if value in secrets else redact_text(value, secrets)
    return value


def scrub_overrides(items, secrets) -> list:
    """Command-line overrides (``key=value``) with the values of secret-looking keys, and every
    known secret, replaced by ``<removed>``."""
    out = []
    for item in items:
        key, sep, _ = str(item).partition("=")
        secret_key = sep and is_secret_key(key.lstrip("+~").split(".")[-1])
        out.append(f"{key}={REMOVED}" if secret_key else redact_text(str(item), secrets))
    return out


def scrub_yaml_file(path: Path, secrets) -> None:
    """Rewrite a YAML file Hydra wrote (config, hydra, overrides) without secrets, atomically."""
    from omegaconf import OmegaConf

    from benchmark.io import atomic_write_bytes

    path = Path(path)
    if not path.is_file():
        return
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if isinstance(data, list):  # overrides.yaml: ["key=value", ...]
        clean = scrub_overrides(data, secrets)
    else:
        clean = public_config(data, secrets)
        hydra = (clean.get("hydra") or {}) if isinstance(clean, dict) else {}
        overrides, job = hydra.get("overrides") or {}, hydra.get("job") or {}
        for name in ("task", "hydra"):
            if isinstance(overrides.get(name), list):
                overrides[name] = scrub_overrides(overrides[name], secrets)
        if isinstance(job.get("override_dirname"), str):  # "key=value,key=value"
            job["override_dirname"] = ",".join(scrub_overrides(job["override_dirname"].split(","), secrets))
    if clean != data:
        text = redact_text(OmegaConf.to_yaml(OmegaConf.create(clean)), secrets)
        atomic_write_bytes(path, text.encode())


def scrub_hydra_outputs(hydra_cfg, secrets) -> None:
    """Scrub the files Hydra wrote for this job: ``<output_dir>/<output_subdir>/*.yaml`` and, in a
    multirun, ``<sweep dir>/multirun.yaml``."""
    output_dir, subdir = Path(hydra_cfg.runtime.output_dir), hydra_cfg.output_subdir
    if subdir is not None:
        for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
            scrub_yaml_file(output_dir / subdir / name, secrets)
    if str(hydra_cfg.mode) in ("RunMode.MULTIRUN", "MULTIRUN"):
        scrub_yaml_file(Path(hydra_cfg.sweep.dir) / "multirun.yaml", secrets)


class RedactFilter(logging.Filter):
    """A logging filter that masks secrets in the message and the traceback of every record.

    Secrets: those of ``secret_values`` (the command line, the environment, ``remember``), read
    again at each record, so a secret the entry point learns from the config is masked too.
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._argv = list(sys.argv[1:])

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [s for s in secret_values(argv=self._argv) if len(s) >= MIN_SECRET_LEN]
        if not secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = redact_text(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, secrets)
        return True


class RedactingStream:
    """A text stream that masks secrets in what is written to it (``redact_config_text``), delegating
    everything else.

    Hydra writes ``Error executing job with overrides: [...]`` straight to ``sys.stderr``, and the
    config of ``--cfg job|hydra|all`` and ``--info config`` straight to ``sys.stdout`` (not through
    logging); the entry point wraps both streams in this so those lines are masked too.
    """

    def __init__(self, stream, argv: list[str] | None = None) -> None:
        self._stream, self._argv = stream, list(sys.argv[1:] if argv is None else argv)

    def write(self, text: str) -> int:
        self._stream.write(redact_config_text(text, secret_values(argv=self._argv)))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def guard_stderr() -> None:
    """Wrap ``sys.stderr`` and ``sys.stdout`` in a ``RedactingStream`` (once each)."""
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
