"""Saved notebook outputs are clean and cells readable: pure json parsing of every `nbs/*.ipynb`, no kernel."""
import json
import re
from functools import cache
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(p.name for p in NBS.glob("*.ipynb"))
# Lessons that teach a core idea end with checked exercises.
CORE_LESSONS = ["00_jax_nnx", "01_nn", "02_gemma_rope", "03_gemma_layers", "04_gemma_transformer", "06_vit_model",
                "07_model", "12_gemma_cache", "13_sampler", "22_lora"]
MAX_CELL_LINES = 60

URL = re.compile(r"[A-Za-z][\w+.-]*://\S+")
MACHINE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[A-Za-z_.][\w.-]*/){2,}")  # /root/.cache/x/, not a URL or a/b/c
MACHINE_WORDS = re.compile(r"site-packages|\.pyenv|/tmp/")
WARNING = re.compile(r"Warning:")
PROGRESS = re.compile(r"\d+%\||\d it/s\]|\ds/it\]")
SCALAR_REPR = re.compile(r"np\.(?:float64|float32|int64|int32|bool_)\(|Array\([^()]*?dtype=")
PLOT_RETURN = re.compile(r"\[?<matplotlib\.|Text\(|<Figure size")
SOLUTION_HEAD = ["#| code-fold: true", '#| code-summary: "Solution"']
SOLUTION_CHECK = re.compile(r"assert|test_|testing\.")


@cache
def cells(name: str) -> list[dict]:
    return json.loads((NBS / name).read_text())["cells"]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def outputs(name: str):
    "(cell index, output) for each saved output of each code cell."
    for i, cell in enumerate(cells(name)):
        if cell["cell_type"] == "code":
            for out in cell.get("outputs", []):
                yield i, out


def output_texts(name: str):
    "(cell index, output type, text) for the readable text of each output: streams, text data, error tracebacks."
    for i, out in outputs(name):
        kind = out["output_type"]
        if kind == "stream":
            yield i, kind, _text(out.get("text"))
        elif kind == "error":
            yield i, kind, "\n".join([out.get("ename", ""), out.get("evalue", "")] + out.get("traceback", []))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                yield i, kind, _text(value)


def _excerpt(text: str, m: re.Match) -> str:
    return repr(text[max(0, m.start() - 40):m.end() + 40])


def _report(name: str, problems: list[str], what: str):
    assert not problems, f"{name}: {what}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_machine_paths(name):
    problems = []
    for i, kind, text in output_texts(name):
        plain = URL.sub("<url>", text)
        if m := MACHINE_PATH.search(plain) or MACHINE_WORDS.search(plain):
            problems.append(f"  cell {i} ({kind}): {_excerpt(plain, m)}")
    _report(name, problems, "machine paths in saved outputs")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_warnings_or_progress_bars(name):
    problems = []
    for i, kind, text in output_texts(name):
        for pattern in (WARNING, PROGRESS):
            if m := pattern.search(text): problems.append(f"  cell {i} ({kind}): {_excerpt(text, m)}")
        if "tqdm" in text: problems.append(f"  cell {i} ({kind}): tqdm in {text[:80]!r}")
    _report(name, problems, "warnings or progress bars in saved outputs")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_stderr_or_errors(name):
    problems = []
    for i, out in outputs(name):
        if out["output_type"] == "stream" and out.get("name") == "stderr":
            problems.append(f"  cell {i}: stderr {_text(out.get('text'))[:200]!r}")
        if out["output_type"] == "error":
            problems.append(f"  cell {i}: error {out.get('ename')}: {str(out.get('evalue'))[:200]!r}")
    _report(name, problems, "stderr or error outputs")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_scalar_reprs(name):
    problems = []
    for i, kind, text in output_texts(name):
        if m := SCALAR_REPR.search(text): problems.append(f"  cell {i} ({kind}): {_excerpt(text, m)}")
    _report(name, problems, "numpy/jax reprs in saved outputs (format numbers with f-strings or float())")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_plot_return_values(name):
    problems = []
    for i, out in outputs(name):
        data = out.get("data", {})
        if any(mime.startswith("image/") for mime in data): continue  # a figure's own text/plain is fine
        text = _text(data.get("text/plain"))
        if m := PLOT_RETURN.search(text): problems.append(f"  cell {i} ({out['output_type']}): {_excerpt(text, m)}")
    _report(name, problems, "plotting return values printed (end the cell with plt.show() or ';')")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_empty_outputs(name):
    problems = [f"  cell {i}: {out.get('name')} stream {_text(out.get('text'))!r}" for i, out in outputs(name)
                if out["output_type"] == "stream" and not _text(out.get("text")).strip()]
    _report(name, problems, "empty output blocks")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_short(name):
    problems = []
    for i, cell in enumerate(cells(name)):
        n = len(_text(cell["source"]).splitlines())
        if cell["cell_type"] == "code" and n > MAX_CELL_LINES:
            problems.append(f"  cell {i}: {n} lines, starting {_text(cell['source'])[:60]!r}")
    _report(name, problems, f"code cells longer than {MAX_CELL_LINES} lines")


@pytest.mark.parametrize("stem", CORE_LESSONS)
def test_exercises(stem):
    "A core lesson ends with `## Exercises` and at least two folded solution cells, each ending with a check."
    name = f"{stem}.ipynb"
    assert (NBS / name).exists(), f"{name}: core lesson missing from nbs/"
    nb = cells(name)
    heads = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown"
             and re.search(r"^## Exercises\s*$", _text(c["source"]), re.M)]
    assert heads, f"{name}: no '## Exercises' markdown heading"
    solutions, problems = 0, []
    for i, cell in enumerate(nb[heads[0] + 1:], heads[0] + 1):
        lines = _text(cell["source"]).splitlines()
        if cell["cell_type"] != "code" or not lines or lines[0].strip() != SOLUTION_HEAD[0]: continue
        solutions += 1
        body = [l for l in lines if l.strip()]
        if len(lines) < 2 or lines[1].strip() != SOLUTION_HEAD[1]:
            problems.append(f"  cell {i}: second line is not {SOLUTION_HEAD[1]!r}: {lines[1:2]}")
        if any(re.match(r"#\|\s*export", l) for l in lines):
            problems.append(f"  cell {i}: a solution must not be exported")
        if not SOLUTION_CHECK.search(body[-1]):
            problems.append(f"  cell {i}: last line checks nothing: {body[-1]!r}")
    if solutions < 2: problems.append(f"  {solutions} solution cell(s) after cell {heads[0]}, need at least 2")
    _report(name, problems, "exercises")


# ---- course order: no lesson uses what a later lesson builds

def lesson(name: str) -> str:
    "A notebook's place in the course, comparable as a string: `07_model.ipynb` -> `07`, `09_formats_bigvision.ipynb` -> `07a`."
    return name.split("_", 1)[0]


def _lesson_of_modules() -> dict[str, str]:
    "`paligemma.x.y` -> the number of the notebook that exports it (`#| default_exp x.y`)."
    out = {}
    for name in NOTEBOOKS:
        for cell in cells(name):
            m = re.search(r"(?m)^#\|\s*default_exp\s+(\S+)", _text(cell["source"])) if cell["cell_type"] == "code" else None
            if m: out[f"paligemma.{m.group(1)}"] = lesson(name)
    return out


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n[:2].isdigit()])
def test_no_lesson_uses_a_later_one(name):
    """A lesson's own cells import nothing a later lesson exports. Exported cells are the package's business
    (tests/test_layout.py checks their order, allowing documented lazy imports inside functions)."""
    import ast
    import paligemma
    def defined_in(name):  # `from paligemma import Sampler` is paligemma.sampler's
        return getattr(getattr(paligemma, name, None), "__module__", None) or f"paligemma.{name}"
    lesson_of, later = _lesson_of_modules(), []
    for i, cell in enumerate(cells(name)):
        src = _text(cell["source"])
        if cell["cell_type"] != "code" or re.search(r"(?m)^#\|\s*export", src): continue
        try: tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
        except SyntaxError: continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = ([defined_in(a.name) for a in node.names]
                        if node.module == "paligemma" else [node.module])
            elif isinstance(node, ast.Import): mods = [a.name for a in node.names]
            else: continue
            later += [(i, m) for m in mods if lesson_of.get(m, "00") > lesson(name)]
    assert not later, f"{name} imports what later lessons build: " + ", ".join(f"cell {i}: {m} ({lesson_of[m]})" for i, m in later)
