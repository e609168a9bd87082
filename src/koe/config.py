"""Typed configs: dataclass defaults in code, overridden by YAML and then by `key=value` arguments.

    cfg = load_config(SynthConfig, yaml_path="configs/synth.yaml", overrides=["num_workers=2", "voices=[en,en-us]"])

Every field carries a one-line help in `field(metadata={"help": ...})`, which `koe <stage> --help` prints; an input
path with no sensible default is `field(default=None, metadata={"help": ..., "required": True})`, so a missing one
is named instead of silently replaced by a default path. Every problem of one run is reported together, naming the
option, as one `ConfigError`: a YAML file that is missing or not valid YAML, unknown keys, values of the wrong type,
missing required options, and the config's own `validate()` checks (ranges, combinations), which run even when
other options had type errors (those options keep their defaults for the check). Nested dataclasses are addressed
with dots (`optim.lr=1e-3`).

Why not a library (pydantic, OmegaConf structured configs, jsonargparse): OmegaConf and jsonargparse stop at the
first bad value, and pydantic runs its model validators (the range and cross-field checks) only once every field
parsed (pydantic 2.14: `a="x", b=0` reports the type error alone), which are the rounds this module avoids; none
parses `key=value` overrides as YAML values while keeping string fields verbatim (`pattern={text}_{speaker}`); and
each would be a dependency replacing ~280 lines with about as many lines of adapters.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class Raw(str):
    """A command-line value not yet parsed: YAML for lists, numbers and mappings, verbatim for string fields (so
    `pattern={text}_{speaker}` or `text=yes` stay strings)."""


class ConfigError(ValueError):
    """One or more config problems, all listed at once."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


def help_text(cls: type) -> str:
    """One line per field: name, type, default and help, nested dataclasses expanded with dots."""
    return "\n".join(_help_lines(cls, prefix=""))


def _help_lines(cls: type, prefix: str, base: Any = None) -> list[str]:
    """`base`: the enclosing field's default instance, whose values are the defaults shown (as `_build` uses them)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            sub_base = getattr(base, f.name) if base is not None else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            lines.extend(_help_lines(kind, f"{prefix}{f.name}.", sub_base))
            continue
        default = getattr(base, f.name) if base is not None else _default_of(f)
        doc = f.metadata.get("help", "")
        lines.append(f"  {prefix}{f.name}={json.dumps(default, default=str)}  ({_type_name(kind)}) {doc}")
    return lines


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "<required>"


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind).replace("typing.", ""))


def load_config(cls: type[T], yaml_path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build `cls` from its defaults, then a YAML file, then `key=value` overrides (later wins).

    Raises ConfigError listing every problem at once (see the module docstring).
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    if yaml_path is not None:
        _merge(values, _read_yaml(Path(yaml_path), problems))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(f"override {item!r} is not of the form key=value")
            continue
        node = values
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                problems.append(f"override {item!r}: {p} is not a section")
                break
        else:
            node[leaf] = Raw(raw)
    bad: set[str] = set()
    cfg = _build(cls, values, "", problems, bad)
    if cfg is not None:
        problems += [p for p in _validate(cfg) if _option_of(p) not in bad]  # no second message for a bad option
    if problems:
        raise ConfigError(problems, str(yaml_path) if yaml_path else "command line")
    return cfg


def _read_yaml(path: Path, problems: list[str]) -> dict:
    """The mapping of a YAML config file; a missing, unreadable or invalid file is a problem naming it (and the
    line, for a syntax error), not a traceback."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"config file {path} not found")
        return {}
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"config file {path} cannot be read ({getattr(e, 'strerror', None) or e})")
        return {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problems.append(f"config file {where}: not valid YAML ({getattr(e, 'problem', None) or e})")
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"config file {path}: top level must be a mapping, got {type(loaded).__name__}")
        return {}
    return loaded


def _validate(cfg: Any) -> list[str]:
    """Required options left unset (nested ones too), then the config's own `validate()` (which calls those of its
    nested configs where it needs them)."""
    validate = getattr(cfg, "validate", None)
    return _unset_required(cfg, "") + list(validate() if validate is not None else [])


def _unset_required(cfg: Any, prefix: str) -> list[str]:
    problems = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            problems += _unset_required(value, f"{prefix}{f.name}.")
        elif f.metadata.get("required") and value in (None, ""):
            problems.append(f"{prefix}{f.name} is required ({f.metadata.get('help', 'no default')})")
    return problems


def _option_of(problem: str) -> str:
    """The option a problem message starts with (`steps=0 must be ...` -> `steps`)."""
    head = problem.split("=", 1)[0].split(" ", 1)[0].split(":", 1)[0]
    return head.removesuffix(",")


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _build(cls: type, values: dict, prefix: str, problems: list[str], bad: set[str], base: Any = None) -> Any:
    """An instance of `cls` from `values`; an option with a problem keeps its default (and is added to `bad`), so
    `validate()` can still check the others in the same run. None when a required field has no value at all.

    `base` is the enclosing field's default instance (its `default_factory()`): options not given keep its values,
    so a stage that sets its own defaults for a shared nested config (sft's cosine optimiser) gets them."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            problems.append(f"unknown option {prefix}{key} (known: {', '.join(sorted(names))})")
    kwargs = {}
    complete = True
    for f in dataclasses.fields(cls):
        kind, name = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(kind):
            sub = values.get(f.name, {})
            if isinstance(sub, Raw):
                sub = _parse_raw(sub, dict, (), name, problems)
            if not isinstance(sub, dict):
                problems.append(f"{name} must be a mapping")
                sub = {}
            sub_base = getattr(base, f.name) if base is not None else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            kwargs[f.name] = _build(kind, sub, f"{name}.", problems, bad, sub_base)
            complete = complete and kwargs[f.name] is not None
        elif f.name in values:
            found: list[str] = []
            value = _coerce(values[f.name], kind, name, found)
            if found:
                problems.extend(found)
                bad.add(name)
                complete = complete and _default_of(f) != "<required>"
            else:
                kwargs[f.name] = value
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
        elif _default_of(f) == "<required>":
            problems.append(f"{name} is required ({f.metadata.get('help', 'no default')})")
            complete = False
    return cls(**kwargs) if complete else None


def _coerce(value: Any, kind: Any, name: str, problems: list[str]) -> Any:
    """Check a YAML value against a field type; int->float and str->Path are the only conversions."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if isinstance(value, Raw):
        value = _parse_raw(value, kind, args, name, problems)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        for k in kinds:
            sub: list[str] = []
            out = _coerce(value, k, name, sub)
            if not sub:
                return out
        problems.append(f"{name}={value!r} is not {_type_name(kind)}")
        return value
    if origin is typing.Literal:
        if value not in args:
            problems.append(f"{name}={value!r} must be one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{name}={value!r} must be a list")
            return value
        item = args[0] if args else Any
        return [_coerce(v, item, f"{name}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{name}={value!r} must be a mapping")
        return value
    if kind is Any:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if kind is Path and isinstance(value, str):
        return Path(value)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if (isinstance(kind, type) and not isinstance(value, kind)) or (kind is int and isinstance(value, bool)):
        problems.append(f"{name}={value!r} must be {_type_name(kind)}")
    return value


def _parse_raw(raw: Raw, kind: Any, args: tuple, name: str, problems: list[str]) -> Any:
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    if kind in (str, Path) or (union and (set(args) - {type(None)}) <= {str, Path}):
        if raw in ("null", "None", "~") and type(None) in args:
            return None
        quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
        return str(yaml.safe_load(raw)) if quoted else str(raw)
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        problems.append(f"{name}={raw!r} is not valid YAML ({str(e).splitlines()[0]})")
        return str(raw)


def at_least(cfg: Any, names: tuple[str, ...], minimum: int) -> list[str]:
    """validate() problems for the fields of `cfg` below `minimum`, in the wording every config uses."""
    return [f"{name}={getattr(cfg, name)} must be >= {minimum}" for name in names if getattr(cfg, name) < minimum]


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a config, Paths as strings."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def save_config(cfg: Any, out_dir: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config beside a stage's outputs, so every run can be reproduced."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
