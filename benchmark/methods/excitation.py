"""Excitation backprop (MWP) and contrastive excitation backprop (c-MWP), Zhang et al., "Top-down
Neural Attention by Excitation Backprop", ECCV 2016.

MWP: a one-hot probability at the target logit is propagated down to the saliency layer with the
excitation rules of ``_ebp_rules`` (positive weights, no bias, normalized by the positive forward
response; batch norm and ReLU pass the signal; max pooling sends it to the winner; skip
connections split it in proportion to each branch's positive contribution; concatenation splits it
by channel). The map is the channel sum of the winning probabilities at the saliency layer,
``[B, K, h, w]``, non-negative, upsampled bilinearly to the input resolution.

c-MWP (Sec. 3.3): at the contrast layer (the input of the classifier's top layer: VGG-16 relu7,
ResNet-50's pooled features) the MWP of the target unit and of its dual unit (the same unit with
negated weights, i.e. positive part ``(-w)+``) are computed; the dual's is subtracted from the
target's and the difference is propagated on down to the saliency layer with the MWP rules. The
map is the channel sum clipped at 0 (the paper's ReLU). Both maps sum to 1 (MWP) and 0 (c-MWP,
before clipping) wherever no unit on the way drops its signal (see ``_ebp_rules``).

The trunk below the saliency layer runs without a graph; K classes reuse one forward pass, each
class with its own backward (two more for c-MWP: target and dual above the contrast layer).
Layer presets: ``info.layers["ebp"]`` (saliency; ``layer=`` overrides) and ``["contrast"]``
(``contrast_layer=`` overrides). Building a method runs one forward on a blank image: a model with
ops above the saliency layer that have no excitation rule (SiLU, GELU, sigmoid gates, layer norm),
or for c-MWP logits not made by a linear/conv layer above the contrast layer, is ``NotApplicable``.
"""

from __future__ import annotations

import contextlib

import torch

from benchmark.methods._ebp_rules import ExcitationState, excitation_rules
from benchmark.methods.backprop import _graph_from_layer, forward_hook
from benchmark.methods.base import METHODS, Explanation, NotApplicable, SaliencyMethod, upsample
from benchmark.models.base import resolve_layer


@contextlib.contextmanager
def _cut_at(model, layer: str, store: dict, state: ExcitationState):
    """Forward hook at the contrast layer: keep its output (``mid``, graph from the saliency
    layer) and continue the forward from a fresh leaf (``top``) so the part above it can be
    differentiated on its own."""
    def hook(_module, _inputs, output):
        if "acts" not in store or not isinstance(output, torch.Tensor) or not output.requires_grad:
            raise RuntimeError(f"contrast layer {layer!r} must be a tensor-valued layer above the saliency layer")
        if "top" in store:
            raise RuntimeError(f"contrast layer {layer!r} is called more than once per forward; pick a layer used once")
        store["mid"], store["top"] = output, output.detach().requires_grad_(True)
        store["linear_maps_below"] = state.calls
        return store["top"].clone()

    with forward_hook(model, layer, hook):
        yield


def _vjp(output: torch.Tensor, leaf: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """Propagate ``signal`` (shaped like ``output``) back to ``leaf``; zeros if unconnected."""
    (back,) = torch.autograd.grad(output, leaf, signal, retain_graph=True, allow_unused=True)
    return torch.zeros_like(leaf) if back is None else back


class ExcitationBackprop(SaliencyMethod):
    """Marginal winning probability maps at the saliency layer (Zhang et al., Sec. 3.2)."""

    name = "excitation_backprop"
    contrastive, contrast = False, None

    def __init__(self, model, info, layer=None):
        super().__init__(model, info)
        self.layer = layer or info.layers.get("ebp")
        if not self.layer:
            raise NotApplicable(f"{self.name}: model {info.name!r} has no 'ebp' layer preset (the excitation layer is "
                                "known only for the preset architectures); pass method.layer to choose one")
        resolve_layer(model, self.layer)
        self._probe()

    def _probe(self):
        """One forward on a blank ``info.input_size`` image: ``NotApplicable`` now (not mid-run) if
        an op between the layers and the logits has no excitation rule."""
        param = next(self.model.parameters(), None)
        size = self.info.input_size
        blank = torch.zeros(1, 3, size, size, device=param.device if param is not None else None)
        self._forward(blank, {}, ExcitationState())

    def _forward(self, images: torch.Tensor, store: dict, state: ExcitationState) -> torch.Tensor:
        cut = _cut_at(self.model, self.contrast, store, state) if self.contrastive else contextlib.nullcontext()
        with excitation_rules(state), _graph_from_layer(self.model, self.layer, store), cut, torch.no_grad():
            logits = self.model(images)
        if "acts" not in store:
            raise RuntimeError(f"{self.name}: layer {self.layer!r} was not reached in the forward pass")
        if state.unsupported:
            raise NotApplicable(f"{self.name}: model {self.info.name!r} applies {sorted(state.unsupported)} "
                                f"above layer {self.layer!r}; excitation backprop has rules for ReLU networks only")
        if self.contrastive:
            self._check_top(store, state, logits)
        return logits

    def _check_top(self, store, state, logits):
        if "top" not in store:
            raise RuntimeError(f"{self.name}: contrast layer {self.contrast!r} was not reached in the forward pass")
        if state.top is None or state.top <= store["linear_maps_below"] or state.top_shape != tuple(logits.shape):
            raise NotApplicable(f"{self.name}: the logits of {self.info.name!r} must come from a linear/conv layer "
                                f"above the contrast layer {self.contrast!r} (the dual unit negates its weights)")

    def _signal(self, logits, store, state, onehot):
        """Winning probabilities ``[B, C, h, w]`` at the saliency layer for one class per image."""
        return _vjp(logits, store["acts"], onehot)

    def layer_maps(self, images: torch.Tensor, class_ids: torch.Tensor):
        """Channel-summed maps ``[B, K, h, w]`` at the saliency layer (c-MWP: before clipping) and logits."""
        if class_ids.dim() == 1:
            class_ids = class_ids[:, None]
        store, state = {}, ExcitationState()
        logits = self._forward(images, store, state)
        if store["acts"].dim() != 4:
            raise ValueError(f"{self.name}: layer {self.layer!r} gives shape {tuple(store['acts'].shape)}; "
                             "expected [B, C, h, w]")
        maps = []
        for k in range(class_ids.shape[1]):
            onehot = torch.zeros_like(logits).scatter_(1, class_ids[:, k : k + 1], 1.0)
            maps.append(self._signal(logits, store, state, onehot).sum(dim=1))
        return torch.stack(maps, dim=1).detach(), logits.detach()

    def _explain(self, images, class_ids):
        maps, logits = self.layer_maps(images, class_ids)
        return Explanation(maps=upsample(maps.clamp_min(0), tuple(images.shape[-2:])), logits=logits)


class ContrastiveExcitationBackprop(ExcitationBackprop):
    """Contrastive MWP: target minus dual at the contrast layer, then MWP down (Sec. 3.3)."""

    name = "contrastive_excitation_backprop"
    contrastive = True

    def __init__(self, model, info, layer=None, contrast_layer=None):
        self.contrast = contrast_layer or info.layers.get("contrast")
        if not self.contrast:
            raise NotApplicable(f"{self.name}: model {info.name!r} has no 'contrast' layer preset (known only for "
                                "the preset architectures); pass method.options.contrast_layer to choose one")
        resolve_layer(model, self.contrast)
        super().__init__(model, info, layer=layer)

    def _signal(self, logits, store, state, onehot):
        target = _vjp(logits, store["top"], onehot)
        state.dual = True
        try:
            dual = _vjp(logits, store["top"], onehot)
        finally:
            state.dual = False
        return _vjp(store["mid"], store["acts"], target - dual)


@METHODS.register("excitation_backprop", options=ExcitationBackprop)
def excitation_backprop(model, info, layer=None, **options):
    return ExcitationBackprop(model, info, layer=layer, **options)


@METHODS.register("contrastive_excitation_backprop", options=ContrastiveExcitationBackprop)
def contrastive_excitation_backprop(model, info, layer=None, **options):
    return ContrastiveExcitationBackprop(model, info, layer=layer, **options)
