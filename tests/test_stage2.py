"""Stage 2: freezing, the no-prior path, contribution weights, the embedding cache, planted signal."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mer_lib import prior_inputs, stage2
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
from mer_lib.models import FusionConfig
from mer_lib.prior_inputs import PriorInputs, cached_prior_embeddings
from mer_lib.stage1 import Stage1Config, feature_tensors, run_stage1
from mer_lib.stage2 import Stage2Config, fit_stage2, predict_stage2, run_stage2

STAGE1 = Stage1Config(model=FusionConfig(hidden_dim=32, latent_dim=16, dropout=0.1), epochs=8,
                      batch_size=32, lr=3e-3, bdcl=False)
STAGE2 = Stage2Config(epochs=8, batch_size=32, lr=3e-3, heads=2)


@pytest.fixture(scope="module")
def ds(tiny_demo):
    return load_dataset(tiny_demo, FEATURES, progress=False)


@pytest.fixture(scope="module")
def stage1(ds):
    return run_stage1(ds, STAGE1, TRAIN_SPLIT, TEST_SPLIT, seed=0)


def planted_priors(ds, accuracy: float, coverage: float = 1.0, seed: int = 0, dim: int = 12) -> PriorInputs:
    """Synthetic prior embeddings that name the true class with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    C, M = ds.num_classes, len(ds.modalities)
    truth = np.where(ds.labels >= 0, ds.labels, ds.hidden_labels)
    said = np.where(rng.random(len(ds)) < accuracy, truth, rng.integers(0, C, len(ds)))
    codes = rng.normal(size=(C, M, dim))
    emb = (codes[said] + 0.3 * rng.normal(size=(len(ds), M, dim))).astype(np.float32)
    weights = rng.dirichlet(np.ones(M), size=len(ds)).astype(np.float32)
    return PriorInputs(emb, weights, rng.random(len(ds)) < coverage)


@pytest.mark.parametrize("head", ["paper", "residual"])
def test_stage1_stays_frozen_and_only_the_prior_path_trains(ds, stage1, head):
    cfg = replace(STAGE2, head=head)
    before = {k: v.clone() for k, v in stage1.folds[0].model.state_dict().items()}
    inputs = planted_priors(ds, 0.8)
    tr, va = stage1.splits[0]
    fit = fit_stage2(ds, stage1.folds[0].model, inputs, tr, va, cfg, seed=0)
    for k, v in fit.model.stage1.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=f"frozen stage-1 weight {k} moved")
    for k, v in stage1.folds[0].model.state_dict().items():  # the caller's model is not touched either
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    trainable = {n for n, p in fit.model.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("stage1.") for n in trainable)
    fresh = stage2.PriorGuidedFusion(stage1.folds[0].model, 12, ds.num_classes, cfg)
    moved = [n for n in trainable if not torch.equal(dict(fresh.named_parameters())[n], dict(fit.model.named_parameters())[n])]
    assert {"prior_proj.audio.weight", "mlp.0.weight", "transformer.layers.0.linear1.weight"} <= set(moved)
    assert ("classifier.weight" in moved) == (head == "residual")  # the paper's head has no classifier of its own


def test_the_paper_head_routes_the_prior_path_through_the_frozen_linear_layer(ds, stage1):
    inputs = planted_priors(ds, 0.8)
    tr, va = stage1.splits[0]
    model = fit_stage2(ds, stage1.folds[0].model, inputs, tr, va, STAGE2, seed=0).model.eval()
    rows = stage1.test_idx[:20]
    x = {m: torch.from_numpy(ds.features[m][rows]) for m in ds.modalities}
    emb, w = torch.from_numpy(inputs.embeddings[rows]), torch.from_numpy(inputs.weights[rows])
    has = torch.ones(len(rows), dtype=torch.bool)
    with torch.no_grad():
        logits, _ = model(x, emb, w, has)
        z = model.stage1(x).z
        e = torch.stack([model.prior_proj[m](emb[:, i]) for i, m in enumerate(model.modalities)], 1)
        tokens = model.transformer(model.mlp(e + z) + model.modality_tokens)  # F_m, eq. 10
        fused = (tokens * w.unsqueeze(-1)).sum(1)  # R as the fusion weights, eq. 11
        torch.testing.assert_close(logits, model.stage1.classifier(fused))
        model.stage1.classifier.weight.mul_(2.0)  # the frozen linear layer decides the output
        doubled, _ = model(x, emb, w, has)
    assert not torch.allclose(doubled, logits)


@pytest.mark.parametrize("head", ["paper", "residual"])
def test_priors_content_lifts_stage1_and_shuffled_priors_do_not(ds, stage1, head):
    cfg = replace(STAGE2, head=head)
    inputs = planted_priors(ds, accuracy=0.85)
    ours = run_stage2(ds, stage1, inputs, cfg)
    shuffled = run_stage2(ds, stage1, inputs.shuffled(seed=1), cfg)
    s1, wf1 = stage1.test_scores["weighted_f1"], ours.test_scores["weighted_f1"]
    assert wf1 > s1 + 8, (s1, wf1)
    # another clip's prior carries nothing about this clip: whatever the shuffled control gains over
    # stage 1 comes from the prior path's own capacity on top of z (large here: this stage 1 trains
    # for 8 epochs), and the real priors gain well beyond it
    assert shuffled.test_scores["weighted_f1"] < wf1 - 5, (shuffled.test_scores["weighted_f1"], wf1)
    assert ours.coverage == {"train": 100.0, "validation": 100.0, "test": 100.0}


def test_clips_without_a_prior_still_get_a_prediction(ds, stage1):
    inputs = planted_priors(ds, 0.85, coverage=0.5)
    tr, va = stage1.splits[0]
    fit = fit_stage2(ds, stage1.folds[0].model, inputs, tr, va, STAGE2, seed=0)
    feats = feature_tensors(ds, torch.device("cpu"))
    test = stage1.test_idx
    probs = predict_stage2(fit.model, feats, inputs, test, STAGE2)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-5)
    # for clips without a prior, what sits in their (unused) embedding and weight slots is ignored
    scrambled = replace(inputs, embeddings=np.where(inputs.available[:, None, None], inputs.embeddings, 99.0),
                        weights=np.where(inputs.available[:, None], inputs.weights, 5.0).astype(np.float32))
    np.testing.assert_allclose(predict_stage2(fit.model, feats, scrambled, test, STAGE2), probs, rtol=1e-5, atol=1e-6)
    # the stage-1 fallback returns stage 1's own prediction for them
    fallback = replace(STAGE2, missing="stage1")
    fit_fb = fit_stage2(ds, stage1.folds[0].model, inputs, tr, va, fallback, seed=0)
    p = predict_stage2(fit_fb.model, feats, inputs, test, fallback)
    from mer_lib.stage1 import predict
    s1 = predict(stage1.folds[0].model, feats, test)["probs"]
    missing = ~inputs.available[test]
    np.testing.assert_allclose(p[missing], s1[missing], rtol=1e-5, atol=1e-6)
    assert not np.allclose(p[~missing], s1[~missing])


def test_contribution_weights_change_the_output(ds, stage1):
    inputs = planted_priors(ds, 0.85)
    tr, va = stage1.splits[0]
    fit = fit_stage2(ds, stage1.folds[0].model, inputs, tr, va, STAGE2, seed=0)
    feats = feature_tensors(ds, torch.device("cpu"))
    test = stage1.test_idx
    base = predict_stage2(fit.model, feats, inputs, test, STAGE2)
    one_hot = np.zeros_like(inputs.weights)
    one_hot[:, 0] = 1.0  # all weight on the first modality
    moved = predict_stage2(fit.model, feats, replace(inputs, weights=one_hot), test, STAGE2)
    assert np.abs(moved - base).max() > 1e-3


def test_shuffled_priors_give_every_clip_someone_elses_prior(ds):
    inputs = planted_priors(ds, 0.85, coverage=0.6)
    shuffled = inputs.shuffled(seed=0)
    rows = np.flatnonzero(inputs.available)
    assert not np.any(np.all(shuffled.embeddings[rows] == inputs.embeddings[rows], axis=(1, 2)))
    # a permutation: the same set of priors, moved around; clips without a prior untouched
    np.testing.assert_allclose(np.sort(shuffled.weights[rows], axis=0), np.sort(inputs.weights[rows], axis=0))
    np.testing.assert_array_equal(shuffled.embeddings[~inputs.available], inputs.embeddings[~inputs.available])


def test_prior_embeddings_are_cached_and_keyed_by_the_texts(tmp_path, monkeypatch):
    texts = {"a": {"audio": "high pitch, fast speech", "video": "AU12 lip corner puller", "text": "great news"},
             "b": {"audio": "high pitch, fast speech", "video": "AU4 brow lowerer", "text": "get out"}}
    calls = []
    real = prior_inputs.embed_texts

    def counting(texts_, *a, **k):
        calls.append(list(texts_))
        return real(texts_, *a, **k)

    monkeypatch.setattr(prior_inputs, "embed_texts", counting)
    first = cached_prior_embeddings(texts, ["audio", "video", "text"], tmp_path, progress_bar=False)
    assert len(calls) == 1 and len(calls[0]) == 5  # six texts, one repeated: embedded once
    assert first["audio"].shape == (2, 384)  # all-MiniLM-L6-v2
    np.testing.assert_array_equal(first["audio"][0], first["audio"][1])
    again = cached_prior_embeddings(texts, ["audio", "video", "text"], tmp_path, progress_bar=False)
    assert len(calls) == 1  # served from the cache
    np.testing.assert_array_equal(again["video"], first["video"])
    texts["b"]["text"] = "please get out"
    changed = cached_prior_embeddings(texts, ["audio", "video", "text"], tmp_path, progress_bar=False)
    assert calls[1] == ["please get out"]  # only the new text is embedded
    np.testing.assert_array_equal(changed["video"], first["video"])
    # and the vectors mean something: related texts sit closer than unrelated ones
    e = prior_inputs.embed_texts(["I am so happy", "I feel joyful", "the train leaves at six"],
                                 prior_inputs.default_text_encoder(), progress_bar=False)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_embedding_order_and_padding_do_not_change_the_vectors():
    texts = ["a much longer sentence about a sad person who cries at the station", "hi", "I am angry now"]
    encoder = prior_inputs.default_text_encoder()
    together = prior_inputs.embed_texts(texts, encoder, batch_size=2, progress_bar=False)
    alone = np.concatenate([prior_inputs.embed_texts([t], encoder, progress_bar=False) for t in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_teacher_complementarity_counts_cstar_on_stage1s_hits_and_misses():
    import pandas as pd

    from mer_lib.stage2 import teacher_complementarity

    predictions = pd.DataFrame({"name": ["a", "b", "c", "d", "e"], "split": ["test"] * 4 + ["train"],
                                "label": ["x", "x", "y", "y", "x"],
                                "stage1_x": [0.9, 0.2, 0.8, 0.1, 0.9], "stage1_y": [0.1, 0.8, 0.2, 0.9, 0.1]})
    # stage 1: a right, b wrong, c wrong, d right; c*: a right, b right, c wrong, d no prior
    reliability = pd.DataFrame({"prior_emotion": ["x", "x", "x", "", "y"]}, index=["a", "b", "c", "d", "e"])
    out = teacher_complementarity(predictions, reliability, "test")
    assert out == {"n": 3, "cstar_accuracy_where_stage1_right": 100.0, "cstar_accuracy_where_stage1_wrong": 50.0}
