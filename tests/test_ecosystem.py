"""pytorch-grad-cam and Captum adapters: each map is the library's own call (exactness), the model
is left as it was even when the library raises, and a missing library is one clear line."""

import inspect
import sys

import numpy as np
import pytest
import torch
import torchvision.models as tvm

from benchmark.methods import build_method
from benchmark.methods.captum_methods import SPECS
from benchmark.methods.pgc import CLASSES, LEFT_OUT
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze, resolve_layer

lib = pytest.importorskip("pytorch_grad_cam", reason="the ecosystem extra is not installed")
attr = pytest.importorskip("captum.attr", reason="the ecosystem extra is not installed")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

IDS = torch.tensor([[1, 4], [7, 2]])  # two classes per image: the adapters batch them into one call


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    model, info = build_model("toy_gap", weights="random")
    return model, info, torch.randn(2, 3, 32, 32)


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    model = freeze(tvm.resnet50())
    info = ModelInfo(name="resnet50", num_classes=1000, layers={"gradcam": "layer4"}, cam_head="fc")
    return model, info, torch.randn(1, 3, 224, 224)


def _state(model):
    """Everything a library could leave behind on the model."""
    hooks = sum(len(getattr(m, n, {}) or {}) for m in model.modules()
                for n in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"))
    return (hooks, [id(m) for m in model.modules()], [p.requires_grad for p in model.parameters()],
            [p.grad is None for p in model.parameters()], [m.training for m in model.modules()])


def _pgc_reference(model, info, x, ids, class_name):
    """The library's own call on the images repeated per class: ``[B*K, H, W]`` min-max scaled maps."""
    layers = [] if class_name == "FullGrad" else [resolve_layer(model, info.layers["gradcam"])]
    extra = {"ablation_layer": lib.AblationLayer()} if class_name == "AblationCAM" else {}
    cam = getattr(lib, class_name)(model=model, target_layers=layers, **extra)
    try:
        xr = x.repeat_interleave(ids.shape[1], 0).requires_grad_(True)
        return torch.from_numpy(cam(input_tensor=xr, targets=[ClassifierOutputTarget(int(c)) for c in ids.flatten()]))
    finally:
        cam.activations_and_grads.release()


def _assert_min_max_of(ours, ref):
    """``ref == (ours - m) / (M - m)`` for some ``m`` and ``M > m`` per map: the stated scaling, and nothing else."""
    for o, r in zip(ours.reshape(-1, *ours.shape[-2:]), ref):
        if float(r.max() - r.min()) < 1e-6:  # a constant map: the library gives 0
            assert float(o.max() - o.min()) <= 1e-6 * max(float(o.abs().max()), 1e-30)
            continue
        a = torch.stack([o.flatten().double(), torch.ones(o.numel(), dtype=torch.float64)], 1)
        scale, shift = torch.linalg.lstsq(a, r.flatten().double()[:, None]).solution[:, 0]
        assert float(scale) > 0
        assert torch.allclose(o.double() * scale + shift, r.double(), atol=2e-5), float((o * scale + shift - r).abs().max())


@pytest.mark.parametrize("key", sorted(CLASSES))
def test_pgc_map_is_the_library_map_before_its_scaling(toy, key):
    model, info, x = toy
    before = _state(model)
    ours = build_method(f"pgc_{key}", model, info).explain(x, IDS)
    assert ours.maps.shape == (2, 2, 32, 32) and ours.maps.min() >= 0
    assert torch.allclose(ours.logits, model(x).detach(), atol=1e-5)
    _assert_min_max_of(ours.maps, _pgc_reference(model, info, x, IDS, CLASSES[key]))
    assert _state(model) == before


@pytest.mark.parametrize("key", ["gradcam_plusplus", "layercam"])
def test_pgc_on_resnet50(resnet50, key):
    model, info, x = resnet50
    ids = torch.tensor([[281]])
    maps = build_method(f"pgc_{key}", model, info)(x, ids)
    _assert_min_max_of(maps, _pgc_reference(model, info, x, ids, CLASSES[key]))


def test_pgc_grad_cam_is_raw_and_equals_the_suites_grad_cam(toy):
    """Raw, not min-max scaled: the library's Grad-CAM (ReLU at the layer) is the suite's with ``relu_at=layer``."""
    model, info, x = toy
    one = build_method("pgc_gradcam", model, info)(x, IDS)
    ref = build_method("grad_cam", model, info, relu_at="layer")(x, IDS)
    assert torch.allclose(one, ref, atol=1e-6 * float(ref.max()))


def test_every_cam_class_of_pytorch_grad_cam_is_adapted_or_left_out_by_name():
    from pytorch_grad_cam.base_cam import BaseCAM

    exported = {n for n, o in vars(lib).items() if inspect.isclass(o) and issubclass(o, BaseCAM)}
    assert exported <= set(CLASSES.values()) | set(LEFT_OUT)
    assert all(hasattr(lib, n) for n in [*CLASSES.values(), *LEFT_OUT])


FAST = {"integrated_gradients": {"n_steps": 8}, "integrated_gradients_smoothgrad": {"n_steps": 4, "nt_samples": 2},
        "layer_conductance": {"n_steps": 8}, "layer_integrated_gradients": {"n_steps": 8},
        "occlusion": {"sliding_window_shapes": (3, 9, 9), "strides": (3, 4, 4)},
        "smoothgrad": {"nt_samples": 3}, "smoothgrad_sq": {"nt_samples": 3}, "vargrad": {"nt_samples": 3}}
# the library call each adapter must equal, written out: (constructor, attribute keywords, reduction, at layer)
REFERENCE = {
    "saliency": (lambda m, l: attr.Saliency(m), {}, "max_abs", False),
    "integrated_gradients": (lambda m, l: attr.IntegratedGradients(m), {}, "max_abs", False),
    "input_x_gradient": (lambda m, l: attr.InputXGradient(m), {}, "max_abs", False),
    "deep_lift": (lambda m, l: attr.DeepLift(m), {}, "max_abs", False),
    "guided_backprop": (lambda m, l: attr.GuidedBackprop(m), {}, "max_abs", False),
    "deconvolution": (lambda m, l: attr.Deconvolution(m), {}, "max_abs", False),
    "guided_grad_cam": (lambda m, l: attr.GuidedGradCam(m, l), {}, "max_abs", False),
    "occlusion": (lambda m, l: attr.Occlusion(m), {}, "mean", False),
    "smoothgrad": (lambda m, l: attr.NoiseTunnel(attr.Saliency(m)), {"nt_type": "smoothgrad"}, "max_abs", False),
    "smoothgrad_sq": (lambda m, l: attr.NoiseTunnel(attr.Saliency(m)), {"nt_type": "smoothgrad_sq"}, "max_abs", False),
    "vargrad": (lambda m, l: attr.NoiseTunnel(attr.Saliency(m)), {"nt_type": "vargrad"}, "max_abs", False),
    "integrated_gradients_smoothgrad": (lambda m, l: attr.NoiseTunnel(attr.IntegratedGradients(m)),
                                        {"nt_type": "smoothgrad"}, "max_abs", False),
    "layer_grad_cam": (lambda m, l: attr.LayerGradCam(m, l), {"relu_attributions": True}, "none", True),
    "layer_activation": (lambda m, l: attr.LayerActivation(m, l), None, "max_abs", True),
    "layer_gradient_x_activation": (lambda m, l: attr.LayerGradientXActivation(m, l), {}, "max_abs", True),
    "layer_conductance": (lambda m, l: attr.LayerConductance(m, l), {}, "max_abs", True),
    "layer_integrated_gradients": (lambda m, l: attr.LayerIntegratedGradients(m, l), {}, "max_abs", True),
    "layer_deep_lift": (lambda m, l: attr.LayerDeepLift(m, l), {}, "max_abs", True),
}


def _captum_reference(model, info, x, ids, key, options):
    make, kwargs, reduction, at_layer = REFERENCE[key]
    explainer = make(model, resolve_layer(model, info.layers["gradcam"]))
    if kwargs is None:  # class-independent: one call, the same map for every class
        out = explainer.attribute(x.clone().requires_grad_(True)).repeat_interleave(ids.shape[1], 0)
    else:
        xr = x.repeat_interleave(ids.shape[1], 0).requires_grad_(True)
        out = explainer.attribute(xr, target=ids.flatten(), **kwargs, **options)
    out = out.detach()
    out = {"max_abs": out.abs().amax(1, keepdim=True), "mean": out.mean(1, keepdim=True), "none": out}[reduction]
    if at_layer:
        out = attr.LayerAttribution.interpolate(out, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return out[:, 0].reshape(*ids.shape, *x.shape[-2:])


@pytest.mark.parametrize("key", sorted(SPECS))
def test_captum_map_is_the_library_map(toy, key):
    assert set(REFERENCE) == set(SPECS)
    model, info, x = toy
    options = FAST.get(key, {})
    before = _state(model)
    torch.manual_seed(5)  # NoiseTunnel draws from the global generator
    ours = build_method(f"captum_{key}", model, info, **options).explain(x, IDS)
    torch.manual_seed(5)
    ref = _captum_reference(model, info, x, IDS, key, options)
    assert ours.maps.shape == ref.shape == (2, 2, 32, 32)
    assert torch.allclose(ours.maps, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max())), key
    assert float(ref.abs().max()) > 0
    assert _state(model) == before


@pytest.mark.parametrize("key, options", [("layer_grad_cam", {}), ("integrated_gradients", {"n_steps": 2}),
                                          ("guided_backprop", {})])
def test_captum_on_resnet50(resnet50, key, options):
    model, info, x = resnet50
    ids = torch.tensor([[281]])
    ours = build_method(f"captum_{key}", model, info, **options)(x, ids)
    assert torch.allclose(ours, _captum_reference(model, info, x, ids, key, options), rtol=1e-5, atol=1e-8)


def test_captum_layer_grad_cam_is_the_suites_grad_cam_at_layer_resolution(toy):
    """Captum's LayerGradCam (ReLU at the layer) equals the suite's Grad-CAM with ``relu_at=layer``."""
    model, info, x = toy
    ours = build_method("captum_layer_grad_cam", model, info)(x, IDS)
    suite = build_method("grad_cam", model, info, relu_at="layer")(x, IDS)
    assert torch.allclose(ours, suite, atol=1e-5 * float(suite.max()))


def test_captum_options_pass_through_and_typos_are_errors(toy):
    model, info, x = toy
    few = build_method("captum_integrated_gradients", model, info, n_steps=2)(x, IDS[:, 0])
    many = build_method("captum_integrated_gradients", model, info, n_steps=16)(x, IDS[:, 0])
    assert not torch.allclose(few, many)
    with pytest.raises(ValueError, match="n_step"):
        build_method("captum_integrated_gradients", model, info, n_step=8)
    with pytest.raises(ValueError, match="colour"):
        build_method("pgc_ablationcam", model, info, colour=1)


def test_path_methods_run_their_steps_in_bounded_chunks(toy, monkeypatch):
    """Integrated gradients and its relatives pass at most 32 rows per forward unless told otherwise."""
    model, info, x = toy
    rows = []
    hook = model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    try:
        build_method("captum_integrated_gradients", model, info, n_steps=40)(x, IDS[:, 0])
        assert rows and max(rows) <= 32 and sum(rows) >= 40 * x.shape[0]
        rows.clear()
        build_method("captum_integrated_gradients", model, info, n_steps=40, internal_batch_size=None)(x, IDS[:, 0])
        assert max(rows) == 40 * x.shape[0]  # the library's own default: every step at once
    finally:
        hook.remove()
    for key in ("integrated_gradients_smoothgrad", "layer_conductance", "layer_integrated_gradients"):
        assert build_method(f"captum_{key}", model, info).settings()["internal_batch_size"] == 32


def test_model_restored_when_the_library_raises_midway(toy, monkeypatch):
    """Ablation-CAM swaps the layer for its ablation layer and keeps hooks; a failure after that,
    which also unfreezes a parameter, leaves the model exactly as it was."""
    model, info, x = toy
    before = _state(model)
    layer = resolve_layer(model, info.layers["gradcam"])

    def boom(self, *args, **kwargs):
        assert resolve_layer(model, info.layers["gradcam"]) is not layer  # the library's swap happened
        next(model.parameters()).requires_grad_(True)
        raise RuntimeError("library failure")

    monkeypatch.setattr(lib.AblationCAM, "assemble_ablation_scores", boom)
    with pytest.raises(RuntimeError, match="library failure"):
        build_method("pgc_ablationcam", model, info)(x, IDS[:, 0])
    assert resolve_layer(model, info.layers["gradcam"]) is layer
    assert _state(model) == before
    with pytest.raises(Exception):
        build_method("captum_deep_lift", model, info)(x, torch.tensor([999, 0]))  # no class 999
    assert _state(model) == before


@pytest.mark.parametrize("name, hidden", [("pgc_gradcam_plusplus", ["pytorch_grad_cam"]),
                                          ("captum_integrated_gradients", ["captum", "captum.attr"])])
def test_missing_library_is_one_line_naming_the_extra(toy, monkeypatch, name, hidden):
    model, info, _ = toy
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to import
    with pytest.raises(ImportError) as err:
        build_method(name, model, info)
    message = str(err.value)
    assert "\n" not in message and "gradcam-benchmark[ecosystem]" in message and name in message


def test_list_names_every_adapter(capsys):
    from benchmark.methods.__main__ import main

    main(["--list"])
    out = capsys.readouterr().out
    assert "pgc_gradcam_plusplus" in out and "pytorch_grad_cam.GradCAMPlusPlus" in out
    assert all(f"captum_{k}" in out for k in SPECS) and all(f"pgc_{k}" in out for k in CLASSES)
    assert np.all(["grad_cam " in out, "captum.attr.IntegratedGradients" in out])


def test_demo_table_puts_grad_cam_first_and_leaves_unrun_cells_empty(tmp_path):
    import json

    from benchmark.demo.ecosystem import collect, table

    def summary(exp, model, method, metrics, status="finished"):
        metric = "pointing" if "pointing" in exp else "localization"  # the run folder of runs/identity.py
        folder = tmp_path / "runs" / exp / model / method / "data" / f"{metric}-0123abcd"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"status": status, "model": model, "method": method,
                                                         "metrics": {"n_images": 5, **metrics}}))

    summary("demo_ecosystem_photos_pointing", "efficientnet_lite0", "pgc_scorecam", {"acc_pooled": 80.0})
    summary("demo_ecosystem_photos_pointing", "efficientnet_lite0", "grad_cam", {"acc_pooled": 100.0})
    summary("demo_ecosystem_photos_pointing", "efficientnet_lite0", "captum_saliency", {"acc_pooled": 60.0})
    summary("demo_ecosystem", "toy_gap", "grad_cam", {"loc_err_top1": 40.0, "gt_known_loc_acc": 55.0})
    summary("demo_ecosystem", "toy_gap", "captum_saliency", {"loc_err_top1": 70.0}, status="failed")
    frame = table(collect(tmp_path))
    assert list(frame.index) == ["grad_cam", "pgc_scorecam", "captum_saliency"]
    assert list(frame["family"]) == ["suite", "pytorch-grad-cam", "captum"]
    photos = "photos pointing acc % (efficientnet_lite0, n=5)"
    assert list(frame[photos]) == [100.0, 80.0, 60.0]
    loc = frame["synthetic loc err top-1 % (toy_gap, n=5)"]
    assert loc["grad_cam"] == 40.0 and loc.drop("grad_cam").isna().all()  # failed and unrun runs stay empty


def test_eigen_sign_corrected_is_the_librarys_sign_corrected_projection(toy):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

    from benchmark.methods.base import upsample

    model, info, x = toy
    acts = []
    handle = resolve_layer(model, info.layers["gradcam"]).register_forward_hook(lambda m, i, o: acts.append(o.detach()))
    try:
        model(x)
    finally:
        handle.remove()
    a = acts[0].numpy()
    for sign, project in (("library", get_2d_projection), ("corrected", get_2d_projection_with_sign_correction)):
        raw = torch.from_numpy(np.maximum(project(a), 0))[:, None]
        expected = upsample(raw, (32, 32))[:, 0]
        maps = build_method("pgc_eigencam", model, info, eigen_sign=sign).explain(x, IDS).maps
        assert torch.allclose(maps[:, 0], expected, atol=1e-5) and torch.allclose(maps[:, 1], expected, atol=1e-5)
    corrected = get_2d_projection_with_sign_correction(a)
    assert all(abs(p.max()) >= abs(p.min()) for p in corrected)
    with pytest.raises(ValueError, match="eigen_sign='corrected'; expected one of"):
        build_method("pgc_gradcam", model, info, eigen_sign="corrected")
