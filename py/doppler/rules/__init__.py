"""Policy as data: rule sets in `rules/**/*.rules.json`, queried with `RuleBook.select_rule_value`."""

from .book import RuleBook, RuleError

__all__ = ["RuleBook", "RuleError"]
