"""The numbers printed under Figure 4 (mer_lib.latent.separation) on latents whose answer is known,
and the row order that latents() hands to it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_lib.latent import latents, separation
from mer_lib.models import AttentionFusion
from mer_lib.stage1 import FitResult, Stage1Run
from tests.support.datasets import small_dataset

MODALITIES = np.asarray(["audio", "video", "text"])


def clip_major(per_clip: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, M, L) latents laid out as latents() returns them: the M rows of a clip next to each other."""
    n, M, L = per_clip.shape
    z = per_clip / np.linalg.norm(per_clip, axis=-1, keepdims=True)
    return z.reshape(n * M, L), np.repeat(labels, M), np.tile(MODALITIES[:M], n)


def test_separated_classes_with_identical_modality_latents_score_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)  # 4 classes x 10 clips
    centres = np.eye(16)[:4]  # orthogonal class directions
    per_clip = centres[labels] + 0.01 * rng.normal(size=(40, 16))  # (n, L): a little spread inside a class
    z, y, modality = clip_major(np.repeat(per_clip[:, None], 3, axis=1), labels)  # every modality the same
    numbers = separation(z, y, modality)
    assert numbers["modality_alignment"] == pytest.approx(1.0, abs=1e-9)
    assert numbers["class_silhouette"] > 0.95


def test_random_latents_score_near_zero():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=300)
    z, y, modality = clip_major(rng.normal(size=(300, 3, 128)), labels)
    numbers = separation(z, y, modality)
    assert abs(numbers["modality_alignment"]) < 0.02  # cosine of random 128-d directions: ~N(0, 1/128)/sqrt(n)
    assert abs(numbers["class_silhouette"]) < 0.05


def test_alignment_pairs_the_rows_of_one_clip_and_silhouette_skips_unlabelled_rows():
    """Each clip's three latents are equal and differ from every other clip's: alignment is 1 only when
    the rows of one clip are read together, as latents() lays them out."""
    rng = np.random.default_rng(2)
    labels = np.array([0, 0, 1, 1, -1, -1])
    per_clip = np.repeat(rng.normal(size=(6, 1, 32)), 3, axis=1)  # (n, M, L)
    z, y, modality = clip_major(per_clip, labels)
    assert separation(z, y, modality)["modality_alignment"] == pytest.approx(1.0)
    modality_major = per_clip.transpose(1, 0, 2).reshape(18, 32)  # rows of one modality together
    modality_major /= np.linalg.norm(modality_major, axis=1, keepdims=True)
    assert separation(modality_major, y, modality)["modality_alignment"] < 0.9
    # the unlabelled clips (-1) do not enter the silhouette: moving them changes nothing
    moved = z.copy()
    moved[12:] = -moved[12:]
    assert separation(moved, y, modality)["class_silhouette"] == pytest.approx(
        separation(z, y, modality)["class_silhouette"])


def test_latents_lay_out_rows_clip_by_clip_as_separation_reads_them():
    ds = small_dataset([f"c{i}" for i in range(7)], ["happy", "sad", "angry", "happy", "sad", "neutral", -1])
    rng = np.random.default_rng(3)
    ds.features = {m: rng.normal(size=(len(ds), d)).astype(np.float32)
                   for m, d in (("audio", 6), ("video", 5), ("text", 4))}
    torch.manual_seed(0)
    model = AttentionFusion(ds.dims, ds.num_classes)
    fold = FitResult(model, 0, 0.0, [], np.zeros(0, np.int64), np.zeros(0, np.int64))
    run = Stage1Run(0, ds.classes, np.zeros(0, np.int64), np.zeros((0, ds.num_classes)), {}, [fold], [])
    rows = np.array([5, 0, 6, 2])
    z, y, modality = latents(ds, run, rows)
    assert z.shape == (12, model.cfg.latent_dim)
    assert modality.tolist() == ["audio", "video", "text"] * 4 and y.tolist() == np.repeat(ds.labels[rows], 3).tolist()
    with torch.no_grad():
        expected = model({m: torch.from_numpy(ds.features[m][rows]) for m in model.modalities}).z.numpy()  # (n, M, L)
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    np.testing.assert_allclose(z[4], expected[1, 1], rtol=1e-4, atol=1e-5)  # clip 0 (2nd row asked), video
    np.testing.assert_allclose(z.reshape(4, 3, -1), expected, rtol=1e-4, atol=1e-5)
    # the alignment is the mean cosine between two modalities of the same clip, recomputed by loops
    by_hand = np.mean([expected[i, a] @ expected[i, b] for i in range(4) for a in range(3) for b in range(3) if a != b])
    assert separation(z, y, modality)["modality_alignment"] == pytest.approx(by_hand, rel=1e-4)
