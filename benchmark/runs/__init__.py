"""Runs: run store (store.py), run identity and config hash (identity.py), shard merge, provenance, secret scrubbing.
May import the foundation modules, data, models, methods and metrics; never report, tracking or entry points.
"""
