"""Ctrl-C at evenly spread moments of a real `paligemma` command: every run must end cleanly.

    python tools/interrupt_sweep.py [--command generate|finetune|convert] [--moments 20]

One uninterrupted run measures how long the command takes once `paligemma.cli` is imported (compilation cache off, so
each run compiles, the moment when an interrupt used to crash the process); then SIGINT is sent at `--moments` moments
spread evenly over that time (1/N, 2/N, ..., N/N of it), one fresh process each. (Before that, Python is still
starting and importing: an interrupt there ends in the interpreter's own traceback, before `main` runs.) A run ends cleanly when it exits 130 with `interrupted` as its last line
on stderr and leaves no file it started (`--draw` picture, checkpoint, `.partial`), or exits 0 with the complete
output of the uninterrupted run (the interrupt came after the work was done). Anything else (a crash, status 139 or
-11, a traceback, a partial file) fails the sweep. The child starts with SIGINT at its default, whatever the shell
that runs this script does with it (under `nohup` it would be ignored).
"""
from __future__ import annotations
import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "nbs" / "images" / "shapes.png"
ENTRY = "import sys; from paligemma.cli import main; print('@ready', file=sys.stderr, flush=True); sys.exit(main())"


def _default_sigint():  # in the child, before exec: Python installs its Ctrl-C handler only over the default
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(kind: str, work: Path) -> list[str]:
    "The command line of `kind`, writing into `work` (prepared here)."
    if kind == "generate":
        return ["generate", str(IMAGE), "--prompt", "segment square", "--json", "--draw", str(work / "out.png")]
    if kind == "convert":
        from paligemma.demo.tiny_model import TINY_CHECKPOINT
        return ["convert", str(TINY_CHECKPOINT), str(work / "out-hf")]
    import numpy as np
    from PIL import Image
    from paligemma.demo.shapes import random_scene
    rng, rows = np.random.default_rng(0), []
    for i in range(4):
        image, objects = random_scene(rng)
        Image.fromarray(image).save(work / f"{i}.png")
        rows.append(json.dumps(dict(image=f"{i}.png", prefix="answer en leftmost color?", suffix=objects[0].color)))
    (work / "train.jsonl").write_text("\n".join(rows) + "\n")
    return ["finetune", "--data", str(work / "train.jsonl"), "--out", str(work / "out.npz"), "--steps", "20",
            "--batch-size", "4"]


def run(kind: str, delay: float | None) -> dict:
    "One run in a fresh folder, interrupted after `delay` seconds (None: not at all)."
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        argv = command(kind, work)
        before = set(work.iterdir())
        env = {**os.environ, "PALIGEMMA_COMPILATION_CACHE": "0"}
        p = subprocess.Popen([sys.executable, "-c", ENTRY, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=work, preexec_fn=_default_sigint)
        out, err, ready = [], [], threading.Event()

        def read_err():
            for line in p.stderr:
                if line == "@ready\n": ready.set()
                else: err.append(line)
            ready.set()
        readers = [threading.Thread(target=read_err), threading.Thread(target=lambda: out.extend(p.stdout))]
        for t in readers: t.start()
        ready.wait(timeout=300)
        start = time.perf_counter()
        if delay is not None:
            try: p.wait(timeout=delay)
            except subprocess.TimeoutExpired: p.send_signal(signal.SIGINT)
        try: p.wait(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            err.append("(hung: killed after 300 s)\n")
        seconds = time.perf_counter() - start
        for t in readers: t.join(timeout=30)
        out, err = "".join(out), "".join(err)
        made = sorted(str(q.relative_to(work)) for q in work.rglob("*") if q not in before)
        return dict(delay=delay, status=p.returncode, stdout=out, stderr=err, files=made,
                    seconds=seconds)


def verdict(r: dict, reference: dict) -> str:
    "'interrupted', 'finished' or what went wrong."
    lines = r["stderr"].strip().splitlines()
    if "Traceback" in r["stderr"] or "Fatal Python error" in r["stderr"]: return "traceback"
    if r["status"] == 130:
        if lines[-1:] != ["interrupted"]: return "status 130 without 'interrupted' last"
        if r["files"]: return f"left files: {r['files']}"
        return "interrupted"
    if r["status"] == 0:
        same = r["stdout"] == reference["stdout"] and r["files"] == reference["files"]
        return "finished" if same else "finished with different output"
    return f"status {r['status']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--command", choices=("generate", "finetune", "convert"), default="generate")
    ap.add_argument("--moments", type=int, default=20)
    args = ap.parse_args()
    reference = run(args.command, None)
    assert reference["status"] == 0, reference["stderr"]
    length = reference["seconds"]
    print(f"{args.command}: an uninterrupted run takes {length:.1f} s and writes {reference['files']}")
    moments = [length * i / args.moments for i in range(1, args.moments + 1)]  # the last: as the run ends
    counts = collections.Counter()
    for delay in moments:
        r = run(args.command, delay)
        v = verdict(r, reference)
        counts[v] += 1
        print(f"  Ctrl-C at {delay:5.2f} s: status {r['status']:4d}, {v}"
              + ("" if v in ("interrupted", "finished") else f"\n{r['stderr'][-2000:]}"), flush=True)
    print(f"{args.command}: {args.moments} moments: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    sys.exit(0 if set(counts) <= {"interrupted", "finished"} else 1)


if __name__ == "__main__":
    main()
