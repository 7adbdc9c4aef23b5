"""Start-up of the `paligemma` command: `--help`, and `generate` on the README's image with a fresh compilation cache
(first run compiles and fills it, second reads it) and with the cache off. Prints a Markdown table and writes it
into its own section of bench/RESULTS.md.

    python bench/startup.py [--repeat 3]
"""
from __future__ import annotations
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "nbs" / "images" / "shapes.png"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Start-up (`bench/startup.py`)"


def command() -> list[str]:
    "The installed console script itself (not a shim in front of it), else the same entry point through python."
    script = Path(sys.executable).parent / "paligemma"
    return [str(script)] if script.is_file() else [sys.executable, "-c",
                                                   "import sys; from paligemma.cli import main; sys.exit(main())"]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict) -> tuple[tuple[float, float], str]:
    "(wall, CPU) seconds of one run, and its stdout; a failed run stops the benchmark."
    start, cpu = time.perf_counter(), cpu_of_children()
    r = subprocess.run(command() + args, capture_output=True, text=True, env=env)
    seconds = (time.perf_counter() - start, cpu_of_children() - cpu)
    if r.returncode: sys.exit(f"paligemma {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return seconds, r.stdout


def median(runs) -> tuple[float, float]:
    "Per-column medians of (wall, CPU) pairs."
    walls, cpus = zip(*runs)
    return statistics.median(walls), statistics.median(cpus)


def jax_imported_by_help() -> bool:
    code = "import sys, paligemma.cli as c; c.parser().format_help(); print('jax' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "True"


def write_section(table: str) -> None:
    "Replace this script's section of RESULTS.md (read afresh: other benchmarks write their own sections)."
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"{HEADING}\n\n{table}\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text): text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else: text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each warm measurement; the median is reported")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args()
    generate = ["generate", str(IMAGE), "--prompt", "caption en"]
    with tempfile.TemporaryDirectory() as tmp:
        cached = {**os.environ, "PALIGEMMA_COMPILATION_CACHE": str(Path(tmp) / "jax")}
        off = {**os.environ, "PALIGEMMA_COMPILATION_CACHE": "0"}
        timed(["--help"], off)  # warm the file system cache, as a user's second command would find it
        help_s = median(timed(["--help"], off)[0] for _ in range(args.repeat))
        first, answer = timed(generate, cached)
        entries = sum(1 for p in (Path(tmp) / "jax").rglob("*") if p.is_file())
        seconds = [timed(generate, cached) for _ in range(args.repeat)]
        assert all(out == answer for _, out in seconds), "the cached run answered differently"
        second = median(s for s, _ in seconds)
        uncached = median(timed(generate, off)[0] for _ in range(args.repeat))
    load = os.getloadavg()[0]
    rows = [("`paligemma --help`", help_s, "no JAX imported" if not jax_imported_by_help() else "imports JAX"),
            ("`generate`, empty cache (compiles, fills it)", first, f"{entries} programs written"),
            ("`generate`, cache filled by the run above", second, f"{first[0] / second[0]:.2f}x faster than the first"),
            ("`generate`, `PALIGEMMA_COMPILATION_CACHE=0`", uncached,
             f"the cache saves {uncached[0] - second[0]:.1f} s wall, {uncached[1] - second[1]:.1f} s CPU")]
    table = "\n".join([
        f"Command: `python bench/startup.py --repeat {args.repeat}`: a fresh process per run, wall time and CPU time "
        f"(user + system, all threads) of each, median of {args.repeat} (the first, cache-filling run once); "
        f"`generate {IMAGE.relative_to(ROOT)} --prompt \"caption en\"` on the shipped tiny model. Load average "
        f"during the run: {load:.1f} on {os.cpu_count()} cores (other jobs shared them: wall times are inflated, CPU "
        f"times less so).", "", "| run | wall (s) | CPU (s) | note |", "|---|---|---|---|"]
        + [f"| {name} | {wall:.2f} | {cpu:.2f} | {note} |" for name, (wall, cpu), note in rows])
    print(table)
    if not args.no_write: write_section(table)


if __name__ == "__main__":
    main()
