"""Model data: the manifest format (format.py), its checks (validate.py) and sizes (summary.py)."""

from .format import Manifest
from .summary import component_bytes, summary
from .validate import file_problems, load_manifest, parse_manifest

__all__ = ["Manifest", "component_bytes", "file_problems", "load_manifest", "parse_manifest", "summary"]
