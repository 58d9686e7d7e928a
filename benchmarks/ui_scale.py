"""`dagster dev` serving N synthetic products: how long until the code location is loaded, and
until the asset graph page shows its groups in headless Chromium (Debian's, via playwright).

    .venv/bin/python benchmarks/ui_scale.py --products 2000

Needs the `docs` extra (`pip install -e '.[docs]'`) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _graphql(url: str, query: str) -> bytes:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=('{"query": "' + query + '"}').encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=2000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from data_mesh.devtools.synthetic import generate_metadata
    from data_mesh.settings.model import Settings
    from data_mesh.store.database import make_engine, upgrade_store

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        settings = Settings(home=home)
        engine = make_engine(settings.resolved_metadata_url)
        upgrade_store(engine)
        generate_metadata(engine, args.products)
        # `dagster dev` refreshes the mesh's state from this store as it starts (LOCAL).
        port = _free_port()
        env = {**os.environ, "DATA_MESH_HOME": str(home), "DAGSTER_HOME": str(home / "dh")}
        (home / "dh").mkdir()
        started = time.perf_counter()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-w",
                "workspace.yaml",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    body = _graphql(url, "{ assetNodes { id } }")
                    if body.count(b'"id"') > args.products:
                        break
                except OSError:
                    pass
                if time.perf_counter() - started > 900:
                    raise TimeoutError("the code location did not load in 15 minutes")
                time.sleep(1)
            loaded_s = time.perf_counter() - started
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=FLAGS
                )
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                opened = time.perf_counter()
                page.goto(f"{url}/asset-groups", timeout=600_000)
                # The lineage graph draws one box per group (collapsed by default).
                page.get_by_text("domain_00", exact=True).first.wait_for(timeout=600_000)
                graph_s = time.perf_counter() - opened
                page.screenshot(path=str(ROOT / "benchmarks" / "ui_scale.png"))
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    print(
        f"| {args.products:,} products | code location loaded in {loaded_s:.1f} s | "
        f"asset graph page shows its groups {graph_s:.1f} s after navigation |"
    )


if __name__ == "__main__":
    main()
