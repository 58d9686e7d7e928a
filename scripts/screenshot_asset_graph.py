"""Screenshot of the asset graph in a running `dagster dev` (for the README).

Usage: .venv/bin/python scripts/screenshot_asset_graph.py [URL] [OUT]
Needs `pip install playwright` and Debian's chromium (no browser download).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000/asset-groups"
OUT = sys.argv[2] if len(sys.argv) > 2 else "docs/asset-graph.png"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
    page = browser.new_page(viewport={"width": 1700, "height": 1100})
    page.goto(URL)
    page.wait_for_timeout(5000)
    skip = page.get_by_role("button", name="Skip")  # first-visit community dialog
    if skip.count():
        skip.click(force=True)
    # Groups start collapsed: "Expand all groups" (its shortcut is Alt+E) on the graph.
    page.mouse.click(1600, 850)
    page.keyboard.press("Alt+e")
    page.wait_for_timeout(2000)
    page.keyboard.down("Control")  # ctrl + wheel zooms the graph out so both groups fit
    page.mouse.move(1100, 450)
    page.mouse.wheel(0, 100)
    page.keyboard.up("Control")
    page.wait_for_timeout(2500)
    page.screenshot(path=OUT)
    browser.close()
print(f"wrote {OUT}")
