"""The package's layering, read from its source with `ast`, and the reference configs the tests build models from."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "paligemma"
HAND_WRITTEN = {"paligemma", "paligemma._modidx", "paligemma.assets"}  # not exported by a notebook

# Imports inside functions that reach a module of a later lesson, each with the reason it may. A module's top-level
# imports never may: a lesson builds only on earlier ones.
LATER_IMPORTS_ALLOWED = {
}

# Imports inside a function, module by module: the command line defers everything past `--help`, and the optional
# extras (`hf`, `kaggle`) are imported where they are used. Nothing else imports inside a function.
LAZY_IMPORTS_ALLOWED = {
    "paligemma.cli": "`paligemma --help` answers without importing JAX; each command imports what it runs",
    "paligemma.hub": "huggingface_hub and kaggle are the optional `hf` and `kaggle` extras",
}
# Modules of other work in progress (issue 25 item 4) that still import inside functions: drop each as it is done.
LAZY_IMPORTS_PENDING = {"paligemma.checkpoints", "paligemma.saving", "paligemma.testing", "paligemma.tokenizer",
                        "paligemma.tasks.detection", "paligemma.demo.tiny_model"}

# The model's own modules hold the model only: adapters (`lora`), device meshes and several hosts (`sharding`) and
# recording (`sow`) attach from outside. A layer hands a value to a recording through `nn.record`, one line each.
CORE = ["paligemma.nn", "paligemma.gemma.rope", "paligemma.gemma.layers", "paligemma.gemma.transformer",
        "paligemma.gemma.cache", "paligemma.vit.model", "paligemma.model"]
NOT_IN_CORE = ("lora", "mesh", "multihost", "multi-host", "process_count", "process_index", "sow_config", "set_sow")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


LESSON_STEM = re.compile(r"^(\d\d[a-z]?)_(.+)$")  # `09_formats_bigvision`: lesson `09`; an inserted `09a_x`: `09a`


def notebook_exports() -> dict[str, str]:
    "Module name -> the stem of the notebook whose `#| default_exp` exports it."
    out = {}
    for nb in sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if LESSON_STEM.match(p.stem)):
        for cell in json.loads(nb.read_text())["cells"]:
            m = re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(cell["source"]), re.M)
            if m:
                out[f"paligemma.{m.group(1)}"] = nb.stem
                break
    return out


EXPORTS = notebook_exports()
LESSON = {module: LESSON_STEM.match(stem)[1] for module, stem in EXPORTS.items()}  # "07" < "07a" < "08" as strings


def _absolute(importer: str, node: ast.ImportFrom) -> str:
    if not node.level: return node.module or ""
    package = importer if importer in PACKAGES else importer.rsplit(".", 1)[0]
    parts = package.split(".")
    return ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))


def imports(importer: str) -> list[tuple[str, str | None, int, bool]]:
    "(paligemma module, name imported from it or None, line, inside a function) for each import in `importer`."
    out = []
    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, None, child.lineno, nested) for a in child.names if a.name.split(".")[0] == "paligemma")
            elif isinstance(child, ast.ImportFrom):
                target = _absolute(importer, child)
                if target.split(".")[0] != "paligemma": continue
                for a in child.names:  # `from paligemma.demo import tiny_model` imports a module
                    sub = f"{target}.{a.name}"
                    out.append((sub, None, child.lineno, nested) if sub in MODULES else
                               (target, a.name, child.lineno, nested))
            visit(child, nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    visit(TREES[importer], False)
    return out


def test_every_module_is_read():
    "The checks below see the package: the model, the sampler and the CLI, each exported by a notebook."
    assert {"paligemma.model", "paligemma.sampler", "paligemma.cli", "paligemma.gemma.layers"} <= set(EXPORTS)
    assert len(EXPORTS) >= 20 and all(m in MODULES for m in EXPORTS), sorted(set(EXPORTS) - set(MODULES))
    found = {(m, t, nested) for m in MODULES for t, _, _, nested in imports(m)}
    assert ("paligemma.model", "paligemma.gemma.transformer", False) in found  # `from .gemma.transformer import`
    assert ("paligemma.gemma.transformer", "paligemma.nn", False) in found  # `from ..nn import`
    assert ("paligemma.cli", "paligemma.sampler", True) in found  # inside a function


def test_no_import_cycles():
    "No chain of imports, at the top of a module or inside its functions, leads back to where it started."
    graph = {m: sorted({t for t, _, _, _ in imports(m) if t in MODULES and t != m}) for m in MODULES}
    cycles, state = [], {}
    def walk(m, path):
        state[m] = "open"
        for t in graph[m]:
            if state.get(t) == "open": cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state: walk(t, path + [t])
        state[m] = "done"
    for m in graph:
        if m not in state: walk(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_follow_the_course():
    "A module imports only modules of earlier lessons; a later one only inside a function, and only if allowed."
    wrong = []
    for importer in EXPORTS:
        for target, name, line, nested in imports(importer):
            if target in HAND_WRITTEN or target in PACKAGES or target == importer: continue  # __version__, packages
            if target not in LESSON:
                wrong.append(f"{importer}:{line} imports {target}, which no notebook exports")
            elif LESSON[target] >= LESSON[importer] and (not nested or (importer, target) not in LATER_IMPORTS_ALLOWED):
                where = "inside a function" if nested else "at the top"
                wrong.append(f"{importer} (lesson {LESSON[importer]}):{line} imports {target} "
                             f"(lesson {LESSON[target]}) {where}")
    assert not wrong, "\n".join(wrong)


def test_allow_list_is_in_use():
    "Every allowed later import still exists, so the list never outlives the code it excuses."
    used = {(m, t) for m in EXPORTS for t, _, _, nested in imports(m) if nested}
    assert set(LATER_IMPORTS_ALLOWED) <= used, sorted(set(LATER_IMPORTS_ALLOWED) - used)


def test_no_private_names_across_modules():
    "`from paligemma.x import _y` and `x._y` reach into another module's internals: make the name public instead."
    wrong = []
    scripts = {str(p.relative_to(ROOT)): ast.parse(p.read_text()) for d in ("tests", "bench", "tools")
               for p in sorted((ROOT / d).rglob("*.py"))}  # the package's users: tests, benchmarks, tools
    for importer, tree in {**TREES, **scripts}.items():
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.asname and a.name in MODULES}
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(importer, node) if importer in MODULES else node.module or ""
                for a in node.names:
                    if f"{target}.{a.name}" in MODULES: aliases.add(a.asname or a.name)
                    elif target.split(".")[0] == "paligemma" and a.name.startswith("_") and not a.name.startswith("__"):
                        wrong.append(f"{importer}:{node.lineno} imports {a.name} from {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                wrong.append(f"{importer}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_each_module_has_the_name_of_its_notebook():
    "`NN_gemma_layers.ipynb` exports `paligemma/gemma/layers.py`: the stem without its number, `_` for `/`."
    wrong = [f"{stem}.ipynb exports {m}" for m, stem in EXPORTS.items()
             if LESSON_STEM.match(stem)[2] != m.removeprefix("paligemma.").replace(".", "_")]
    unexported = sorted(set(MODULES) - set(EXPORTS) - HAND_WRITTEN - PACKAGES)
    assert not wrong and not unexported, "\n".join(wrong + [f"{m} is exported by no notebook" for m in unexported])


def test_module_docstrings_are_whole_sentences():
    "Each exported module opens with its notebook's one-line summary, a whole sentence ending in a period."
    wrong = []
    for m in EXPORTS:
        doc = ast.get_docstring(TREES[m]) or ""
        if not (doc and "\n" not in doc and doc.endswith(".") and (doc[0].isupper() or doc[0] in "`'\"")):
            wrong.append(f"{m}: {doc!r}")
    assert not wrong, "\n".join(wrong)


def test_pyflakes_finds_no_unused_import():
    from pyflakes import checker, messages
    found = []
    for m, tree in TREES.items():
        if m == "paligemma._modidx": continue
        for msg in checker.Checker(tree, filename=str(MODULES[m].relative_to(ROOT))).messages:
            if isinstance(msg, (messages.UnusedImport, messages.RedefinedWhileUnused)): found.append(str(msg))
    assert not found, "\n".join(sorted(found))


def defined(module: str) -> set[str]:
    "Names a module defines at its top level (classes, functions, assignments), not those it imports."
    out = set()
    for n in TREES[module].body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            out |= {t.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    return out


def test_lazy_exports_name_their_modules():
    "Each name `paligemma/__init__.py` exports lazily is defined by the module it names; `import paligemma` needs no JAX."
    exports = next(n.value for n in TREES["paligemma"].body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "_EXPORTS")
    wrong = []
    for module, names in ast.literal_eval(exports).items():
        assert module in MODULES, f"paligemma/__init__.py names {module}, which does not exist"
        wrong += [f"{module}.{name}" for name in names if name not in defined(module)]
    assert not wrong, "not defined where paligemma/__init__.py says: " + ", ".join(wrong)
    code = "import sys, paligemma; dir(paligemma); print(sorted(m for m in ('jax', 'flax', 'numpy') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_core_names_no_extension():
    "No adapter, mesh, multi-host or recording-switch name anywhere in the model's own modules, comments included."
    found = [f"{m}:{i}: {word}" for m in CORE for i, line in enumerate(MODULES[m].read_text().splitlines(), 1)
             for word in NOT_IN_CORE if word in line.lower()]
    assert not found, "\n".join(found)


def test_core_records_through_one_hook():
    "`sow` is called in `nn.record` only; each recorded value is one `record(...)` statement of its own."
    sows = [(m, n.lineno) for m in CORE for n in ast.walk(TREES[m])
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "sow"]
    record = next(n for n in TREES["paligemma.nn"].body if isinstance(n, ast.FunctionDef) and n.name == "record")
    assert [line for _, line in sows] == [n.lineno for n in ast.walk(record) if isinstance(n, ast.Call)
                                          and isinstance(n.func, ast.Attribute) and n.func.attr == "sow"], sows
    calls = [n for m in CORE for n in ast.walk(TREES[m]) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "record"]
    statements = [n.value for m in CORE for n in ast.walk(TREES[m]) if isinstance(n, ast.Expr)]
    assert len(calls) >= 6 and all(any(c is v for v in statements) for c in calls)  # a statement, not inside one


def test_imports_inside_functions_only_where_allowed():
    "A function-level import is a hidden dependency: allowed in the command line and for the optional extras only."
    wrong = []
    for m, tree in TREES.items():
        if m in LAZY_IMPORTS_ALLOWED or m in LAZY_IMPORTS_PENDING: continue
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                wrong += [f"{m}:{n.lineno} {ast.unparse(n)}" for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not wrong, "\n".join(wrong)
    for m in LAZY_IMPORTS_ALLOWED: assert m in MODULES, m


def test_sampling_strategies_are_one_open_family():
    "The sampler asks a strategy to choose; it never lists the strategies it knows (`isinstance(s, (A, B))`)."
    tree = TREES["paligemma.sampler"]
    bases = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    strategies = {name for name, b in bases.items() if b == ["Strategy"]}
    assert {"Greedy", "Sampling"} <= strategies
    lists = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "isinstance"
             and isinstance(n.args[1], ast.Tuple) and {ast.unparse(e) for e in n.args[1].elts} & strategies]
    assert not lists, f"paligemma/sampler.py lines {lists}"
