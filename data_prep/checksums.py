"""Recorded sha256 of every file of the embedded synthetic datasets, checked after generation.

Usage (after a deliberate change of the generator, with its version bumped)::

    python -m data_prep.checksums --write [--root CACHE/data]

The toy models' shipped weights mean something only on the data they were trained on, so the
default datasets (seed 0, default split sizes) must come out byte-identical on every machine.
``data_prep/checksums/<dataset>.sha256`` lists ``<sha256>  <path>`` per file (``sha256sum``
format, sorted by path, so the files of one split sit together). Manifests are hashed by their rows
(``manifest.parquet`` as canonical JSON), not their bytes, and ``meta.json`` / ``DONE.json`` are left
out: they hold the machine's absolute paths. A mismatch names the first differing file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"
SKIPPED = {"meta.json", "DONE.json"}


class ChecksumError(RuntimeError):
    """Generated data differs from the recorded hashes."""


def _file_digest(path: Path) -> str:
    if path.name == "manifest.parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` except ``SKIPPED`` names."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in SKIPPED)
    return {p.relative_to(root).as_posix(): _file_digest(p) for p in files}


def record_path(dataset: str) -> Path:
    return CHECKSUM_DIR / f"{dataset}.sha256"


def read_record(dataset: str) -> dict[str, str]:
    path = record_path(dataset)
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ChecksumError(f"{path}: line {number} is {line!r}; expected '<64 hex sha256>  <relative path>'")
        out[name] = digest
    return out


def write_record(dataset: str, root: Path) -> Path:
    path = record_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{d}  {name}\n" for name, d in digests(root).items()))
    return path


def check(dataset: str, root: Path) -> None:
    """Raise ``ChecksumError`` naming the first file (in path order) that differs from the record."""
    expected, actual = read_record(dataset), digests(root)
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if want == got:
            continue
        if got is None:
            problem = "is missing"
        elif want is None:
            problem = "is not in the record"
        else:
            problem = f"has sha256 {got}, recorded {want}"
        raise ChecksumError(
            f"{Path(root) / name}: {problem} ({record_path(dataset)}); the generated {dataset} data differs from "
            f"the data the shipped toy weights were trained on (first of the differing files in path order)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.checksums", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="folder holding synthetic/ and synthetic_multi/ "
                        "(default: <cache>/data)")
    parser.add_argument("--write", action="store_true", help="record the hashes of the data now under --root")
    args = parser.parse_args(argv)
    from benchmark.paths import cache_dir

    root = args.root or cache_dir() / "data"
    for dataset in ("synthetic", "synthetic_multi"):
        if args.write:
            print(f"{dataset}: {len(digests(root / dataset))} files -> {write_record(dataset, root / dataset)}")
        else:
            check(dataset, root / dataset)
            print(f"{dataset}: every file matches {record_path(dataset)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
