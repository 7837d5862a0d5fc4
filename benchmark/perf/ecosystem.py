"""The ecosystem section of ``benchmark.perf``: each adapter family against its library called directly.

One representative per family, on the same model, batch and K classes per image:

* ``pgc_gradcam_plusplus`` (the suite's adapter: builds the library's ``GradCAMPlusPlus`` per call,
  runs it under the model guard, keeps the raw map and upsamples it) against ``GradCAMPlusPlus``
  built once and called on the images repeated K times with one ``ClassifierOutputTarget`` per row
  (its min-max scaled output, as a user gets it);
* ``captum_integrated_gradients`` (``n_steps=8``; the adapter adds the guard, the channel reduction
  and one forward pass for the logits) against ``IntegratedGradients(model).attribute`` on the same
  repeated images with ``max_c |.|`` and the adapter's ``internal_batch_size`` (32 rows per pass,
  ``captum_methods.BOUNDED``). With Captum's default instead (every step of every row in one pass:
  320 ResNet-50 rows here) the library side is bound by memory traffic while the adapter's is bound by
  compute, and their ratio follows the machine rather than the adapter: 1.35 on one 2-core instance,
  2.4 to 2.6 on the next, where every compute-bound ratio of the bench agreed.

The ratio ``adapter / library`` of maps per second (median of per-round ratios) is the adapter's
overhead: 1 means none; ``_min`` and ``_max`` are the extremes of the per-round ratios. Sections are skipped, with a note, where a library is not installed.
"""

from __future__ import annotations

import importlib.util
import warnings

from benchmark.perf.compare import timed_rows
from benchmark.perf.timing import Contender, paired_ratio
from benchmark.methods import build_method
from benchmark.models.base import resolve_layer

N_STEPS = 8


def _pgc_direct(model, layer):
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = GradCAMPlusPlus(model=model, target_layers=[resolve_layer(model, layer)])

    def run(images, ids):
        x = images.repeat_interleave(ids.shape[1], 0).requires_grad_(True)
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in ids.flatten()])
    return run, cam.activations_and_grads.release


def _captum_direct(model):
    from captum.attr import IntegratedGradients

    from benchmark.methods.captum_methods import BOUNDED

    ig = IntegratedGradients(model)

    def run(images, ids):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="captum")
            x = images.repeat_interleave(ids.shape[1], 0)
            return ig.attribute(x, target=ids.flatten(), n_steps=N_STEPS, **BOUNDED).abs().amax(1)
    return run, lambda: None


def run(model_name, model, info, images, class_ids, device, budget_s, rounds) -> tuple[list[dict], list[dict], list[str]]:
    """Throughput rows, ratio rows and notes for the families whose library is installed."""
    layer = info.layers.get("gradcam")
    families = [("pytorch-grad-cam", "pytorch_grad_cam", "pgc_gradcam_plusplus", {}, lambda: _pgc_direct(model, layer)),
                ("captum", "captum", "captum_integrated_gradients", {"n_steps": N_STEPS}, lambda: _captum_direct(model))]
    rows, ratios, notes = [], [], []
    k, maps = class_ids.shape[1], images.shape[0] * class_ids.shape[1]
    for family, module, name, options, direct in families:
        if importlib.util.find_spec(module) is None:
            notes.append(f"ecosystem: {family} not installed, its row is skipped (pip install 'gradcam-benchmark[ecosystem]')")
            continue
        adapter = build_method(name, model, info, **options)
        call, close = direct()
        try:
            contenders = [Contender(f"{name} k{k}", "adapter", lambda a=adapter: a.explain(images, class_ids).maps, maps, k),
                          Contender(f"{family} direct k{k}", "library", lambda c=call: c(images, class_ids), maps, k)]
            r = timed_rows("ecosystem", model_name, contenders, device, budget_s / len(families), rounds)
        finally:
            close()
        rows += r
        ratio = paired_ratio(r[1]["times"], r[0]["times"])  # library time / adapter time = adapter speed ratio
        ratios.append({"model": model_name, "family": family, "adapter": name,
                       "adapter_maps_per_s": r[0]["maps_per_s"], "library_maps_per_s": r[1]["maps_per_s"],
                       "adapter_over_library": ratio["ratio"], "adapter_over_library_min": ratio["ratio_min"],
                       "adapter_over_library_max": ratio["ratio_max"],
                       "rounds": r[0]["rounds"]})
    return rows, ratios, notes

