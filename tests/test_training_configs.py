"""Every shipped config trains on BSDS-layout data: two real iterations each, on the bundled sample.

Shared weights are used when present; otherwise (a fresh clone) the init is
replaced by random weights, which exercises the same code path. The
distillation configs get a real teacher cache written by `cache_teacher`.
"""


import pytest

torch = pytest.importorskip("torch", reason="training tests need torch (pip install -e '.[dev]')")

from datasets import REPO, sample_bsds_tree  # noqa: E402
from training.cache_teacher import cache_teacher  # noqa: E402
from training.checkpoint import architecture, build_model, save_model  # noqa: E402
from training.config import load_config  # noqa: E402
from training.paths import weights_path  # noqa: E402
from training.pruning import plan_pruning, prune_rcf  # noqa: E402
from training.train import Trainer  # noqa: E402

CONFIGS = sorted((REPO / "training" / "configs").glob("*.toml"))


@pytest.fixture(scope="module")
def tiny_bsds(tmp_path_factory):
    return sample_bsds_tree(tmp_path_factory.mktemp("bsds"), {"train": ["100007", "101027"], "val": ["103006"]})


@pytest.fixture(scope="module")
def teacher_cache(tiny_bsds, tmp_path_factory):
    torch.manual_seed(0)
    teacher = build_model({"kind": "rcf"})
    return cache_teacher(teacher, tmp_path_factory.mktemp("teacher"), ("train", "val"), root=tiny_bsds)


@pytest.fixture(scope="module")
def pruned_init(tmp_path_factory):
    rcf = build_model({"kind": "rcf"})
    pruned = prune_rcf(rcf, plan_pruning(rcf, 0.5))
    path = tmp_path_factory.mktemp("pruned") / "rcf-pruned-init.pt"
    save_model(path, pruned, architecture(pruned, "rcf"))
    return path


def test_cached_teacher_maps_are_the_maps_the_teacher_is_evaluated_on(tiny_bsds, teacher_cache):
    # The sample images are 321x481, not a multiple of RCF's stride: the cache must pad
    # (and crop back) as evaluation and the runtime do, or the targets land pixels off.
    import cv2

    from training.data import list_split
    from training.evaluate import predict

    torch.manual_seed(0)
    teacher = build_model({"kind": "rcf"})  # the fixture's teacher: the same seeded init
    for name, img, _ in list_split(tiny_bsds, ["train", "val"]):
        cached = cv2.imread(str(teacher_cache / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        expected = predict(teacher, cv2.imread(str(img), cv2.IMREAD_COLOR))
        assert cached.shape == expected.shape
        assert abs(cached / 255.0 - expected).max() <= 0.5 / 255 + 1e-4, name


def test_a_multi_scale_teacher_caches_its_multi_scale_maps(tiny_bsds, tmp_path):
    import cv2

    from training.data import list_split
    from training.evaluate import MULTI_SCALES, predict

    torch.manual_seed(2)
    teacher = build_model({"kind": "student"})  # small: three scales of RCF would be slow here
    cache = cache_teacher(teacher, tmp_path, ("val",), root=tiny_bsds, scales=MULTI_SCALES)
    for name, img, _ in list_split(tiny_bsds, ["val"]):
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        cached = cv2.imread(str(cache / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        assert abs(cached - predict(teacher, bgr, MULTI_SCALES)).max() <= 0.5 / 255 + 1e-4, name
        # and the same check tells the single-scale map apart: the option reached the forward
        assert abs(cached - predict(teacher, bgr)).max() > 0.5 / 255 + 1e-4, name


def test_every_row_of_the_article_has_a_config():
    names = {c.stem for c in CONFIGS}
    assert {"rcf", "rcf-pruned", "so-model", "model", "model-hinton", "model-adaptor", "model-hinton-adaptor"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_trains_two_iterations(config, tiny_bsds, teacher_cache, pruned_init, tmp_path):
    overrides = {"run.iterations": 2, "run.batch": 1, "run.workers": 0, "run.bf16": False, "data.crop": 64,
                 "data.splits": ["train", "val"], "run.log_every": 1}
    cfg = load_config(config, overrides)
    if cfg.model.init.startswith("runs/"):
        overrides["model.init"] = str(pruned_init)
    elif cfg.model.init and not weights_path(cfg.model.init).is_file():
        overrides["model.init"] = ""
    if cfg.teacher.cache:
        overrides["teacher.cache"] = str(teacher_cache)
    cfg = load_config(config, overrides)
    trainer = Trainer(cfg, tmp_path / "run", data_root=tiny_bsds)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.fit()
    assert trainer.iteration == 2 and trainer.ckpt_path.is_file()
    changed = [k for k, v in trainer.model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed, "no weight moved"
    log = (tmp_path / "run" / "train.log").read_text()
    assert "it 2 " in log
    if "hinton" in cfg.loss.kind:
        assert " kd " in log
    if "adaptor" in cfg.loss.kind:
        assert " adapt " in log


def test_class_balanced_kd_weighs_the_non_edge_majority_down(tiny_bsds, teacher_cache, tmp_path):
    # Same weights (seeded), same batch: RCF's class weights are all <= 1 and most pixels are
    # non-edges weighted about P/(P+N), so the balanced KD term is a fraction of the plain one.
    config = REPO / "training" / "configs" / "model-hinton.toml"
    overrides = {"run.batch": 1, "run.workers": 0, "run.bf16": False, "data.crop": 64, "model.init": "",
                 "model.preset": "so-model", "teacher.cache": str(teacher_cache)}
    kd = {}
    for balance in (False, True):
        cfg = load_config(config, {**overrides, "loss.kd_balance": balance})
        trainer = Trainer(cfg, tmp_path / str(balance), data_root=tiny_bsds)  # seeded: the same weights
        batch = next(iter(trainer.loader(0, 1)))
        with torch.no_grad():
            kd[balance] = trainer.losses(batch)["kd"].item()
    assert 0 < kd[True] < 0.5 * kd[False]


def test_config_values_are_type_checked(tmp_path):
    from training.__main__ import _parse_set

    config = REPO / "training" / "configs" / "model-hinton.toml"
    assert _parse_set(["loss.kd_balance=true", "run.seed=3"]) == {"loss.kd_balance": True, "run.seed": 3}
    assert load_config(config, _parse_set(["loss.kd_balance=false"])).loss.kd_balance is False
    with pytest.raises(ValueError, match="kd_balance must be bool"):
        load_config(config, {"loss.kd_balance": "no"})
    with pytest.raises(ValueError, match="iterations must be int"):
        load_config(config, {"run.iterations": 2.5})


def _fake_cache(path, value, feats, shape=(4, 6), names=("a", "b")):
    import cv2
    import numpy as np

    path.mkdir()
    for n in names:
        cv2.imwrite(str(path / f"{n}.png"), np.full(shape, value, np.uint8))
    np.savez(path / "features.npz", **{n: np.asarray(feats, np.float32) for n in names})
    return path


def test_average_caches_is_the_weighted_mean_of_the_maps_and_features(tmp_path):
    # Hand-computed: maps 100 and 200 -> 150 uniform, 0.25*100 + 0.75*200 = 175 at weights 1:3.
    import cv2
    import numpy as np

    from training.cache_teacher import average_caches

    a = _fake_cache(tmp_path / "a", 100, [1.0, 2.0])
    b = _fake_cache(tmp_path / "b", 200, [3.0, 4.0])
    out = average_caches([a, b], tmp_path / "uniform")
    for n in ("a", "b"):
        m = cv2.imread(str(out / f"{n}.png"), cv2.IMREAD_GRAYSCALE)
        assert m.shape == (4, 6) and (m == 150).all()
    np.testing.assert_allclose(np.load(out / "features.npz")["a"], [2.0, 3.0])
    out = average_caches([a, b], tmp_path / "weighted", weights=[1, 3])
    assert (cv2.imread(str(out / "b.png"), cv2.IMREAD_GRAYSCALE) == 175).all()
    np.testing.assert_allclose(np.load(out / "features.npz")["b"], [2.5, 3.5])


def test_average_caches_keeps_the_first_features_when_the_widths_differ(tmp_path):
    # An RCF (512 features) with a student (a different width): no common space to average in.
    import numpy as np

    from training.cache_teacher import average_caches

    a = _fake_cache(tmp_path / "a", 0, [1.0, 2.0, 3.0])
    b = _fake_cache(tmp_path / "b", 255, [9.0])
    out = average_caches([a, b], tmp_path / "out")
    np.testing.assert_array_equal(np.load(out / "features.npz")["a"], [1.0, 2.0, 3.0])


def test_average_caches_rejects_caches_that_do_not_match(tmp_path):
    from training.cache_teacher import average_caches

    a = _fake_cache(tmp_path / "a", 10, [1.0])
    other_images = _fake_cache(tmp_path / "c", 10, [1.0], names=("a", "z"))
    other_shape = _fake_cache(tmp_path / "d", 10, [1.0], shape=(6, 4))
    with pytest.raises(ValueError, match="other images"):
        average_caches([a, other_images], tmp_path / "o1")
    with pytest.raises(ValueError, match=r"d/a\.png: shape \(6, 4\)"):
        average_caches([a, other_shape], tmp_path / "o2")
    with pytest.raises(ValueError, match="at least two"):
        average_caches([a], tmp_path / "o3")
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        average_caches([a, a], tmp_path / "o4", weights=[1, -1])


def test_average_caches_command_line(tmp_path, capsys):
    import cv2

    from training.__main__ import main

    a = _fake_cache(tmp_path / "a", 40, [1.0])
    b = _fake_cache(tmp_path / "b", 80, [3.0])
    assert main(["average-caches", "--cache", str(a), "--cache", str(b), "--weights", "3,1", "--out", str(tmp_path / "e")]) == 0
    assert (cv2.imread(str(tmp_path / "e" / "a.png"), cv2.IMREAD_GRAYSCALE) == 50).all()  # 0.75*40 + 0.25*80
    assert "ensemble teacher cache in" in capsys.readouterr().out
