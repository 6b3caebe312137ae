"""Benchmarks at province scale: the synthetic province, the measurements, the soak.

Outside the product (a source checkout's tool, not installed): run it from the repository
root as ``python -m bench.run`` (``make bench``), ``python -m bench.seed``, ``python -m
bench.soak``. It may import every layer; nothing of the product imports it. See BENCHMARKS.md.
"""
