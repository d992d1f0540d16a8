"""Stage 1: the fusion model, pseudo-labelling and the training protocol on the tiny demo data."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mer_lib import stage1
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
from mer_lib.models import AttentionFusion, FusionConfig
from mer_lib.stage1 import Stage1Config, fit, predict, run_stage1, select_pseudo_labels

FAST = Stage1Config(model=FusionConfig(hidden_dim=32, latent_dim=16, dropout=0.1), epochs=8,
                    batch_size=32, lr=3e-3, cold_start_epochs=3)


@pytest.fixture(scope="module")
def ds(tiny_demo):
    return load_dataset(tiny_demo, FEATURES, progress=False)


def test_attention_weights_are_raw_by_default_and_softmax_on_request():
    dims = {"audio": 5, "video": 4, "text": 3}
    x = {m: torch.randn(8, d) for m, d in dims.items()}
    torch.manual_seed(0)
    raw = AttentionFusion(dims, 6, FusionConfig(hidden_dim=16, latent_dim=8, dropout=0.0))(x)
    assert raw.logits.shape == (8, 6) and raw.weights.shape == (8, 3) and raw.z.shape == (8, 3, 8)
    assert not torch.allclose(raw.weights.sum(-1), torch.ones(8))  # MERTools: no softmax
    torch.manual_seed(0)
    soft = AttentionFusion(dims, 6, FusionConfig(hidden_dim=16, latent_dim=8, dropout=0.0,
                                                 attention_softmax=True))(x)
    torch.testing.assert_close(soft.weights.sum(-1), torch.ones(8))
    torch.testing.assert_close(soft.weights, raw.weights.softmax(-1))  # same init, same seed


def _reference_forward(model: AttentionFusion, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's stage 1 written out with plain matrix products from the model's parameters:
    standardise, encode (3 x Linear+ReLU), project into the latent space, attention weights from the
    concatenated latents, classifier on their weighted sum. Returns (logits, z)."""
    P = dict(model.named_parameters())

    def linear(h, name):
        return h @ P[f"{name}.weight"].T + P[f"{name}.bias"]

    def encoder(h, name):
        for layer in (1, 3, 5):  # Dropout(0), then Linear+ReLU three times
            h = torch.relu(linear(h, f"{name}.net.{layer}"))
        return h

    zs = []
    for m in model.modalities:
        h = encoder((x[m] - getattr(model, f"mean_{m}")) / getattr(model, f"std_{m}"), f"encoders.{m}")
        if model.cfg.architecture == "mertools":
            zs.append(h)
        else:
            name = "projector" if model.cfg.projector == "shared" else f"projectors.{m}"
            zs.append(linear(torch.relu(linear(h, f"{name}.0")), f"{name}.2"))
    z = torch.stack(zs, 1)
    weights = linear(encoder(z.flatten(1), "attention_mlp"), "fc_att")
    fused = sum(weights[:, i:i + 1] * z[:, i] for i in range(len(zs)))
    return linear(fused, "classifier"), z


@pytest.mark.parametrize("architecture,projector", [("projected", "shared"), ("projected", "per_modality"),
                                                    ("mertools", "shared")])
def test_the_classifier_reads_the_projected_latents(architecture, projector):
    torch.manual_seed(0)
    dims = {"audio": 5, "video": 4, "text": 3}
    model = AttentionFusion(dims, 3, FusionConfig(hidden_dim=8, latent_dim=6, dropout=0.0,
                                                   architecture=architecture, projector=projector))
    model.set_standardisation({m: torch.randn(d) for m, d in dims.items()}, {m: torch.rand(d) + 0.5 for m, d in dims.items()})
    x = {m: torch.randn(7, d) for m, d in dims.items()}
    out = model(x)
    logits, z = _reference_forward(model, x)
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(out.logits, logits)
    assert out.z.shape == (7, 3, 6 if architecture == "projected" else 8)
    shared = [n for n, _ in model.named_parameters() if n.startswith("projector.")]
    assert bool(shared) == (architecture == "projected" and projector == "shared")


def test_without_bdcl_the_latents_still_learn(ds):
    """Cross-entropy alone must move z: the classifier reads it (Figure 4's left panel is trained)."""
    cfg = replace(FAST, bdcl=False, epochs=2)
    tr, va = stage1.validation_splits(ds.labels, ds.indices(TRAIN_SPLIT), cfg, seed=0)[0]
    stage1.seed_everything(0)
    initial = AttentionFusion(ds.dims, ds.num_classes, cfg.model)
    trained = fit(ds, tr, va, cfg, seed=0).model
    for name, before in initial.state_dict().items():
        if name.startswith(("projector", "encoders", "classifier")):
            assert not torch.equal(before, trained.state_dict()[name]), f"{name} never moved"


def test_the_logged_loss_is_cross_entropy_plus_the_reference_bdcl(ds):
    """One full-batch epoch: the logged loss equals CE on the model's logits plus BDCL recomputed with
    the plain-loop reference on z in the paper's modality order (v, a, t), with the paper's switches."""
    from tests.test_losses import reference_bdcl

    cfg = replace(FAST, model=replace(FAST.model, dropout=0.0), epochs=1, batch_size=10_000, lambda_inter=0.3,
                  lambda_intra=0.6, tau=0.2)
    tr, va = stage1.validation_splits(ds.labels, ds.indices(TRAIN_SPLIT), cfg, seed=0)[0]
    tr = tr[:60]  # the loop reference is quadratic in the batch
    logged = fit(ds, tr, va, cfg, seed=3).history[0]
    stage1.seed_everything(3)  # the same initial model as fit builds
    model = AttentionFusion(ds.dims, ds.num_classes, cfg.model)
    model.set_standardisation(*stage1.standardisation(ds, tr, ds.modalities))
    out = model({m: torch.from_numpy(ds.features[m][tr]) for m in ds.modalities})
    y = torch.from_numpy(ds.labels[tr])
    ce = torch.nn.functional.cross_entropy(out.logits, y)
    order = [ds.modalities.index(m) for m in ("video", "audio", "text")]
    ref = reference_bdcl(out.z[:, order].double(), y, cfg.tau, cfg.lambda_inter, cfg.lambda_intra,
                         symmetric=cfg.bdcl_symmetric, include_self=cfg.bdcl_include_self)
    assert logged["ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert logged["loss"] == pytest.approx(ce.item() + ref["loss"].item(), rel=1e-5)
    assert logged["intra"] == pytest.approx(ref["intra"].item(), rel=1e-5)


def test_select_pseudo_labels_threshold_and_class_cap():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.99, 0.01], [0.1, 0.9], [0.97, 0.03], [0.05, 0.95]])
    pos, labels = select_pseudo_labels(probs, threshold=0.9)
    assert pos.tolist() == [0, 2, 3, 4, 5] and labels.tolist() == [0, 0, 1, 0, 1]
    pos, labels = select_pseudo_labels(probs, threshold=0.9, class_cap=1)
    assert pos.tolist() == [2, 5] and labels.tolist() == [0, 1]  # the most confident of each class


def test_stage1_learns_the_planted_signal_and_is_deterministic(ds):
    a = run_stage1(ds, FAST, TRAIN_SPLIT, TEST_SPLIT, seed=0)
    majority = np.bincount(ds.labels[ds.indices(TEST_SPLIT)]).max() / len(ds.indices(TEST_SPLIT))
    assert a.test_scores["accuracy"] > 100 * majority + 25, a.test_scores
    b = run_stage1(ds, FAST, TRAIN_SPLIT, TEST_SPLIT, seed=0)
    np.testing.assert_array_equal(a.test_probs, b.test_probs)
    c = run_stage1(ds, FAST, TRAIN_SPLIT, TEST_SPLIT, seed=1)
    assert not np.array_equal(a.test_probs, c.test_probs)


def test_paper_pseudo_labelling_relabels_the_whole_pool_after_every_epoch(ds):
    cfg = replace(FAST, pseudo_labels=True, epochs=5, cold_start_epochs=2)
    assert cfg.pseudo_threshold == 0.0  # the paper: no threshold
    hist = run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0).folds[0].history
    pool = int((ds.labels < 0).sum())
    assert [h.get("pseudo_selected") for h in hist] == [None, pool, pool, pool, pool]
    assert [h["pseudo_trained"] for h in hist] == [0, 0, pool, pool, pool]


def test_pseudo_labels_are_scored_against_hidden_truth(ds):
    cfg = replace(FAST, pseudo_labels=True, pseudo_threshold=0.6)
    run = run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0)
    hist = run.folds[0].history
    assert "pseudo_counts" not in hist[0]  # cold start: labelled only
    last = hist[-1]
    assert sum(last["pseudo_counts"].values()) > 0
    assert last["pseudo_accuracy"] > 50  # chance is ~20% on six classes
    # later epochs train on the labelled rows plus the previous epoch's pseudo-labels
    assert hist[-1]["train_samples"] == hist[-2]["pseudo_selected"] + hist[0]["train_samples"]
    assert hist[-1]["pseudo_trained"] == hist[-2]["pseudo_selected"]


def test_killed_run_resumes_to_the_same_model(ds, tmp_path, monkeypatch):
    monkeypatch.setenv("MER_LIB_CHECKPOINT_INTERVAL", "0")  # a checkpoint after every epoch
    train_idx = ds.indices(TRAIN_SPLIT)
    tr, va = stage1.validation_splits(ds.labels, train_idx, FAST, seed=0)[0]
    cfg = replace(FAST, pseudo_labels=True, pseudo_threshold=0.6)
    pool = np.flatnonzero(ds.labels < 0)
    straight = fit(ds, tr, va, cfg, seed=0, pool_idx=pool, checkpoint_dir=tmp_path / "straight")

    real_epoch, calls = stage1._train_epoch, []

    def dies_in_epoch_four(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(stage1, "_train_epoch", dies_in_epoch_four)
    with pytest.raises(KeyboardInterrupt):
        fit(ds, tr, va, cfg, seed=0, pool_idx=pool, checkpoint_dir=tmp_path / "killed")
    monkeypatch.setattr(stage1, "_train_epoch", real_epoch)
    [checkpoint] = (tmp_path / "killed").glob("stage1-*.pt")
    assert torch.load(checkpoint, weights_only=False)["state"]["epoch"] == 2  # three epochs checkpointed
    resumed = fit(ds, tr, va, cfg, seed=0, pool_idx=pool, checkpoint_dir=tmp_path / "killed")
    assert [h["epoch"] for h in resumed.history] == list(range(cfg.epochs))
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    np.testing.assert_array_equal(straight.pseudo_idx, resumed.pseudo_idx)


def _count_epochs(monkeypatch) -> list:
    real_epoch, calls = stage1._train_epoch, []

    def counting(*args, **kwargs):
        calls.append(1)
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(stage1, "_train_epoch", counting)
    return calls


def test_a_finished_run_is_reused_with_the_same_predictions(ds, tmp_path, monkeypatch):
    cfg = replace(FAST, epochs=2)
    first = run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    calls = _count_epochs(monkeypatch)
    again = run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    assert calls == []  # loaded, not trained
    np.testing.assert_array_equal(again.test_probs, first.test_probs)
    assert again.folds[0].history == first.folds[0].history


@pytest.mark.parametrize("change", [
    dict(lr=5e-3), dict(epochs=3), dict(bdcl=False), dict(tau=0.2), dict(lambda_intra=0.5), dict(batch_size=16),
    dict(cold_start_epochs=1, pseudo_labels=True), dict(pseudo_threshold=0.5, pseudo_labels=True),
    dict(model=FusionConfig(hidden_dim=32, latent_dim=8, dropout=0.1)), dict(val_fraction=0.3),
], ids=lambda c: ",".join(c))
def test_any_other_setting_retrains(ds, tmp_path, monkeypatch, change):
    cfg = replace(FAST, epochs=2)
    run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    calls = _count_epochs(monkeypatch)
    run_stage1(ds, replace(cfg, **change), TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    assert calls, f"a stage 1 trained with other settings ({change}) was reused"


def test_other_features_of_the_same_shape_retrain(ds, tmp_path, monkeypatch):
    """The run-integrity failure: audio features swapped for noise of the same dimension were scored
    with the old model. The run key covers the features' content, so the same folder retrains."""
    cfg = replace(FAST, epochs=2)
    run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    noise = np.random.default_rng(0).normal(size=ds.features["audio"].shape).astype(np.float32)
    swapped = replace(ds, features={**ds.features, "audio": noise})
    calls = _count_epochs(monkeypatch)
    run_stage1(swapped, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0, checkpoint_dir=tmp_path, tag="bdcl")
    assert calls


def test_folds_average_the_fold_models_test_logits(ds):
    cfg = replace(FAST, folds=3, epochs=2)
    run = run_stage1(ds, cfg, TRAIN_SPLIT, TEST_SPLIT, seed=0)
    assert len(run.folds) == 3
    vals = [set(va.tolist()) for _, va in run.splits]
    assert not (vals[0] & vals[1]) and set().union(*vals) == set(ds.indices(TRAIN_SPLIT).tolist())
    feats = stage1.feature_tensors(ds, torch.device("cpu"))
    each = [predict(f.model, feats, run.test_idx)["logits"] for f in run.folds]
    np.testing.assert_allclose(run.test_probs, torch.tensor(np.mean(each, axis=0)).softmax(-1).numpy(), rtol=1e-5)


def test_prediction_does_not_depend_on_the_batch_size(ds):
    model = AttentionFusion(ds.dims, ds.num_classes, FAST.model)
    feats = stage1.feature_tensors(ds, torch.device("cpu"))
    idx = np.arange(50)
    a, b = predict(model, feats, idx, batch_size=7), predict(model, feats, idx, batch_size=8192)
    np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-5, atol=1e-6)
    assert a["z"].shape == (50, 3, FAST.model.latent_dim)


def test_selection_rules():
    f1 = [50.0, 80.0, 52.0, 70.0, 72.0, 71.0]  # epoch 1 is a lucky spike among bad neighbours
    best = Stage1Config(selection="best")
    scores = [stage1._selection_score(f1[:e + 1], best) for e in range(len(f1))]
    assert int(np.argmax(scores)) == 1
    smooth = Stage1Config(selection="smoothed", selection_window=3)
    scores = [stage1._selection_score(f1[:e + 1], smooth) for e in range(len(f1))]
    assert int(np.argmax(scores)) == 5 and scores[5] == pytest.approx(71.0)
    late = Stage1Config(selection="best", selection_start=3)
    assert [stage1._selection_score(f1[:e + 1], late) for e in range(3)] == [None, None, None]
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}]
    torch.testing.assert_close(stage1._average_states(states)["w"], torch.tensor([2.0, 4.0]))


def test_average_selection_keeps_the_mean_of_the_last_epochs(ds):
    cfg = replace(FAST, epochs=4, selection="average", selection_window=2)
    tr, va = stage1.validation_splits(ds.labels, ds.indices(TRAIN_SPLIT), cfg, seed=0)[0]
    result = fit(ds, tr, va, cfg, seed=0)
    assert result.best_epoch == 3 and 0 < result.best_val_f1 <= 100


def test_standardisation_uses_the_training_rows_only_and_travels_with_the_checkpoint(ds, tmp_path):
    cfg = replace(FAST, epochs=2)
    tr, va = stage1.validation_splits(ds.labels, ds.indices(TRAIN_SPLIT), cfg, seed=0)[0]
    model = fit(ds, tr, va, cfg, seed=0, checkpoint_dir=tmp_path).model
    for m in ds.modalities:
        x = ds.features[m][tr].astype(np.float64)
        np.testing.assert_allclose(getattr(model, f"mean_{m}").numpy(), x.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(getattr(model, f"std_{m}").numpy(), x.std(0), rtol=1e-5, atol=1e-6)
    # other rows (validation, test, pool) do not move the statistics
    shifted = replace(ds, features={m: np.where(np.isin(np.arange(len(ds)), tr)[:, None], a, a + 100.0).astype(np.float32)
                                    for m, a in ds.features.items()})
    again = fit(shifted, tr, va, cfg, seed=0).model
    for m in ds.modalities:
        assert torch.equal(getattr(again, f"mean_{m}"), getattr(model, f"mean_{m}"))
    # restored from the checkpoint with the weights (a finished run reloads, it does not recompute)
    [checkpoint] = tmp_path.glob("stage1-*.pt")
    saved = torch.load(checkpoint, weights_only=False)["model"]
    for m in ds.modalities:
        assert torch.equal(saved[f"mean_{m}"], getattr(model, f"mean_{m}"))
    reloaded = fit(ds, tr, va, cfg, seed=0, checkpoint_dir=tmp_path).model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    # and off: raw features, as MERTools feeds them
    raw = fit(ds, tr, va, replace(cfg, standardize=False), seed=0).model
    assert all(torch.equal(getattr(raw, f"std_{m}"), torch.ones(ds.dims[m])) for m in ds.modalities)
