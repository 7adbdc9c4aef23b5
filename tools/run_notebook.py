"""Run notebooks top to bottom and save their outputs in place (what the site shows), then clean them.

    python tools/run_notebook.py nbs/03_gemma_layers.ipynb [more.ipynb ...]

Each notebook runs in a fresh kernel-less shell (execnb, as `nbdev_test` runs it) with `nbs/` as the working
directory; the first failing cell stops it and nothing is written. Every saved output is cleared first: execnb keeps
a cell's old outputs when the cell now prints nothing, and a stale output would survive the run. `nbdev_clean` then
strips ids and metadata."""
import os
import subprocess
import sys
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell


def run(path: Path) -> None:
    path = path.resolve()
    nb = read_nb(path)
    for cell in nb.cells:
        if cell.cell_type == "code": cell.outputs, cell.execution_count = [], None
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        shell = CaptureShell(mpl_format="retina")
        shell.set_path(path.parent)
        shell.run_all(nb, exc_stop=True)  # raises at the first failing cell, before anything is written
    finally:
        os.chdir(here)
    write_nb(nb, path)


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]]
    if not paths: sys.exit(__doc__)
    for p in paths:
        print(f"running {p}", flush=True)
        run(p)
    for p in paths: subprocess.run(["nbdev_clean", "--fname", str(p)], check=True)
