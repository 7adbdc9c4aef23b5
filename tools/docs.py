"""Build the docs site from the notebooks into docs/, offline, with pip packages alone.

`nbdev_docs` renders with Quarto, which these machines cannot install. This runs the same nbdev processing
(`_proc/`: front matter, `show_doc` API docs, doc links, hidden cells, with `_quarto.yml`, `nbdev.yml` and
`sidebar.yml`) and renders `_proc/` with smalldocs (pure Python) instead. The notebooks are not executed: their
stored outputs are shown; only nbdev's `show_doc` step runs the exported cells, as it does under Quarto.

Afterwards:
- pages are named as nbdev names them (`output-file`, e.g. `33_testing.ipynb` -> `testing.html`), so nbdev's
  links (`sampler.html#sampler`) resolve;
- nbdev's absolute doc links (`doc_host` + `doc_baseurl`) become relative, so the site works from any folder;
- KaTeX is served from `site_libs/katex` (vendored from npm `katex` in tools/katex/), not from a CDN;
- every page also gets a Markdown copy (`page.llms.md`, with `llms.txt`), and README.md is the index page's copy,
  its links pointing into docs/ (in place of `nbdev_readme`, which needs Quarto).

Two fixes apply to nbdev's processing here (see `_patch_flax` and `_imports_only_for_mixed_cells`): without them
`show_doc` fails on every flax nnx.Module, and cells mixing imports with code run whole (writing files, failing).
And the code is on the page:
- each exported cell stays in the flow of the prose, folded under a summary naming what it defines
  (`source: apply_rope`), followed by its `show_doc` card (`show_exported`, in place of nbdev's `rm_export`);
- the cards show the signature the source writes (`true_signature`: the keyword-only `*`, `float | None`,
  `jnp.float32`, `jax.Array`), a foreign symbol a one-line card; `check_cards` fails the build on `NoneType`,
  `_ScalarMeta`, `jaxlib.`, `site-packages` or a machine path in any card;
- a last step (`tidy`) drops stderr and empty outputs, link syntax inside a card's code and a card heading that
  repeats the section heading above it, and links notebook names in prose (`26_demo_tiny_model`) to their pages.
`tools/site_chrome.py` groups the sidebar (`write_sidebar`) and adds the site's chrome (`decorate`): lesson labels
(`02 · Rotary position embeddings`, here also in the prose's links), code as wide as it is written at a laptop's width,
parameter tables that stack on a phone; `tools/site_figures.py` makes the figures files, lazy, with alt text and a
link to their full size. The build fails when a page breaks one of these rules (`check_site`), and before
anything is processed when a notebook names another by a number and a name that disagree (`13_gemma_cache` when 13
is the sampler; `cross_reference_problems`).

The repository is named once, in settings.ini (`user`, `repo`; `git_url`, `doc_host` and `doc_baseurl` derive from
them): the Colab, source and "Report an issue" links follow it; the Colab setup cell of every notebook clones it
(`--sync-repo` rewrites those cells after a fork changes it; the build fails while one disagrees).

Strict (`STRICT`; `--report-only` prints only): the build fails on a public method of an exported class without a
card, a parameter without a type or a line of detail (`api_report`), a figure whose text is shown under 9 pt in the
column at 1366 px (`site_figures.figure_text_sizes`), beyond what `PENDING` allows on the pages other engineers edit.

`nbdev_docs` still works wherever Quarto exists: this script writes only what nbdev itself writes (nbs/_quarto.yml,
nbs/nbdev.yml, nbs/sidebar.yml, _proc/) plus the output folder. (Under Quarto the two problems above remain.)

Run: python tools/docs.py [--out DIR] [--force] [--report-only | --no-pending]; python tools/docs.py --sync-repo
"""
import argparse, json, os, re, shutil, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KATEX = Path(__file__).resolve().parent / "katex"
KATEX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/katex@[0-9.]+/dist")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import site_chrome as _chrome  # tools/site_chrome.py: sidebar groups and the site's chrome


def _patch_flax():
    """flax 0.12.8's `PytreeMeta.__call__` has string annotations naming `Any`, which its module never imports, so
    `show_doc` of any nnx.Module (fastcore's `signature(..., eval_str=True)`) raises NameError. Give it `Any`."""
    import typing
    try: import flax.nnx.pytreelib as m
    except ImportError: return
    if not hasattr(m, "Any"): m.Any = typing.Any


EXPORTS = {"export", "exports", "exporti", "exec_doc"}


def _imports_only_for_mixed_cells():
    """nbdev's `show_doc` step runs every cell that imports something, whole. A cell that mixes imports with other
    code (nbdev's FAQ advises against it) then runs that code too: with side effects (files written relative to the
    working folder, subprocesses) and failing where it needs earlier cells that were not run. Here such a cell runs
    its import statements only, which is all `show_doc` needs; its stored outputs are kept. Exported and `show_doc`
    cells run as in nbdev, and still fail the build if they fail."""
    import ast, warnings
    import nbdev.processors as P
    if getattr(P.exec_show_docs, "_imports_only", False): return
    warnings.filterwarnings("ignore", message="Found cells containing imports and other code")

    class exec_show_docs(P.exec_show_docs):
        _imports_only = True
        def __call__(self, cell):
            if (not hasattr(self, "k") or cell.cell_type != "code" or P._is_showdoc(cell)
                    or cell.directives_.keys() & EXPORTS or not P._do_eval(cell)):
                return super().__call__(cell)
            try: tree = ast.parse(cell.source)
            except SyntaxError: return super().__call__(cell)
            imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            if len(imports) == len(tree.body): return super().__call__(cell)
            self.k.run("\n".join(ast.get_source_segment(cell.source, n) for n in imports))
            if self.k.exc: raise Exception(f"docs: the imports of a cell failed:\n{cell.source}") from self.k.exc

    P.exec_show_docs = exec_show_docs  # FilterDefaults.base_procs looks the name up at each call


# ---------------------------------------------------------------- the code on the page, and true signatures

def _imports_only(node):
    "An import statement, or an `if TYPE_CHECKING:` / `try:` block made of import statements only (and `pass`)."
    import ast
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)): return True
    if isinstance(node, ast.If): return all(map(_imports_only, node.body + node.orelse))
    if isinstance(node, ast.Try):
        return all(map(_imports_only, node.body + node.orelse + node.finalbody + [x for h in node.handlers for x in h.body]))
    return False


def _cell_names(code):
    "The names an exported cell defines, public ones first (all of them if none is public); `imports` for imports only."
    import ast
    try: tree = ast.parse(code)
    except SyntaxError: return []
    names = []
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.append(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            targets = [e.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                       for e in ast.walk(t) if isinstance(e, ast.Name)]
            if targets == ["_all_"] and isinstance(n.value, (ast.List, ast.Tuple)):  # nbdev's re-exports of imported names
                names += [e.value for e in n.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            else: names += targets
    if not names and tree.body and all(map(_imports_only, tree.body)): return ["imports"]
    public = [n for n in names if not n.startswith("_") and n != "__all__"]
    return public or names


def show_exported(cell):
    """In place of nbdev's `rm_export`: an exported cell stays on the page, in the flow of the prose, folded under a
    summary naming what it defines (`source: apply_rope`); nbdev's `show_doc` card follows it. Hidden cells and
    `default_exp` are dropped as before."""
    d = cell.directives_
    if not d: return
    if d.keys() & {"hide", "default_exp"}: del cell["source"]; return
    if d.keys() & {"export", "exporti"} and cell.cell_type == "code" and cell.source.strip():
        names = _cell_names(cell.source)
        summary = "source: " + ", ".join(names) if names else "Exported source"  # no backticks: in a fence's info string
        opts = "" if re.search(r"(?m)^#\|\s*code-fold:", cell.source) else "#| code-fold: true\n"
        opts += "" if re.search(r"(?m)^#\|\s*code-summary:", cell.source) else f'#| code-summary: "{summary}"\n'
        cell.source = opts + cell.source


def _seg(src, node):
    "The source text of `node`, on one line."
    import ast
    if node is None: return None
    text = ast.get_source_segment(src, node) or ast.unparse(node)
    return re.sub(r"\s*\n\s*", " ", text).replace("( ", "(").replace(" )", ")")


def _ann(src, node):
    "An annotation as written; a string annotation (`'jax.Array'`) without its quotes."
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, str): return node.value  # from __future__ style string
    return _seg(src, node)


class _Param(str):
    "A parameter as the signature writes it (`name: ann = default`), keeping its parts for the parameter table."
    name = ann = default = None


def _fmt_param(name, ann, default):
    "`name: ann = default`, as PEP 8 writes it."
    if ann is None: text = name if default is None else f"{name}={default}"
    else: text = f"{name}: {ann}" + ("" if default is None else f" = {default}")
    p = _Param(text)
    p.name, p.ann, p.default = name, ann, default
    return p


def parameter_table(params, ret=None, ret_doc=None):
    """A Markdown table of the parameters and their inline comments (`| | Type | Default | Details |`), from the
    `(param, comment)` pairs of `_function_params`/`_dataclass_params`; empty when no parameter has a comment."""
    rows = [(p, doc) for p, doc in params if isinstance(p, _Param)]
    if not any(doc for _, doc in rows) and not ret_doc: return ""
    cell = lambda t: f"`{t}`".replace("|", "\\|") if t else ""
    text = lambda t: " ".join((t or "").split()).replace("|", "\\|")
    out = ["| | Type | Default | Details |", "|---|---|---|---|"]
    name = lambda n: re.sub(r"([*_])", r"\\\1", n)  # `**overrides` in bold, not `****overrides`
    out += [f"| **{name(p.name)}** | {cell(p.ann)} | {cell(p.default)} | {text(doc)} |" for p, doc in rows]
    if ret_doc: out.append(f"| **Returns** | {cell(ret)} | | {text(ret_doc)} |")
    return "\n".join(out)


def _comments(src):
    "Line number (from 1) -> the text of the comment on that line, for the source of a class."
    import io, tokenize
    out = {}
    try:
        for t in tokenize.generate_tokens(io.StringIO(src).readline):
            if t.type == tokenize.COMMENT: out[t.start[0]] = t.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError): pass
    return out


def _lib_source(qualname):
    "The source file of the library and the node defining `qualname` there, via nbdev's `_modidx.py`; or None."
    import ast, importlib
    try: syms = importlib.import_module("paligemma._modidx").d["syms"]
    except Exception: return None
    for mod, entries in syms.items():
        hit = entries.get(f"{mod}.{qualname}")
        if not hit: continue
        path = ROOT / hit[1]
        if not path.exists(): continue
        src = path.read_text(encoding="utf-8")
        body = ast.parse(src).body
        for part in qualname.split("."):
            node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                         and n.name == part), None)
            if node is None: break
            body = node.body
        else: return src, node
    return None


def _def_source(obj):
    "The source of a function or class and its `def`/`class` node: from the running cells, else the library file."
    import ast, inspect, textwrap
    try:
        src = textwrap.dedent(inspect.getsource(obj))
        node = next(n for n in ast.parse(src).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
        if node.name == obj.__name__: return src, node
    except Exception: pass
    return _lib_source(getattr(obj, "__qualname__", getattr(obj, "__name__", "")))


def _function_params(src, node, docs, skip_first):
    "[(text, comment)] for the parameters of a `def` node, as written: `/` and the keyword-only `*` included."
    a = node.args
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out = []
    for i, (arg, d) in enumerate(zip(pos, defaults)):
        if not (i == 0 and skip_first):
            out.append((_fmt_param(arg.arg, _ann(src, arg.annotation), _seg(src, d)), docs.get(arg.arg)))
        if a.posonlyargs and i == len(a.posonlyargs) - 1: out.append(("/", None))
    # fastcore's docments leave out the comments of `*args` and `**kwargs`: read them here, when the line is theirs
    others = [x.end_lineno for x in pos + a.kwonlyargs]
    own = lambda x: docs.get(x.arg) or (_comments(src).get(x.end_lineno) if x.end_lineno not in others else None)
    if a.vararg: out.append((_fmt_param("*" + a.vararg.arg, _ann(src, a.vararg.annotation), None), own(a.vararg)))
    elif a.kwonlyargs: out.append(("*", None))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((_fmt_param(arg.arg, _ann(src, arg.annotation), _seg(src, d)), docs.get(arg.arg)))
    if a.kwarg: out.append((_fmt_param("**" + a.kwarg.arg, _ann(src, a.kwarg.annotation), None), own(a.kwarg)))
    return out


def _dataclass_params(cls, src, node):
    """[(text, comment)] for the fields a dataclass's `__init__` takes, as the class body writes them (a field
    inherited from a dataclass base, as that base's body writes it)."""
    import ast, dataclasses
    fields = {}  # name -> (its source, its comments, its node), the class's own over its bases'
    for base, found in [(cls, (src, node))] + [(b, None) for b in cls.__mro__[1:] if dataclasses.is_dataclass(b)]:
        found = found or _def_source(base)
        if not found: continue
        comments = _comments(found[0])
        for n in found[1].body:
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                fields.setdefault(n.target.id, (found[0], comments, n))
    out, kw = [], False
    for f in dataclasses.fields(cls):
        if not f.init: continue
        if f.name not in fields: return None
        src, comments, n = fields[f.name]
        default = None
        if n.value is not None:
            v = n.value
            if isinstance(v, ast.Call) and (getattr(v.func, "attr", None) or getattr(v.func, "id", None)) == "field":
                kws = {k.arg: k.value for k in v.keywords}
                default = _seg(src, kws["default"]) if "default" in kws else \
                    (_seg(src, kws["default_factory"]) + "()" if "default_factory" in kws else None)
            else: default = _seg(src, v)
        if getattr(f, "kw_only", False) and not kw: out.append(("*", None)); kw = True
        comment = comments.get(n.end_lineno) or None
        out.append((_fmt_param(f.name, _ann(src, n.annotation), default), comment))
    return out


def _format_signature(head, params, ret, ret_doc, maxline=100):
    """`head(params) -> ret:` on one line when it fits and no parameter has a comment; else the parameters wrapped at
    `maxline` or, when any has a comment, one a line, each with its own comment (never a neighbour's)."""
    lines, cur = [], []
    each = any(doc for _, doc in params)
    for fmt, doc in params:
        comment = " # " + "\n    # ".join(doc.splitlines()) if doc else ""
        if cur and (each or len(", ".join(cur)) + len(fmt) + 2 > maxline):
            lines.append(", ".join(cur) + ","); cur = []
        cur.append(fmt)
        if doc: lines.append(", ".join(cur) + "," + comment); cur = []
    if cur: lines.append(", ".join(cur))
    close = ")" + (f" -> {ret}" if ret else "") + (":" if head.startswith(("def ", "async def ")) else "")
    close += f" # {ret_doc}" if ret_doc else ""
    if not lines: return f"{head}(){close[1:]}"
    if len(lines) == 1 and not any(d for _, d in params) and len(head) + len(lines[0]) + len(close) < maxline:
        return f"{head}({lines[0]}{close}"
    return f"{head}(\n    " + "\n    ".join(lines) + f"\n{close}"


def true_signature(sym, docs=None):
    "`signature_parts` formatted as the card's code block; None when the source is unavailable."
    parts = signature_parts(sym, docs)
    return parts if parts is None or isinstance(parts, str) else _format_signature(*parts)


def signature_parts(sym, docs=None):
    """The signature of `sym` as its source writes it: the keyword-only `*`, annotations as written (`float | None`,
    `jax.Array`), defaults as written (`jnp.float32`, never a value from the build machine), the parameters'
    comments. A class shows its constructor's call (`Sampler(model, *, ...)`). None when the source is unavailable."""
    import ast, dataclasses, inspect
    docs = {k: (v.get("docment") if isinstance(v, dict) else v) for k, v in (docs or {}).items()}
    try:
        if inspect.isclass(sym):
            found = _def_source(sym)
            if dataclasses.is_dataclass(sym):
                params = _dataclass_params(sym, *found) if found else None
                return None if params is None else (sym.__name__, params, None, None)
            owner = next((k for k in sym.__mro__ if "__init__" in vars(k)), object)
            if owner is object or not inspect.isfunction(vars(owner)["__init__"]):
                if not found: return None
                src, node = found
                bases = ", ".join(_seg(src, b) for b in node.bases)
                return f"class {sym.__name__}({bases})" if bases else f"class {sym.__name__}"
            init = vars(owner)["__init__"]
            got = _def_source(init) or (_lib_source(f"{owner.__qualname__}.__init__"))
            if not got: return None
            src, node = got
            return sym.__name__, _function_params(src, node, docs, True), None, None
        if not inspect.isfunction(sym): return None
        got = _def_source(sym)
        if not got: return None
        src, node = got
        first = (node.args.posonlyargs + node.args.args)[:1]
        skip = "." in sym.__qualname__ and bool(first) and first[0].arg in ("self", "cls")
        head = ("async def " if isinstance(node, ast.AsyncFunctionDef) else "def ") + sym.__name__
        return head, _function_params(src, node, docs, skip), _ann(src, node.returns), docs.get("return")
    except Exception:
        return None


def _is_foreign(sym, lib="paligemma"):
    "Defined outside this library and outside the notebooks (flax's `nnx.LoRAParam`, numpy, ...)."
    mod = getattr(sym, "__module__", None) or ""
    return bool(mod) and mod != "__main__" and mod.split(".")[0] != lib


def _public_name(sym):
    "The shortest import path of a foreign symbol: `flax.nnx.LoRAParam`, not `flax.nnx.nn.lora.LoRAParam`."
    import importlib
    mod, name = sym.__module__, getattr(sym, "__qualname__", getattr(sym, "__name__", ""))
    parts = mod.split(".")
    for i in range(1, len(parts) + 1):
        try:
            if getattr(importlib.import_module(".".join(parts[:i])), name, None) is sym: return f"{'.'.join(parts[:i])}.{name}"
        except Exception: pass
    return f"{mod}.{name}"


def heading_text(name):
    """A card's name as Markdown heading text: `_` and `*` escaped (`RMSNorm.\\_\\_call\\_\\_`), so `__call__` is not
    bold `call`; its plain text, and so its anchor (`rmsnorm.__call__`, the one nbdev's doc links name), is the name.
    Characters already escaped (a notebook's `name=r"X.\\_\\_call\\_\\_"`) stay as they are."""
    return re.sub(r"(?<!\\)([_*])", r"\\\1", name)


def _unwrap_method(sym):
    """`(function, kind)` for what `show_doc` was given: a classmethod read off its class (`KVCache.create`, a bound
    method) is its function, `cls` then left out like `self`; a property (`ViT.num_patches`) is its getter, kind
    `property`; anything else is itself, kind None."""
    import inspect
    if isinstance(sym, property): return sym.fget, "property"
    if inspect.ismethod(sym) and inspect.isclass(sym.__self__): return sym.__func__, "classmethod"
    return sym, None


def _true_signatures():
    """nbdev's `show_doc` cards with the signature the source writes (see `true_signature`), in place of fastcore's
    rendering of the evaluated signature (which drops the keyword-only `*`, invents `NoneType` for a `None` default
    and prints `_ScalarMeta=float32` and `jaxlib._jax.Array`). A symbol from another package gets a one-line card
    naming where it comes from, not that package's internals. Plain `show_doc(X.method)` is right for every kind of
    method: `X.__call__` is headed `X.__call__` (`heading_text`), a classmethod read off its class shows its own
    signature (not fastcore's, with `cls` dropped), a property shows as `@property def name(self) -> type`."""
    import nbdev.showdoc as S
    from fastcore.docments import _ital_first
    if getattr(S.BasicMarkdownRenderer, "_true_sig", False): return
    init = S.BasicMarkdownRenderer.__init__

    def __init__(self, sym, name=None, title_level=3, maxline=110):
        fn, self.kind = _unwrap_method(sym)
        init(self, fn if self.kind == "classmethod" else sym, name=name, title_level=title_level, maxline=maxline)

    def _repr_markdown_(self):
        sym, h, nm = self.sym, "#" * self.title_level, heading_text(self.nm)
        if _is_foreign(sym):
            where = _public_name(sym)
            return f"---\n\n{h} {nm}\n\n*`{where}`, from `{sym.__module__.split('.')[0]}`: see its own documentation.*"
        doc = "---\n\n"
        src = S.NbdevLookup().code(self.fn)
        if src: doc += S._ext_link(src, "source", 'style="float:right; font-size:smaller"') + "\n\n"
        doc += f"{h} {nm}\n\n"
        if getattr(self, "kind", None) == "property":
            got = _def_source(sym)
            ret = _ann(got[0], got[1].returns) if got else None
            parts = f"@property\ndef {sym.__name__}(self)" + (f" -> {ret}" if ret else "") + ":"
        else: parts = signature_parts(sym, getattr(self.dm, "dm", None))
        sig = parts if isinstance(parts, str) else _format_signature(*parts) if parts else str(self.dm)
        doc += f"```python\n{sig}\n```"
        docs = self.docs if getattr(sym, "__doc__", None) else ""  # none written: not `Call self as a function.`
        if docs: doc += f"\n\n{_ital_first(docs)}"
        table = parameter_table(parts[1], parts[2], parts[3]) if isinstance(parts, tuple) else ""
        if table: doc += f"\n\n{table}"
        return doc

    S.BasicMarkdownRenderer.__init__ = __init__
    S.BasicMarkdownRenderer._repr_markdown_ = _repr_markdown_
    S.BasicMarkdownRenderer._true_sig = True


# ---------------------------------------------------------------- the processed notebooks, tidied

_SHOWDOC_SRC = re.compile(r"^(#\|.*\n)*show_doc\(")
_CARD_HEADING = re.compile(r"^(---\s*\n\s*\n(?:\[source\]\([^)]*\)\{[^}]*\}\s*\n\s*\n)?)(#{1,6}) ([^\n]+)\n\n?", re.M)
_MD_LINK_CODE = re.compile(r"\[(`[^`\n]+`)\]\([^)\s]*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_FENCE = re.compile(r"(?ms)^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$")


def _plain(heading):
    "A heading's text without links and backticks: ``[`Sampler`](x.html#sampler)`` -> `Sampler`."
    text = re.sub(r"`([^`]*)`", r"\1", _MD_LINK_CODE.sub(r"\1", heading))
    return re.sub(r"\\([\\`*_\[\]])", r"\1", text).strip()  # `RMSNorm.\_\_call\_\_` is `RMSNorm.__call__`


def _notebook_pages():
    "Notebook stem (`26_demo_tiny_model`) -> its page (`demo_tiny_model.html`), for every notebook in nbs/."
    from nbdev.doclinks import _nbpath2html
    return {nb.stem: _nbpath2html(nb).name for nb in (ROOT / "nbs").glob("*.ipynb") if nb.name != "index.ipynb"}


def _notebook_labels():
    "Notebook stem -> its label, `23 · A tiny PaliGemma, trained here` (tools/site_chrome.py's `lesson_label`)."
    return {nb.stem: _chrome.lesson_label(nb) for nb in (ROOT / "nbs").glob("*.ipynb") if nb.name != "index.ipynb"}


def link_notebook_names(md, pages, own=None, labels=None):
    """Turn each mention of a notebook in Markdown prose (`26_demo_tiny_model`, in backticks or not, or in brackets
    with no link: `[26_demo_tiny_model]`) into a link to its page, written as the lesson's label when `labels` has one
    (`[23 · A tiny PaliGemma, trained here](demo_tiny_model.html)`: the sidebar's and the breadcrumbs' words).
    Code blocks, other code spans, existing links, HTML tags and maths are left as they are. Returns the text and the
    mentions of `NN_name` that match no notebook."""
    if not pages: return md, []
    labels = labels or {}
    stale = []
    names = "|".join(sorted(map(re.escape, pages), key=len, reverse=True))
    mention = re.compile(rf"(!?\[[^\]\n]*\]\([^)\n]*\)|<[a-zA-Z/][^>\n]*>|\$\$.*?\$\$|\$[^$\n]+\$)"  # as they are
                         rf"|\[`?({names})`?\](?!\()"  # [26_demo_tiny_model]
                         r"|(`+)([^`\n]+?)\3"  # a code span: a link when it is a notebook's name
                         rf"|\b({names})\b|\b(\d\d_[a-z][a-z0-9_]*)\b", re.S)

    def link(text, stem):
        if stem in labels: text = re.sub(r"([\\\[\]*_`])", r"\\\1", labels[stem])  # Markdown's own characters escaped
        return text if pages[stem] == own else f"[{text}]({pages[stem]})"

    def sub(m):
        if m.group(1): return m.group(0)
        if m.group(2): return link(m.group(2), m.group(2))
        if m.group(3):
            stem = m.group(4).strip()
            stem = stem[:-6] if stem.endswith(".ipynb") else stem
            if stem in pages: return link(m.group(0), stem)
            if re.fullmatch(r"\d\d_[a-z][a-z0-9_]*", stem): stale.append(stem)
            return m.group(0)
        if m.group(5): return link(m.group(5), m.group(5))
        stale.append(m.group(6))
        return m.group(0)

    out, last = [], 0
    for f in _FENCE.finditer(md):
        out.append(mention.sub(sub, md[last:f.start()])); out.append(f.group(0)); last = f.end()
    out.append(mention.sub(sub, md[last:]))
    return "".join(out), stale


def _empty_output(o):
    "An output that would render as an empty block: blank stream text, or a display whose shown value is blank."
    if o.get("output_type") == "stream":
        return not "".join(o.get("text", "")).strip()
    if o.get("output_type") in ("display_data", "execute_result"):
        data = o.get("data") or {}
        order = ["text/html", "image/svg+xml", "image/png", "image/jpeg", "image/gif", "text/markdown", "text/latex", "text/plain"]
        mime = next((m for m in order if m in data), None)
        if mime is None: return True
        v = data[mime]
        return not ("".join(v) if isinstance(v, list) else str(v)).strip()
    return False


def _tidy_processor():
    "A processor run after nbdev's own (see `tidy`)."
    from nbdev.process import Processor
    pages, labels = _notebook_pages(), _notebook_labels()

    class tidy(Processor):
        """The last processing step: no stderr output (warnings, progress bars) and no empty output blocks; no link
        syntax inside a card's code; a card whose heading repeats the section heading just above it (`## Sampler`
        then the `Sampler` card) loses its own heading, and that section heading its link to itself; notebook names
        in prose become links to their pages."""
        def begin(self):
            own = None
            fm = getattr(self.nb, "frontmatter_", {}) or {}
            if fm.get("output-file"): own = fm["output-file"]
            last_heading, card_since = None, False
            self.nb.stale_ = []
            for cell in self.nb.cells:
                src = cell.get("source")
                if src is None: continue
                if cell.cell_type == "markdown":
                    cell.source, stale = link_notebook_names(cell.source, pages, own, labels)
                    self.nb.stale_ += stale
                    hs = _HEADING.findall(_FENCE.sub("", cell.source))
                    if hs: last_heading, card_since = hs[-1], False
                    continue
                if cell.cell_type != "code": continue
                outs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
                cell["outputs"] = [o for o in outs if not _empty_output(o)]
                if not _SHOWDOC_SRC.match(src): continue
                for o in cell.outputs:
                    md = (o.get("data") or {}).get("text/markdown")
                    if md is None: continue
                    md = "".join(md) if isinstance(md, list) else md
                    md = _FENCE.sub(lambda f: _MD_LINK_CODE.sub(r"\1", f.group(0)), md)
                    m = _CARD_HEADING.search(md)
                    if m and last_heading and not card_since and _plain(m.group(3)) == _plain(last_heading[1]):
                        md = md[:m.start()] + m.group(1) + md[m.end():]
                        self._unlink_heading(cell, last_heading)
                    o["data"]["text/markdown"] = md
                    card_since = True

        def _unlink_heading(self, card, heading):
            "Remove the link from the section heading that now titles `card` (a link to itself)."
            idx = self.nb.cells.index(card)
            for c in reversed(self.nb.cells[:idx]):
                if c.cell_type != "markdown" or c.get("source") is None: continue
                line = f"{heading[0]} {heading[1]}"
                if line in c.source:
                    plain = _MD_LINK_CODE.sub(r"\1", heading[1])
                    c.source = c.source.replace(line, f"{heading[0]} {plain}", 1)
                    return

    return tidy


def _code_on_the_page():
    "Install `show_exported` in place of nbdev's `rm_export`, and `tidy` after nbdev's own processors."
    import nbdev.processors as P
    if getattr(P.FilterDefaults, "_tidy", False): return
    P.rm_export = show_exported  # FilterDefaults.base_procs looks the names up at each call
    base, tidy = P.FilterDefaults.base_procs, _tidy_processor()
    P.FilterDefaults.base_procs = lambda self: base(self) + [tidy]
    P.FilterDefaults._tidy = True


_CARD_FORBIDDEN = [("NoneType", re.compile(r"NoneType")), ("_ScalarMeta", re.compile(r"_ScalarMeta")),
                   ("jaxlib.", re.compile(r"jaxlib\.")), ("site-packages", re.compile(r"site-packages")),
                   ("an absolute path", re.compile(r"(?<![\w.:/\]])(?:/(?:home|root|tmp|work|usr|opt|var|private|Users|mnt|srv)/"
                                                   r"[^\s'\")]*|[A-Z]:\\\\[^\s'\"]+)")),
                   ("Markdown link syntax in code", re.compile(r"\[`[^`\n]+`\]\("))]


_NOTEBOOK_STEM = re.compile(r"\b(\d\d[a-z]?_[a-z][a-z0-9_]*)\b")  # `12_gemma_cache`, also inside `12_gemma_cache.ipynb`
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]+)\)")


def cross_reference_problems(nbs_path=None, extra=()):
    """Each place that names a notebook by a number and a name that disagree, as `file: cell N: what`:
    - `NN_name` that is no notebook's file name, in prose, code spans, links or code (`13_gemma_cache` when 13 is
      the sampler: after a renumbering the number and the name no longer meet);
    - a link whose text names one notebook and whose target is another's page or file
      (`[12_gemma_cache](sampler.html)`).
    Read from the markdown and code cells of every notebook in `nbs_path` (default nbs/) and from the `extra` text
    files (README.md, written from the index). `build` fails on any."""
    from nbdev.doclinks import _nbpath2html
    nbs_path = Path(nbs_path or ROOT / "nbs")
    notebooks = sorted(nbs_path.glob("*.ipynb"))
    stems = {nb.stem for nb in notebooks}
    target_stem = {_nbpath2html(nb).name: nb.stem for nb in notebooks} | {nb.name: nb.stem for nb in notebooks}
    problems = []

    def check(where, text, markdown):
        for m in _NOTEBOOK_STEM.finditer(text):
            if m.group(1) not in stems: problems.append(f"{where}: {m.group(1)} is no notebook (renumbered?)")
        for m in _MD_LINK.finditer(text) if markdown else ():
            name = re.sub(r"^`|`$", "", m.group(1).strip()).removesuffix(".ipynb")
            to = target_stem.get(m.group(2).split("#")[0].split("?")[0].rsplit("/", 1)[-1])
            if name in stems and to and to != name: problems.append(f"{where}: [{m.group(1)}]({m.group(2)}) links to {to}")

    for nb in notebooks:
        for i, cell in enumerate(json.loads(nb.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] in ("markdown", "code"):
                check(f"{nb.name}: cell {i}", "".join(cell["source"]), cell["cell_type"] == "markdown")
    for f in map(Path, extra):
        if f.is_file(): check(f.name, f.read_text(encoding="utf-8"), True)
    return problems


def check_cards(proc):
    """Every `show_doc` card in the processed notebooks, checked for what the build machine or fastcore's rendering
    leaves in a signature: `NoneType`, `_ScalarMeta`, `jaxlib.`, `site-packages`, an absolute path, link syntax
    inside the code. Returns the problems, `notebook: card: what`."""
    problems = []
    for nb in sorted(Path(proc).glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code" or not _SHOWDOC_SRC.match("".join(cell["source"])): continue
            for o in cell.get("outputs", []):
                md = (o.get("data") or {}).get("text/markdown")
                if md is None: continue
                md = "".join(md) if isinstance(md, list) else md
                head = re.search(r"(?m)^#{1,6} (.+)$", md)
                name = head.group(1) if head else "".join(cell["source"]).split("show_doc(", 1)[-1].rstrip(")\n")
                code = "\n".join(f.group(0) for f in _FENCE.finditer(md))
                for what, pat in _CARD_FORBIDDEN:
                    text = code if what.startswith("Markdown") else md
                    if pat.search(text): problems.append(f"{nb.name}: {name}: {what}: {pat.search(text).group(0)}")
    return problems


# ---------------------------------------------------------------- the repository, named once in settings.ini

CLONE_URL = re.compile(r'(\[\s*"git",\s*"clone",[^\]]*?")(https?://[^"]+)(")')


def repository():
    "The repository settings.ini names: `git_url` (`https://github.com/%(user)s/%(repo)s`), as nbdev reads it."
    from nbdev.config import get_config
    return get_config(path=ROOT).git_url.rstrip("/")


def colab_clone_urls(nbs_path=None):
    "{notebook: the URL its first code cell (the Colab setup cell) clones} for every notebook of nbs/."
    out = {}
    for nb in sorted(Path(nbs_path or ROOT / "nbs").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        first = next((c for c in cells if c["cell_type"] == "code"), None)
        m = CLONE_URL.search("".join(first["source"])) if first else None
        if m: out[nb.name] = m.group(2)
    return out


def sync_colab_cells(url=None, nbs_path=None):
    """Make the Colab setup cell of every notebook clone `url` (default: settings.ini's `git_url`), changing nothing
    else in the notebook (its JSON is rewritten as nbdev writes it). Returns the notebooks changed."""
    url, changed = url or repository(), []
    for nb in sorted(Path(nbs_path or ROOT / "nbs").glob("*.ipynb")):
        data = json.loads(nb.read_text(encoding="utf-8"))
        first = next((c for c in data["cells"] if c["cell_type"] == "code"), None)
        if first is None: continue
        src = "".join(first["source"])
        new = CLONE_URL.sub(lambda m: m.group(1) + url + m.group(3), src, count=1)
        if new == src: continue
        first["source"] = new.splitlines(True)
        nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        changed.append(nb.name)
    return changed


def hardcoded_repository(url=None):
    """`file:line: URL` for each place outside settings.ini (and what nbdev derives from it) that writes a GitHub
    repository of this project's name (settings.ini's `repo`) other than the one settings.ini names: a fork that
    changed `user` or `repo` must change these by hand (the Colab cells: `--sync-repo`)."""
    url = url or repository()
    name = url.rsplit("/", 1)[-1]
    pat = re.compile(rf"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/{re.escape(name)})\b")
    own = url.split("github.com/", 1)[-1]
    files = [*(ROOT / "nbs").glob("*.ipynb"), *(ROOT / "paligemma").rglob("*.py"), *(ROOT / "tools").glob("*.py"),
             *(ROOT / "tests").glob("*.py"), ROOT / "setup.py"]
    out = []
    for f in sorted(files):
        if f.name == "_modidx.py" or not f.is_file(): continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            out += [f"{f.relative_to(ROOT)}:{i}: {m.group(0)}" for m in pat.finditer(line) if m.group(1) != own]
    return out


# ---------------------------------------------------------------- the API reference and the figures: strict checks

STRICT = True  # the build fails on what `report` finds beyond PENDING (issue 28, item 4); False: report only

# What the notebooks other engineers were editing during issue 28 still lack, per page and check: the strict checks allow
# exactly these counts on these pages (one more fails the build). The lead removes a page's entry after merging the
# branch that edits its notebook and adding what is missing there; the build lists entries that allow more than they
# need. Checks: `methods` (public methods without a card), `no_type` / `no_details` (parameter rows with an empty Type /
# Details cell), `no_table` (cards with parameters but no parameter table), `small_figures` (figures whose text is shown
# under 9 pt in the text column at 1366 px).
PENDING = {
}


def _card_params(sig):
    "The parameters a card's signature names (`self`/`cls`, `/` and `*` left out), or None when it does not parse."
    import ast
    text = sig.strip()
    try:
        node = ast.parse(text + ("\n    pass" if text.startswith(("def ", "async def ")) else "")).body[0]
    except SyntaxError: return None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): a = node.args
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return [k.arg for k in node.value.keywords if k.arg] + [ast.unparse(x) for x in node.value.args]
    else: return []
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
    return [n for n in names if n not in ("self", "cls")]


def api_report(site):
    """What the API reference still lacks, read from the built site and paligemma/_modidx.py:
    `methods`: public methods (and `__call__`) of the exported classes with no card of their own on any page;
    `no_type` / `no_details`: rows of the cards' parameter tables with an empty Type / Details cell;
    `no_table`: cards whose signature takes parameters but that have no parameter table (no parameter documented)."""
    import ast, importlib
    from html import unescape
    site = Path(site)
    headings, rows, no_table = set(), [], []
    for page in sorted(site.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        headings |= {unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", text, re.S)}
        for card in re.findall(r'<div class="cell-output cell-output-display cell-output-markdown">(.*?)</div>\s*</div>\s*(?=<|$)', text, re.S):
            head = re.search(r"<h[2-6][^>]*>(.*?)</h[2-6]>", card, re.S)
            name = unescape(re.sub(r"<[^>]+>", "", head.group(1))).strip() if head else "?"
            sig = re.search(r"<pre[^>]*>(.*?)</pre>", card, re.S)
            table = re.search(r'<table class="[^"]*sd-params[^"]*">(.*?)</table>', card, re.S)
            if table:
                for r in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[0:]:
                    cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)]
                    if len(cells) == 4: rows.append((page.name, name, cells))
            elif sig:
                params = _card_params(unescape(re.sub(r"<[^>]+>", "", sig.group(1))))
                if params: no_table.append(f"{page.name}: {name} ({', '.join(params)})")
    from paligemma._modidx import d
    methods = []
    for mod, syms in d["syms"].items():
        try: names = set(importlib.import_module(mod).__all__)
        except Exception: names = set()
        for key in syms:
            parts = key[len(mod) + 1:].split(".")
            if len(parts) != 2 or parts[0] not in names: continue
            cls, meth = parts
            if meth.startswith("_") and meth != "__call__": continue
            if f"{cls}.{meth}" not in headings: methods.append(f"{mod}.{cls}.{meth}")
    return {"methods": methods,
            "no_type": [f"{p}: {n}: {c[0]}" for p, n, c in rows if c[0] != "Returns" and not c[1]],
            "no_details": [f"{p}: {n}: {c[0]}" for p, n, c in rows if not c[3]],
            "rows": len(rows), "no_table": no_table}


def _method_page(method):
    "The page of a method's class (`paligemma.gemma.cache.KVCache.create` -> `gemma_cache.html`), from _modidx.py."
    import importlib
    syms = importlib.import_module("paligemma._modidx").d["syms"]
    mod = next((m for m in sorted(syms, key=len, reverse=True) if method.startswith(m + ".")), None)
    hit = syms.get(mod, {}).get(method.rsplit(".", 1)[0]) if mod else None
    return hit[0].split("#")[0] if hit else "?"


def proc_figures(proc=None):
    """{page stem: tools/site_figures.py's `notebook_figures`} of the processed notebooks in `proc` (default _proc/), as
    `build` passes them to `report`: the font sizes the cells set, for a site built earlier (a test's)."""
    import site_figures
    from nbdev.doclinks import _nbpath2html
    return {_nbpath2html(nb).stem: site_figures.notebook_figures(nb) for nb in Path(proc or ROOT / "_proc").glob("*.ipynb")}


def findings_by_page(api, small):
    "{page: {check: [what]}} for what `api_report` and `figure_text_sizes` found (`small_figures`: at 1366 px only)."
    out = {}
    add = lambda page, check, what: out.setdefault(page, {}).setdefault(check, []).append(what)
    for m in api["methods"]: add(_method_page(m), "methods", m)
    for check in ("no_type", "no_details", "no_table"):
        for item in api[check]: add(item.split(": ", 1)[0], check, item.split(": ", 1)[1])
    for page, f, sizes in small:
        if sizes["laptop"] < 9: add(page, "small_figures", f"{Path(f).name} ({sizes['laptop']} pt)")
    return out


def strict_problems(api, small, pending=None):
    """`(over, slack)`: `page: check: what` for each page and check where more is missing than `pending` (default
    PENDING) allows, and `page: check` for each allowance larger than what is missing (an entry to lower or remove)."""
    pending = PENDING if pending is None else pending
    found, over, slack = findings_by_page(api, small), [], []
    for page in sorted(set(found) | set(pending)):
        for check in sorted(set(found.get(page, {})) | set(pending.get(page, {}))):
            items, allowed = found.get(page, {}).get(check, []), pending.get(page, {}).get(check, 0)
            if len(items) > allowed: over.append(f"{page}: {check}: {len(items)} (allowed {allowed}): {', '.join(items[:6])}")
            elif len(items) < allowed: slack.append(f"{page}: {check}: {len(items)} (allowed {allowed})")
    return over, slack


def report(site, figures=None, strict=False, pending=None):
    """Print what the API reference and the figures still lack (`api_report`; figures whose text is shown under 9 pt,
    tools/site_figures.py's `figure_text_sizes`). With `strict`, the build fails on anything beyond `pending` (default
    PENDING; see `strict_problems`). Figures under 9 pt on a phone (390 px) are reported only: most figures are
    drawn for the laptop's column, and each opens full size on a tap (tools/site_figures.py)."""
    import site_figures
    api = api_report(site)
    small = site_figures.figure_text_sizes(site, figures=figures)
    lines = [f"{len(api['methods'])} public methods of exported classes without a card ({', '.join(api['methods'][:6])} ...)",
             f"{len(api['no_type'])} of {api['rows']} parameter rows without a type, {len(api['no_details'])} without details",
             f"{len(api['no_table'])} cards with parameters but no parameter table",
             f"{len(small)} figures whose text is shown under 9 pt: {sum(s['laptop'] < 9 for *_, s in small)} in the "
             f"column at 1366 px, {sum(s['phone'] < 9 for *_, s in small)} at 390 px (estimated; laptop/phone pt: "
             + ", ".join(f"{p}:{Path(f).name} {s['laptop']}/{s['phone']}" for p, f, s in small if s['laptop'] < 9) + ")"]
    over, slack = strict_problems(api, small, pending)
    if slack: lines.append("PENDING allows more than these pages lack now (lower or remove): " + "; ".join(slack))
    print("docs (" + ("strict beyond PENDING" if strict else "report only") + "):\n  " + "\n  ".join(lines), file=sys.stderr)
    if strict and over:
        raise SystemExit("docs: --strict: the API reference or the figures are incomplete:\n  " + "\n  ".join(over))
    return api, small


def process(workers=0, force=False):
    """Run nbdev's processing of nbs/ into _proc/ (cached by mtime), without its Quarto install step.
    `workers=0` processes in this process, where the flax patch applies; nbdev's workers are fresh processes."""
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        _patch_flax()
        _imports_only_for_mixed_cells()
        _true_signatures()
        _code_on_the_page()
        from nbdev.config import get_config
        from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
        from nbdev.serve import proc_nbs
        cfg = get_config()
        cache = cfg.config_path / "_proc"
        if cache.exists():  # nbdev's cache knows the notebooks' times, not this script's: reprocess when it changed
            force = force or cache.stat().st_mtime < Path(__file__).stat().st_mtime
            for stale in cache.glob("*.ipynb"):  # a renamed or deleted notebook's old page
                if not (cfg.nbs_path / stale.name).exists(): stale.unlink()
        refresh_quarto_yml()  # nbs/_quarto.yml (only if missing) and nbs/nbdev.yml, from settings.ini
        nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # nbs/sidebar.yml: index first, then build order
        _chrome.write_sidebar(cfg.nbs_path)  # the sidebar grouped into the course's parts
        os.chdir(cfg.nbs_path)  # run cells where the notebooks run, as nbdev_test does
        return cfg, proc_nbs(cfg.nbs_path, n_workers=workers, force=force)
    finally: os.chdir(here)


def _pop_output_file(nb_path):
    "Remove `output-file` from the front matter nbdev wrote into a processed notebook, and return it (or None)."
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb["cells"][:3]:
        lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(True)
        if cell["cell_type"] == "raw" and "".join(lines).lstrip().startswith("---"):
            found = [l for l in lines if l.startswith("output-file:")]
            if not found: return None
            cell["source"] = [l for l in lines if not l.startswith("output-file:")]
            nb_path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
            return found[0].split(":", 1)[1].strip()


def _default_exp(nb_path):
    "The module a source notebook exports (`#| default_exp`), or None."
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        m = re.search(r"(?m)^#\|\s*default_exp\s+(\S+)", "".join(cell["source"])) if cell["cell_type"] == "code" else None
        if m: return m.group(1)


def add_page_links(nb_path, source_nb, cfg):
    """Under the title of a processed notebook: a link that opens the notebook in Colab, and the module it exports
    with a link to that module's source, both in the repository named by settings.ini (`git_url`, `branch`)."""
    repo, branch = cfg.git_url.rstrip("/"), cfg.branch
    rel = Path(source_nb).relative_to(ROOT).as_posix()
    colab = f"https://colab.research.google.com/github/{repo.split('github.com/', 1)[-1]}/blob/{branch}/{rel}"
    links = [f"[Open in Colab]({colab})"]
    module = _default_exp(source_nb)
    if module:
        path = f"{cfg.lib_path.name}/{module.replace('.', '/')}.py"
        links.append(f"exports [`{cfg.lib_path.name}.{module}`]({repo}/blob/{branch}/{path})")
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    at = next((i + 1 for i, c in enumerate(nb["cells"][:3]) if c["cell_type"] == "raw"
               and "".join(c["source"]).lstrip().startswith("---")), 0)
    nb["cells"].insert(at, {"cell_type": "markdown", "metadata": {}, "source": [" · ".join(links)]})
    nb_path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def stage(proc, dest, cfg=None):
    "Copy _proc to `dest`, renaming each notebook to its nbdev page name, and fix sidebar.yml to match."
    shutil.copytree(proc, dest, ignore=shutil.ignore_patterns("docs", "_site", ".quarto"))
    renames = {}
    for nb in sorted(dest.rglob("*.ipynb")):
        source_nb = ROOT / "nbs" / nb.relative_to(dest)
        if cfg is not None and source_nb.exists(): add_page_links(nb, source_nb, cfg)  # the index: Colab only
        out = _pop_output_file(nb)  # smalldocs names pages after their files, and ignores output-file
        if not out: continue
        new = nb.with_name(Path(out).stem + ".ipynb")
        if new != nb:
            nb.rename(new)
            renames[str(nb.relative_to(dest))] = str(new.relative_to(dest))
    sb = dest / "sidebar.yml"
    if sb.exists():
        text = sb.read_text()
        for a, b in renames.items(): text = re.sub(rf"(?m)^(\s*-\s*(?:href:\s*)?){re.escape(a)}\s*$", rf"\g<1>{b}", text)
        sb.write_text(text)
    return renames


def _fix_anchors(site):
    """nbdev links every symbol in `_modidx.py`, methods and private helpers too, to `page.html#symbol`, but only
    symbols shown with `show_doc` have a heading there. Point a link whose anchor is missing at the class's heading
    (`einsum.weight` -> `einsum`), else at the page. Returns the links changed."""
    pages = {p: p.read_text(encoding="utf-8") for p in site.rglob("*.html")}
    ids = {p: set(re.findall(r'\sid="([^"]+)"', t)) for p, t in pages.items()}
    fixed = []

    def fix(page, m):
        url, frag = m.group(2), m.group(3)
        target = (page.parent / url).resolve() if url else page
        have = ids.get(target)
        if have is None or frag in have: return m.group(0)
        parts = frag.split(".")
        while parts and ".".join(parts) not in have: parts.pop()
        fixed.append(f"{page.name}: {url}#{frag}")
        return f'{m.group(1)}{url}{"#" + ".".join(parts) if parts else ""}"' if (parts or url) else m.group(0)

    for page, text in pages.items():
        new = re.sub(r'(href=")([^"#:?]*)#([^"]+)"', lambda m: fix(page, m), text)
        if new != text: page.write_text(new, encoding="utf-8")
    return fixed


def postprocess(site, base_url):
    "Make nbdev's absolute doc links relative, point KaTeX at a local copy, and repair anchors nbdev never made."
    shutil.copytree(KATEX, site / "site_libs" / "katex", dirs_exist_ok=True)
    base = base_url.rstrip("/") + "/"
    for page in site.rglob("*.html"):
        up = "../" * (len(page.relative_to(site).parts) - 1)
        text = page.read_text(encoding="utf-8")
        new = text.replace(base, up or "./") if base != "/" else text
        new = KATEX_CDN.sub(f"{up}site_libs/katex", new)
        if new != text: page.write_text(new, encoding="utf-8")
    for page in site.rglob("*.html"):  # the names in an exported cell's summary as code: `source: <code>apply_rope</code>`
        text = page.read_text(encoding="utf-8")
        new = re.sub(r"<summary>source: ([\w, ]+)</summary>", lambda m: "<summary>source: " + ", ".join(
            n if n == "imports" else f"<code>{n}</code>" for n in m.group(1).split(", ")) + "</summary>", text)
        if new != text: page.write_text(new, encoding="utf-8")
    fixed = _fix_anchors(site)
    if fixed: print(f"docs: {len(fixed)} links to symbols without a show_doc heading now point at their class or page:",
                    ", ".join(fixed[:8]) + (" ..." if len(fixed) > 8 else ""))


def write_readme(index_md, readme, site_dir):
    """README.md from smalldocs' Markdown copy of the index page (in place of `nbdev_readme`, which needs Quarto):
    the same text, pictures and outputs as the home page, with relative links pointing into the built site."""
    text = Path(index_md).read_text(encoding="utf-8")
    local = lambda url: not re.match(r"[a-z][a-z0-9+.-]*:|#|/", url)
    text = re.sub(r"(\]\()([^)\s]+)", lambda m: m.group(1) + (f"{site_dir}/{m.group(2)}" if local(m.group(2)) else m.group(2)),
                  text)
    Path(readme).write_text(text, encoding="utf-8")


def build(out=None, workers=0, force=False, quiet=True, strict=None, pending=None):
    """Build the site into `out` (default: settings.ini's doc_path, i.e. docs/). Returns the output folder.
    `strict` (default STRICT): fail on what `report` finds beyond `pending` (default PENDING)."""
    import site_figures
    t0 = time.time()
    url, clones = repository(), colab_clone_urls()
    wrong = sorted(nb for nb, u in clones.items() if u.rstrip("/") != url)
    if wrong: raise SystemExit(f"docs: the Colab setup cell of {', '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''} "
                               f"clones {clones[wrong[0]]}, not settings.ini's git_url {url}: run python tools/docs.py --sync-repo")
    elsewhere = hardcoded_repository(url)
    if elsewhere: print("docs: another repository than settings.ini's is written in:", ", ".join(elsewhere[:8]), file=sys.stderr)
    wrong = cross_reference_problems()
    if wrong: raise SystemExit("docs: cross-references whose number and name disagree:\n  " + "\n  ".join(wrong))
    cfg, proc = process(workers=workers, force=force)
    bad = check_cards(proc)
    if bad: raise SystemExit("docs: show_doc cards show what a signature must not:\n  " + "\n  ".join(bad))
    out = Path(out) if out else cfg.doc_path
    from smalldocs.site import build as sd_build
    with tempfile.TemporaryDirectory(prefix="paligemma-docs-") as tmp:
        src = Path(tmp) / "site"
        stage(proc, src, cfg)
        qy = src / "_quarto.yml"  # a Markdown copy of every page (`page.llms.md`) and llms.txt; README from the index's
        qy.write_text(re.sub(r"(?m)^website:\n", "website:\n  llms-txt: true\n", qy.read_text(), count=1))
        figures = {nb.stem: site_figures.notebook_figures(nb) for nb in src.glob("*.ipynb")}  # alt text, sizes
        site = sd_build(src, quiet=quiet)
        for w in site.warnings: print("smalldocs warning:", w, file=sys.stderr)
        postprocess(site.out, cfg.doc_host.rstrip("/") + "/" + cfg.doc_baseurl.strip("/"))
        _chrome.decorate(site.out, figures)  # the site's chrome and figures (tools/site_chrome.py, site_figures.py)
        report(site.out, figures, STRICT if strict is None else strict, pending)
        if out.exists(): shutil.rmtree(out)
        shutil.copytree(site.out, out)
    (out / ".nojekyll").touch()  # GitHub Pages: serve site_libs/ as is
    if out.resolve() == Path(cfg.doc_path).resolve():  # the real site, not a test build elsewhere
        write_readme(out / "index.llms.md", ROOT / "README.md", out.resolve().relative_to(ROOT.resolve()).as_posix())
    print(f"wrote {sum(1 for _ in out.rglob('*.html'))} pages to {out} in {time.time() - t0:.0f}s")
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (default: docs/)")
    p.add_argument("--force", action="store_true", help="reprocess every notebook, ignoring the _proc/ cache")
    p.add_argument("--strict", action="store_true", help="fail on methods without a card, undocumented parameters "
                   "and figures with text under 9 pt, beyond PENDING (the default: STRICT)")
    p.add_argument("--report-only", action="store_true", help="print what --strict would fail on, and build anyway")
    p.add_argument("--no-pending", action="store_true", help="strict with no allowance: PENDING ignored")
    p.add_argument("--sync-repo", action="store_true", help="make every notebook's Colab setup cell clone settings.ini's "
                   "git_url (after a fork changes user or repo), list other places that name a repository, and stop")
    a = p.parse_args()
    if a.sync_repo:
        changed = sync_colab_cells()
        print(f"Colab setup cells now clone {repository()}: {len(changed)} notebooks changed", *changed)
        for line in hardcoded_repository(): print("still names another repository:", line)
        sys.exit(0)
    strict = False if a.report_only else True if (a.strict or a.no_pending) else None
    try: build(a.out, force=a.force, strict=strict, pending={} if a.no_pending else None)
    except Exception as e:
        if type(e).__name__ != "SiteError": raise
        sys.exit(str(e))  # a page breaks a rule: one line naming it, no traceback
