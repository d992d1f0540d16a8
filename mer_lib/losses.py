"""Balanced Dual-Contrastive Learning (BDCL), the stage-1 loss of
"Multimodal Video Emotion Recognition with Reliable Reasoning Priors" (MER2024), eq. 6-8.

Inter-modality InfoNCE pulls a sample's modalities together (z_v, z_a, z_t of one clip);
intra-modality supervised InfoNCE pulls same-class samples of a modality together. Both use a
class-balanced denominator: the negatives of each class are averaged within the class before the
classes are averaged, so a head class (neutral: 871 clips) does not drown a tail class (surprise: 146).

For anchor z_mi with similarity s(a, b) = <a, b> / tau on L2-normalised embeddings:

    D_mi = (1 / C_i) * sum_c (1 / |B_c|) * sum_{k in B_c} exp(s(z_mi, z_k))

where B_c is the anchor's candidate set of class c (intra: modality-m embeddings; inter: every
embedding of every modality), without the anchor itself unless ``include_self``, and C_i counts the
classes with at least one candidate. Then

    intra_mi = (1/|P|) sum_{j in P} [-s(z_mi, z_mj)] + log D_mi     P = same class, same modality, j != i
    inter    = mean over the modality pairs (m, n) and samples i of [-s(z_mi, z_ni)] + log D'_mi

The paper is silent on two details, so both readings are switches (Table 4 measures them):
- ``include_self``: eq. 6-8 read literally keep the anchor in its own class's candidate set B_c;
  SupCon-style losses leave it out (the default here, as in this function's first version);
- ``symmetric``: the paper lists three pairs (v, a), (v, t), (a, t): anchor m, positive n, m < n along
  the modality axis (put the axis in the order v, a, t to get exactly the paper's list); True uses
  all six ordered pairs, every modality an anchor for every other.

Everything comes from one [NM, NM] matrix of exponentials: sums per (anchor, class, modality) are a
matmul with a one-hot, and the positives come from embedding sums. The exponentials are shifted so
that the logarithms stay finite in any precision (computed in at least float32, also under
autocast); see `_group_exp_sums`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bdcl_loss(z: torch.Tensor, labels: torch.Tensor, tau: float = 0.1, lambda_inter: float = 0.2,
              lambda_intra: float = 0.2, *, symmetric: bool = True,
              include_self: bool = False) -> dict[str, torch.Tensor]:
    """BDCL on a batch of multimodal embeddings.

    Args:
        z: (N, M, D) embeddings, M modalities in one latent space (normalised here).
        labels: (N,) int class indices in [0, C); rows with a negative label are ignored.
        symmetric: all ordered modality pairs (True) or only m < n along the modality axis (False).
        include_self: keep the anchor in its own denominator (True: eq. 6-8 read literally).
    Returns:
        dict of scalar tensors: ``loss`` = lambda_inter * ``inter`` + lambda_intra * ``intra``.
    """
    if z.dim() != 3:
        raise ValueError(f"z must be (N, M, D), got shape {tuple(z.shape)}")
    if labels.shape != z.shape[:1]:
        raise ValueError(f"labels must be (N,) = ({z.shape[0]},), got shape {tuple(labels.shape)}")
    keep = labels >= 0
    z, labels = z[keep], labels[keep].long()
    zero = z.sum() * 0.0  # keeps the graph: a degenerate batch still backpropagates (zeros)
    N = z.shape[0]
    if N == 0:
        return {"loss": zero, "inter": zero, "intra": zero}

    with torch.autocast(device_type=z.device.type, enabled=False):
        # at least float32 (half precision underflows the exponentials), float64 stays float64
        inter, intra = _bdcl_terms(z.to(torch.promote_types(z.dtype, torch.float32)), labels, tau,
                                   symmetric, include_self)
    inter = zero if inter is None else inter
    intra = zero if intra is None else intra
    return {"loss": lambda_inter * inter + lambda_intra * intra, "inter": inter, "intra": intra}


def modality_pairs(M: int, symmetric: bool) -> torch.Tensor:
    """(M, M) bool: [m, n] when (anchor m, positive n) is a pair of the inter-modality term."""
    pairs = ~torch.eye(M, dtype=torch.bool)
    return pairs if symmetric else pairs.triu()


def _bdcl_terms(z: torch.Tensor, labels: torch.Tensor, tau: float, symmetric: bool, include_self: bool):
    N, M, _ = z.shape
    C = int(labels.max()) + 1
    # flatten modality-major: row r = m * N + i
    e = F.normalize(z.transpose(0, 1).reshape(M * N, -1), dim=-1)  # (R, D), R = M * N
    modality = torch.arange(M, device=z.device).repeat_interleave(N)  # (R,)
    cls = labels.repeat(M)  # (R,)
    R = M * N

    group = cls * M + modality  # (R,) column group = (class, modality)
    onehot = F.one_hot(group, C * M).to(e.dtype)  # (R, C*M)
    gsum, shift = _group_exp_sums(e, group, onehot, tau, include_self)  # sum_k exp(s_rk - shift_rg)
    gcount = onehot.sum(0).expand(R, -1) - (0 if include_self else onehot)  # (R, C*M) candidates per group
    glog = torch.log(torch.where(gcount > 0, gsum, torch.ones_like(gsum))) + shift  # (R, C*M)
    glog = glog.view(R, C, M)
    gcount = gcount.view(R, C, M)

    # inter: candidates of class c are all modalities' embeddings of class c
    inter_log = _masked_logsumexp(glog, gcount > 0, dim=2)  # (R, C) log sum_k exp(s)
    inter_count = gcount.sum(2)  # (R, C)
    inter_logD = _balanced_log_mean(inter_log, inter_count)  # (R,)

    # intra: candidates of class c are the anchor's own modality's embeddings of class c
    own = modality.view(R, 1, 1).expand(R, C, 1)
    intra_log = glog.gather(2, own).squeeze(2)  # (R, C)
    intra_count = gcount.gather(2, own).squeeze(2)  # (R, C)
    intra_logD = _balanced_log_mean(intra_log, intra_count)  # (R,)

    self_sim = (e * e).sum(1) / tau  # (R,) the diagonal of sim
    inter = None
    pairs = modality_pairs(M, symmetric)  # (M, M), asked on the CPU: no wait for the GPU
    if pairs.any():
        pairs = pairs.to(device=z.device, dtype=e.dtype)
        # positives of row (m, i): z_ni for the pairs (m, n), via the sum of the partners' embeddings
        partner_sum = torch.einsum("mn,nid->mid", pairs, e.view(M, N, -1)).reshape(R, -1)  # (R, D)
        pos_inter = (e * partner_sum).sum(1) / tau  # (R,) sum over partners of s(z_mi, z_ni)
        partners = pairs.sum(1).repeat_interleave(N)  # (R,)
        # mean over the pairs and samples of [-s(z_mi, z_ni) + log D'_mi]
        inter = (partners * inter_logD - pos_inter).sum() / (N * pairs.sum())

    # positives of row (m, i): same class, same modality, other samples, via group embedding sums
    pos_count = intra_count.gather(1, cls[:, None]).squeeze(1) - (1 if include_self else 0)  # (R,)
    group_sum = onehot.T @ e  # (C*M, D)
    pos_sum = (e * group_sum[group]).sum(1) / tau - self_sim  # (R,)
    valid = pos_count > 0
    intra = None
    if valid.any():
        intra = (intra_logD - pos_sum / pos_count.clamp(min=1))[valid].mean()
    return inter, intra


def _group_exp_sums(e: torch.Tensor, group: torch.Tensor, onehot: torch.Tensor, tau: float, include_self: bool):
    """Per (anchor, group) sums of exp(s) over the other embeddings (and the anchor itself when
    ``include_self``), and the shift they carry.

    Similarities of unit vectors lie in [-1/tau, 1/tau], so shifting by the constant 1/tau keeps
    every term in [exp(-2/tau), 1]: no overflow, and no underflow of a non-empty group while 2/tau
    fits the dtype's exponent range. Then one [R, R] buffer does it all. Beyond that range (tiny tau)
    each group is shifted by its own maximum instead (slower: a scatter over [R, R]).
    """
    R, n_groups = e.shape[0], onehot.shape[1]
    exp_range = math.log(torch.finfo(e.dtype).tiny)  # smallest normal: about -87 in float32
    if -2.0 / tau > exp_range + 8.0:
        gsum = _ShiftedGroupExpSums.apply(e, group, onehot, tau, include_self)  # (R, n_groups)
        return gsum, torch.full((R, n_groups), 1.0 / tau, dtype=e.dtype, device=e.device)
    sim = e @ e.T / tau  # (R, R)
    if not include_self:
        sim = sim.fill_diagonal_(float("-inf"))
    index = group.expand(R, R)
    gmax = torch.full((R, n_groups), float("-inf"), dtype=e.dtype, device=e.device)
    gmax = gmax.scatter_reduce(1, index, sim, reduce="amax").detach()
    gmax = torch.where(torch.isfinite(gmax), gmax, torch.zeros_like(gmax))  # empty groups
    gsum = torch.exp(sim - gmax.gather(1, index)) @ onehot
    return gsum, gmax


class _ShiftedGroupExpSums(torch.autograd.Function):
    """gsum = A @ H with A = exp(e e^T / tau - 1/tau) (diagonal zeroed unless the anchor counts),
    H the group one-hot.

    Written by hand because autograd keeps several [R, R] temporaries around; this backward needs
    only A: with G the incoming gradient, dL/dS = G[:, group] * A and dL/de = (W + W^T) e / tau
    (the diagonal, when kept, is counted twice: d<e_r, e_r>/de_r = 2 e_r, as it should).
    """

    @staticmethod
    def forward(ctx, e, group, onehot, tau, include_self):
        A = torch.addmm(torch.full((), -1.0 / tau, dtype=e.dtype, device=e.device), e, e.T,
                        alpha=1.0 / tau)  # (R, R) s - 1/tau
        if not include_self:
            A.fill_diagonal_(float("-inf"))  # self excluded
        A.exp_()
        ctx.save_for_backward(e, group, A)
        ctx.tau = tau
        return A @ onehot

    @staticmethod
    def backward(ctx, grad_gsum):
        e, group, A = ctx.saved_tensors
        W = grad_gsum[:, group].mul_(A)  # (R, R) dL/dS
        grad_e = torch.addmm(W @ e, W.T, e).div_(ctx.tau)
        return grad_e, None, None, None, None


def _masked_logsumexp(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """logsumexp over entries where ``mask``; -inf-free gradients (masked entries get none)."""
    x = torch.where(mask, x, torch.full_like(x, -1e4))
    out = torch.logsumexp(x, dim=dim)
    return torch.where(mask.any(dim), out, torch.full_like(out, -1e4))


def _balanced_log_mean(log_sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """log[(1/C_i) * sum_c (1/count_c) * exp(log_sums_c)] over classes with count_c > 0. (R, C) -> (R,)"""
    present = counts > 0
    per_class = log_sums - torch.log(counts.clamp(min=1))
    n_classes = present.sum(1).clamp(min=1).to(log_sums.dtype)
    return _masked_logsumexp(per_class, present, dim=1) - torch.log(n_classes)
