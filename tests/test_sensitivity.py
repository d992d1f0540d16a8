"""The teacher study: its conclusion follows its numbers, its figure draws them, and one real cell runs."""
from __future__ import annotations

import numpy as np
import pytest

from mer_lib import figures, sensitivity


def _row(sharing, uar, gain1, gain_control):
    stat = lambda m: {"mean": m, "std": 0.5, "values": [m - 0.5, m + 0.5]}
    return {"error_sharing": sharing, "accuracy_setting": uar / 100, "teacher": {"uar": uar, "accuracy": uar, "weighted_f1": uar},
            "stage2": {"test": {"weighted_f1": stat(80.0)}}, "gain_over_stage1": stat(gain1),
            "gain_over_control": stat(gain_control)}


def test_the_conclusion_names_the_teachers_that_help_and_those_that_do_not():
    rows = [_row(1.0, 40, -2.0, 0.1), _row(1.0, 70, 3.0, 2.0), _row(1.0, 95, 8.0, 6.0),
            _row(0.0, 40, -1.0, 1.0), _row(0.0, 95, 0.2, 0.1)]
    text = sensitivity.conclusion(rows)
    assert "error sharing 1: stage 2 beats stage 1 and the control with teachers of UAR 70, 95; not with UAR 40." in text
    assert "error sharing 0: no teacher setting gives a gain over both stage 1 and the control." in text
    shown = sensitivity.summary(rows)
    assert shown["gain over stage 1"].tolist()[:3] == ["-2.0 ± 0.5", "3.0 ± 0.5", "8.0 ± 0.5"]


def test_the_figure_plots_each_sharing_as_a_line_of_gains(tmp_path):
    rows = [_row(s, u, u / 10 - 5, u / 20 - 2) for s in (0.0, 1.0) for u in (40, 70, 95)]
    fig = figures.fig_teacher_sensitivity(rows)
    left, right = fig.axes[:2]
    assert len(left.containers) == 2 and len(right.containers) == 2  # one errorbar line per sharing
    xs, ys = left.containers[0].lines[0].get_data()
    np.testing.assert_allclose(np.asarray(xs, float), [40, 70, 95])
    np.testing.assert_allclose(np.asarray(ys, float), [-1.0, 2.0, 4.5])
    paths = figures.save_figure(fig, "fig_teacher_sensitivity", tmp_path)
    assert {p.suffix for p in paths} == {".pdf", ".png"}


@pytest.mark.slow
def test_one_cell_of_the_study_on_the_tiny_demo(tiny_demo, tmp_path):
    from mer_lib.data import load_dataset
    from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
    from mer_lib.models import FusionConfig
    from mer_lib.stage1 import Stage1Config, run_stage1
    from mer_lib.stage2 import Stage2Config

    ds = load_dataset(tiny_demo, FEATURES, progress=False)
    s1 = [run_stage1(ds, Stage1Config(model=FusionConfig(hidden_dim=16, latent_dim=8), epochs=3, batch_size=64),
                     TRAIN_SPLIT, TEST_SPLIT, seed) for seed in (0, 1)]
    rows = sensitivity.teacher_sensitivity(ds, s1, Stage2Config(epochs=2, heads=2), prior_dir=tmp_path,
                                           checkpoint_dir=None, splits=[TRAIN_SPLIT, TEST_SPLIT],
                                           test_split=TEST_SPLIT, accuracies=[0.5, 0.95], error_sharings=[1.0])
    assert [r["accuracy_setting"] for r in rows] == [0.5, 0.95]
    assert rows[1]["teacher"]["uar"] > rows[0]["teacher"]["uar"] + 15  # the knob sets the teacher's quality
    for r in rows:
        assert len(r["gain_over_stage1"]["values"]) == 2 and r["stage2"]["test"]["n_seeds"] == 2
