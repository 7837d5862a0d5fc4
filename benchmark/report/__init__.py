"""Reports from finished runs: tables (tables.py, writers.py, latex.py), paper/demo table specs (specs.py), the
pointing, occlusion and layer tables (metric_tables.py, pointing_tables.py), generic tables for any experiment
(generic.py), statistics (stats.py: intervals and paired tests; significance.py: each method against a reference),
protocol matching of runs against published numbers (matching.py, cards.py), metric agreement (agreement.py),
the atomic set of tables (publish.py), the real-photo figure, the golden demo tables and the documentation blocks
written from them (golden.py, golden_docs.py).
May import the layers below (foundation, data, models, methods, metrics, runs); never tracking or the entry points.

``python -m benchmark.report`` writes every table. ``tables.py`` never imports ``specs.py``.
The Fig. 1 panel is not here: it is the occlusion metric's own run artifact and uses only methods
and metrics, so it lives in ``benchmark/metrics/_fig1.py`` (metrics never import report).
"""
