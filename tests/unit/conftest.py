"""Shared fixtures of the CPython unit tests."""

import copy
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_manifest_path() -> Path:
    """A small valid diffusion manifest (tensor tables consistent with three shards)."""
    return DATA / "tiny_manifest.json"


@pytest.fixture
def tiny_manifest(tiny_manifest_path) -> dict:
    """The tiny manifest's JSON, fresh for each test to mutate."""
    return copy.deepcopy(json.loads(tiny_manifest_path.read_text()))


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    """The repository's rules/ folder."""
    return REPO / "rules"
