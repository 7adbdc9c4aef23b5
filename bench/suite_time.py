"""Where the test suite's time goes: each notebook run alone, as `nbdev_test` runs it, with the time of every cell.

    python bench/suite_time.py [nbs/XX.ipynb ...] [--json out.json] [--top 30]

Each notebook runs in a fresh Python process (the cells `nbdev_test` would run, with the same skip flags from
`settings.ini`, in `nbs/`), one after another, so the numbers are per notebook and do not overlap. For each it
records wall seconds and CPU seconds (user + sys of the child process, all XLA threads included); for each cell its
wall seconds. CPU seconds are the number to compare on a shared machine: wall time grows with other people's load,
CPU time much less. The pytest half of the suite is profiled with `pytest tests/ --durations=0`."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(fn: Path) -> dict:
    "Run one notebook in this process the way `nbdev.test.test_nb` does, timing each cell."
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    os.environ["IN_TEST"] = "1"
    sys.path.insert(0, str(get_config().config_path))
    skip = set(get_config().tst_flags.split())
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb

    def no_eval(cell):
        if cell.cell_type != "code": return True
        if "nbdev_export" + "(" in cell.source: return True
        direc = getattr(cell, "directives_", {}) or {}
        if direc.get("eval:", [""])[0].lower() == "false": return True
        if skip & direc.keys(): return True
        cell._t0 = time.perf_counter()
        return False

    cells = []
    def post(cell):
        first = next((l for l in cell.source.splitlines() if l.strip() and not l.startswith("#|")), "")
        cells.append({"idx": cell.idx_, "s": time.perf_counter() - cell._t0, "first": first[:90]})

    k = CaptureShell(fn)
    t0 = time.perf_counter()
    with working_directory(fn.parent):
        k.run_all(nb, exc_stop=True, preproc=no_eval, postproc=post)
    return {"ok": k.exc is None, "wall": time.perf_counter() - t0, "cells": cells}


def profile(fn: Path) -> dict:
    "Run `fn` in a child process; its wall, user and sys seconds and the cell times it reports."
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--one", str(fn)], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try: res = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError): res = {"ok": False, "cells": [], "err": p.stderr[-2000:]}
    res.update(name=fn.name, process_wall=wall, user=after.ru_utime - before.ru_utime,
               sys=after.ru_stime - before.ru_stime)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--one")
    ap.add_argument("--json")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    if a.one:
        res = run_one(Path(a.one).resolve())
        print("\n" + json.dumps(res))
        return
    paths = [Path(p).resolve() for p in a.paths] or sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
    rows = []
    for fn in paths:
        r = profile(fn)
        rows.append(r)
        print(f"{r['name']:32s} {'ok' if r['ok'] else 'FAIL':4s} wall {r['process_wall']:7.1f} s  "
              f"cpu {r['user'] + r['sys']:7.1f} s", flush=True)
        if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))
    tw, tc = sum(r["process_wall"] for r in rows), sum(r["user"] + r["sys"] for r in rows)
    print(f"{'total':37s} wall {tw:7.1f} s  cpu {tc:7.1f} s")
    cells = sorted(((c["s"], r["name"], c["idx"], c["first"]) for r in rows for c in r["cells"]), reverse=True)
    print(f"\nslowest {a.top} cells (wall s, notebook, cell index, first line):")
    for s, name, idx, first in cells[:a.top]: print(f"{s:7.1f}  {name}  [{idx}]  {first}")


if __name__ == "__main__":
    main()
