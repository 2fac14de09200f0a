"""The built book in a real browser, with no network: headless Chromium opens every page of the
table of contents from a local server and checks that the maths was typeset, that every image
loaded, that widgets rendered where a page embeds them, that no code or output block scrolls
sideways in a laptop's window, and that the console stayed clean. Any
request to a host other than the local server counts as an error. A screenshot of each page goes
to ``_build/screenshots/``.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it); without it the test is skipped.
"""

from __future__ import annotations

import base64
import functools
import http.server
import importlib.util
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from urllib.parse import urlparse

import pytest
import yaml

from tests.book import ROOT, toc_entries

websocket = pytest.importorskip("websocket", reason="websocket-client is needed to drive Chromium")

SCREENSHOTS = ROOT / "_build" / "screenshots"
#: The window's width in CSS pixels: a laptop's. No code or output block may scroll sideways at it.
WIDTH = 1300
PAGE_TIMEOUT = 30.0
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio", f"--window-size={WIDTH},900",
    # No name resolves except the local server's address, so nothing can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """A minimal client of the Chrome DevTools protocol over one page's websocket."""

    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=PAGE_TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float = PAGE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built book served on 127.0.0.1; yields its base URL."""
    if built_book.result.returncode != 0:
        pytest.fail(f"the book did not build:\n{built_book.log}", pytrace=False)
    handler = functools.partial(QuietHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium; yields the DevTools websocket URL of its first page."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (what .ci/run does) "
                    "enables the browser test")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        endpoint = None
        while endpoint is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found.group(1) if found else None
        if endpoint is None:
            pytest.fail("Chromium started but never opened its DevTools endpoint", pytrace=False)
        port = urlparse(endpoint).port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        yield page["webSocketDebuggerUrl"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


PAGES = toc_entries()

CHECKS = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  const deadline = Date.now() + 10000;
  const images = () => [...document.querySelectorAll('img')];
  while (images().some(img => !img.complete) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  const stateScripts = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-state+json"]').length;
  const widgetViews = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]').length;
  if (widgetViews) {
    while (!document.querySelector('.jupyter-widgets') && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 100));
    }
  }
  // A browser fetches a font only when some text needs it, which for the widgets' icon font
  // depends on what rendered before this check ran; loading every declared face makes a font
  // the page cannot find fail on every run, not on some.
  const faces = [...document.fonts];
  await Promise.allSettled(faces.map(face => face.load()));
  const fontsFailed = faces.filter(face => face.status === 'error')
    .map(face => `${face.family} ${face.style} ${face.weight}`);
  return {
    maths: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    images: images().map(img => ({src: img.src, width: img.naturalWidth})),
    widgetState: stateScripts,
    widgetViews: widgetViews,
    widgetsRendered: document.querySelectorAll('.jupyter-widgets').length,
    fontsFailed: fontsFailed,
    title: document.title,
    // Code and output blocks that scroll sideways: a reader would have to scroll to read them.
    wide: [...document.querySelectorAll('pre, div.cell_output, div.output')]
      .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
      .map(el => `${el.closest('.cell_output, .output') ? 'output' : 'code'} ` +
           `(${el.scrollWidth} px in ${el.clientWidth}): ` +
           el.textContent.trim().split('\\n')[0].slice(0, 60)),
  };
})()
"""


def problems_in(events: list[dict], origin: str) -> list[str]:
    """Console errors, uncaught exceptions, failed loads and requests that left the local server."""
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            found.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(f"exception: {details.get('exception', {}).get('description')}"
                         f" ({details.get('text')})")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            # The browser asks every site for an icon by itself; the book has none.
            if params["entry"].get("url", "").endswith("/favicon.ico"):
                continue
            found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if urlparse(url).scheme in ("http", "https", "ws", "wss") and \
                    not url.startswith(origin):
                found.append(f"request to the network: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"failed to load ({params.get('errorText')}): {params['requestId']}")
    return found


@pytest.mark.book
@pytest.mark.parametrize("entry", PAGES)
def test_page_renders_offline_in_chromium(entry, site, browser):
    page_url = f"{site}/{entry}.html"
    tools = DevTools(browser)
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable")
        tools.call("Network.setCacheDisabled", cacheDisabled=True)
        tools.events.clear()
        tools.call("Page.navigate", url=page_url)
        tools.wait_for("Page.loadEventFired")
        state = tools.evaluate(CHECKS)
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        screenshot = SCREENSHOTS / f"{entry.replace('/', '__')}.png"
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {screenshot}")
        problems = problems_in(tools.events, site)
    finally:
        tools.close()

    assert state["title"], f"{page_url} has no title"
    assert not problems, f"{page_url}:\n" + "\n".join(problems)
    if state["maths"]:
        assert state["typeset"] >= state["maths"], (
            f"{page_url}: {state['maths']} maths elements but only {state['typeset']} typeset"
        )
    assert not state["fontsFailed"], f"{page_url}: fonts that did not load: {state['fontsFailed']}"
    assert state["mathErrors"] == 0, f"{page_url}: MathJax reported {state['mathErrors']} errors"
    assert not state["wide"], (f"{page_url}: blocks that scroll sideways at {WIDTH} px:\n"
                               + "\n".join(state["wide"]))
    broken = [img["src"] for img in state["images"] if img["width"] == 0]
    assert not broken, f"{page_url}: images that did not load: {broken}"
    if state["widgetViews"]:
        assert state["widgetState"] and state["widgetsRendered"], (
            f"{page_url}: {state['widgetViews']} widgets embedded but none rendered"
        )


def test_configured_scripts_are_vendored_not_fetched():
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    static = [ROOT / path for path in sphinx["html_static_path"]]
    scripts = [sphinx["mathjax_path"], *sphinx["nb_ipywidgets_js"]]
    for script in scripts:
        assert "://" not in script, f"{script} would be fetched from the network"
        assert any((folder / script).is_file() for folder in static), f"{script} is not vendored"
    vendor = ROOT / "book" / "_static" / "vendor"
    size = sum(f.stat().st_size for f in vendor.rglob("*") if f.is_file())
    assert size < 6_000_000, f"the vendored scripts grew to {size / 1e6:.1f} MB"
    assert (vendor / "NOTICE.md").is_file() and (vendor / "mathjax" / "LICENSE").is_file()


def test_running_page_shows_the_recorded_cpu_times():
    page = (ROOT / "book" / "running.md").read_text()
    results = ROOT / "data" / "results" / "cpu_profile_times.json"
    assert "python book/time_cpu_profile.py" in page and "cpu_profile_times.json" in page
    if not results.exists():
        pytest.skip("no cpu-profile times recorded yet: run `python book/time_cpu_profile.py`")
    record = json.loads(results.read_text())
    assert record["command"].startswith("python book/time_cpu_profile.py")
    assert {"git_revision", "time_utc", "device_name", "cpu_count"} <= set(record["environment"])
    spec = importlib.util.spec_from_file_location("timer", ROOT / "book" / "time_cpu_profile.py")
    timer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timer)
    assert timer.table(record["chapters"]) in page, (
        "book/running.md does not show data/results/cpu_profile_times.json: run "
        "`python book/time_cpu_profile.py` again, or restore the table it wrote"
    )
