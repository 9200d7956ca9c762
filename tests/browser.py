"""Headless Chromium (Debian's ``chromium``) for tests: which images of a page loaded.

The page is served from a local HTTP server on 127.0.0.1 and opened inside a same-origin
harness page that waits for every image (lazy ones made eager), then writes
``[src, naturalWidth]`` of each into its DOM, which ``chromium --dump-dom`` prints.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

HARNESS = """<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="f" style="width:1280px;height:900px" src="{src}"></iframe>
<script>
const f = document.getElementById("f");
f.onload = () => {{
  const imgs = [...f.contentDocument.images];
  imgs.forEach(i => {{ i.loading = "eager"; }});
  const done = i => i.complete ? Promise.resolve()
    : new Promise(r => {{ i.addEventListener("load", r); i.addEventListener("error", r); }});
  Promise.all(imgs.map(done)).then(() => {{
    document.getElementById("out").textContent = JSON.stringify({{
      title: f.contentDocument.title,
      images: imgs.map(i => [(i.getAttribute("src") || "").slice(0, 80), i.naturalWidth])}});
  }});
}};
</script></body></html>"""


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def page_images(root: Path, page: str, timeout: float = 120.0) -> tuple[str, list[tuple[str, int]]]:
    """The title of ``root/page`` and ``(src, naturalWidth)`` of each of its ``<img>`` after it
    loaded in Chromium (``naturalWidth`` 0: that image did not load)."""
    exe = chromium()
    assert exe is not None, "chromium is not installed"
    (root / "_harness.html").write_text(HARNESS.format(src=html.escape(page)), encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/_harness.html"
            proc = subprocess.run(
                [
                    exe,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            server.shutdown()
    found = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, flags=re.S)
    assert found, f"chromium gave no result (rc {proc.returncode}): {proc.stderr[-2000:]}"
    text = html.unescape(found.group(1))
    assert text != "pending", "the page or its images did not finish loading"
    result = json.loads(text)
    return result["title"], [(src, int(width)) for src, width in result["images"]]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
