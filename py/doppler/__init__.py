"""Doppler: Stable Diffusion in the browser on WebGPU, orchestrated by Python.

Page-side modules import only the standard library and `pyodide`; tools (convert, cli, serve) run on CPython.
"""

__version__ = "0.1.0"
