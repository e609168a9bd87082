"""Recipes: a YAML list of `koe` commands run in order, each with its options, sharing one output folder.

    koe run tiny                        # the built-in recipe src/koe/recipes/tiny.yaml
    koe run my_recipe.yaml out_dir=runs/mine only=[synth,units_fit]

A recipe file is
    description: ...
    steps:
      - name: synth                     # unique label, used for `only=` / `skip=` and the log
        command: synth                  # any command of `koe --help`
        options: {out_dir: "{out}/synth", num_items: 400}
    report: {out}/eval                  # optional: a folder whose results.md is printed at the end
`{out}` in any string is replaced by the run's out_dir. Steps call the same entry functions as the CLI, so a recipe
holds no logic of its own; every step writes its own config.yaml and summary under out_dir.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from koe.stage import KoeInputError, StageReport

RECIPES_DIR = Path(__file__).parent


@dataclasses.dataclass
class RecipeConfig:
    """Run a recipe: a built-in name (e.g. `tiny`) or the path of a recipe YAML."""

    recipe: str = dataclasses.field(default="tiny", metadata={"help": "built-in name or path to a recipe YAML"})
    out_dir: Path | None = dataclasses.field(default=None, metadata={
        "help": "folder for every step's outputs (default runs/<recipe name>)"})
    only: list[str] = dataclasses.field(default_factory=list, metadata={"help": "run only these steps"})
    skip: list[str] = dataclasses.field(default_factory=list, metadata={"help": "skip these steps"})
    keep_going: bool = dataclasses.field(
        default=True, metadata={"help": "go on when a step reports failed items (a config error always stops)"}
    )


def load_recipe(recipe: str) -> dict[str, Any]:
    path = Path(recipe)
    if not path.suffix:
        path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise KoeInputError(f"recipe {recipe!r} not found (built-in: {', '.join(known)})")
    spec = yaml.safe_load(path.read_text())
    names = [s.get("name") for s in spec.get("steps", [])]
    if len(set(names)) != len(names) or None in names:
        raise KoeInputError(f"{path}: every step needs a unique name")
    return spec


def _fill(value: Any, out: str) -> Any:
    if isinstance(value, str):
        return value.replace("{out}", out)
    if isinstance(value, list):
        return [_fill(v, out) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, out) for k, v in value.items()}
    return value


def _as_overrides(options: dict[str, Any], prefix: str = "") -> list[str]:
    args = []
    for key, value in options.items():
        if isinstance(value, dict):
            args.extend(_as_overrides(value, f"{prefix}{key}."))
        else:
            args.append(f"{prefix}{key}={yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()}")
    return [a.removesuffix("\n...") for a in args]


ENVIRONMENT_PACKAGES = ("torch", "transformers", "accelerate", "peft", "tokenizers", "numpy", "scipy", "soxr",
                        "soundfile", "espeakng-loader", "pocketsphinx", "faiss-cpu")


def environment() -> dict[str, str]:
    """Python and the versions of the packages a recipe's numbers depend on, for run_summary.json: the same code
    and seeds gave a different tiny table under other package versions, which earlier runs did not record."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "machine": platform.machine()}
    for name in ENVIRONMENT_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def run_recipe(cfg: RecipeConfig) -> StageReport:
    from koe.cli import run_command

    spec = load_recipe(cfg.recipe)
    if cfg.out_dir is None:
        cfg.out_dir = Path("runs") / Path(cfg.recipe).stem
    out = str(cfg.out_dir)
    steps = [s for s in spec["steps"] if (not cfg.only or s["name"] in cfg.only) and s["name"] not in cfg.skip]
    report = StageReport("run", cfg.out_dir, items_in=len(steps))
    timings = {}
    for i, step in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {step['name']}: koe {step['command']} ===", file=sys.stderr, flush=True)
        start = time.perf_counter()
        code = run_command(step["command"], _as_overrides(_fill(step.get("options", {}), out)))
        timings[step["name"]] = round(time.perf_counter() - start, 1)
        if code == 0:
            report.ok()
        else:
            report.fail(step["name"], f"step exited with status {code}")
            if code == 2 or not cfg.keep_going:
                break
    report.extra["step_wall_s"] = timings
    report.extra["environment"] = environment()
    report.finish()
    if spec.get("report"):
        results = Path(_fill(spec["report"], out)) / "results.md"
        if results.exists():
            print("\n" + results.read_text())
    return report
