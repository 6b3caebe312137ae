"""Benchmarks at province scale: the synthetic province, the measurements, the soak.

Not installed with the package (a source checkout's tool): ``qcbot bench`` puts the
repository root on ``sys.path`` to import it. See BENCHMARKS.md.
"""
