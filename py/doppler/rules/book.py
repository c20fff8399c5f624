"""RuleBook: the rule sets of a rules folder (`**/*.rules.json`), checked when loaded, queried by value.

A file holds one domain's rule sets, by key. A rule set is a list of rules tried in order; the first whose
every condition holds gives the value, and the list ends in {"default": value}. A rule is
{"when": {CONTEXT_KEY: {MATCHER: OPERAND, ...}, ...}, "value": VALUE, "why": "..."}; CONTEXT_KEY may be dotted
("limits.maxBufferSize") to reach into nested context objects. rules/README.md documents the context keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doppler.config.schema import show

from .matchers import MATCHERS

RULE_FILES = "*.rules.json"
_FILE_KEYS = {"domain", "description", "rules"}
_RULE_KEYS = {"when", "value", "why"}
_DEFAULT_KEYS = {"default", "why"}


class RuleError(ValueError):
    """A malformed rule file, or a query the rules cannot answer (unknown key, missing context)."""


@dataclass(frozen=True)
class Condition:
    key: str  # context key, dotted for nested objects
    matcher: str
    operand: Any


@dataclass(frozen=True)
class Rule:
    where: str  # "FILE: domain.key[i]", for error messages
    conditions: tuple[Condition, ...]
    value: Any


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Any


@dataclass(frozen=True)
class RuleBook:
    """Rule sets by (domain, key). Load once per folder with `RuleBook.load` and pass it to whoever decides."""

    rule_sets: Mapping[tuple[str, str], RuleSet]

    @classmethod
    def load(cls, folder: str | Path) -> RuleBook:
        """Every `*.rules.json` under `folder`, validated; RuleError naming the file and rule if one is bad."""
        root = Path(folder)
        files = sorted(root.rglob(RULE_FILES))
        if not files:
            raise RuleError(f"{root}: no {RULE_FILES} files here; pass the repository's rules/ folder")
        rule_sets, origin = {}, {}
        for file in files:
            for (domain, key), rule_set in _read_file(file).items():
                if (domain, key) in rule_sets:
                    raise RuleError(f"{file}: {domain}.{key} is already defined in {origin[domain, key]}")
                rule_sets[domain, key], origin[domain, key] = rule_set, file
        return cls(rule_sets)

    def select_rule_value(self, domain: str, key: str, context: Mapping) -> Any:
        """The value of the first rule of (domain, key) whose conditions all hold in `context`, else the default."""
        rule_set = self.rule_sets.get((domain, key))
        if rule_set is None:
            known = ", ".join(f"{d}.{k}" for d, k in sorted(self.rule_sets))
            raise RuleError(f"no rules for {domain}.{key}; known: {known}")
        for rule in rule_set.rules:
            if all(_holds(condition, context, rule.where) for condition in rule.conditions):
                return rule.value
        return rule_set.default


def _holds(condition: Condition, context: Mapping, where: str) -> bool:
    actual = context
    for part in condition.key.split("."):
        if not isinstance(actual, Mapping) or part not in actual:
            given = ", ".join(sorted(context))
            raise RuleError(f"{where}: the context has no {condition.key!r} (given: {given}); "
                            "rules/README.md lists the keys each domain needs")
        actual = actual[part]
    matcher = MATCHERS[condition.matcher]
    if not matcher.actual_ok(actual):
        raise RuleError(f"{where}: context {condition.key} is {show(actual)}; "
                        f"{condition.matcher} needs {matcher.actual}")
    return matcher.test(actual, condition.operand)


def _read_file(file: Path) -> dict[tuple[str, str], RuleSet]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RuleError(f"{file}: not a readable JSON file: {error}") from error
    if not isinstance(data, dict) or set(data) - _FILE_KEYS or not {"domain", "rules"} <= set(data):
        raise RuleError(f"{file}: expected an object with keys domain, rules (and optionally description)")
    domain, rule_sets = data["domain"], data["rules"]
    if not isinstance(domain, str) or not domain:
        raise RuleError(f"{file}: domain: got {show(domain)}; expected a non-empty string")
    if not isinstance(rule_sets, dict) or not rule_sets:
        raise RuleError(f"{file}: rules: expected an object of rule sets by key, e.g. {{\"mathDtype\": [...]}}")
    return {(domain, key): _rule_set(entries, f"{file}: {domain}.{key}") for key, entries in rule_sets.items()}


def _rule_set(entries, where: str) -> RuleSet:
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{where}: expected a list of rules ending in {{\"default\": value}}")
    *rules, last = entries
    if not isinstance(last, dict) or "default" not in last or set(last) - _DEFAULT_KEYS:
        raise RuleError(f"{where}[{len(entries) - 1}]: the last rule must be {{\"default\": value}} "
                        "(and optionally \"why\")")
    return RuleSet(tuple(_rule(rule, f"{where}[{i}]") for i, rule in enumerate(rules)), last["default"])


def _rule(rule, where: str) -> Rule:
    if not isinstance(rule, dict) or "default" in rule:
        raise RuleError(f"{where}: only the last rule may be a default; expected {{\"when\": ..., \"value\": ...}}")
    if set(rule) - _RULE_KEYS or not {"when", "value"} <= set(rule):
        raise RuleError(f"{where}: got keys {sorted(rule)}; expected when, value (and optionally why)")
    when = rule["when"]
    if not isinstance(when, dict) or not when:
        raise RuleError(f"{where}: when: expected an object of context keys to {{matcher: operand}}")
    conditions = []
    for key, tests in when.items():
        if not isinstance(tests, dict) or not tests:
            raise RuleError(f"{where}: when.{key}: expected an object of matchers, e.g. {{\"eq\": \"webgpu\"}}")
        for name, operand in tests.items():
            if name not in MATCHERS:
                raise RuleError(f"{where}: when.{key}: unknown matcher {name!r}; known: {', '.join(MATCHERS)}")
            if not MATCHERS[name].operand_ok(operand):
                raise RuleError(f"{where}: when.{key}.{name}: got {show(operand)}; expected {MATCHERS[name].operand}")
            conditions.append(Condition(key, name, operand))
    return Rule(where, tuple(conditions), rule["value"])
