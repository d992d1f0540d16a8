"""Per-sample prior inspector: walk through clips one by one and see why the MLLM said what it said.

For the selected clip the panel shows the clip (a frame strip, the waveform, a player) where a
video file exists, the subtitle in both languages, the reasoning prior (AUs with FACS names marked
against the AU support sets S_c of the prior's emotion and of the human label, prosody, meaning,
contributions R, rationale, reliability checks: the paper's section 3.1), the human label and
stage 1's and stage 2's predictions; filters narrow the walk to the interesting clips (prior
disagrees with the label, unreliable prior, model wrong, model changed its mind), and the view
exports as a PDF/PNG figure. Typical use (notebook ``07_inspector``)::

    from mer_lib import inspector
    data = inspector.load_inspector_data("data/demo", features=FEATURES, prior_file=...,
                                         predictions_file="runs/x/results/predictions.csv",
                                         clips_dir=None)
    panel = inspector.Inspector(data, figures_dir="figures")
    panel            # displays the widget

Modules: :mod:`.table` (masks, filters, navigation), :mod:`.sources` (loading and joining),
:mod:`.view` (one clip's content, as HTML), :mod:`.media` (decoding the selected clip),
:mod:`.render` (the frame strip and the exported page), :mod:`.widget` (the panel).
"""
from .media import ClipMedia, load_media
from .render import export_view, view_figure
from .sources import InspectorData, clips_dataset, index_dataset, load_inspector_data
from .table import ClipTable, Filters, InspectorError, filter_rows, find_row, read_predictions, step
from .view import ClipView, clip_view
from .widget import Inspector, open_inspector

__all__ = ["ClipMedia", "ClipTable", "ClipView", "Filters", "Inspector", "InspectorData", "InspectorError",
           "clip_view", "clips_dataset", "export_view", "filter_rows", "find_row", "index_dataset", "load_inspector_data",
           "load_media", "open_inspector", "read_predictions", "step", "view_figure"]
