"""Build the docs site from the notebooks into docs/, offline, with pip packages alone.

`nbdev_docs` renders with Quarto, which these machines cannot install. This runs the same nbdev processing
(`_proc/`: front matter, `show_doc` API docs, doc links, hidden cells, with `_quarto.yml`, `nbdev.yml` and
`sidebar.yml`) and renders `_proc/` with smalldocs (pure Python) instead. The notebooks are not executed: their
stored outputs are shown; only nbdev's `show_doc` step runs the exported cells, as it does under Quarto.

Afterwards:
- pages are named as nbdev names them (`output-file`, e.g. `06_testing.ipynb` -> `testing.html`), so nbdev's
  links (`sampler.html#sampler`) resolve;
- nbdev's absolute doc links (`doc_host` + `doc_baseurl`) become relative, so the site works from any folder;
- KaTeX is served from `site_libs/katex` (vendored from npm `katex` in tools/katex/), not from a CDN;
- every page also gets a Markdown copy (`page.llms.md`, with `llms.txt`), and README.md is the index page's copy,
  its links pointing into docs/ (in place of `nbdev_readme`, which needs Quarto).

Two fixes apply to nbdev's processing here (see `_patch_flax` and `_imports_only_for_mixed_cells`): without them
`show_doc` fails on every flax nnx.Module, and cells mixing imports with code run whole (writing files, failing).

`nbdev_docs` still works wherever Quarto exists: this script writes only what nbdev itself writes (nbs/_quarto.yml,
nbs/nbdev.yml, nbs/sidebar.yml, _proc/) plus the output folder. (Under Quarto the two problems above remain.)

Run: python tools/docs.py [--out DIR] [--force]
"""
import argparse, json, os, re, shutil, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KATEX = Path(__file__).resolve().parent / "katex"
KATEX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/katex@[0-9.]+/dist")

sys.path.insert(0, str(Path(__file__).resolve().parent))
try: import site_chrome as _chrome  # tools/site_chrome.py: sidebar groups and the site's chrome
except ImportError as e:  # not written yet; an import failing inside it still fails the build
    if getattr(e, "name", None) != "site_chrome": raise
    _chrome = None


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


def process(workers=0, force=False):
    """Run nbdev's processing of nbs/ into _proc/ (cached by mtime), without its Quarto install step.
    `workers=0` processes in this process, where the flax patch applies; nbdev's workers are fresh processes."""
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        _patch_flax()
        _imports_only_for_mixed_cells()
        from nbdev.config import get_config
        from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
        from nbdev.serve import proc_nbs
        cfg = get_config()
        refresh_quarto_yml()  # nbs/_quarto.yml (only if missing) and nbs/nbdev.yml, from settings.ini
        nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # nbs/sidebar.yml: index first, then build order
        if _chrome is not None: _chrome.write_sidebar(cfg.nbs_path)  # the sidebar grouped into the course's parts
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
        if cfg is not None and nb.name != "index.ipynb" and source_nb.exists(): add_page_links(nb, source_nb, cfg)
        out = _pop_output_file(nb)  # smalldocs names pages after their files, and ignores output-file
        if not out: continue
        new = nb.with_name(Path(out).stem + ".ipynb")
        if new != nb:
            nb.rename(new)
            renames[str(nb.relative_to(dest))] = str(new.relative_to(dest))
    sb = dest / "sidebar.yml"
    if sb.exists():
        text = sb.read_text()
        for a, b in renames.items(): text = re.sub(rf"(?m)^(\s*-\s*){re.escape(a)}\s*$", rf"\g<1>{b}", text)
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


def build(out=None, workers=0, force=False, quiet=True):
    "Build the site into `out` (default: settings.ini's doc_path, i.e. docs/). Returns the output folder."
    t0 = time.time()
    cfg, proc = process(workers=workers, force=force)
    out = Path(out) if out else cfg.doc_path
    from smalldocs.site import build as sd_build
    with tempfile.TemporaryDirectory(prefix="paligemma-docs-") as tmp:
        src = Path(tmp) / "site"
        stage(proc, src, cfg)
        qy = src / "_quarto.yml"  # a Markdown copy of every page (`page.llms.md`) and llms.txt; README from the index's
        qy.write_text(re.sub(r"(?m)^website:\n", "website:\n  llms-txt: true\n", qy.read_text(), count=1))
        site = sd_build(src, quiet=quiet)
        for w in site.warnings: print("smalldocs warning:", w, file=sys.stderr)
        postprocess(site.out, cfg.doc_host.rstrip("/") + "/" + cfg.doc_baseurl.strip("/"))
        if _chrome is not None: _chrome.decorate(site.out)  # the site's chrome (tools/site_chrome.py)
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
    a = p.parse_args()
    build(a.out, force=a.force)
