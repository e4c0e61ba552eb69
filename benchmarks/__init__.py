"""Side-by-side benchmarks of itly-async against the peer SDKs: ``python -m benchmarks``.

This package is imported by two interpreters: the project's venv (ours, the sink, the
orchestrator) and ``benchmarks/.venv-peers`` (the peer SDKs). Modules that the peers'
interpreter runs (``workload``, ``_harness``, ``peers``) use the standard library only;
nothing here imports ``itly_async`` at package import time.
"""
