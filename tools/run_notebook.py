"""Run notebooks top to bottom and save their outputs in place (what the site shows), then clean them.

    python tools/run_notebook.py nbs/03_gemma_layers.ipynb [more.ipynb ...]

Each notebook runs in a fresh kernel-less shell (execnb, as `nbdev_test` runs it) with `nbs/` as the working
directory; the first failing cell stops it and nothing is written. `nbdev_clean` then strips ids and metadata."""
import os
import subprocess
import sys
from pathlib import Path

from execnb.shell import CaptureShell


def run(path: Path) -> None:
    path = path.resolve()
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        CaptureShell(mpl_format="retina").execute(path, path, exc_stop=True)
    finally:
        os.chdir(here)


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]]
    if not paths: sys.exit(__doc__)
    for p in paths:
        print(f"running {p}", flush=True)
        run(p)
    for p in paths: subprocess.run(["nbdev_clean", "--fname", str(p)], check=True)
