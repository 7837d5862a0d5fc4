"""The run store and what identifies a run: record parts and summary, config hash and run folder,
shard merge, provenance and secret scrubbing.

May import the foundation modules, data, models, methods and metrics; never report, tracking or
the entry points (evaluate, run, demo, perf, training).
"""
