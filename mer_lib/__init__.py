"""mer_lib: the thin library behind the MER2024 reasoning-priors workspace.

Reproduces "Multimodal Video Emotion Recognition with Reliable Reasoning Priors" (MER2024-SEMI):
reasoning priors from a multimodal LLM (:mod:`mer_lib.priors`), stage-1 semi-supervised
pre-training with Balanced Dual-Contrastive Learning (:mod:`mer_lib.losses`, :mod:`mer_lib.stage1`),
stage-2 prior-guided tuning (:mod:`mer_lib.prior_inputs`, :mod:`mer_lib.stage2`), and the paper's tables
and figures (:mod:`mer_lib.tables`, :mod:`mer_lib.figures`).
"""
__version__ = "0.1.0"
