"""Opening a `vqgen export --format web` page in headless Chromium, served from this machine.

For tests/test_web_export.py and scripts/benchmark_web.py: a static file server on 127.0.0.1 and the
system's Chromium (Debian's `chromium` package) driven by Playwright (`pip install playwright`; no
`playwright install`: the browser is the system's, given by `executable_path`).
"""

import contextlib
import functools
import http.server
import shutil
import threading


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a line per request on standard error."""

    def log_message(self, format, *args):
        pass


def find_chromium():
    """The path of the system's Chromium, or None where there is none on the PATH.

    Example:
    >>> find_chromium()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def static_server(folder):
    """Serves `folder` over HTTP on 127.0.0.1 (a free port) from a daemon thread while the block runs.

    Args:
        folder: str. The folder to serve, e.g. a web export.

    Yields:
        str, the server's address, e.g. "http://127.0.0.1:40123/".

    Example:
    >>> with static_server("exported/digits-web") as address:  # doctest: +SKIP
    ...     print(address)
    """
    handler = functools.partial(_QuietHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def open_page(folder, chromium=None):
    """Loads the web export in `folder` in headless Chromium and waits until its models are loaded.

    Args:
        folder: str. A folder written by `vqgen.web_export.export_web`.
        chromium: str or None. The browser's executable; defaults to `find_chromium()`.

    Yields:
        a Playwright `Page` whose `window.vqgenSample` is ready; `page.errors` lists the page's
        uncaught errors.

    Raises:
        FileNotFoundError: no Chromium (apt-get install chromium).
        ImportError: Playwright is not installed (pip install playwright).
        RuntimeError: the page failed to load its models.

    Example:
    >>> with open_page("exported/digits-web") as page:  # doctest: +SKIP
    ...     codes = page.evaluate("window.vqgenSample({num: 4, labels: [0, 1, 2, 3]})")
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium on the PATH; install it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with static_server(folder) as address, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 720, "height": 720})
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.goto(address + "index.html")
            page.evaluate("window.vqgenReady")
            if page.errors:
                raise RuntimeError(f"the page at {address} failed to load: {page.errors[0]}")
            yield page
        finally:
            browser.close()
