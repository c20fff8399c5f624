"""Kernel variants from policy: `rules/kernels/*.rules.json` queried with the device's capabilities, so ops never
branch on devices themselves. The rules folder sits beside the kernel folder, in the repository as in the page's
unpacked assets (`assets/wgsl`, `assets/rules`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..rules import RuleBook

RULES_FOLDER = "rules"  # beside the kernel folder
DOMAIN = "kernels"

_books: dict[Path, RuleBook] = {}


def kernel_rule(gpu, key: str) -> Any:
    """The `kernels` rule `key` (e.g. "subgroups") for this device."""
    folder = Path(gpu.kernels.source_dir).parent / RULES_FOLDER
    book = _books.get(folder)
    if book is None:
        book = _books[folder] = RuleBook.load(folder)
    return book.select_rule_value(DOMAIN, key, gpu.caps.context())
