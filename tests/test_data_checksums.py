"""Generated synthetic data is checked against recorded sha256; a mismatch names the first differing file."""

import pytest

from data_prep import checksums, synthetic
from data_prep.synthetic_multi import prepare_all


def test_the_records_cover_every_default_image_and_manifest():
    single = checksums.read_record("synthetic")
    assert sum(name.endswith(".JPEG") for name in single) == 2000 + 500
    assert {"manifests/train/manifest.parquet", "manifests/val/manifest.parquet"} <= set(single)
    multi = checksums.read_record("synthetic_multi")
    assert sum(name.endswith(".jpg") for name in multi) == 1000 + 250 + 500
    assert {f"manifests/{s}/manifest.parquet" for s in ("train", "val", "trainval", "test")} <= set(multi)
    assert not any(name.endswith(("meta.json", "DONE.json")) for name in [*single, *multi])  # machine paths


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(checksums, "CHECKSUM_DIR", tmp_path / "records")
    out = synthetic.generate(tmp_path / "synthetic", n_train=4, n_val=3)
    checksums.write_record("synthetic", out)
    return out


def test_check_names_the_first_differing_file(tiny):
    checksums.check("synthetic", tiny)  # as recorded
    image = tiny / "val" / "SYNTH_val_00000002.JPEG"
    image.write_bytes(image.read_bytes() + b"\0")
    (tiny / "val" / "SYNTH_val_00000003.JPEG").unlink()
    with pytest.raises(checksums.ChecksumError, match=r"val/SYNTH_val_00000002\.JPEG: has sha256 .*, recorded"):
        checksums.check("synthetic", tiny)
    image.unlink()
    with pytest.raises(checksums.ChecksumError, match=r"SYNTH_val_00000002\.JPEG: is missing"):
        checksums.check("synthetic", tiny)


def test_manifests_are_hashed_by_rows_not_machine_paths(tiny, tmp_path):
    moved = tmp_path / "elsewhere"
    tiny.rename(moved)  # another cache folder: the same rows, other absolute paths in meta.json
    checksums.check("synthetic", moved)


def test_preparing_the_default_multi_data_checks_it(tmp_path, monkeypatch):
    import data_prep.synthetic_multi as multi

    real = multi.generate_multi
    tiny = {"n_train": 2, "n_val": 1, "n_test": 1}  # in place of the default sizes, to keep the test fast
    monkeypatch.setattr(multi, "generate_multi", lambda root, force=False, **counts: real(root, **(tiny | counts)))
    monkeypatch.setattr(checksums, "CHECKSUM_DIR", tmp_path / "records")
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "synthetic_multi.sha256").write_text("0" * 64 + "  classes.txt\n")
    with pytest.raises(checksums.ChecksumError, match=r"multi/SYNTHETIC_DATASET\.txt: is not in the record"):
        prepare_all(tmp_path / "multi")  # the default sizes are checked once their manifests are written
    prepare_all(tmp_path / "other", n_train=2, n_val=1, n_test=1)  # other sizes: nothing recorded to compare


@pytest.mark.slow
def test_default_data_generates_as_recorded(tmp_path):
    """The cross-machine data check: the default datasets come out byte-identical to the record."""
    synthetic.generate(tmp_path / "synthetic")
    prepare_all(tmp_path / "synthetic_multi")


def test_scenes_of_an_older_generator_version_are_rebuilt_on_use(tmp_path, monkeypatch):
    """A cache made before a generator change is regenerated, even when its manifests are newer."""
    import json

    import data_prep.synthetic_multi as multi

    real = multi.generate_multi
    tiny = {"n_train": 2, "n_val": 1, "n_test": 1}
    monkeypatch.setattr(multi, "generate_multi", lambda root, force=False, **counts: real(root, force=force, **tiny))
    monkeypatch.setattr(checksums, "check", lambda dataset, root: None)  # tiny sizes: nothing recorded
    manifest = multi.ensure_synthetic_multi(tmp_path / "multi" / "manifests" / "test")
    done = tmp_path / "multi" / "DONE.json"
    assert json.loads(done.read_text())["version"] == synthetic.MULTI_VERSION
    monkeypatch.setattr(synthetic, "MULTI_VERSION", synthetic.MULTI_VERSION + 1)  # the generator changed
    multi.ensure_synthetic_multi(manifest)
    assert json.loads(done.read_text())["version"] == synthetic.MULTI_VERSION
    assert (manifest / "manifest.parquet").stat().st_mtime >= done.stat().st_mtime  # rewritten after the scenes
