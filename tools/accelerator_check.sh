#!/usr/bin/env bash
# Accelerator check: on whatever device JAX finds (an NVIDIA GPU, a TPU, or the CPU), run the lessons' tests
# (`nbdev_test --path nbs`), the test suite (`pytest tests/`) and the generation benchmark (`bench/generate.py`:
# our compiled sampler beside transformers `generate`, same random weights, greedy), then write one row (device,
# jax version, pass/fail counts and times, decode speed) into the section "## Accelerator check" of
# bench/RESULTS.md. Only that section changes; a new run replaces the row of the same device and mode and keeps
# the others.
#
#   tools/accelerator_check.sh                everything (on the 2-core CPU machine: most of an hour)
#   QUICK=1 tools/accelerator_check.sh        a smoke run of a few minutes: three notebooks (33_testing, 02_gemma_rope,
#                                             34_sharding), tests/test_bigvision.py, the benchmark at batch 1 with
#                                             8 new tokens and 1 repeat
#
# Settings (environment variables), each overriding QUICK's choice:
#   NOTEBOOKS='^(00|20)_'     a regular expression of the notebook file names to test (nbdev_test --file_re)
#   TESTS='tests/test_x.py'   pytest's arguments instead of tests/
#   BENCH_ARGS='--batch 1'    bench/generate.py's arguments instead of its defaults (batch 1 and 8, 32 new tokens)
#   PYTEST_ARGS='-n 8'        extra pytest options that select nothing (e.g. pytest-xdist workers); mode unchanged
#   STEP_TIMEOUT=300          stop each of the three steps after this many seconds (reported as timed out)
#   NO_WRITE=1                print the row; leave bench/RESULTS.md alone
#   LOG_DIR=dir               where the logs go (default bench/out/accelerator, which git ignores)
#   PYTHON=python3            the interpreter
#
# Needs: this repository (with reference/), the package importable from it, the dev extra (`pip install -e
# ".[dev]"`: nbdev, pytest, torch, transformers), and a jax that sees the accelerator (jax[cuda13] on NVIDIA,
# jax[tpu] on TPU). Notes on what the figures mean:
# - The notebooks and tests pin float32 matmul precision (TPUs default to one bfloat16 pass, NVIDIA GPUs to TF32),
#   so their float32 tolerances are the same on every device.
# - On a GPU, nbdev_test runs up to 8 notebooks at once, each in its own process; JAX would give each 75% of the
#   GPU's memory, so preallocation is turned off here (XLA_PYTHON_CLIENT_PREALLOCATE=false).
# - tests/test_sharding.py always runs on 8 simulated CPU devices (its subprocesses set JAX_PLATFORMS=cpu).
# - bench/generate.py leaves transformers on the CPU: the decode columns compare our jax on the device with
#   transformers (PyTorch) on the same machine's CPU cores, not GPU with GPU.
# Exit status: 0 when every notebook and test passed, 1 when any failed (the row is written either way).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
LOG_DIR=${LOG_DIR:-bench/out/accelerator}
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/device.json "$LOG_DIR"/notebooks.* "$LOG_DIR"/pytest.* "$LOG_DIR"/generate.*  # no stale results
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1

MODE=full
[[ "${QUICK:-0}" == 1 ]] && MODE=quick
[[ -n "${NOTEBOOKS:-}${TESTS:-}${BENCH_ARGS:-}" ]] && MODE=partial  # a selection of one's own
if [[ "${QUICK:-0}" == 1 ]]; then
  NOTEBOOKS=${NOTEBOOKS:-'^(33_testing|02_gemma_rope|34_sharding)\.ipynb$'}
  TESTS=${TESTS:-tests/test_bigvision.py}
  BENCH_ARGS=${BENCH_ARGS:---batch 1 --new-tokens 8 --repeats 1}
fi
TESTS=${TESTS:-tests/}

"$PY" - >"$LOG_DIR/device.json" <<'EOF' || { echo "accelerator_check: jax could not start (see above)" >&2; exit 1; }
import json, os, platform, jax
name = getattr(jax.devices()[0], "device_kind", str(jax.devices()[0]))
if jax.default_backend() == "cpu":  # JAX names it "cpu": say which, and how many cores
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), platform.processor())
    name = f"CPU ({model}, {os.cpu_count()} cores)"
print(json.dumps(dict(device=name, backend=jax.default_backend(), count=jax.device_count(), jax=jax.__version__)))
EOF
echo "accelerator_check ($MODE): $(cat "$LOG_DIR/device.json")"

now() { date +%s.%N; }
limit=()
[[ -n "${STEP_TIMEOUT:-}" ]] && limit=(timeout "$STEP_TIMEOUT")
if command -v nbdev_test >/dev/null; then NBDEV_TEST=(nbdev_test)
else NBDEV_TEST=("$PY" -c "from nbdev.test import nbdev_test; nbdev_test()"); fi
nb_args=(--path nbs --do_print)
[[ -n "${NOTEBOOKS:-}" ]] && nb_args+=(--file_re "$NOTEBOOKS")

echo "== notebooks: nbdev_test ${nb_args[*]}"
t0=$(now)
"${limit[@]}" "${NBDEV_TEST[@]}" "${nb_args[@]}" >"$LOG_DIR/notebooks.log" 2>&1
nb_rc=$?
echo "$t0 $(now)" >"$LOG_DIR/notebooks.time"
tail -n 25 "$LOG_DIR/notebooks.log"

echo "== tests: pytest $TESTS ${PYTEST_ARGS:-}"
t0=$(now)
# shellcheck disable=SC2086  # TESTS is a list of pytest arguments
"${limit[@]}" "$PY" -m pytest $TESTS ${PYTEST_ARGS:-} -q -p no:cacheprovider --junitxml="$LOG_DIR/pytest.xml" \
  >"$LOG_DIR/pytest.log" 2>&1
py_rc=$?
echo "$t0 $(now)" >"$LOG_DIR/pytest.time"
tail -n 15 "$LOG_DIR/pytest.log"

echo "== decode: python bench/generate.py ${BENCH_ARGS:-}"
# shellcheck disable=SC2086
"${limit[@]}" "$PY" bench/generate.py ${BENCH_ARGS:-} >"$LOG_DIR/generate.log" 2>"$LOG_DIR/generate.err"
bench_rc=$?
if (( bench_rc )); then tail -n 20 "$LOG_DIR/generate.err"; else cat "$LOG_DIR/generate.log"; fi

MODE=$MODE NB_RC=$nb_rc PY_RC=$py_rc BENCH_RC=$bench_rc LOG_DIR=$LOG_DIR "$PY" - <<'EOF'
"Summarise the logs as one table row and put it into bench/RESULTS.md's accelerator section."
import datetime, json, os, re, xml.etree.ElementTree as ET
from pathlib import Path
logs = Path(os.environ["LOG_DIR"])
dev = json.loads((logs / "device.json").read_text())

nb_log = (logs / "notebooks.log").read_text()
started = len(re.findall(r"^Starting ", nb_log, re.M))
failed_block = nb_log.split("Failed On The Following Notebooks:")[-1] if "Failed On The Following" in nb_log else ""
nb_failed = [l.strip() for l in failed_block.splitlines() if l.startswith("\t")]
seconds = lambda f: (lambda a, b: b - a)(*map(float, (logs / f).read_text().split()))
nb_time = seconds("notebooks.time")
if started == 0 and os.environ["NB_RC"] != "0": nb_failed = ["(nbdev_test did not start)"]
timed_out = lambda rc: os.environ[rc] == "124"

try:
    suite = ET.parse(logs / "pytest.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    tests = f"{n - f - e - s} / {f + e} / {s}"
except (FileNotFoundError, ET.ParseError):
    tests = "timed out" if timed_out("PY_RC") else "did not run"
py_time = seconds("pytest.time")

decode = {}
if os.environ["BENCH_RC"] == "0":
    for line in (logs / "generate.log").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[0].isdigit():  # batch, prefills, decode tok/s ours, theirs, ..., same tokens
            decode[int(cells[0])] = f"{cells[3]} / {cells[4]}", cells[9]
cell = lambda b: decode[b][0] if b in decode else "–"
same = ", ".join(f"{decode[b][1]}" for b in sorted(decode)) or (
    "timed out" if timed_out("BENCH_RC") else "failed" if os.environ["BENCH_RC"] != "0" else "–")

notebooks = f"{started - len(nb_failed)} / {len(nb_failed)}"
if timed_out("NB_RC"):  # killed before its summary: count the notebooks that finished
    notebooks = f"timed out: {len(re.findall(r'^- Completed ', nb_log, re.M))} of {started} started finished"
row = [dev["device"], f"{dev['backend']} x {dev['count']}", dev["jax"], os.environ["MODE"], notebooks,
       f"{nb_time:.0f}", tests, f"{py_time:.0f}", cell(1), cell(8), same, datetime.date.today().isoformat()]
line = "| " + " | ".join(row) + " |"
print("\n" + line)
if nb_failed: print("notebooks failed:", ", ".join(nb_failed))
if os.environ.get("NO_WRITE") == "1": raise SystemExit

TITLE = "## Accelerator check (`tools/accelerator_check.sh`)"
HEAD = f"""{TITLE}

Written by `tools/accelerator_check.sh` (its header says how to run it): one row per device and mode, each run
replacing its own row. Notebooks: `nbdev_test --path nbs`; tests: `pytest tests/` (passed / failed or errors /
skipped); decode: `bench/generate.py` (`paligemma-bench-small`, float32, greedy, 16-token prompt + 256 image tokens,
32 new tokens), in tokens per second, ours on the device / transformers, which the benchmark keeps on the same
machine's CPU. Times are wall-clock seconds. Rows of mode `quick` cover three notebooks (33_testing, 02_gemma_rope,
34_sharding), `tests/test_bigvision.py` and a short benchmark (batch 1, 8 new tokens, 1 repeat) only; `partial`
rows a selection of their own.

| device | backend x devices | jax | mode | notebooks passed / failed | notebooks (s) | tests passed / failed / skipped | tests (s) | decode batch 1 (tok/s) | decode batch 8 (tok/s) | same tokens | date |
|---|---|---|---|---|---|---|---|---|---|---|---|"""
path = Path("bench/RESULTS.md")
text = path.read_text() if path.exists() else "# Benchmark results\n"
start = text.find(TITLE)
if start < 0: before, old, after = text.rstrip("\n") + "\n\n", "", ""
else:
    nxt = re.search(r"^## ", text[start + len(TITLE):], re.M)
    end = start + len(TITLE) + nxt.start() if nxt else len(text)
    before, old, after = text[:start], text[start:end], text[end:]
key = lambda r: (r.strip("|").split("|")[0].strip(), r.strip("|").split("|")[3].strip())
rows = [r for r in old.splitlines() if r.startswith("| ") and not r.startswith("| device ") and key(r) != key(line)]
section = HEAD + "\n" + "\n".join(sorted(rows + [line])) + "\n"
path.write_text(before + section + ("\n" + after if after else ""))
print(f"wrote the row into {path}")
EOF
(( nb_rc == 0 && py_rc == 0 )) || exit 1
