"""The docs site's chrome, around the pages smalldocs renders: the path through the course, and the rules a page keeps.

tools/docs.py calls two functions here:

- `write_sidebar(nbs_path)`, after nbdev has written `nbs/sidebar.yml` (a flat list in file order): the sidebar
  grouped by the course's parts, in course order. The parts are read from the index (its section "The lessons, in
  build order": a bold heading `**1. ...**` followed by a table whose first column links each notebook), so they
  are written once. The index comes first; a notebook the index does not list goes into a last group,
  "Not in the index", with a warning, so that it still has a page and the tests can name it.
- `decorate(site_dir)`, after `postprocess`: web fonts that a theme imports from another host are removed (the
  site falls back to a system font stack, nbs/styles.css); every page with a table of contents also gets a
  collapsible "On this page" at its top, which nbs/styles.css shows on narrow screens only (smalldocs hides the
  margin there); inline formulas too long for a phone's line are marked to scroll there; the maths in
  `search.json` is written as plain text (`\\frac{x}{y}` -> `x/y`, `\\epsilon` -> ε) so that no raw LaTeX shows
  in search results; every lesson's number before its title and in the previous / next links (`number_lessons`:
  the sidebar and breadcrumbs have the same labels from `write_sidebar`); code blocks longer than the text column
  holds at 1366 px marked to take the margin's room too (`widen_code`); the cards' parameter tables marked to stack
  on a phone (`stack_parameter_tables`); the figures made files, lazy, with alt text and a link to their full size
  (tools/site_figures.py); then `check_site(site_dir)`.

`check_site(site_dir)` raises `SiteError`, one line naming the page and the problem, when a page breaks a rule that
can be read from the files: a path of the build machine in a page (or in search.json, llms.txt, a Markdown copy),
a script, style sheet, font, image or frame loaded from another host, a style sheet importing from another host,
previous / next links missing or out of the sidebar's order, a missing favicon, a picture inlined as base64, without
alt text, not lazy or not in a link to its file, a parameter table not marked to stack, a page over 300 KB. What needs
a browser (console errors, requests made, widths, sideways scrolling, contrast) is checked by tests/test_docs.py.
"""
import html, json, os, re, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = re.compile(r"(?m)^#{2,3}\s+The lessons\b.*$")
PART = re.compile(r"^\*\*\s*(\d+\.\s+.+?)\s*\*\*\s*$")
ROW = re.compile(r"^\|\s*\[`?([^\]`]+)`?\]\(([^)\s]+)\)")
UNLISTED = "Not in the index"


class SiteError(Exception):
    "A page of the built site breaks one of the rules of `check_site`."


# ---------------------------------------------------------------- the path: sidebar grouped by the course's parts


def _markdown(nb_path):
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def course_parts(index_nb):
    """The course's parts, as the index lists them: `[(title, [(link text, link target), ...]), ...]`, in order.
    Read from the section "The lessons..." of the index: each bold line `**N. Title**`, and the links in the first
    column of the table under it."""
    text = _markdown(index_nb)
    m = LESSONS.search(text)
    if not m: return []
    body = text[m.end():]
    end = re.search(r"(?m)^#{1,3}\s", body)
    parts = []
    for line in body[:end.start() if end else None].splitlines():
        line = line.strip()
        if (p := PART.match(line)):
            parts.append((re.sub(r"[`*]", "", p.group(1)), []))
        elif parts and (r := ROW.match(line)):
            parts[-1][1].append((r.group(1).strip(), r.group(2)))
    return [p for p in parts if p[1]]


def _page_name(nb):
    "The page nbdev makes of a notebook (`02_gemma_rope.ipynb` -> `gemma_rope.html`)."
    try:
        from nbdev.doclinks import _nbpath2html
        return _nbpath2html(Path(nb)).name
    except Exception:  # nbdev's rule: the leading number and underscore go
        return re.sub(r"^\d+[a-z]?_", "", Path(nb).stem) + ".html"


def sidebar_groups(nbs_path):
    """The sidebar's groups: `[(title, [notebook file names])]` in course order, every notebook of `nbs_path` in
    exactly one. Notebooks the index lists but that do not exist are left out; ones it does not list come last."""
    nbs_path = Path(nbs_path)
    nbs = sorted(p for p in nbs_path.glob("*.ipynb") if p.name != "index.ipynb")
    by_stem, by_page = {p.stem: p.name for p in nbs}, {_page_name(p): p.name for p in nbs}
    groups, placed = [], set()
    for title, links in course_parts(nbs_path / "index.ipynb"):
        names = []
        for text, href in links:
            name = by_stem.get(text) or by_page.get(href.split("#")[0].split("/")[-1])
            if name and name not in placed:
                placed.add(name)
                names.append(name)
        if names: groups.append((title, names))
    rest = [p.name for p in nbs if p.name not in placed]
    if rest:
        print(f"site_chrome: the index's lessons do not list {', '.join(rest)}; they go under '{UNLISTED}'",
              file=sys.stderr)
        groups.append((UNLISTED, rest))
    return groups


# A lesson's label, the same in the sidebar, the breadcrumbs, previous/next, its heading and the links to it from
# prose: its number (from the notebook's file name, so a renumbering follows by itself) and its title.
LABEL_SEP = " · "
NUMBER = re.compile(r"^(\d+[a-z]?)_")


def lesson_number(nb):
    "The number in a notebook's file name (`02_gemma_rope.ipynb` -> `02`, `03a_x` -> `03a`), or None."
    m = NUMBER.match(Path(nb).name)
    return m.group(1) if m else None


def lesson_title(nb):
    """A notebook's title as nbdev reads it: the `title:` of its front matter, else its first `# ` heading, as plain
    text (no backticks or emphasis); else its file name."""
    try: cells = json.loads(Path(nb).read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError): cells = []
    for c in cells:
        src = "".join(c.get("source", ""))
        m = re.search(r"(?m)^title:\s*(.+?)\s*$", src) if c.get("cell_type") == "raw" else None
        m = m or (re.search(r"(?m)^#\s+(.+?)\s*#*\s*$", src) if c.get("cell_type") == "markdown" else None)
        if m: return re.sub(r"[`*]|^[\"']|[\"']$", "", m.group(1)).strip()
    return Path(nb).stem


def lesson_label(nb):
    "`02 · Rotary position embeddings`: the lesson's number and title (its title alone when it has no number)."
    n = lesson_number(nb)
    return f"{n}{LABEL_SEP}{lesson_title(nb)}" if n else lesson_title(nb)


def write_sidebar(nbs_path=None):
    """Write `nbs/sidebar.yml`: the index, then one Quarto section per course part (`- section: "1. ..."` with its
    `contents:`), each lesson as `- href: 02_gemma_rope.ipynb` with its label as `text:` (`02 · Rotary position
    embeddings`), which the breadcrumbs repeat. Without parts in the index, nbdev's flat sidebar is left as it is.
    Returns the groups."""
    nbs_path = Path(nbs_path) if nbs_path else ROOT / "nbs"
    groups = sidebar_groups(nbs_path)
    if not groups or groups[0][0] == UNLISTED:
        print("site_chrome: no course parts found in the index; the sidebar stays flat", file=sys.stderr)
        return groups
    q = lambda s: json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML string
    lines = ["website:", "  sidebar:", "    contents:", "      - index.ipynb"]
    for title, names in groups:
        lines += [f"      - section: {q(title)}", "        contents:"]
        for n in names: lines += [f"          - href: {n}", f"            text: {q(lesson_label(nbs_path / n))}"]
    (nbs_path / "sidebar.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return groups


# ---------------------------------------------------------------- decorate the built site


WEB_FONT_IMPORT = re.compile(r"""@import\s+(?:url\(\s*["']?(?:https?:)?//[^)]*\)|["'](?:https?:)?//[^"']*["'])[^;]*;""")


def local_fonts(site):
    "Remove `@import`s of style sheets on other hosts (the cosmo theme's Google font) from the site's CSS."
    changed = []
    for css in Path(site).rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="surrogateescape")
        new = WEB_FONT_IMPORT.sub("", text)
        if new != text:
            css.write_text(new, encoding="utf-8", errors="surrogateescape")
            changed.append(css)
    return changed


TOC_NAV = re.compile(r'<nav id="TOC"[^>]*>(.*?)</nav>', re.S)


def mobile_toc(page_html):
    """Put a copy of the page's table of contents at the top of its text, in a `<details class="sd-toc-mobile">`
    that nbs/styles.css shows on narrow screens only (where smalldocs hides the margin, and the table with it)."""
    if 'class="sd-toc-mobile"' in page_html: return page_html
    m = TOC_NAV.search(page_html)
    if not m: return page_html
    inner = m.group(1)
    a, b = inner.find("<ul"), inner.rfind("</ul>")
    if a < 0 or b < 0: return page_html
    ul = re.sub(r'\s(?:id|data-scroll-target)="[^"]*"', "", inner[a:b + 5]).replace(' class="nav-link"', "")
    title = re.search(r'<h2 id="toc-title">(.*?)</h2>', inner)
    block = (f'<details class="sd-toc-mobile"><summary>{title.group(1) if title else "On this page"}</summary>'
             f'{ul}</details>')
    main = page_html.find("<main")
    if main < 0: return page_html
    title = page_html.find('<header id="title-block-header"', main)  # after the title block, else first in <main>
    at = page_html.find("</header>", title) + len("</header>") if title >= 0 else page_html.find(">", main) + 1
    return page_html[:at] + block + page_html[at:]


INLINE_MATH = re.compile(r'<span class="math inline">(\\\((.*?)\\\))</span>', re.S)
LONG_MATH = 30  # characters of plain text: an inline formula longer than this may not fit a phone's line


def mark_long_maths(page_html):
    """Mark inline formulas too long for a phone's line (`sd-math-long`): nbs/styles.css lets them scroll sideways
    on narrow screens (KaTeX breaks lines only after a relation or operator at the top level)."""
    def mark(m):
        if len(latex_to_text(html.unescape(m.group(2)))) < LONG_MATH: return m.group(0)
        return f'<span class="math inline sd-math-long">{m.group(1)}</span>'
    return INLINE_MATH.sub(mark, page_html)


# LaTeX as plain text, for search snippets

SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ", "eta": "η",
    "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ",
    "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
    "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "ell": "ℓ",
    "in": "∈", "notin": "∉", "times": "×", "cdot": "·", "cdots": "⋯", "ldots": "…", "dots": "…", "le": "≤",
    "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "equiv": "≡", "sim": "∼",
    "propto": "∝", "pm": "±", "mp": "∓", "to": "→", "rightarrow": "→", "Rightarrow": "⇒", "leftarrow": "←",
    "mapsto": "↦", "infty": "∞", "sum": "Σ", "prod": "∏", "int": "∫", "partial": "∂", "nabla": "∇", "odot": "⊙",
    "otimes": "⊗", "oplus": "⊕", "circ": "∘", "lVert": "‖", "rVert": "‖", "Vert": "‖", "|": "‖", "lvert": "|",
    "rvert": "|", "vert": "|", "mid": "|", "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋",
    "lceil": "⌈", "rceil": "⌉", "forall": "∀", "exists": "∃", "subset": "⊂", "subseteq": "⊆", "cup": "∪",
    "cap": "∩", "emptyset": "∅", "top": "ᵀ", "intercal": "ᵀ", "prime": "′", "star": "⋆", "ast": "∗",
    "{": "{", "}": "}", "_": "_", "%": "%", "#": "#", "&": "&", "$": "$",
    ",": " ", ";": " ", ":": " ", ">": " ", "!": "", " ": " ", "quad": " ", "qquad": " ", "\\": " ",
}
NAMED = {"log", "exp", "max", "min", "arg", "sin", "cos", "tan", "tanh", "softmax", "det", "dim", "lim", "sup",
         "inf", "mod", "bmod", "sgn", "argmax", "argmin"}
DROP = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "displaystyle", "textstyle",
        "limits", "nolimits", "scriptstyle"}
FONTS = {"mathrm", "text", "textrm", "textit", "textbf", "texttt", "mathbf", "mathit", "mathsf", "mathtt",
         "boldsymbol", "bm", "operatorname", "mathcal", "mathscr", "mathfrak", "emph", "mbox"}
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0305", "tilde": "\u0303",
           "widetilde": "\u0303", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308"}
SUP = dict(zip("0123456789+-=()nijkTt", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱʲᵏᵀᵗ"))
SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))


def latex_to_text(src):
    r"""Write LaTeX maths as plain Unicode text for a search snippet: `\frac{x}{\sqrt{d}}` -> `x/√d`,
    `\epsilon = 10^{-6}` -> `ε = 10⁻⁶`, `\mathbb{R}^{4 \times 4}` -> `ℝ^(4 × 4)`."""
    s, n = src, len(src)

    def command(i):  # s[i] == "\\": (name, next index)
        if i + 1 < n and s[i + 1].isalpha():
            j = i + 1
            while j < n and s[j].isalpha(): j += 1
            return s[i + 1:j], j
        return s[i + 1:i + 2], i + 2

    def arg(i):  # one argument: a {group}, a command, or one character; (text, next index)
        while i < n and s[i] == " ": i += 1
        if i >= n: return "", i
        if s[i] == "{": return group(i + 1)
        if s[i] == "\\": return one(i)
        return s[i], i + 1

    def group(i):  # from after "{" to after the matching "}"
        out, i = seq(i, "}")
        return out, min(i + 1, n)

    def one(i):  # one command and its arguments, at s[i] == "\\"
        name, i = command(i)
        if name in ("frac", "tfrac", "dfrac", "cfrac"):
            a, i = arg(i)
            b, i = arg(i)
            def wrap(t):  # parentheses around a sum or product, not around one term such as √(...)
                t, top = t.strip(), t.strip()
                while re.search(r"\([^()]*\)", top): top = re.sub(r"\([^()]*\)", "", top)
                return f"({t})" if re.search(r"[\s+\-·×/]", top) else t
            return f"{wrap(a)}/{wrap(b)}", i
        if name == "sqrt":
            a, i = arg(i)
            return ("√" + a if len(a.strip()) <= 1 or a.strip().isalnum() else f"√({a.strip()})"), i
        if name == "mathbb":
            a, i = arg(i)
            return "".join(BLACKBOARD.get(c, c) for c in a), i
        if name in FONTS:
            return arg(i)
        if name in ACCENTS:
            a, i = arg(i)
            return (a + ACCENTS[name] if len(a) == 1 else a), i
        if name in DROP: return "", i
        if name in NAMED: return name + (" " if i < n and s[i].isalnum() else ""), i
        if name in ("sum", "prod", "int"): return f" {SYMBOLS[name]}", i
        if name in SYMBOLS: return SYMBOLS[name], i
        return name, i  # an unknown command: its name, without the backslash

    def script(text, table, mark):
        t = text.strip()
        if t and all(c in table for c in t): return "".join(table[c] for c in t)
        return f"{mark}({t})" if len(t) > 1 else f"{mark}{t}"

    def seq(i, stop=None):
        out = []
        while i < n:
            c = s[i]
            if stop and c == stop: return "".join(out), i
            if c == "\\":
                t, i = one(i)
                out.append(t)
            elif c == "{":
                t, i = group(i + 1)
                out.append(t)
            elif c in "^_":
                t, i = arg(i + 1)
                out.append(t if t in ("ᵀ", "′") else script(t, SUP if c == "^" else SUB, c))
            elif c in "&~":
                out.append(" ")
                i += 1
            elif c == "}":
                i += 1
            else:
                out.append(c)
                i += 1
        return "".join(out), i

    return re.sub(r"\s+", " ", seq(0)[0]).strip()


MATH_SPAN = re.compile(r'<span class="math (?:inline|display)[^"]*">\\[\(\[](.*?)\\[\)\]]</span>', re.S)


def plain_search_maths(site):
    """Rewrite the maths in `search.json` (smalldocs indexes its LaTeX source, without the delimiters) as plain
    text, page by page: each formula found on a page is replaced where it occurs in that page's entries."""
    site = Path(site)
    index = site / "search.json"
    if not index.exists(): return 0
    entries = json.loads(index.read_text(encoding="utf-8"))
    maths = {}
    for page in site.rglob("*.html"):
        found = {html.unescape(m).strip() for m in MATH_SPAN.findall(page.read_text(encoding="utf-8"))}
        found = sorted((f for f in found if re.search(r"[\\^_{}]", f)), key=len, reverse=True)
        if found: maths[page.relative_to(site).as_posix()] = [(f, latex_to_text(f)) for f in found]
    changed = 0
    for e in entries:
        for src, text in maths.get(e.get("href", "").split("#")[0], []):
            pat = re.compile(r"\s+".join(map(re.escape, src.split())))  # the index joins lines with a space
            new = pat.sub(lambda _: text, e.get("text", ""))
            if new != e.get("text", ""):
                e["text"] = new
                changed += 1
    if changed: index.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return changed


# Code as wide as it is written: a block with a line longer than the text column holds at a laptop's width (1366 px:
# a 750 px column, code at .78rem) is marked `column-page-right`, Quarto's class for content that also takes the
# margin's room on a wide screen (nbs/styles.css; smalldocs.js hides the table of contents while one passes under it).
WIDE_CODE = 88  # characters
CODE_BLOCK = re.compile(r'(<div class="(?:code-copy-outer-scaffold|sourceCode|cell-output cell-output-(?:stdout|display))")'
                        r'([^>]*>(?:\s*<div class="sourceCode"[^>]*>)?\s*<pre\b[^>]*>)(.*?)(</pre>)', re.S)


def code_width(code_html):
    "The longest line, in characters, of a code block's HTML."
    return max((len(l) for l in html.unescape(re.sub(r"<[^>]+>", "", code_html)).split("\n")), default=0)


def widen_code(page_html):
    "Mark each code block (a cell's source, a folded source, a card's signature, a text output) wider than `WIDE_CODE`."
    def mark(m):
        if code_width(m.group(3)) <= WIDE_CODE: return m.group(0)
        return m.group(1)[:-1] + ' sd-code-wide column-page-right"' + m.group(2) + m.group(3) + m.group(4)
    return CODE_BLOCK.sub(mark, page_html)


# A card's parameter table (`| | Type | Default | Details |`, tools/docs.py's `parameter_table`) is marked
# `sd-params`: on a phone nbs/styles.css stacks each row, name, type and default on one line, the details beneath.
PARAMS_TABLE = re.compile(r'<table class="([^"]*)">(\s*<thead>\s*<tr>\s*<th>\s*</th>\s*<th>Type</th>\s*<th>Default</th>'
                          r'\s*<th>Details</th>)')


def stack_parameter_tables(page_html):
    return PARAMS_TABLE.sub(lambda m: f'<table class="{m.group(1)} sd-params">{m.group(2)}', page_html)


H1 = re.compile(r'(<h1 class="title">)(.*?)(</h1>)', re.S)
NAV_TEXT = re.compile(r'(<a href="([^"#]+)"[^>]*class="pagination-link"[^>]*>.*?<span class="nav-page-text">)(.*?)(</span>)', re.S)


def number_lessons(page_html, labels, own=None):
    """The lesson's number before its title (`<span class="sd-lesson-number">02 · </span>`), and the previous / next
    links written as the lessons' labels (`labels`: page -> `02 · Rotary position embeddings`; the sidebar and the
    breadcrumbs have them from nbs/sidebar.yml)."""
    label = labels.get(own)
    if label and LABEL_SEP in label and 'class="sd-lesson-number"' not in page_html:
        number = label.split(LABEL_SEP, 1)[0]
        page_html = H1.sub(lambda m: f'{m.group(1)}<span class="sd-lesson-number">{html.escape(number)}{LABEL_SEP}</span>'
                                     f'{m.group(2)}{m.group(3)}', page_html, count=1)
    def nav(m):
        target = labels.get(m.group(2).removeprefix("./"))
        return m.group(0) if not target else f"{m.group(1)}{html.escape(target)}{m.group(4)}"
    return NAV_TEXT.sub(nav, page_html)


def lesson_labels(nbs_path=None):
    "Page name -> lesson label, for every notebook of `nbs_path` (nbs/) but the index."
    nbs_path = Path(nbs_path) if nbs_path else ROOT / "nbs"
    return {_page_name(nb): lesson_label(nb) for nb in sorted(nbs_path.glob("*.ipynb")) if nb.name != "index.ipynb"}


def decorate(site_dir, figures=None, nbs_path=None):
    """Everything above, on the built site in `site_dir`, then `check_site` (which raises on a broken rule).
    `figures`: {page stem: tools/site_figures.py's `notebook_figures` of its notebook}, for the figures' alt text."""
    import site_figures
    site, labels = Path(site_dir), lesson_labels(nbs_path)
    local_fonts(site)
    for page in site.rglob("*.html"):
        site_figures.figures_to_files(page, (figures or {}).get(page.stem))
        text = page.read_text(encoding="utf-8")
        new = mark_long_maths(mobile_toc(text))
        new = number_lessons(stack_parameter_tables(widen_code(new)), labels, page.relative_to(site).as_posix())
        if new != text: page.write_text(new, encoding="utf-8")
    plain_search_maths(site)
    check_site(site)
    return site


# ---------------------------------------------------------------- the rules a page keeps


def machine_path_patterns():
    "Regular expressions for paths of the machine that built the site: this checkout, homes, temp and package folders."
    pats = [re.escape(str(ROOT)), r"/root/", r"/home/[A-Za-z0-9_.-]+/", r"/Users/[A-Za-z0-9_.-]+/",
            r"[A-Za-z]:\\\\?Users\\", r"site-packages/", r"dist-packages/", r"/\.pyenv/",
            r"/private/var/folders/", r"/tmp/(?:tmp|pytest-|paligemma-docs-)"]
    home = str(Path.home())
    if home not in ("/", ""): pats.append(re.escape(home.rstrip("/") + "/"))
    tmp = tempfile.gettempdir().rstrip("/")
    if tmp and tmp not in ("/tmp", "/"): pats.append(re.escape(tmp + "/"))
    return re.compile("|".join(f"(?:{p})" for p in pats))


class _Tags:
    "The resources a page loads (script, style sheet, icon, image, frame...) and its favicon."
    LOADS = {"script": "src", "img": "src", "iframe": "src", "embed": "src", "source": "src", "video": "src",
             "audio": "src", "track": "src", "object": "data"}
    LINK_LOADS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "manifest",
                  "apple-touch-icon", "mask-icon"}

    def __init__(self, text):
        import html.parser
        self.loads, self.icons, self.styles = [], [], []
        outer = self

        class P(html.parser.HTMLParser):
            def __init__(self):
                super().__init__()
                self.in_style = False

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag in outer.LOADS and a.get(outer.LOADS[tag]): outer.loads.append((tag, a[outer.LOADS[tag]]))
                if tag in ("img", "source") and a.get("srcset"): outer.loads += [(tag, u.split()[0]) for u in a["srcset"].split(",") if u.strip()]
                if tag == "link":
                    rel = set((a.get("rel") or "").lower().split())
                    if rel & outer.LINK_LOADS and a.get("href"): outer.loads.append(("link " + " ".join(sorted(rel)), a["href"]))
                    if "icon" in rel and a.get("href"): outer.icons.append(a["href"])
                self.in_style = tag == "style"
                if a.get("style"): outer.styles.append(a["style"])

            def handle_endtag(self, tag):
                if tag == "style": self.in_style = False

            def handle_data(self, data):
                if self.in_style: outer.styles.append(data)

        P().feed(text)


OFFSITE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)
CSS_OFFSITE = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?((?:https?:)?//[^"')\s;]+)""", re.I)


def _sidebar_order(index_html):
    "The pages of the sidebar, in order, as the index page lists them (hrefs relative to the site root)."
    nav = re.search(r'<nav id="quarto-sidebar".*?</nav>', index_html, re.S)
    hrefs = re.findall(r'<a href="([^"#]+\.html)"[^>]*class="[^"]*sidebar-link', nav.group(0)) if nav else []
    out = []
    for h in hrefs:
        h = "index.html" if h in ("./", "./index.html") else h.removeprefix("./")
        if h not in out: out.append(h)
    return out


PAGE_LIMIT = 300_000  # bytes of HTML in a page (its pictures are files beside it)


def figure_problems(page_html):
    """What breaks the figure rules on a page: a picture inlined as base64, without alt text, not loaded lazily, or not
    in a link to its own file (a tap opens it full size); a card's parameter table not marked to stack on a phone."""
    out = []
    for m in re.finditer(r"<img\b[^>]*>", page_html):
        tag = m.group(0)
        src = (re.search(r'\ssrc="([^"]*)"', tag) or [None, ""])[1]
        what = f"<img {src[:40]}>"
        if src.startswith("data:"): out.append(f"{what} is inlined as base64 (pictures are files)")
        if not (re.search(r'\salt="([^"]*)"', tag) or [None, ""])[1].strip(): out.append(f"{what} has no alt text")
        if not re.search(r'\sloading="lazy"', tag): out.append(f"{what} is not loaded lazily")
        link = re.search(r'<a\b[^>]*\shref="([^"]*)"[^>]*>\s*(?:<[^a/][^>]*>\s*)*$', page_html[max(0, m.start() - 600):m.start()])
        if not src.startswith("data:") and (not link or html.unescape(link.group(1)) != html.unescape(src)):
            out.append(f"{what} has no link to its full size")
    if re.search(r'<table class="(?![^"]*sd-params)[^"]*">\s*<thead>\s*<tr>\s*<th>\s*</th>\s*<th>Type</th>', page_html):
        out.append("a parameter table is not marked to stack on a phone (sd-params)")
    return out


def check_site(site_dir):
    """Raise `SiteError` (one line: page, problem, and how many more) if a page of the site breaks a rule that the
    files show: a machine path; a resource (script, style sheet, font, image, frame) from another host, or a style
    sheet importing one; previous/next links missing or not following the sidebar's order; no favicon; a picture
    inlined, without alt text, not lazy or without a link to its file; a page over `PAGE_LIMIT` bytes."""
    site = Path(site_dir)
    problems = []
    paths = machine_path_patterns()
    texts = list(site.rglob("*.html")) + [p for p in (site / "search.json", site / "llms.txt") if p.exists()] \
        + list(site.rglob("*.llms.md"))
    for f in sorted(texts):
        m = paths.search(f.read_text(encoding="utf-8", errors="replace"))
        if m: problems.append(f"{f.relative_to(site)}: a path of the build machine: {m.group(0)!r}")
    for css in sorted(site.rglob("*.css")):
        m = CSS_OFFSITE.search(css.read_text(encoding="utf-8", errors="replace"))
        if m: problems.append(f"{css.relative_to(site)}: loads {m.group(1)} from another host")
    pages = sorted(site.rglob("*.html"))
    order = _sidebar_order((site / "index.html").read_text(encoding="utf-8")) if (site / "index.html").exists() else []
    for page in pages:
        rel = page.relative_to(site).as_posix()
        text = page.read_text(encoding="utf-8")
        tags = _Tags(text)
        for tag, url in tags.loads:
            if OFFSITE.match(url): problems.append(f"{rel}: <{tag}> loads {url} from another host")
        for style in tags.styles:
            m = CSS_OFFSITE.search(style)
            if m: problems.append(f"{rel}: a <style> loads {m.group(1)} from another host")
        if not tags.icons:
            problems.append(f"{rel}: no favicon (<link rel=icon>)")
        problems += [f"{rel}: {p}" for p in figure_problems(text)]
        if len(text.encode("utf-8")) > PAGE_LIMIT:
            problems.append(f"{rel}: {len(text.encode('utf-8')) // 1000} KB of HTML, over {PAGE_LIMIT // 1000} KB")
        for icon in tags.icons:
            if not OFFSITE.match(icon) and not (page.parent / icon.split("#")[0].split("?")[0]).is_file():
                problems.append(f"{rel}: favicon {icon} is missing")
        if rel not in order: continue
        i = order.index(rel)
        nav = re.search(r'<nav class="page-navigation">(.*?)</nav>', text, re.S)
        want = {"previous": order[i - 1] if i > 0 else None, "next": order[i + 1] if i + 1 < len(order) else None}
        for side, target in want.items():
            link = re.search(rf'nav-page-{side}"><a href="([^"]+)"', nav.group(1)) if nav else None
            got = os.path.normpath(os.path.join(os.path.dirname(rel), link.group(1))) if link else None
            if target and got != os.path.normpath(target):
                problems.append(f"{rel}: the {side} link goes to {got or 'nothing'}, not {target} (sidebar order)")
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{' ...' if len(problems) > 4 else ''})" \
            if len(problems) > 1 else ""
        raise SiteError(f"docs site: {problems[0]}{more}")
    return True
