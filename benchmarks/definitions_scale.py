"""How long Dagster definitions take to build from N products' metadata rows, against the floor.

    .venv/bin/python benchmarks/definitions_scale.py --products 1000 10000

For each N: a SQLite store with N synthetic products (`data-mesh generate-metadata`), its
snapshot file (`data-mesh snapshot refresh`), then, each in a fresh Python process so peak
memory is its own:
- ours: `definitions.py`'s path: the snapshot file -> catalog -> `build_definitions`, then
  `get_repository_def()` (what a code server or run worker does at load), with the store URL
  pointed at a file that does not exist, so any store query would fail;
- floor: the same asset keys, deps, metadata, check specs and jobs written by hand as plain
  `AssetSpec`s, one `multi_asset` per product holding its specs and check specs (the smallest
  Dagster structure that carries checks), `define_asset_job`s, `Definitions`,
  `get_repository_def()`; the plain values are prepared before the clock starts.
Ratios are taken within one run of this script (the machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(mode: str, home: str) -> None:
    """Runs in a fresh process; prints one JSON line."""
    import resource

    os.environ["DATA_MESH_HOME"] = home
    os.environ["DATA_MESH_METADATA_URL"] = f"sqlite:///{home}/no_such_dir/store.db"
    from data_mesh.loading import catalog_for_definitions
    from data_mesh.settings import load_settings

    settings = load_settings()
    if mode == "ours":
        from data_mesh.factories.definitions import build_definitions
        from data_mesh.resources.environments import resources_for

        started = time.perf_counter()
        catalog, saved = catalog_for_definitions(settings)
        defs = build_definitions(catalog, resources_for(settings), saved)
        repository = defs.get_repository_def()
        seconds = time.perf_counter() - started
        assets = len(repository.asset_graph.get_all_asset_keys())
        checks = len(repository.asset_graph.asset_check_keys)
    else:
        from dagster import (
            AssetCheckSpec,
            AssetSelection,
            AssetSpec,
            Definitions,
            define_asset_job,
            multi_asset,
        )

        from data_mesh.factories.assets import dataset_asset_key, transformation_metadata

        catalog, _ = catalog_for_definitions(settings)
        plain = []
        for product in catalog.products:
            sources = [
                (dataset_asset_key(d), d.domain) for d in product.datasets if d.layer == "CDZ"
            ]
            outputs = [
                (
                    dataset_asset_key(t.output),
                    [dataset_asset_key(d) for d in t.inputs],
                    t.output.domain,
                    transformation_metadata(t),
                    [(r.name, dataset_asset_key(r.dataset)) for r in t.rules],
                )
                for t in product.transformations
            ]
            plain.append((product.name, sources, outputs))
        del catalog
        started = time.perf_counter()
        built: list[object] = []
        for name, sources, outputs in plain:
            built += [AssetSpec(key, group_name=group) for key, group in sources]

            @multi_asset(
                name=name,
                specs=[
                    AssetSpec(key, deps=deps, group_name=group, metadata=metadata)
                    for key, deps, group, metadata, _ in outputs
                ],
                check_specs=[
                    AssetCheckSpec(rule, asset=key) for *_, rules in outputs for rule, key in rules
                ],
                can_subset=True,
            )
            def _compute():  # type: ignore[no-untyped-def]  # Dagster reads the annotation
                return None

            built.append(_compute)
        job = define_asset_job("all", selection=AssetSelection.all().materializable())
        defs = Definitions(assets=built, jobs=[job])  # type: ignore[arg-type]
        repository = defs.get_repository_def()
        seconds = time.perf_counter() - started
        assets = len(repository.asset_graph.get_all_asset_keys())
        checks = len(repository.asset_graph.asset_check_keys)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "assets": assets, "checks": checks}))


def _run_child(mode: str, home: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, home],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _prepare(products: int, home: Path) -> tuple[float, int]:
    """A store with `products` synthetic products and its snapshot; returns the refresh time
    and the number of SELECTs the refresh ran."""
    from sqlalchemy import event

    from data_mesh.loading import refresh_snapshot
    from data_mesh.metadata.store import make_engine, upgrade_store
    from data_mesh.metadata.synthetic import generate_metadata
    from data_mesh.settings import Settings

    settings = Settings(home=home, metadata_url=f"sqlite:///{home}/store.db")
    engine = make_engine(settings.resolved_metadata_url)
    upgrade_store(engine)
    generate_metadata(engine, products)
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", count)
    started = time.perf_counter()
    refresh_snapshot(settings)
    seconds = time.perf_counter() - started
    event.remove(Engine, "before_cursor_execute", count)
    return seconds, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(
        "| products | assets | checks | store queries (refresh) | refresh s | ours s | "
        "floor s | ours / floor | ours peak MB | floor peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for products in args.products:
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            refresh_s, queries = _prepare(products, home)
            ours = _run_child("ours", str(home))
            floor = _run_child("floor", str(home))
            print(
                f"| {products:,} | {ours['assets']:,} | {ours['checks']:,} | {queries} | "
                f"{refresh_s:.1f} | {ours['seconds']:.1f} | {floor['seconds']:.1f} | "
                f"{ours['seconds'] / floor['seconds']:.2f}x | {ours['peak_mb']:.0f} | "
                f"{floor['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
