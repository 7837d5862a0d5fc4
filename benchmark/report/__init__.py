"""Reports built from finished runs: the generic table builder (tables.py), the paper and demo
table specs with the layer-sweep plot and the pointing/occlusion tables (specs.py), the real-photo
figure (real_photos.py); ``python -m benchmark.report`` writes every table.

May import the foundation modules, data, models, methods, metrics and runs; never tracking or the
entry points. ``tables.py`` never imports ``specs.py`` (specs build on tables).
"""
