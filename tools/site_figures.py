"""The docs site's figures: files beside their page, loaded lazily, each with alt text and a link to its full size.

smalldocs inlines every picture a notebook shows as base64 in the page (which made pages of 400-750 KB) and writes
it without alt text. tools/docs.py reads what each picture shows from the staged notebooks (`notebook_figures`, before
smalldocs renders them), and tools/site_chrome.py's `decorate` then rewrites each page (`figures_to_files`):

- each `<img src="data:...">` becomes a file in the page's `NAME_files/` folder (the file smalldocs' Markdown copy of
  the page already wrote for the same picture, when there is one: the bytes decide), so no page carries base64;
- every `<img>` gets `loading="lazy"`, `decoding="async"`, the size the notebook asked for (`width`/`height`: a
  matplotlib figure drawn at twice its resolution for sharp screens says so in its output's metadata), and alt text;
- every `<img>` sits in a link to its own file, so a tap opens the picture full size (on a phone most figures are
  shown at under half their width);
- a figure wider than the text column is marked `column-page-right` (`sd-figure-wide`): on a wide screen it may use
  the margin's room as well, as Quarto's column classes do.

Alt text, in this order (the first that exists):
1. the cell's own `#| fig-alt: ...`, else its `#| fig-cap: ...` (what Quarto reads; a notebook can always say best);
2. else the titles the cell's code draws on the figure (`set_title`, `suptitle`, `title`, `fig-title`: string
   literals, an f-string's fields written as "…"), followed by the sentence of prose that introduces the figure (the
   last sentence of the nearest Markdown before the cell, code blocks skipped);
3. else the page's title.
A picture written in Markdown (`![](images/x.png)`) keeps its own alt text; an empty one gets the sentence before it.

`figure_text_sizes` estimates, report-only, the size at which each figure's text is shown: the smallest font size the
cell's code sets (matplotlib's default, 10 pt, when none), at matplotlib's 100 dpi, scaled by the width the figure is
shown at (the text column at a laptop's and a phone's width) over the width it was drawn for.
"""
import ast, base64, hashlib, html, json, re, struct
from pathlib import Path

ALT_MAX = 300  # characters of alt text, cut at a word
WIDE_FIGURE = 760  # px: a figure drawn wider than the text column (smalldocs' --sd-body-width) may use the margin
MPL_DPI, MPL_FONT_PT = 100, 10.0  # matplotlib's figure dpi and default font size (the notebooks keep both)
TITLE_CALLS = {"set_title", "suptitle", "title"}
DATA_IMG = re.compile(r'<img\b[^>]*?\bsrc="data:(image/(?:png|jpeg|gif|svg\+xml));base64,([A-Za-z0-9+/=\s]+)"[^>]*>')
IMG = re.compile(r"<img\b[^>]*>")
EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/svg+xml": "svg"}


def _src(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# ---------------------------------------------------------------- alt text from the notebook


def _md_to_text(md):
    "Markdown prose as plain text: links to their text, no backticks, emphasis, HTML tags; maths as Unicode text."
    from site_chrome import latex_to_text
    t = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", md)
    t = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", t)
    t = re.sub(r"\$\$(.+?)\$\$|\$([^$\n]+)\$", lambda m: latex_to_text(m.group(1) or m.group(2)), t, flags=re.S)
    parts = re.split(r"(`+)(.+?)\1", t)  # code spans as they are (`<seg>` is not a tag), the rest without tags
    t = "".join(p if i % 3 == 2 else "" if i % 3 == 1 else re.sub(r"\*\*|__|\*", "", re.sub(r"<[^>]+>", "", p))
                for i, p in enumerate(parts))
    return " ".join(t.split())


def introducing_sentence(md):
    """The last sentence of prose in a Markdown cell (code blocks, tables, headings and HTML skipped), as plain text
    ending in a full stop: what the text says just before a figure."""
    md = re.sub(r"(?ms)^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", "\n\n", md)
    paras = [p.strip() for p in re.split(r"\n\s*\n", md) if p.strip()]
    paras = [p for p in paras if not re.match(r"[#|<>]|-{3,}|:::", p)]
    if not paras: return ""
    text = _md_to_text(paras[-1])
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(“\"'])", text)
    s = sentences[-1].strip() if sentences else ""
    if len(s) < 25 and len(sentences) > 1: s = f"{sentences[-2].strip()} {s}"  # "Shown below." says little alone
    s = re.sub(r"[\s:;,]+$", "", s)
    return s + ("" if s.endswith((".", "!", "?")) else ".") if s else ""


def figure_titles(code):
    """The titles a cell draws on its figures, in order: the first argument of `set_title`, `suptitle` or `title` when
    it is a string literal, an f-string's fields written as `…`; titles with fewer than three letters of their own, or
    more fields than half their words (`f"example {b}: {n}-token prompt"`), are left out."""
    try: tree = ast.parse(code)
    except SyntaxError: return []
    out = []
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    for n in calls:
        if not n.args: continue
        name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
        if name not in TITLE_CALLS: continue
        a = n.args[0]
        if isinstance(a, ast.Constant) and isinstance(a.value, str): text = a.value
        elif isinstance(a, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "…" for v in a.values)
        else: continue
        text = " ".join(text.split()).strip(" ;:,")
        words, fields = len(re.findall(r"[A-Za-z]{2,}", text)), text.count("…")
        if len(re.findall(r"[A-Za-z]", text)) >= 3 and fields <= words / 2 and text not in out: out.append(text)
    return out


def _cut(text, n=ALT_MAX):
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def figure_alt(opts, code, before, page_title=""):
    """Alt text for the pictures of one cell, and how it was found (`fig-alt`, `fig-cap`, `titles+sentence`,
    `titles`, `sentence` or `page`): see the module's docstring for the order."""
    for key in ("fig-alt", "fig-cap"):
        v = opts.get(key)
        if isinstance(v, list): v = "; ".join(map(str, v))
        if v: return _cut(" ".join(str(v).split())), key
    titles, sentence = figure_titles(code), introducing_sentence(before)
    head = "; ".join(titles[:4]) + ("; …" if len(titles) > 4 else "")
    if head and sentence: return _cut(f"{head}. {sentence}"), "titles+sentence"
    if head: return _cut(head), "titles"
    if sentence: return _cut(sentence), "sentence"
    return _cut(f"A figure from “{page_title}”" if page_title else "A figure"), "page"


def _png_size(data):
    "(width, height, dpi or None) of a PNG's bytes; None when it is not a PNG."
    if data[:8] != b"\x89PNG\r\n\x1a\n": return None
    w, h = struct.unpack(">II", data[16:24])
    i = data.find(b"pHYs", 0, 4096)
    dpi = None
    if i > 0:
        ppx, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
        if unit == 1: dpi = round(ppx * 0.0254)
    return w, h, dpi


def image_size(data):
    "(width, height) in pixels of PNG, GIF or JPEG bytes, or None."
    png = _png_size(data)
    if png: return png[:2]
    if data[:6] in (b"GIF87a", b"GIF89a"): return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF: i += 1; continue
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None


def notebook_figures(nb_path, page_title=None):
    """What the pictures of a (staged) notebook show, for `figures_to_files`: `{sha1 of the bytes: {...}}` for each
    picture a code cell's output holds (`alt`, `how`, `width`/`height` as the output's metadata asks or None, the
    cell's smallest `fontsize=`, `cell`), and `{"md:" + src: {...}}` for each Markdown picture with empty alt text."""
    from smalldocs.notebook import cell_options
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    if page_title is None:
        fm = next((_src(c) for c in cells[:3] if c.get("cell_type") == "raw"), "")
        m = re.search(r"(?m)^title:\s*[\"']?(.+?)[\"']?\s*$", fm)
        page_title = m.group(1) if m else Path(nb_path).stem
    out, before = {}, ""
    for n, cell in enumerate(cells):
        src = _src(cell)
        if cell.get("cell_type") == "markdown":
            for m in re.finditer(r"!\[\s*\]\(([^)\s]+)[^)]*\)", src):
                s = introducing_sentence(src[:m.start()]) or introducing_sentence(before)
                out["md:" + m.group(1)] = {"alt": _cut(s or f"A picture from “{page_title}”"), "how": "sentence"}
            before = src
            continue
        if cell.get("cell_type") != "code": continue
        opts, code = cell_options(src)
        alt, how = None, None
        sizes = [float(x) for x in re.findall(r"\b(?:fontsize|labelsize|titlesize)\s*=\s*(\d+(?:\.\d+)?)\b", code)]
        for o in cell.get("outputs", []):
            data = o.get("data") or {}
            mime = next((k for k in EXT if k in data), None)
            if mime is None: continue
            value = data[mime]
            value = "".join(value) if isinstance(value, list) else value
            raw = value.encode() if mime == "image/svg+xml" else base64.b64decode(value)
            if alt is None: alt, how = figure_alt(opts, code, before, page_title)
            meta = (o.get("metadata") or {}).get(mime) or {}
            out[_digest(raw)] = {"alt": alt, "how": how, "width": meta.get("width"), "height": meta.get("height"),
                                 "font_pt": min(sizes) if sizes else None, "cell": f"cell-{n}"}
    return out


# ---------------------------------------------------------------- the page: files, lazy, alt, a link


def _attr(tag, name):
    m = re.search(rf'\s{name}="([^"]*)"', tag)
    return html.unescape(m.group(1)) if m else None


def _set_attr(tag, name, value):
    "The tag with attribute `name` set to `value` (escaped), replacing one already there."
    v = html.escape(str(value), quote=True)
    if re.search(rf'\s{name}="[^"]*"', tag): return re.sub(rf'(\s{name}=)"[^"]*"', lambda m: f'{m.group(1)}"{v}"', tag, count=1)
    return re.sub(r"\s*/?>$", lambda m: f' {name}="{v}"{m.group(0)}', tag, count=1)


def _display_size(data, info):
    "The (width, height) a picture is shown at: its output's metadata, else its pixels (a 2x PNG at half)."
    w, h = (info or {}).get("width"), (info or {}).get("height")
    size = image_size(data) if data is not None else None
    if w and not h and size: h = round(size[1] * w / size[0])
    if not w and size:
        png = _png_size(data)
        scale = 2 if png and png[2] and png[2] >= 2 * MPL_DPI - 10 else 1  # drawn for sharp screens: half size
        w, h = size[0] // scale, size[1] // scale
    return (int(w), int(h)) if w and h else None


def figures_to_files(page, figures=None):
    """Rewrite one page of the built site (see the module's docstring): every inlined picture to a file in
    `NAME_files/`, every picture lazy, sized, with alt text, in a link to its file. `figures` is `notebook_figures` of
    the page's notebook. Returns `[(file, how the alt text was found, shown width)]`."""
    page, figures = Path(page), figures or {}
    text = page.read_text(encoding="utf-8")
    folder = page.with_name(page.stem + "_files")
    known = {}
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_file(): known.setdefault(_digest(f.read_bytes()), f.name)
    report, out, last = [], [], 0

    for m in IMG.finditer(text):
        tag = m.group(0)
        data_m = DATA_IMG.match(tag)
        if data_m:
            mime, b64 = data_m.group(1), re.sub(r"\s", "", data_m.group(2))
            data = base64.b64decode(b64)
            digest = _digest(data)
            name = known.get(digest)
            if name is None:
                name = f"{page.stem}_fig_{digest[:10]}.{EXT[mime]}"
                folder.mkdir(exist_ok=True)
                (folder / name).write_bytes(data)
                known[digest] = name
            src = f"{folder.name}/{name}"
            tag = tag.replace(f"data:{mime};base64,{data_m.group(2)}", src)
            info = figures.get(digest, {})
        else:
            src = _attr(tag, "src") or ""
            path = (page.parent / src.split("#")[0].split("?")[0]) if src and not re.match(r"[a-z]+:|//", src) else None
            data = path.read_bytes() if path is not None and path.is_file() else None
            info = figures.get(_digest(data), {}) if data is not None else {}
            info = info or figures.get("md:" + src, {})
        if not (_attr(tag, "alt") or "").strip():
            tag = _set_attr(tag, "alt", info.get("alt") or f"A figure ({Path(src).stem})")
        tag = _set_attr(_set_attr(tag, "loading", "lazy"), "decoding", "async")
        size = _display_size(data, info)
        if size and not _attr(tag, "width"): tag = _set_attr(_set_attr(tag, "width", size[0]), "height", size[1])
        before = text[last:m.start()]
        linked = re.search(r"<a\b[^>]*>\s*(?:<[^a/][^>]*>\s*)*$", before) is not None
        if not linked:
            tag = f'<a href="{html.escape(src, quote=True)}" class="sd-figure-link" title="Open the figure full size">{tag}</a>'
        out.append(before); out.append(tag); last = m.end()
        report.append((src, info.get("how", "own alt" if not data_m else "none"), size[0] if size else None))
    out.append(text[last:])
    new = "".join(out)
    # a figure drawn wider than the text column may use the margin too (a laptop's width and up; see nbs/styles.css)
    new = re.sub(r'<div class="cell-output cell-output-display">(\s*(?:<div class="quarto-figure[^"]*">\s*<figure[^>]*>\s*<p>)?'
                 r'\s*<a [^>]*class="sd-figure-link"[^>]*>\s*<img\b[^>]*\bwidth="(\d+)")',
                 lambda m: (m.group(0) if int(m.group(2)) <= WIDE_FIGURE else
                            '<div class="cell-output cell-output-display sd-figure-wide column-page-right">' + m.group(1)),
                 new)
    if new != text: page.write_text(new, encoding="utf-8")
    return report


# ---------------------------------------------------------------- report only: the size of a figure's text


def figure_text_sizes(site, columns=None, figures=None, min_pt=9.0):
    """Estimate, for each figure of the built site, the size its text is shown at (CSS pt) in the text column at a
    laptop's and a phone's width: the cell's smallest `fontsize=` (else matplotlib's 10 pt) drawn at 100 dpi for the
    figure's own width, scaled to the width it is shown at. Returns `[(page, file, {width name: pt})]` for figures
    under `min_pt` at some width. `columns`: {name: the column's width in px}; `figures`: {page name: notebook_figures}."""
    columns = columns or {"laptop": 750, "phone": 358}
    out = []
    for page in sorted(Path(site).glob("*.html")):
        figs = (figures or {}).get(page.stem, {})
        text = page.read_text(encoding="utf-8")
        for tag in IMG.findall(text):
            src, w = _attr(tag, "src") or "", _attr(tag, "width")
            path = page.parent / src
            if not w or not path.is_file(): continue
            data = path.read_bytes()
            info = figs.get(_digest(data))
            png = _png_size(data)
            if info is None and not (png and png[2] and png[2] >= 2 * MPL_DPI - 10): continue  # not a figure drawn here
            info = info or {}
            pt = info.get("font_pt") or MPL_FONT_PT
            wide = "sd-figure-wide" in text[max(0, text.find(tag) - 400):text.find(tag)]
            shown = {}
            for name, col in columns.items():
                col = col + (282 if wide and name == "laptop" else 0)  # the margin's room, at a laptop's width
                scale = min(1.0, col / int(w))
                shown[name] = round(pt * MPL_DPI / 72 * scale * 0.75, 1)  # px at the shown size, as CSS pt
            if min(shown.values()) < min_pt: out.append((page.name, src, shown))
    return out
