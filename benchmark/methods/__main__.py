"""``python -m benchmark.methods --list``: every registered method, its family and what it wraps."""

from __future__ import annotations

import argparse
import importlib.util

from benchmark.methods import METHODS
from benchmark.methods.captum_methods import SPECS
from benchmark.methods.pgc import CLASSES


def rows() -> list[tuple[str, str, str]]:
    """``(name, family, wrapped class or '')`` for every registered method, sorted by name."""
    out = []
    for name in METHODS.names():
        if name.startswith("pgc_") and name[4:] in CLASSES:
            out.append((name, "pytorch-grad-cam", f"pytorch_grad_cam.{CLASSES[name[4:]]}"))
        elif name.startswith("captum_") and name[7:] in SPECS:
            spec = SPECS[name[7:]]
            wrapped = f"captum.attr.{spec.cls}" + (f" in NoiseTunnel({spec.noise})" if spec.noise else "")
            out.append((name, "captum", wrapped))
        else:
            out.append((name, "suite", ""))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.methods", description=__doc__)
    parser.add_argument("--list", action="store_true", help="list the methods (the default action)")
    parser.parse_args(argv)
    missing = {fam for fam, mod in (("pytorch-grad-cam", "pytorch_grad_cam"), ("captum", "captum"))
               if importlib.util.find_spec(mod) is None}
    for name, family, wrapped in rows():
        note = "  (not installed: pip install 'gradcam-benchmark[ecosystem]')" if family in missing else ""
        print(f"{name:40s} {family:17s} {wrapped}{note}")


if __name__ == "__main__":
    main()
