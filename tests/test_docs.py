"""The docs site: built by tools/docs.py from the notebooks, then checked as a reader sees it, in headless Chromium.

The site is built once into a temporary folder (the notebooks are not re-executed; nbdev's processing uses their
stored outputs) and served on 127.0.0.1. Chromium (Debian's `chromium`, which .ci/run installs) is driven through
the DevTools protocol. Screenshots go to tests/artifacts/ (git-ignored). Without Chromium the browser tests skip
and the checks on the files still run.
"""
import base64, functools, html.parser, http.server, json, os, re, shutil, subprocess, sys, threading, time
import urllib.parse, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"

def _load_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location("paligemma_docs_tool", ROOT / "tools" / "docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


docs = _load_tool()  # tools/docs.py

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def page_name(nb: Path) -> str:
    "The page nbdev makes of a notebook: `02_gemma_rope.ipynb` -> `gemma_rope.html` (nbdev's own rule)."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(nb).name


def notebooks():
    "The notebooks in build order (file name order), without the index."
    return sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if p.name != "index.ipynb")


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    return docs.build(tmp_path_factory.mktemp("docs") / "site")


@pytest.fixture(scope="session")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


# ---------------------------------------------------------------- the files


class Links(html.parser.HTMLParser):
    "The ids of a page, and the links it makes (a href, img/script src, link href)."
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        if tag == "a" and a.get("name"): self.ids.add(a["name"])
        url = a.get("href") if tag in ("a", "link") else a.get("src") if tag in ("img", "script", "iframe") else None
        if url: self.links.append(url)


def parse(path):
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_every_notebook_has_a_page(site):
    assert (site / "index.html").exists()
    missing = [nb.name for nb in notebooks() if not (site / page_name(nb)).exists()]
    assert not missing, f"no page for {missing}"
    assert (site / "search.json").exists() and (site / "site_libs" / "katex" / "katex.min.js").exists()


def test_no_broken_internal_links(site):
    "Crawl every page from the index: every internal link and asset exists, and every #fragment is an id there."
    pages, todo, broken, seen = {}, ["index.html"], [], set()
    while todo:
        rel = todo.pop()
        if rel in seen: continue
        seen.add(rel)
        pages[rel] = parse(site / rel)
        for url in pages[rel].links:
            u = urllib.parse.urlsplit(url)
            if u.scheme or u.netloc or url.startswith(("mailto:", "javascript:")): continue  # external
            target = os.path.normpath(os.path.join(os.path.dirname(rel), urllib.parse.unquote(u.path))) if u.path else rel
            if target.startswith(".."): broken.append((rel, url)); continue
            if (site / target).is_dir(): target = os.path.join(target, "index.html")
            if not (site / target).is_file(): broken.append((rel, url)); continue
            if target.endswith(".html"):
                todo.append(target)
                if u.fragment: pages.setdefault(("#", target), []).append((rel, url, urllib.parse.unquote(u.fragment)))
    for key, refs in [(k, v) for k, v in pages.items() if isinstance(k, tuple)]:
        ids = pages[key[1]].ids if key[1] in pages else parse(site / key[1]).ids
        broken += [(rel, url) for rel, url, frag in refs if frag not in ids]
    assert not broken, f"{len(broken)} broken internal links, e.g. {broken[:10]}"
    crawled = {k for k in pages if isinstance(k, str)}
    assert {page_name(nb) for nb in notebooks()} <= crawled, "some pages are not reachable from the index"


# ---------------------------------------------------------------- the browser


def chromium_path():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class Chromium:
    "Headless Chromium, driven through the DevTools protocol (one page)."
    def __init__(self, exe, profile):
        import websocket  # websocket-client
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                      "--window-size=1280,900", "--hide-scrollbars", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, t0 = Path(profile) / "DevToolsActivePort", time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() - t0 > 30 or self.proc.poll() is not None: raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.id, self.events = 0, []
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.id:
                if "error" in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def js(self, expr):
        "Evaluate `expr` in the page (awaiting a promise) and return its value."
        r = self.send("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r: raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr, timeout=15):
        t0 = time.time()
        while time.time() - t0 < timeout:
            v = self.js(expr)
            if v: return v
            time.sleep(0.1)
        return self.js(expr)

    def goto(self, url):
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def errors(self):
        "Exceptions thrown by the page's scripts since the last navigation."
        return [e["params"]["exceptionDetails"].get("text", "") for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def screenshot(self, name, selector=None):
        "Save a PNG of the viewport, or of the element `selector` (with some margin), to tests/artifacts/."
        ARTIFACTS.mkdir(exist_ok=True)
        kw = {}
        if selector:
            r = self.js(f"""(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()""")
            kw = dict(captureBeyondViewport=True, clip=dict(x=max(r[0] - 20, 0), y=max(r[1] - 20, 0),
                                                           width=r[2] + 40, height=r[3] + 40, scale=1))
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png", **kw)["data"])
        (ARTIFACTS / name).write_bytes(data)
        return data

    def close(self):
        try: self.ws.close()
        finally:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium_path()
    if not exe: pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does)")
    b = Chromium(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_home_page_and_sidebar(browser, server):
    browser.goto(server + "index.html")
    assert "paligemma" in browser.js("document.title").lower()
    assert browser.js("document.querySelector('main, #quarto-document-content').innerText.length") > 200
    links = browser.js("[...document.querySelectorAll('#quarto-sidebar a.sidebar-link')].map(a => a.getAttribute('href'))")
    expected = [page_name(nb) for nb in notebooks()]
    listed = [l for l in links if l in expected]
    assert listed == expected, f"sidebar, in build order: expected {expected}, got {links}"
    assert browser.screenshot("home.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert not browser.errors()


def test_api_page(browser, server):
    "show_doc's API docs: the Sampler class and its methods have headings, signatures and source links."
    browser.goto(server + "sampler.html")
    headings = browser.js("[...document.querySelectorAll('h2, h3, h4')].map(h => h.innerText.trim())")
    assert "Sampler" in headings and "sample_logits" in headings
    sig = browser.js("[...document.querySelectorAll('pre')].map(p => p.innerText).join('\\n')")
    assert "def sample_logits(" in sig
    assert browser.js("[...document.querySelectorAll('a')].some(a => a.innerText.trim() === 'source')")
    browser.screenshot("api_sampler.png")
    assert not browser.errors()


def test_math_is_rendered_offline(browser, server):
    browser.goto(server + "gemma_layers.html")
    n = browser.wait_for("document.querySelectorAll('.katex').length")
    assert n > 0, "no KaTeX output: maths not rendered"
    assert browser.js("document.querySelectorAll('.katex-error').length") == 0
    srcs = browser.js("[...document.scripts].map(s => s.src).filter(s => s.includes('katex'))")
    assert srcs and all(s.startswith(server) for s in srcs), f"KaTeX must come from the site itself: {srcs}"
    browser.screenshot("math.png", ".katex-display")


def test_plots(browser, server):
    "Every image on a page of plots is decoded and not empty, and at least one is a real plot."
    browser.goto(server + "gemma_rope.html")
    browser.wait_for("[...document.images].every(i => i.complete)")
    imgs = browser.js("[...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.src.length])")
    assert imgs and all(w > 0 and h > 0 for w, h, _ in imgs), imgs
    assert max(w * h for w, h, _ in imgs) > 100 * 100
    browser.js("[...document.images].sort((a, b) => b.naturalWidth - a.naturalWidth)[0].id = 'largest-plot'")
    browser.screenshot("plot.png", "#largest-plot")


def test_search_finds_sampler(browser, server):
    browser.goto(server + "index.html")
    browser.js("""(() => { const i = document.querySelector('.smalldocs-search input');
                            i.focus(); i.value = 'Sampler'; i.dispatchEvent(new Event('input', {bubbles: true})); })()""")
    hits = browser.wait_for("[...document.querySelectorAll('.search-result')].map(a => a.getAttribute('href'))")
    assert hits and any("sampler.html" in h for h in hits), hits
    browser.screenshot("search.png")
