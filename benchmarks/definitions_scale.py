"""How long the code location takes to load N products, against a hand-written floor.

    .venv/bin/python benchmarks/definitions_scale.py --products 1000 10000

For each N: a SQLite store with N synthetic products (`data-mesh generate-metadata`), the
mesh component's state written where Dagster keeps it (`write_state_to_path`, timed, its store
queries counted), then the store moved away, so any store query would fail. Then, each in a
fresh Python process so peak memory is its own, alternating:
- ours: what a code server or run worker does at load, which is also the first load after a
  deploy (nothing is cached between processes): `data_mesh.definitions.defs()` (the
  `dg` project's defs folder -> `DataMeshComponent.build_defs_from_state`: the state's rows ->
  validated catalog -> specs, checks, jobs, schedules, sensors, resources) and
  `get_repository_def()`, with the cyclic GC paused as `definitions.py` does;
- floor: the same specs written by hand (`_floor` below): `AssetSpec`s and `AssetCheckSpec`s
  with the same keys, deps, descriptions, groups, owners, kinds, tags and metadata (the values
  are prepared before the clock starts), one `multi_asset` per product holding its specs and
  check specs (the smallest Dagster structure that carries checks), with `--schedules` the
  same automation conditions, a job, the same resources, `Definitions`,
  `get_repository_def()`, under the same GC policy (paused);
- ours, GC on: ours with the cyclic GC running, to show what `definitions.py`'s pause buys.
Ratios are taken within one run of this script (the machines are noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _child(mode: str, home: str) -> None:
    """Runs in a fresh process; prints one JSON line."""
    import resource

    _environment(home)
    if mode in ("ours", "ours_gc_on"):
        import contextlib

        # Imported before the clock, as the floor's modules are (imports are timed apart).
        import data_mesh.component.mesh  # noqa: F401
        from data_mesh import definitions
        from data_mesh.definitions import defs

        if mode == "ours_gc_on":  # what the pause buys: the same load with the GC running
            definitions.cyclic_gc_paused = contextlib.nullcontext  # type: ignore[assignment]
        started = time.perf_counter()
        repository = defs().get_repository_def()
        seconds = time.perf_counter() - started
    else:
        repository, seconds = _floor(home)
    assets = len(repository.asset_graph.get_all_asset_keys())
    checks = len(repository.asset_graph.asset_check_keys)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "assets": assets, "checks": checks}))


def _environment(home: str) -> None:
    os.environ["DATA_MESH_HOME"] = home
    os.environ["DATA_MESH_METADATA_URL"] = f"sqlite:///{home}/store.db"


def _state_path() -> Path:
    """Where Dagster keeps the LOCAL state of the mesh component of this environment."""
    from dagster.components.utils.project_paths import get_local_state_path

    from data_mesh.component.mesh import DataMeshComponent

    return get_local_state_path(DataMeshComponent().defs_state_config.key, ROOT)


def _floor(home: str) -> tuple[Any, float]:
    """The same specs written by hand, under the same GC policy as ours."""
    from dagster import (
        AssetCheckSpec,
        AssetSelection,
        AssetSpec,
        Definitions,
        define_asset_job,
        multi_asset,
    )

    from data_mesh.component.specs import (
        quality_check_spec,
        source_asset_spec,
        transformation_spec,
    )
    from data_mesh.component.state import catalog_from_state, read_state

    # The same attributes our specs carry, as plain values, prepared before the clock.
    catalog = catalog_from_state(read_state(_state_path()), "LOCAL", "state")
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
            "metadata": {k: v for k, v in spec.metadata.items() if k != "dagster/io_manager_key"},
            # With --schedules, the product's cron, as ours carries it.
            "automation_condition": spec.automation_condition,
        }

    plain = []
    for product in catalog.products:
        sources = [
            spec_values(source_asset_spec(d, product)) for d in product.datasets if d.layer == "CDZ"
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
    del catalog, outputs_by_name
    # The same resources: a hand-written code location binds them too.
    from data_mesh.resources.environments import resources_for
    from data_mesh.settings.model import load_settings

    resources = resources_for(load_settings())
    gc.disable()  # the policy data_mesh's load runs under
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
    defs = Definitions(assets=built, jobs=[job], resources=resources)  # type: ignore[arg-type]
    repository = defs.get_repository_def()
    seconds = time.perf_counter() - started
    gc.enable()
    return repository, seconds


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
    products: int, home: Path, storage_sensors_per: str = "domain", schedules: bool = False
) -> tuple[float, int]:
    """A store with `products` synthetic products and the component's state; returns the time
    `write_state_to_path` took and the number of store queries it ran. The store is then moved
    away: no load can query it."""
    from sqlalchemy import event

    from data_mesh.component.mesh import DataMeshComponent
    from data_mesh.devtools.synthetic import generate_metadata
    from data_mesh.store.database import make_engine, upgrade_store

    _environment(str(home))
    engine = make_engine(os.environ["DATA_MESH_METADATA_URL"])
    upgrade_store(engine)
    generate_metadata(engine, products, schedules=schedules)
    # The row, whatever its value (its default is `domain`).
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
    engine.dispose()
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", count)
    started = time.perf_counter()
    DataMeshComponent().write_state_to_path(_state_path())
    seconds = time.perf_counter() - started
    event.remove(Engine, "before_cursor_execute", count)
    (home / "store.db").rename(home / "store.db.moved")
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
        default="domain",
        help="The sensor.storage.per configuration row of the generated store.",
    )
    parser.add_argument(
        "--schedules",
        action="store_true",
        help="Every product gets a schedule row (an automation condition on its assets).",
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(
        "| products | assets | checks | store queries (refresh) | refresh s | ours s | "
        "floor s | ours / floor | ours peak MB | floor peak MB | peak ratio | ours, GC on s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for products in args.products:
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            refresh_s, queries = _prepare(products, home, args.storage_sensors_per, args.schedules)
            try:
                # Alternating runs, the fastest of each kind: the machines are noisy.
                runs: dict[str, list[dict[str, float]]] = {
                    "ours": [],
                    "floor": [],
                    "ours_gc_on": [],
                }
                for _ in range(args.repeat):
                    for mode in runs:
                        runs[mode].append(_run_child(mode, str(home)))
            finally:
                shutil.rmtree(_state_path().parent, ignore_errors=True)
            ours, floor, gc_on = (min(runs[mode], key=lambda r: r["seconds"]) for mode in runs)
            print(
                f"| {products:,} | {ours['assets']:,} | {ours['checks']:,} | {queries} | "
                f"{refresh_s:.1f} | {ours['seconds']:.1f} | {floor['seconds']:.1f} | "
                f"{ours['seconds'] / floor['seconds']:.2f}x | {ours['peak_mb']:.0f} | "
                f"{floor['peak_mb']:.0f} | {ours['peak_mb'] / floor['peak_mb']:.2f}x | "
                f"{gc_on['seconds']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
