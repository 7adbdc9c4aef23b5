"""Saved notebook outputs are clean and cells readable: pure json parsing of every `nbs/*.ipynb`, no kernel.

The course's rules for every lesson: a figure; exercises with a cell to try them in (parts 1-8, as the index's lesson
tables group the notebooks); outputs a reader can take in; code that fits the page; pointers that name their lesson,
by a number and a name that agree; nothing used before the lesson that builds it."""
import ast
import importlib.util
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
NOTEBOOKS = sorted(p.name for p in NBS.glob("*.ipynb"))
LESSONS = [n for n in NOTEBOOKS if n != "index.ipynb"]
MAX_CELL_LINES = 60
MAX_OUTPUT_LINES = 40
MAX_CODE_WIDTH = 120  # the site shows about 126 columns of code at 1366 px
EXERCISE_PARTS = range(1, 9)  # parts 1-8 end with exercises; 9 (using it) and 10 (under the hood) need none


def load_tool(name: str):
    "A script of tools/ as a module (tools/ is not a package): `load_tool('docs')` is tools/docs.py."
    spec = importlib.util.spec_from_file_location(f"paligemma_tools_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def course_parts() -> list[tuple[int, str, list[str]]]:
    """(number, title, notebook file names) of each part of the course, as the index's lesson tables list them
    (tools/site_chrome.py reads the same tables for the sidebar)."""
    chrome = load_tool("site_chrome")
    return [(int(m.group(1)), title, names) for title, names in chrome.sidebar_groups(NBS)
            if (m := re.match(r"(\d+)\.", title))]


def exercise_lessons() -> list[str]:
    "The stems of the lessons of parts 1-8, in course order."
    return [Path(n).stem for number, _, names in course_parts() if number in EXERCISE_PARTS for n in names]


URL = re.compile(r"[A-Za-z][\w+.-]*://\S+")
MACHINE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[A-Za-z_.][\w.-]*/){2,}")  # /root/.cache/x/, not a URL or a/b/c
MACHINE_WORDS = re.compile(r"site-packages|\.pyenv|/tmp/")
WARNING = re.compile(r"Warning:")
PROGRESS = re.compile(r"\d+%\||\d it/s\]|\ds/it\]")
SCALAR_REPR = re.compile(r"np\.(?:float64|float32|int64|int32|bool_)\(|Array\([^()]*?dtype=")
PLOT_RETURN = re.compile(r"\[?<matplotlib\.|Text\(|<Figure size")
SOLUTION_HEAD = ["#| code-fold: true", '#| code-summary: "Solution"']


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


def _code(src: str) -> str:
    "A code cell's Python: IPython's `%magic` and `!shell` lines left out."
    return "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))


def _checks(stmt: ast.stmt) -> bool:
    """Whether a statement is a check that can fail: `assert`, a call of `test_*` or `assert*` (fastcore's
    `test_eq`, `np.testing.assert_allclose`), or a loop or `with` block whose last statement is one."""
    if isinstance(stmt, ast.Assert): return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        f = stmt.value.func
        return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")).startswith(("test_", "assert"))
    return isinstance(stmt, (ast.For, ast.While, ast.With)) and _checks(stmt.body[-1])


def _is_try_cell(cell: dict) -> bool:
    "A cell to try an exercise in before opening its solution: code of comments only (so it runs), no directive."
    lines = [l.strip() for l in _text(cell["source"]).splitlines() if l.strip()]
    return cell["cell_type"] == "code" and bool(lines) and all(l.startswith("#") and not l.startswith("#|")
                                                               for l in lines)


def test_exercise_lessons_are_parts_1_to_8():
    "The index numbers its parts 1, 2, ... and parts 1-8 hold the course's first lessons, in file order from 00."
    parts = course_parts()
    assert [n for n, _, _ in parts] == list(range(1, len(parts) + 1)), [t for _, t, _ in parts]
    assert len(parts) > max(EXERCISE_PARTS), f"the index lists {len(parts)} parts, not more than {max(EXERCISE_PARTS)}"
    stems = exercise_lessons()
    assert stems and stems == [Path(n).stem for n in LESSONS[:len(stems)]], stems


@pytest.mark.parametrize("stem", exercise_lessons())
def test_exercises(stem):
    """A lesson of parts 1-8 ends with `## Exercises`: at least two, each a question (markdown), an empty cell to try
    it in (comments only, e.g. `# Your code here: ...`), then its folded solution, which ends in a check."""
    name = f"{stem}.ipynb"
    nb = cells(name)
    heads = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown"
             and re.search(r"^## Exercises\s*$", _text(c["source"]), re.M)]
    assert heads, f"{name}: no '## Exercises' markdown heading"
    solutions, problems = 0, []
    for i, cell in enumerate(nb[heads[0] + 1:], heads[0] + 1):
        lines = _text(cell["source"]).splitlines()
        if cell["cell_type"] != "code" or not lines or lines[0].strip() != SOLUTION_HEAD[0]: continue
        solutions += 1
        if len(lines) < 2 or lines[1].strip() != SOLUTION_HEAD[1]:
            problems.append(f"  cell {i}: second line is not {SOLUTION_HEAD[1]!r}: {lines[1:2]}")
        if any(re.match(r"#\|\s*export", l) for l in lines):
            problems.append(f"  cell {i}: a solution must not be exported")
        if not _is_try_cell(nb[i - 1]):
            problems.append(f"  cell {i}: no try-cell before the solution (an empty code cell of comments only)")
        elif nb[i - 2]["cell_type"] != "markdown":
            problems.append(f"  cell {i}: no question (a markdown cell) before its try-cell")
        try: body = ast.parse(_code(_text(cell["source"]))).body
        except SyntaxError as e: problems.append(f"  cell {i}: does not parse: {e}"); continue
        if not body or not _checks(body[-1]):
            last = [l for l in lines if l.strip()][-1]
            problems.append(f"  cell {i}: does not end in a check (assert, test_eq, np.testing.assert_...): {last!r}")
    if solutions < 2: problems.append(f"  {solutions} solution cell(s) after cell {heads[0]}, need at least 2")
    _report(name, problems, "exercises")


# ---- what every page shows

IMAGE_MD = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*\bsrc=[\"']([^\"']+)")
BARE_NUMBER = re.compile(r"\b(?:[Nn]otebook|[Ll]esson)s?\s+\d{1,2}[a-z]?\b(?!_)")  # `lesson 13`, not `13_sampler`


@pytest.mark.parametrize("name", LESSONS)
def test_has_a_figure(name):
    "Every lesson shows a figure: a saved image output, or an image in its markdown from a file of nbs/ (or attached)."
    if any(mime.startswith("image/") for _, out in outputs(name) for mime in out.get("data", {})): return
    shown = [m.group(1) or m.group(2) for c in cells(name) if c["cell_type"] == "markdown"
             for m in IMAGE_MD.finditer(_text(c["source"]))]
    assert any(s.startswith("attachment:") or (NBS / s).is_file() for s in shown), \
        f"{name}: no figure (no saved image output, no image in markdown from a file of nbs/: {shown})"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_outputs_short(name):
    """No saved output a reader must scroll through: a cell's text on stdout (or stderr), or a value shown as plain
    text, is at most 40 lines (a figure's own `text/plain`, `<Figure ...>`, is not shown)."""
    problems = []
    for i, cell in enumerate(cells(name)):
        if cell["cell_type"] != "code": continue
        texts = {}
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if out["output_type"] == "stream":
                texts[out.get("name")] = texts.get(out.get("name"), "") + _text(out.get("text"))
            elif set(data) == {"text/plain"}: texts[len(texts)] = _text(data["text/plain"])
        for text in texts.values():
            n = len(text.rstrip("\n").split("\n"))
            if n > MAX_OUTPUT_LINES: problems.append(f"  cell {i}: {n} lines, starting {text[:60]!r}")
    _report(name, problems, f"outputs longer than {MAX_OUTPUT_LINES} lines")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_fits_the_page(name):
    "No line of code, in a code cell or a fenced block of markdown, is longer than 120 characters."
    problems = []
    for i, cell in enumerate(cells(name)):
        src = _text(cell["source"])
        blocks = [src] if cell["cell_type"] == "code" else [m.group(0) for m in re.finditer(
            r"(?ms)^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", src)] if cell["cell_type"] == "markdown" else []
        problems += [f"  cell {i}: {len(l)} characters: {l[:60]!r}..." for b in blocks for l in b.splitlines()
                     if len(l) > MAX_CODE_WIDTH]
    _report(name, problems, f"code lines longer than {MAX_CODE_WIDTH} characters")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_cell_options_parse(name):
    """Every `#| key: value` option of a code cell is valid YAML, as Quarto and the docs build read them: one that is
    not (`#| fig-alt: a: b`) silently drops all the cell's options (`echo: false` included)."""
    import yaml
    problems = []
    for i, cell in enumerate(cells(name)):
        if cell["cell_type"] != "code": continue
        for line in _text(cell["source"]).splitlines():
            if not line.startswith("#|"): break
            if re.match(r"#\|\s*[\w-]+:", line):
                try: ok = isinstance(yaml.safe_load(line[2:].strip()), dict)
                except yaml.YAMLError: ok = False
                if not ok: problems.append(f"  cell {i}: {line!r} (quote the value, or write it without ': ')")
    _report(name, problems, "cell options that are not valid YAML")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_bare_lesson_numbers(name):
    """A pointer to another lesson names it by its file name in backticks (`12_gemma_cache`, which the site turns into
    a link labelled with the lesson's number and title), never by a bare number (`lesson 12`, `notebook 07`) that
    goes stale when the course is renumbered: in prose, comments and strings alike."""
    problems = [f"  cell {i} ({c['cell_type']}): {_excerpt(_text(c['source']), m)}" for i, c in enumerate(cells(name))
                for m in BARE_NUMBER.finditer(_text(c["source"]))]
    _report(name, problems, "lessons pointed at by a bare number")


def test_cross_references_agree():
    """Every `NN_name` in the notebooks (and README.md) is a notebook's file name, and a link whose text names a
    notebook goes to that notebook's page: tools/docs.py's check, which fails the docs build."""
    problems = load_tool("docs").cross_reference_problems(NBS, extra=[ROOT / "README.md"])
    assert not problems, "cross-references whose number and name disagree:\n  " + "\n  ".join(problems)


def test_cross_reference_check_catches_a_renumbering(tmp_path):
    "After a renumbering, an old number with its old name, or a link text naming another page, is reported."
    def notebook(name, *cells):
        nb = {"cells": [{"cell_type": t, "metadata": {}, "source": s} for t, s in cells], "metadata": {}}
        (tmp_path / name).write_text(json.dumps(nb))
    notebook("12_gemma_cache.ipynb", ("markdown", "# The KV cache\nThe sampler, `13_sampler`, reads it."))
    notebook("13_sampler.ipynb", ("markdown", "Built on `12_gemma_cache` and [12_gemma_cache](gemma_cache.html)."),
             ("markdown", "As `13_gemma_cache` showed, and [`12_gemma_cache`](sampler.html)."),
             ("code", "# the cache of 12_gemma_cache.ipynb, the hub of 14_hub"))
    (tmp_path / "README.md").write_text("See [13_sampler](docs/sampler.html) and [13_sampler](docs/gemma_cache.html).")
    got = load_tool("docs").cross_reference_problems(tmp_path, extra=[tmp_path / "README.md"])
    assert got == ["13_sampler.ipynb: cell 1: 13_gemma_cache is no notebook (renumbered?)",
                   "13_sampler.ipynb: cell 1: [`12_gemma_cache`](sampler.html) links to 13_sampler",
                   "13_sampler.ipynb: cell 2: 14_hub is no notebook (renumbered?)",
                   "README.md: [13_sampler](docs/gemma_cache.html) links to 12_gemma_cache"], got

# ---- course order: no lesson uses what a later lesson builds

def lesson(name: str) -> str:
    "A notebook's place in the course, comparable as a string: `07_model.ipynb` -> `07`, `03a_x.ipynb` -> `03a`."
    return name.split("_", 1)[0]


def _lesson_of_modules() -> dict[str, str]:
    "`paligemma.x.y` -> the number of the notebook that exports it (`#| default_exp x.y`)."
    out = {}
    for name in NOTEBOOKS:
        for cell in cells(name):
            if cell["cell_type"] != "code": continue
            if m := re.search(r"(?m)^#\|\s*default_exp\s+(\S+)", _text(cell["source"])):
                out[f"paligemma.{m.group(1)}"] = lesson(name)
    return out


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n[:2].isdigit()])
def test_no_lesson_uses_a_later_one(name):
    """A lesson's own cells import nothing a later lesson exports. Exported cells are the package's business
    (tests/test_layout.py checks their order, allowing documented lazy imports inside functions)."""
    import paligemma  # its names' modules are a table (`_MODULE_OF`): nothing heavy is imported here
    def defined_in(name):  # `from paligemma import Sampler` is paligemma.sampler's; `import tiny_model` a submodule
        return paligemma._MODULE_OF.get(name, f"paligemma.{name}")
    lesson_of, later = _lesson_of_modules(), []
    for i, cell in enumerate(cells(name)):
        src = _text(cell["source"])
        if cell["cell_type"] != "code" or re.search(r"(?m)^#\|\s*export", src): continue
        try: tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
        except SyntaxError: continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = ([defined_in(a.name) for a in node.names] if node.module == "paligemma"
                        else [node.module] + [f"{node.module}.{a.name}" for a in node.names])  # `from x import sub`
            elif isinstance(node, ast.Import): mods = [a.name for a in node.names]
            else: continue
            later += [(i, m) for m in mods if lesson_of.get(m, "00") > lesson(name)]
    assert not later, f"{name} imports what later lessons build: " + ", ".join(
        f"cell {i}: {m} ({lesson_of[m]})" for i, m in later)
