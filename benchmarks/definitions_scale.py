"""How long Dagster definitions take to build from N products' metadata rows, against the floor.

    .venv/bin/python benchmarks/definitions_scale.py --products 1000 10000

For each N: a SQLite store with N synthetic products (`data-mesh generate-metadata`), its
snapshot file (`data-mesh snapshot refresh`), then, each in a fresh Python process so peak
memory is its own:
- ours: `definitions.py`'s `load_definitions`: the catalog saved with the snapshot ->
  `build_definitions` -> `get_repository_def()`, with the cyclic GC paused (what a code server
  or run worker does at load), with the store URL pointed at a file that does not exist, so any
  store query would fail;
- ours, first load: the same without the saved catalog (after a deploy, or when a
  configuration version starts): the snapshot file's rows -> validated catalog (saved again)
  -> the rest as above;
- floor: the same specs written by hand: `AssetSpec`s and `AssetCheckSpec`s with the same
  keys, deps, descriptions, groups, owners, kinds, tags and metadata (the values are prepared
  before the clock starts), one `multi_asset` per product holding its specs and check specs (the
  smallest Dagster structure that carries checks), a job, with `--schedules` the same
  schedules, `Definitions`, `get_repository_def()`; and the same floor again with the cyclic
  GC paused, as ours runs.
Ratios are taken within one run of this script (the machines are noisy).
"""

from __future__ import annotations

import argparse
import gc
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
    from data_mesh.component.state_loading import catalog_for_definitions
    from data_mesh.settings.model import load_settings

    settings = load_settings()
    if mode in ("ours", "ours_first"):
        from data_mesh.component.catalog_cache import cache_path
        from data_mesh.definitions import load_definitions

        if mode == "ours_first":
            cache_path(settings.resolved_metadata_snapshot, settings.env).unlink(missing_ok=True)
        started = time.perf_counter()
        repository = load_definitions(settings).get_repository_def()
        seconds = time.perf_counter() - started
        assets = len(repository.asset_graph.get_all_asset_keys())
        checks = len(repository.asset_graph.asset_check_keys)
    else:
        from dagster import (
            AssetCheckSpec,
            AssetSelection,
            AssetSpec,
            Definitions,
            ScheduleDefinition,
            define_asset_job,
            multi_asset,
        )

        from data_mesh.component.assets import (
            quality_check_spec,
            source_asset_spec,
            transformation_spec,
        )

        # The same attributes our specs carry, as plain values, prepared before the clock.
        catalog, _ = catalog_for_definitions(settings)
        outputs_by_name = {t.name: t.output for p in catalog.products for t in p.transformations}

        def spec_values(spec: AssetSpec) -> dict[str, object]:
            return {
                "key": spec.key,
                "deps": [d.asset_key for d in spec.deps],
                "description": spec.description,
                "group_name": spec.group_name,
                "owners": list(spec.owners),
                "kinds": set(spec.kinds),
                "tags": {k: v for k, v in spec.tags.items() if not k.startswith("dagster/kind")},
                "metadata": {
                    k: v for k, v in spec.metadata.items() if k != "dagster/io_manager_key"
                },
            }

        plain = []
        for product in catalog.products:
            sources = [
                spec_values(source_asset_spec(d, product))
                for d in product.datasets
                if d.layer == "CDZ"
            ]
            outputs = [
                spec_values(transformation_spec(t, product, outputs_by_name))
                for t in product.transformations
            ]
            check_values = [
                {
                    "name": c.name,
                    "asset": c.asset_key,
                    "description": c.description,
                    "blocking": c.blocking,
                    "metadata": dict(c.metadata),
                }
                for t in product.transformations
                for c in (quality_check_spec(r) for r in t.rules)
            ]
            plain.append((product.name, sources, outputs, check_values))
        schedules = [
            (f"{p.name}_schedule", p.schedule.cron, p.schedule.timezone)
            for p in catalog.products
            if p.schedule
        ]
        del catalog, outputs_by_name
        if mode == "floor_gc_paused":
            gc.disable()  # what data_mesh does while it loads, for comparison
        started = time.perf_counter()
        built: list[object] = []
        for name, sources, outputs, check_values in plain:
            built += [AssetSpec(**values) for values in sources]  # type: ignore[arg-type]

            @multi_asset(
                name=name,
                specs=[AssetSpec(**values) for values in outputs],  # type: ignore[arg-type]
                check_specs=[AssetCheckSpec(**values) for values in check_values],  # type: ignore[arg-type]
                can_subset=True,
            )
            def _compute():  # type: ignore[no-untyped-def]  # Dagster reads the annotation
                return None

            built.append(_compute)
        job = define_asset_job("all", selection=AssetSelection.all().materializable())
        ticks = [
            ScheduleDefinition(
                name=name, cron_schedule=cron, execution_timezone=timezone, job_name="all"
            )
            for name, cron, timezone in schedules
        ]
        defs = Definitions(assets=built, jobs=[job], schedules=ticks)  # type: ignore[arg-type]
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


def _prepare(
    products: int, home: Path, storage_sensors_per: str = "product", schedules: bool = False
) -> tuple[float, int]:
    """A store with `products` synthetic products and its snapshot; returns the refresh time
    and the number of SELECTs the refresh ran."""
    from sqlalchemy import event

    from data_mesh.component.state_loading import refresh_snapshot
    from data_mesh.devtools.synthetic import generate_metadata
    from data_mesh.settings.model import Settings
    from data_mesh.store.database import make_engine, upgrade_store

    settings = Settings(home=home, metadata_url=f"sqlite:///{home}/store.db")
    engine = make_engine(settings.resolved_metadata_url)
    upgrade_store(engine)
    generate_metadata(engine, products, schedules=schedules)
    if storage_sensors_per != "product":
        from sqlalchemy import insert

        from data_mesh.store import schema

        with engine.begin() as connection:
            category = connection.execute(
                insert(schema.configuration_category).values(CategoryName="global")
            ).inserted_primary_key[0]  # type: ignore[index]
            connection.execute(
                insert(schema.configuration_item).values(
                    CategoryID=category, ItemKey="sensor.storage.per", ItemValue=storage_sensors_per
                )
            )
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs of each kind; the fastest counts."
    )
    parser.add_argument(
        "--storage-sensors-per",
        choices=["product", "domain"],
        default="product",
        help="The sensor.storage.per configuration row of the generated store.",
    )
    parser.add_argument(
        "--schedules",
        action="store_true",
        help="Every product gets a schedule row (the floor then writes the same schedules).",
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(
        "| products | assets | checks | store queries (refresh) | refresh s | ours s | "
        "floor s | ours / floor | ours, first load s | that / floor | floor, GC paused s | "
        "ours / that | ours peak MB | floor peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for products in args.products:
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            refresh_s, queries = _prepare(products, home, args.storage_sensors_per, args.schedules)
            # Alternating runs, the fastest of each kind: the machines are noisy.
            modes = ("ours", "floor", "ours_first", "floor_gc_paused")
            runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
            for _ in range(args.repeat):
                for mode in runs:
                    runs[mode].append(_run_child(mode, str(home)))
            ours, floor, first, paused = (
                min(runs[mode], key=lambda r: r["seconds"]) for mode in modes
            )
            print(
                f"| {products:,} | {ours['assets']:,} | {ours['checks']:,} | {queries} | "
                f"{refresh_s:.1f} | {ours['seconds']:.1f} | {floor['seconds']:.1f} | "
                f"{ours['seconds'] / floor['seconds']:.2f}x | {first['seconds']:.1f} | "
                f"{first['seconds'] / floor['seconds']:.2f}x | {paused['seconds']:.1f} | "
                f"{ours['seconds'] / paused['seconds']:.2f}x | {ours['peak_mb']:.0f} | "
                f"{floor['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
