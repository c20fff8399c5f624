"""Schema-backed frozen dataclasses: each field's default, description and allowed values live in its metadata.

`setting(...)` makes such a field. `parse` (parse.py) and `json_schema` (json_schema.py) read the same metadata,
so the rules written once here are both the rules enforced and the rules published.

JSON keys are the camelCase of the field names, except in classes that mirror a diffusers/transformers
config.json (`SNAKE_CASE_KEYS = True`), whose keys are the field names themselves.
A class may define `cross_check(self)` yielding (relative JSON path, message) for rules spanning fields.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing

from doppler.errors import DopplerError

# Metadata keys a `setting` may carry besides its description; each maps to a JSON Schema keyword.
BOUNDS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusive_minimum": "exclusiveMinimum",
    "multiple_of": "multipleOf",
    "choices": "enum",
    "pattern": "pattern",
}
ARRAY_BOUNDS = {"min_items": "minItems", "max_items": "maxItems"}
_NUMBER_ONLY = ("minimum", "maximum", "exclusive_minimum", "multiple_of")
# Values longer than this are cut in error messages, so a wrong 10 000-entry table does not flood the terminal.
SHOWN_VALUE_CHARS = 80


class ConfigError(DopplerError, ValueError):
    """Bad config or manifest input: one line per problem, each naming the JSON path, the value and the fix."""

    def __init__(self, problems: typing.Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def setting(default=dataclasses.MISSING, *, doc: str, required_keys: tuple[str, ...] | None = None, **bounds):
    """A dataclass field with a description (`doc`), optional default and bounds (see BOUNDS, ARRAY_BOUNDS).

    `required_keys` applies to free-form `dict` fields: keys that must be present.
    """
    unknown = set(bounds) - set(BOUNDS) - set(ARRAY_BOUNDS)
    if unknown:
        raise TypeError(f"setting(): unknown bounds {sorted(unknown)}; known: {sorted(BOUNDS) + sorted(ARRAY_BOUNDS)}")
    metadata = {"doc": doc, **{k: v for k, v in bounds.items() if v is not None}}
    if required_keys:
        metadata["required_keys"] = tuple(required_keys)
    return dataclasses.field(default=default, metadata=metadata)


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


@functools.cache
def schema_fields(cls: type) -> tuple[tuple[dataclasses.Field, str, typing.Any], ...]:
    """(field, JSON key, resolved type) for each field of the dataclass `cls`, in declaration order."""
    hints = typing.get_type_hints(cls)
    snake = getattr(cls, "SNAKE_CASE_KEYS", False)
    return tuple((f, f.name if snake else camel_case(f.name), hints[f.name]) for f in dataclasses.fields(cls))


def has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING  # `setting` gives plain defaults (frozen values), no factories


def is_free_object(tp) -> bool:
    """A `dict` field: any JSON object, kept as is."""
    return tp is dict or typing.get_origin(tp) is dict


def is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def bounds_for(tp, meta) -> dict:
    """The bounds of `meta` that apply to a scalar of type `tp` (a union shares one metadata among its members)."""
    if tp is type(None):
        return {}
    applicable = {"choices"}
    if tp in (int, float):
        applicable.update(_NUMBER_ONLY)
    if tp is str:
        applicable.add("pattern")
    return {name: value for name, value in meta.items() if name in applicable}


def show(value) -> str:
    """A JSON rendering of `value` for error messages, cut short when long."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."
