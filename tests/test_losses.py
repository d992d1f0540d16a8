"""BDCL against a plain-loop reference written from the paper's equations, values and gradients."""
from __future__ import annotations

import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from mer_lib.losses import bdcl_loss


def reference_bdcl(z, labels, tau=0.1, lambda_inter=0.2, lambda_intra=0.2, symmetric=True, include_self=False):
    """Eq. 6-8 with Python loops over samples, modalities and classes (float64, no tricks).
    ``include_self``: the anchor is one of its own class's candidates; ``symmetric=False``: only
    the modality pairs (m, n) with m < n, anchor m."""
    z = F.normalize(z, dim=-1)
    N, M, _ = z.shape
    keep = [i for i in range(N) if labels[i] >= 0]
    y = {i: int(labels[i]) for i in keep}
    classes = sorted(set(y.values()))

    def s(a, b):
        return (a * b).sum() / tau

    def log_balanced_denominator(anchor, candidates_of_class):
        means = []
        for c in classes:
            cands = candidates_of_class(c)
            if cands:
                means.append(sum(torch.exp(s(anchor, v)) for v in cands) / len(cands))
        return torch.log(sum(means) / len(means))

    intra_terms = []
    for m in range(M):
        for i in keep:
            positives = [j for j in keep if j != i and y[j] == y[i]]
            if not positives:
                continue
            log_d = log_balanced_denominator(
                z[i, m], lambda c: [z[k, m] for k in keep if y[k] == c and (include_self or k != i)])
            intra_terms.append(sum(-s(z[i, m], z[j, m]) + log_d for j in positives) / len(positives))

    inter_terms = []
    for i in keep:
        for m in range(M):
            log_d = log_balanced_denominator(
                z[i, m], lambda c: [z[k, n] for k in keep for n in range(M)
                                    if y[k] == c and (include_self or (k, n) != (i, m))])
            for n in range(M):
                if n != m and (symmetric or m < n):
                    inter_terms.append(-s(z[i, m], z[i, n]) + log_d)

    zero = z.sum() * 0
    intra = sum(intra_terms) / len(intra_terms) if intra_terms else zero
    inter = sum(inter_terms) / len(inter_terms) if inter_terms else zero
    return {"loss": lambda_inter * inter + lambda_intra * intra, "inter": inter, "intra": intra}


def assert_matches_reference(z, labels, **kwargs):
    """Loss terms and gradients of bdcl_loss equal the loop reference's (float64, 1e-6)."""
    ours, ref = bdcl_loss(z, labels, **kwargs), reference_bdcl(z, labels, **kwargs)
    for key in ("loss", "inter", "intra"):
        torch.testing.assert_close(ours[key], ref[key].to(ours[key].dtype), rtol=1e-6, atol=1e-6, msg=key)
    grad_ours, = torch.autograd.grad(ours["loss"], z)
    grad_ref, = torch.autograd.grad(ref["loss"], z)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("symmetric,include_self", [(True, True), (False, False), (False, True)])
@pytest.mark.parametrize("case", ["imbalanced", "unlabelled_rows", "one_of_a_class"])
@pytest.mark.parametrize("M", [3, 2, 1])
def test_each_reading_of_the_paper_matches_the_loop_reference(case, M, symmetric, include_self):
    """The two switches (Table 4's BDCL rows): anchor in its own denominator, three pairs or six."""
    labels = torch.tensor(CASES[case])
    g = torch.Generator().manual_seed(1000 * M + 10 * symmetric + include_self)
    z = torch.randn(len(labels), M, 5, generator=g, dtype=torch.float64, requires_grad=True)
    kwargs = dict(tau=0.1, lambda_inter=0.3, lambda_intra=0.7, symmetric=symmetric, include_self=include_self)
    assert_matches_reference(z, labels, **kwargs)
    # and the path for a tau too small for float32's exponent, which shifts each group by its own maximum
    small = {**kwargs, "tau": 0.01}
    torch.testing.assert_close(bdcl_loss(z.float(), labels, **small)["loss"].double(),
                               reference_bdcl(z, labels, **small)["loss"], rtol=1e-4, atol=1e-4)


def test_the_switches_change_the_loss():
    z = torch.randn(12, 3, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor(CASES["imbalanced"])
    base = bdcl_loss(z, labels)
    assert not torch.allclose(base["inter"], bdcl_loss(z, labels, symmetric=False)["inter"])
    assert not torch.allclose(base["intra"], bdcl_loss(z, labels, include_self=True)["intra"])
    assert torch.equal(base["intra"], bdcl_loss(z, labels, symmetric=False)["intra"])  # pairs: inter only


CASES = {
    "imbalanced": [0, 0, 0, 0, 0, 1, 1, 2, 0, 1, 0, 2],
    "single_class": [3, 3, 3, 3, 3],
    "singletons": [0, 1, 2, 3, 4],
    "unlabelled_rows": [1, -1, 0, 1, -1, 2, 0, 2, 2, -1],
    "one_of_a_class": [0, 0, 0, 1, 2, 2],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("M,D", [(3, 8), (2, 2), (1, 4)])
def test_values_and_gradients_match_the_loop_reference(case, M, D):
    labels = torch.tensor(CASES[case])
    # crc32, not hash(): str hashes are salted per process, and a failure must replay with its inputs
    g = torch.Generator().manual_seed(zlib.crc32(f"{case}-{M}-{D}".encode()))
    z = torch.randn(len(labels), M, D, generator=g, dtype=torch.float64, requires_grad=True)
    assert_matches_reference(z, labels, tau=0.1, lambda_inter=0.3, lambda_intra=0.7)


@pytest.mark.parametrize("tau", [0.05, 0.5, 1.0])
def test_temperature_enters_as_in_the_reference(tau):
    labels = torch.tensor([0, 1, 1, 0, 2, 2, 2])
    z = torch.randn(7, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(bdcl_loss(z, labels, tau=tau)["loss"], reference_bdcl(z, labels, tau=tau)["loss"])


def test_tiny_temperature_path_matches_the_reference():
    """tau = 0.02 in float32 takes the per-group-maximum path (a constant shift would underflow)."""
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])
    z64 = torch.randn(8, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    z32 = z64.detach().float().requires_grad_()
    ours, ref = bdcl_loss(z32, labels, tau=0.02), reference_bdcl(z64, labels, tau=0.02)
    torch.testing.assert_close(ours["loss"].double(), ref["loss"], rtol=1e-5, atol=1e-4)
    ours["loss"].backward()
    ref["loss"].backward()
    torch.testing.assert_close(z32.grad.double(), z64.grad, rtol=1e-4, atol=1e-4)


def test_singletons_have_no_intra_anchor_but_inter_still_works():
    z = torch.randn(4, 3, 6, dtype=torch.float64)
    out = bdcl_loss(z, torch.tensor([0, 1, 2, 3]))
    assert out["intra"].item() == 0.0 and out["inter"].item() != 0.0


@pytest.mark.parametrize("labels", [[-1, -1, -1], []], ids=["all_unlabelled", "empty"])
def test_batch_without_anchors_gives_zero_that_backpropagates(labels):
    z = torch.randn(len(labels), 3, 4, requires_grad=True)
    out = bdcl_loss(z, torch.tensor(labels, dtype=torch.long))
    assert out["loss"].item() == 0.0
    out["loss"].backward()
    assert z.grad is not None and torch.equal(z.grad, torch.zeros_like(z))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_inputs_stay_finite_and_close(dtype):
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 3])
    z64 = torch.randn(9, 3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = z64.to(dtype).requires_grad_()
    out = bdcl_loss(z, labels)
    out["loss"].backward()
    assert torch.isfinite(z.grad).all()
    # computed in float32 internally: only the input rounding differs from the float64 reference
    tol = {torch.float32: 1e-5, torch.bfloat16: 5e-2, torch.float16: 1e-2}[dtype]
    ref = reference_bdcl(z.detach().double(), labels)["loss"]
    assert abs(out["loss"].item() - ref.item()) < tol * max(1.0, abs(ref.item()))


@pytest.mark.parametrize("amp_dtype", [torch.bfloat16, torch.float16])
def test_autocast_with_tiny_temperature_never_gives_nan_or_inf(amp_dtype):
    layer = torch.nn.Linear(8, 3 * 4)
    x = torch.randn(32, 8) * 50  # large activations
    labels = torch.randint(0, 6, (32,), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=amp_dtype):
        z = layer(x).view(32, 3, 4)
        out = bdcl_loss(z, labels, tau=0.01)  # similarities span [-100, 100]
    out["loss"].backward()
    assert math.isfinite(out["loss"].item())
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_identical_embeddings_within_class_give_lower_loss_than_random():
    """Sanity of direction: a latent space clustered by class scores better than a random one."""
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    centres = torch.eye(3, 8)
    clustered = centres[labels][:, None, :].expand(9, 3, 8) + 0.01 * torch.randn(9, 3, 8)
    random = torch.randn(9, 3, 8)
    assert bdcl_loss(clustered, labels)["loss"] < bdcl_loss(random, labels)["loss"]


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"z must be \(N, M, D\)"):
        bdcl_loss(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be \(N,\)"):
        bdcl_loss(torch.randn(4, 3, 8), torch.zeros(5, dtype=torch.long))
