"""The multi-label fine-tuning recipe on a tiny synthetic multi-object set; checkpoints load."""

import json

import pytest
import torch

from benchmark.data.manifest import ManifestError
from benchmark.training.finetune import dataset_root, finetune, initial_model, main
from benchmark.training.multilabel import average_precision, replace_head, train_multilabel_toy
from benchmark.models.base import build_model, load_checkpoint
from benchmark.models.toy import ToyGAP, ToyVGG
from data_prep.synthetic import CLASS_NAMES
from data_prep.synthetic_multi import ensure_synthetic_multi, prepare_all

TINY = {"epochs": 1, "batch_size": 8}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return prepare_all(tmp_path_factory.mktemp("multi"), n_train=24, n_val=8, n_test=4)


def test_recipe_runs_and_checkpoint_loads_with_build_model(manifests, tmp_path):
    out = tmp_path / "toy_gap_ft.pt"
    meta = finetune("toy_gap", manifests["train"], out, manifests["val"], recipe=TINY, init="random")
    assert meta["num_classes"] == 10 and meta["class_names"] == list(CLASS_NAMES) and meta["head"] == "fc"
    assert 0.0 <= meta["val_map"] <= 1.0 and meta["train_images"] == 24
    assert json.loads(out.with_suffix(".json").read_text())["class_names"] == list(CLASS_NAMES)
    model, info = build_model("toy_gap", checkpoint=str(out), num_classes=10)
    saved = load_checkpoint(out)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert info.checkpoint == str(out) and info.class_names == list(CLASS_NAMES)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    torch.manual_seed(0)
    untrained, _ = initial_model("toy_gap", "random")
    replace_head(untrained, 10)
    assert not torch.equal(untrained.state_dict()["features.0.weight"], saved["features.0.weight"])
    # the command line with the same recipe is the same deterministic computation
    again = tmp_path / "cli.pt"
    main(["--model", "toy_gap", "--dataset", str(manifests["train"]), "--out", str(again), "--init", "random",
          "--epochs", "1", "--batch-size", "8"])
    assert all(torch.equal(v, saved[k]) for k, v in load_checkpoint(again).items())


def test_train_multilabel_toy_writes_a_loadable_checkpoint(manifests, tmp_path):
    out = tmp_path / "toy_gap_multi.pt"
    meta = train_multilabel_toy("toy_gap_multi", out=out, recipe={"epochs": 1}, manifests=manifests)
    assert meta["arch"] == "toy_gap" and len(meta["val_ap"]) == 10 and meta["train_images"] == 24
    model, info = build_model("toy_gap", checkpoint=str(out), num_classes=10)
    assert info.num_classes == 10 and model.fc.out_features == 10


def test_replace_head_swaps_the_last_linear_layer():
    vgg = ToyVGG(10)
    assert replace_head(vgg, 20) == "classifier.7" and vgg.classifier[7].out_features == 20
    assert vgg.classifier[4].out_features == 128  # the hidden layers stay
    gap = ToyGAP(10)
    assert replace_head(gap, 3) == "fc" and gap(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_average_precision_by_hand():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    targets = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = average_precision(scores, targets)
    assert ap[0].item() == pytest.approx((1 / 1 + 2 / 3) / 2)  # positives at ranks 1 and 3
    assert torch.isnan(ap[1])  # no positive: undefined, left out of the mean


def test_dataset_arguments_and_generated_roots(manifests, tmp_path):
    assert dataset_root(str(manifests["val"])) == manifests["val"]
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        dataset_root("no_such_dataset")
    with pytest.raises(ManifestError, match="manifests/<split>"):
        ensure_synthetic_multi(tmp_path / "somewhere" / "test")
    assert ensure_synthetic_multi(manifests["test"]) == manifests["test"]  # present: nothing to do
