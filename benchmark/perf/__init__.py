"""``make bench`` (``python -m benchmark.perf``): bench.py and its parts (timing, compare, tools, fast, post, ...).
An entry layer: may import every lower layer (models, methods, metrics, runs); nothing imports perf.
"""
