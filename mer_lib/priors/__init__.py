"""Reliable reasoning priors (the paper's section 3.1): a multimodal LLM reads each clip and returns
facial AUs (I_V), prosodic cues (I_A), the subtitle's meaning (I_T), modality contributions (R)
and an emotion c*, as validated records in a resumable store.

Typical use (notebook ``01_prior_generation``)::

    from mer_lib.priors import make_backend, generate_for_dataset, load_priors, reliability_table
    backend = make_backend("simulated", dataset=ds, seed=0)        # or "gemini", "openai", ...
    summary = generate_for_dataset(ds, backend, "runs/priors/demo.jsonl", concurrency=4)
    priors = load_priors("runs/priors/demo.jsonl", classes=ds.classes)
    table = reliability_table(priors, ds)                          # who to trust
    zero_shot_scores(priors, ds, "test_corpus")                    # Table 1's LLM row

Modules: :mod:`.schema` (the record), :mod:`.facs` (AUs and support sets), :mod:`.prompt`,
:mod:`.backends` (gemini, openai, offline, simulated, replay), :mod:`.store` (JSONL store),
:mod:`.run` (selection, retries, concurrency), :mod:`.reliability`, :mod:`.texts`.
"""
from .backends import BACKEND_KINDS, Backend, backend_from_parameters, make_backend
from .facs import AU_SUPPORT_SETS, EMFACS_PROTOTYPES, FACS_NAMES, au_consistency, best_matching_emotion
from .keys import MissingAPIKey
from .prompt import PROMPT_VERSION, build_prompt
from .reliability import (
                          DEFAULT_MIN_AU_CONSISTENCY,
                          DEFAULT_POLICY,
                          POLICIES,
                          au_frequency,
                          reliability_table,
                          reliable_mask,
                          zero_shot_scores,
)
from .run import RetryPolicy, generate_for_dataset, select_samples
from .schema import ActionUnit, AudioCues, MalformedAnswer, Prior, answer_json_schema
from .store import PriorStoreError, latest_status, load_priors, read_records
from .texts import prior_texts, prior_weights

__all__ = [  # noqa: RUF022 (grouped by what they are for, not alphabetically)
    # the record and its tables
    "Prior", "ActionUnit", "AudioCues", "MalformedAnswer", "answer_json_schema", "FACS_NAMES",
    "AU_SUPPORT_SETS", "EMFACS_PROTOTYPES", "au_consistency", "best_matching_emotion",
    # generating priors
    "BACKEND_KINDS", "Backend", "make_backend", "backend_from_parameters", "MissingAPIKey", "PROMPT_VERSION",
    "build_prompt", "RetryPolicy", "generate_for_dataset", "select_samples",
    # reading them
    "PriorStoreError", "load_priors", "latest_status", "read_records", "prior_texts", "prior_weights",
    # trusting and scoring them
    "POLICIES", "DEFAULT_POLICY", "DEFAULT_MIN_AU_CONSISTENCY", "reliability_table", "reliable_mask",
    "zero_shot_scores", "au_frequency",
]
