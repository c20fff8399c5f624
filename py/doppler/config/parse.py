"""JSON value -> schema-backed frozen dataclass, and back.

`parse` walks the dataclass's fields (schema.py), checks each JSON value against its type and bounds, and
collects every problem as "PATH: got VALUE; expected ALLOWED" before raising one `ConfigError`.
Arrays become tuples, so parsed objects are immutable all the way down (free-form `dict` fields excepted).
"""

from __future__ import annotations

import dataclasses
import re
import typing

from .schema import ConfigError, bounds_for, has_default, is_free_object, is_union, schema_fields, show

_SCALAR_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def parse(cls: type, value, path: str):
    """Build `cls` from the JSON `value` found at `path` (e.g. "runtime.inference.diffusion"); ConfigError if bad."""
    problems: list[str] = []
    result = _value(cls, value, path, {}, problems)
    if problems:
        raise ConfigError(problems)
    return result


def to_json(obj):
    """The JSON value of a parsed object (every field, defaults included)."""
    if dataclasses.is_dataclass(obj):
        return {key: to_json(getattr(obj, f.name)) for f, key, _ in schema_fields(type(obj))}
    if isinstance(obj, (tuple, list)):
        return [to_json(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_json(item) for key, item in obj.items()}
    return obj


def describe(tp, meta) -> str:
    """What a value of type `tp` with bounds `meta` must be, in words (the 'expected ...' of error messages)."""
    if dataclasses.is_dataclass(tp) or is_free_object(tp):
        return "an object"
    if tp is type(None):
        return "null"
    if is_union(tp):
        return " or ".join(describe(member, meta) for member in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return f"an array of {_plural(describe(typing.get_args(tp)[0], meta))}{_item_count_words(meta)}"
    bounds = bounds_for(tp, meta)
    if "choices" in bounds:
        return "one of " + ", ".join(show(choice) for choice in bounds["choices"])
    words = [_SCALAR_NAMES[tp]]
    low, high = bounds.get("minimum"), bounds.get("maximum")
    if low is not None and high is not None:
        words.append(f"in [{low}, {high}]")
    elif low is not None:
        words.append(f">= {low}")
    elif high is not None:
        words.append(f"<= {high}")
    if "exclusive_minimum" in bounds:
        words.append(f"> {bounds['exclusive_minimum']}")
    if "multiple_of" in bounds:
        words[-1] += ","
        words.append(f"a multiple of {bounds['multiple_of']}")
    if "pattern" in bounds:
        words.append(f"matching {bounds['pattern']}")
        if "doc" in meta:  # a regex alone is a poor hint
            words.append(f"({meta['doc']})")
    return " ".join(words)


def _item_count_words(meta) -> str:
    low, high = meta.get("min_items"), meta.get("max_items")
    if low is not None and high is not None:
        return f" ({low} to {high} items)" if low != high else f" ({low} items)"
    if low is not None:
        return f" (at least {low})"
    return f" (at most {high})" if high is not None else ""


def _plural(words: str) -> str:
    for article in ("an ", "a "):
        if words.startswith(article):
            noun, _, rest = words[len(article):].partition(" ")
            return f"{noun}s {rest}".rstrip()
    return words


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _accepted_kinds(tp) -> set[str]:
    if dataclasses.is_dataclass(tp) or is_free_object(tp):
        return {"object"}
    if typing.get_origin(tp) is tuple:
        return {"array"}
    return {type(None): {"null"}, bool: {"boolean"}, int: {"integer"}, float: {"integer", "number"},
            str: {"string"}}[tp]


def _value(tp, value, path, meta, problems, declared=None):
    """Parse `value` as `tp`; `declared` is the union `tp` was picked from, named in out-of-bounds messages."""
    if is_union(tp):
        members = [m for m in typing.get_args(tp) if _json_kind(value) in _accepted_kinds(m)]
        if not members:
            problems.append(f"{path}: got {show(value)}; expected {describe(tp, meta)}")
            return None
        return _value(members[0], value, path, meta, problems, declared=tp)
    if _json_kind(value) not in _accepted_kinds(tp):
        problems.append(f"{path}: got {show(value)}; expected {describe(tp, meta)}")
        return None
    if dataclasses.is_dataclass(tp):
        return _object(tp, value, path, problems)
    if typing.get_origin(tp) is tuple:
        return _array(tp, value, path, meta, problems)
    if is_free_object(tp):
        missing = [key for key in meta.get("required_keys", ()) if key not in value]
        problems.extend(f"{path}.{key}: missing; required ({meta['doc']})" for key in missing)
        return dict(value)
    if not _within_bounds(value, bounds_for(tp, meta)):
        problems.append(f"{path}: got {show(value)}; expected {describe(declared or tp, meta)}")
    return float(value) if tp is float else value


def _within_bounds(value, meta) -> bool:
    checks = {
        "choices": lambda allowed: value in allowed,
        "minimum": lambda low: value >= low,
        "maximum": lambda high: value <= high,
        "exclusive_minimum": lambda low: value > low,
        "multiple_of": lambda step: value % step == 0,
        # JSON Schema patterns are unanchored searches; ours carry their own ^...$ where they mean the whole.
        "pattern": lambda pattern: re.search(pattern, value) is not None,
    }
    return all(check(meta[name]) for name, check in checks.items() if name in meta)


def _array(tp, value, path, meta, problems):
    (item_type, _ellipsis) = typing.get_args(tp)
    low, high = meta.get("min_items"), meta.get("max_items")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        problems.append(f"{path}: got {len(value)} items; expected {describe(tp, meta)}")
    return tuple(_value(item_type, item, f"{path}[{i}]", meta, problems) for i, item in enumerate(value))


def _object(cls, value, path, problems):
    start = len(problems)
    fields = schema_fields(cls)
    known = [key for _, key, _ in fields]
    problems.extend(f"{path}.{key}: unknown key; known keys: {', '.join(known)}" for key in value if key not in known)
    kwargs = {}
    for f, key, tp in fields:
        if key in value:
            kwargs[f.name] = _value(tp, value[key], f"{path}.{key}", f.metadata, problems)
        elif has_default(f):
            kwargs[f.name] = f.default
        else:
            problems.append(f"{path}.{key}: missing; required ({f.metadata['doc']})")
    if len(problems) > start:
        return None
    obj = cls(**kwargs)
    cross_check = getattr(obj, "cross_check", None)
    if cross_check is not None:
        problems.extend(f"{path}.{where}: {message}" for where, message in cross_check())
    return obj
