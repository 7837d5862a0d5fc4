"""Bring-your-own maps: the ``precomputed`` method reads saliency maps from files named by image id.

Any explanation method can be scored by every metric of the suite without porting it: compute its
maps elsewhere, save them as NumPy arrays, and run, e.g.::

    python -m benchmark model=vgg16 dataset=ilsvrc2012_val metric=localization \\
        method=precomputed method.options.root=/path/to/maps method.label=my_method

``method.label`` names the run folder and the table row (``precomputed`` if not given). The model
is still needed: its logits give the classification columns and the classes the metric asks
for (top-k predictions), so the maps must have been made for the same model and weights.

File layout. ``root`` is either a folder with one file per image, or one ``.npz`` archive holding
every image; ``<image_id>`` is the manifest's ``image_id`` (e.g. ``ILSVRC2012_val_00000001``,
VOC ``000001``; ``python -c "from benchmark.data.readers import ManifestDataset as M;
print(M('MANIFEST_DIR').image_ids[:5])"`` lists them) and ``<class_id>`` the class index in the
model's output order, written in decimal (``281``)::

    folder  <root>/<image_id>.npy   2-D [h, w]: one map for the image (see "one map" below), or
                                    3-D [C, h, w], C = the model's class count: index c = class c
            <root>/<image_id>.npz   one 2-D [h, w] array per class, keyed "<class_id>"
    archive <root> = maps.npz       key "<image_id>": as the .npy above (2-D or 3-D), or
                                    keys "<image_id>/<class_id>": one 2-D array per class

An image has exactly one of its forms (both a ``.npy`` and a ``.npz``, or both kinds of key in an
archive, is an error). Write an archive with ``np.savez(path, **{"<image_id>/<class_id>": m})``.

Which classes a metric asks for: localization, the GT class; pointing game, every GT class in the
image; modified pointing game, the model's top-5 predicted classes; occlusion correlation, the GT
class with the highest logit. A per-class file must hold a key for each class asked.

One map (2-D): used as the map of the class asked when a metric asks for one class of the image
(localization, occlusion correlation, a single-class image in the pointing game); asked for two
or more different classes of the image, it is an error (a per-class map was probably intended)
unless ``class_agnostic: true``, which uses the one map for every class.

Values: any real numeric dtype (bool, int, float), converted to float32; raw, as the method made
them (the suite never normalizes maps). A NaN or infinite value (also after the float32
conversion) is an error naming the file, the key and the count; ``allow_nonfinite: true`` passes
such maps through instead, to be scored as failures and flagged ``degenerate`` like any method's.

Resolution: any ``h x w``. Each map is resized bilinearly (``align_corners=False``, no
antialiasing: ``F.interpolate``) to the model's input resolution, as the method contract requires;
the metric then resizes it to the original image resolution like every method's map. A map must
therefore cover what the model saw: the whole image under ``paper`` preprocessing (the default),
the center crop under ``center_crop``. A map made at the original resolution goes original ->
input -> original (a slight smoothing); one made at the input resolution is used unchanged.

Safety: files are read with ``np.load(..., allow_pickle=False)``; an object array (pickled Python
objects) is refused with an error naming the file. Image ids that would leave ``root`` (absolute,
or with ``..``) are refused.

Image ids reach the method through ``for_samples(method, samples)`` (``evaluate`` wraps each batch
in it); ``explain`` outside such a context is an error. The files are not part of the run's
configuration hash: after changing them, rerun with ``force=true``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from benchmark.methods.base import METHODS, Explanation, SaliencyMethod, upsample

NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats


class PrecomputedMapError(ValueError):
    """A map file exists but does not hold what the ``precomputed`` method expects."""


NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK"


def _load(path: Path, mmap: bool = False):
    """``np.load`` without pickles; errors name the file and what was expected."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not (magic.startswith(NPY_MAGIC) or magic.startswith(NPZ_MAGIC)):
        raise PrecomputedMapError(f"{path}: not a readable NumPy .npy/.npz file (no NumPy or zip header); "
                                  "write maps with np.save / np.savez")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as err:
        raise _load_error(err, path, f"not a readable NumPy .npy/.npz file ({err})",
                          " (e.g. np.save(path, m.astype(np.float32)))") from None
    except (OSError, EOFError) as err:
        raise PrecomputedMapError(f"{path}: not a readable NumPy .npy/.npz file ({err})") from None


def _member(archive, key: str, where: str) -> np.ndarray:
    """One array of an ``.npz`` (members are decoded on access, so pickles surface here)."""
    try:
        return archive[key]
    except ValueError as err:
        raise _load_error(err, where, f"unreadable array ({err})") from None


def _load_error(err: ValueError, where, otherwise: str, hint: str = "") -> PrecomputedMapError:
    """The error for a ``ValueError`` of ``np.load``: a refused pickle, or ``otherwise``."""
    if "pickle" in str(err).lower() or "object" in str(err).lower():
        return PrecomputedMapError(f"{where}: refused: holds an object array (pickled Python objects), read with "
                                   f"allow_pickle=False; save plain numeric arrays{hint}")
    return PrecomputedMapError(f"{where}: {otherwise}")


class Precomputed(SaliencyMethod):
    """Maps read from ``root`` by image id and class (layout in the module docstring)."""

    name = "precomputed"
    uses_samples = True

    def __init__(self, model, info, layer=None, root: str | None = None, class_agnostic: bool = False,
                 allow_nonfinite: bool = False):
        super().__init__(model, info)
        if layer is not None:
            raise ValueError(f"precomputed: method.layer={layer!r} given, but maps are read from files (use null)")
        if root in (None, "", "???"):
            raise ValueError("precomputed: method.options.root is not set; give the folder of <image_id>.npy/.npz "
                             "files or the .npz archive, e.g. method.options.root=/path/to/maps")
        self.root = Path(str(root)).expanduser()
        self.class_agnostic, self.allow_nonfinite = bool(class_agnostic), bool(allow_nonfinite)
        self.layer = None
        self._ids: list[str] | None = None
        self._archive = None
        if self.root.is_file():
            if self.root.suffix != ".npz":
                raise ValueError(f"precomputed: method.options.root={self.root} is a file but not a .npz archive; "
                                 "expected a folder of <image_id>.npy/.npz files or one .npz archive")
            self._archive = _load(self.root)
            self._keys = set(self._archive.files)
            self._per_class = {k.rpartition("/")[0] for k in self._keys if "/" in k and k.rpartition("/")[2].isdigit()}
        elif not self.root.is_dir():
            raise FileNotFoundError(f"precomputed: method.options.root={self.root}: no such folder or .npz file")

    @contextlib.contextmanager
    def bind_samples(self, samples):
        """The image ids of the batch the next ``explain`` calls are for (see ``for_samples``)."""
        previous, self._ids = self._ids, [str(s.image_id) for s in samples]
        try:
            yield self
        finally:
            self._ids = previous

    def _explain(self, images, class_ids):
        if self._ids is None:
            raise RuntimeError("precomputed: no image ids for this batch; call explain inside "
                               "benchmark.methods.base.for_samples(method, samples) (evaluate does)")
        if len(self._ids) != images.shape[0]:
            raise ValueError(f"precomputed: {images.shape[0]} images but {len(self._ids)} image ids bound")
        with torch.no_grad():
            logits = self.model(images)
        size = tuple(images.shape[-2:])
        out = torch.empty(images.shape[0], class_ids.shape[1], *size, dtype=torch.float32)
        for i, image_id in enumerate(self._ids):
            for k, (where, m) in enumerate(self._maps(image_id, [int(c) for c in class_ids[i].tolist()])):
                out[i, k] = upsample(torch.from_numpy(self._checked(m, where))[None, None], size)[0, 0]
        return Explanation(maps=out.to(images.device), logits=logits)

    # --- reading -------------------------------------------------------------------------------

    def _maps(self, image_id: str, classes: list[int]) -> list[tuple[str, np.ndarray]]:
        """``(where, 2-D array)`` per class asked, in order."""
        if self._archive is not None:
            return self._from_archive(image_id, classes)
        rel = PurePosixPath(image_id)
        if not image_id or rel.is_absolute() or ".." in rel.parts or "\\" in image_id:
            raise PrecomputedMapError(f"precomputed: image id {image_id!r} cannot name a file under {self.root}")
        npy, npz = self.root / f"{image_id}.npy", self.root / f"{image_id}.npz"
        if npy.is_file() and npz.is_file():
            raise PrecomputedMapError(f"precomputed: image {image_id!r} has both {npy} and {npz}; keep one")
        if npy.is_file():
            return self._from_whole(_load(npy, mmap=True), str(npy), image_id, classes)
        if npz.is_file():
            with _load(npz) as archive:
                return [(f"{npz}[{c!r}]", np.array(_member(archive, c, f"{npz}[{c!r}]")))
                        for c in self._keys_present(archive.files, [str(k) for k in classes], str(npz), image_id)]
        raise FileNotFoundError(f"precomputed: no map for image {image_id!r}: expected {npy} or {npz}")

    def _from_archive(self, image_id: str, classes: list[int]) -> list[tuple[str, np.ndarray]]:
        whole, per_class = image_id in self._keys, image_id in self._per_class
        if whole and per_class:
            raise PrecomputedMapError(f"{self.root}: image {image_id!r} has both key {image_id!r} and "
                                      f"'{image_id}/<class_id>' keys; keep one form")
        if whole:
            where = f"{self.root}[{image_id!r}]"
            return self._from_whole(_member(self._archive, image_id, where), where, image_id, classes)
        if not per_class:
            raise PrecomputedMapError(f"{self.root}: no map for image {image_id!r}: expected key {image_id!r} "
                                      f"or keys '{image_id}/<class_id>'")
        keys = self._keys_present(self._keys, [f"{image_id}/{c}" for c in classes], str(self.root), image_id,
                                  prefix=f"{image_id}/")
        return [(f"{self.root}[{k!r}]", _member(self._archive, k, f"{self.root}[{k!r}]")) for k in keys]

    @staticmethod
    def _keys_present(available, keys: list[str], where: str, image_id: str, prefix: str = "") -> list[str]:
        """``keys`` if all are in ``available``; else an error listing the image's keys (``prefix``)."""
        missing = [k for k in dict.fromkeys(keys) if k not in available]
        if missing:
            held = sorted(k for k in available if k.startswith(prefix))
            raise PrecomputedMapError(f"{where}: image {image_id!r} has no map for key(s) {missing} (class ids the "
                                      f"metric asks for); it holds {held[:10]}{' ...' if len(held) > 10 else ''}")
        return keys

    def _from_whole(self, arr: np.ndarray, where: str, image_id: str, classes: list[int]) -> list[tuple[str, np.ndarray]]:
        """A 2-D map (one for the image) or a 3-D ``[C, h, w]`` stack indexed by class."""
        if arr.ndim == 2:
            if len(set(classes)) > 1 and not self.class_agnostic:
                raise PrecomputedMapError(
                    f"{where}: one [h, w] map for image {image_id!r}, but the metric asks for the maps of classes "
                    f"{sorted(set(classes))}; give [C, h, w] or one map per class, or set "
                    "method.options.class_agnostic=true to use the one map for every class")
            return [(where, arr)] * len(classes)
        if arr.ndim == 3:
            if arr.shape[0] != self.info.num_classes:
                raise PrecomputedMapError(
                    f"{where}: shape {tuple(arr.shape)}: a 3-D array must be [C, h, w] with C = "
                    f"{self.info.num_classes} (the classes of model {self.info.name!r}, index = class id)")
            return [(f"{where}[{c}]", np.array(arr[c])) for c in classes]
        raise PrecomputedMapError(f"{where}: shape {tuple(arr.shape)} (ndim {arr.ndim}); expected [h, w] (one map) "
                                  f"or [C={self.info.num_classes}, h, w] (one map per class index)")

    def _checked(self, m: np.ndarray, where: str) -> np.ndarray:
        """float32 ``[h, w]``; dtype, shape and finiteness checked."""
        if m.dtype.kind not in NUMERIC_KINDS:
            raise PrecomputedMapError(f"{where}: dtype {m.dtype}; expected a real numeric array (float, int or bool)")
        if m.ndim != 2 or 0 in m.shape:
            raise PrecomputedMapError(f"{where}: shape {tuple(m.shape)}; expected a non-empty 2-D map [h, w]")
        with np.errstate(over="ignore"):
            out = np.array(m, dtype=np.float32, order="C", copy=True)  # a copy: files may be memory-mapped
        bad = int(out.size - np.isfinite(out).sum())
        if bad and not self.allow_nonfinite:
            raise PrecomputedMapError(
                f"{where}: {bad} non-finite value(s) (NaN or inf, after conversion to float32); expected finite maps "
                "(method.options.allow_nonfinite=true scores such maps as degenerate failures instead)")
        return out


@METHODS.register("precomputed", options=Precomputed)
def precomputed(model, info, layer=None, **options):
    return Precomputed(model, info, layer=layer, **options)
