"""Data: dataset manifests (manifest.py), image and annotation readers (readers.py), preprocessing (transforms.py).
May import only the foundation modules (io, types, paths); never models or anything above.
"""
