"""The inspector panel: explicit ipywidgets around the pure functions of :mod:`.table`, :mod:`.view`
and :mod:`.render`.

The filter controls feed :func:`ipywidgets.interactive_output`, navigation and export are buttons,
and every callback runs inside an ``Output`` widget's ``capture`` so an unexpected error shows up
in the panel as a traceback instead of vanishing into the kernel log; expected ones (an unknown
clip name, a filter without data) are a one-line message. Tests drive it headlessly by setting
``.value`` on the controls and calling ``.click()`` on the buttons.
"""
from __future__ import annotations

import functools
import html
import os
from pathlib import Path

import ipywidgets as widgets
import numpy as np

from ..config import FIGURES_DIR, resolve_path
from ..data import DataError
from .media import ClipMedia, load_media
from .render import export_view, figure_png, media_figure
from .sources import InspectorData, load_inspector_data
from .table import (
    ALL,
    ANY,
    ANY_PRIOR,
    NO_PRIOR,
    UNLABELLED,
    Filters,
    InspectorError,
    filter_mask,
    filter_rows,
    find_row,
    position,
    step,
    unavailable_filters,
)
from .view import ClipView, clip_view, outcome_html, prior_html, subtitles_html

FLAG_LABELS = {  # Filters flag -> checkbox text
    "prior_disagrees": "prior ≠ human label",
    "low_reliability": "unreliable prior",
    "model_wrong": "model wrong",
    "model_changed": "changed its mind (stage 1 → 2)",
    "with_video": "has a video file",
}
VIDEO_EMBED_LIMIT = 25 * 2**20  # bytes: larger clips are not sent to the browser (the path is shown)
EXPECTED_ERRORS = (InspectorError, DataError, OSError)  # shown as a message, not a traceback


class Inspector:
    """Walk through clips one by one: media, subtitle, prior, labels and predictions, with filters.

    ``data`` from :func:`~.sources.load_inspector_data`; ``figures_dir`` is where the export
    button writes; ``start_at`` a clip name to open first; ``filters`` the initial
    :class:`~.table.Filters`; ``media_loader`` decodes a clip file into a
    :class:`~.media.ClipMedia` (cached by default).
    """

    def __init__(self, data: InspectorData, *, figures_dir: str | os.PathLike = FIGURES_DIR, start_at: str = "",
                 filters: Filters | None = None, media_loader=load_media):
        self.data = data
        self.figures_dir = Path(figures_dir)
        self.media_loader = media_loader
        self.rows = np.zeros(0, dtype=np.int64)  # (M,) rows that pass the filters, sorted
        self.row: int | None = None  # the clip on screen (a dataset row), None when nothing matches
        self.view: ClipView | None = None
        self.media: ClipMedia | None = None
        self._syncing = False  # True while the code itself sets the position box
        self._build_controls(filters or Filters())
        self._build_display()
        # the filter controls drive everything; interactive_output runs _apply_filters once now
        self.filter_output = widgets.interactive_output(self._apply_filters, self.filter_controls)
        self.widget = self._layout()
        if start_at:
            self.jump(start_at)

    # --- construction ----------------------------------------------------------------------------
    def _build_controls(self, initial: Filters) -> None:
        table = self.data.table
        filter_mask(table, initial)  # an initial filter the data cannot serve fails here, with the reason
        classes = list(table.classes)
        wide = {"description_width": "initial"}
        self.split = widgets.Dropdown(options=[("all", ALL)] + [(s, s) for s in table.split_names],
                                      value=initial.split, description="Split", style=wide)
        self.label = widgets.Dropdown(options=[("any", ANY), *zip(classes, classes), ("unlabelled", UNLABELLED)],
                                      value=initial.label, description="Human label", style=wide)
        self.prior = widgets.Dropdown(options=[("any", ANY), ("any prior", ANY_PRIOR), *zip(classes, classes),
                                               ("no prior", NO_PRIOR)],
                                      value=initial.prior, description="Prior label", style=wide)
        self.flags = {name: widgets.Checkbox(value=getattr(initial, name), description=text, indent=False,
                                             layout=widgets.Layout(width="auto", margin="0 14px 0 0"))
                      for name, text in FLAG_LABELS.items()}
        self.unavailable = unavailable_filters(table)
        for name, reason in self.unavailable.items():
            self.flags[name].disabled = True
            self.flags[name].value = False
            self.flags[name].tooltip = f"off: {reason}"
        self.filter_controls = {"split": self.split, "label": self.label, "prior": self.prior, **self.flags}

        button = widgets.Layout(width="auto")
        self.previous_button = widgets.Button(description="◀ previous", layout=button)
        self.next_button = widgets.Button(description="next ▶", layout=button)
        self.position = widgets.BoundedIntText(value=1, min=1, max=1, description="clip",
                                               layout=widgets.Layout(width="130px"), style={"description_width": "30px"})
        self.count = widgets.Label(value="")
        self.jump_text = widgets.Text(placeholder="clip name, Enter to jump", continuous_update=False,
                                      layout=widgets.Layout(width="230px"))
        self.jump_button = widgets.Button(description="go", layout=button)
        self.export_button = widgets.Button(description="export PDF + PNG", icon="download", layout=button,
                                            tooltip=f"writes inspector_<clip>.pdf/.png to {self.figures_dir}")
        self.errors = widgets.Output(layout=widgets.Layout(max_height="260px", overflow="auto"))

        self.previous_button.on_click(self._guarded(lambda _: self.go(-1)))
        self.next_button.on_click(self._guarded(lambda _: self.go(+1)))
        self.jump_button.on_click(self._guarded(lambda _: self.jump(self.jump_text.value)))
        self.jump_text.observe(self._guarded(lambda change: self.jump(change["new"]) if change["new"] else None),
                               "value")
        self.export_button.on_click(self._guarded(lambda _: self.export()))
        self.position.observe(self._guarded(self._on_position), "value")

    def _build_display(self) -> None:
        self.status = widgets.HTML()  # what data there is, what is missing
        self.message = widgets.HTML()  # the outcome of the last action (error, export paths)
        self.header = widgets.HTML()
        self.media_image = widgets.Image(format="png", layout=widgets.Layout(width="100%", display="none"))
        self.video = widgets.Video(format="mp4", controls=True, autoplay=False, loop=False,
                                   layout=widgets.Layout(max_width="360px", display="none"))
        self.media_note = widgets.HTML()
        self.subtitles = widgets.HTML()
        self.outcome = widgets.HTML()
        self.prior_panel = widgets.HTML()
        self.left = widgets.VBox(layout=widgets.Layout(width="50%", padding="0 12px 0 0"))
        self.right = widgets.VBox(layout=widgets.Layout(width="50%"))
        self._arrange(with_media=False)

    def _arrange(self, with_media: bool) -> None:
        """Balance the two columns: labels go under the media, or next to the prior when there are none."""
        media = [self.media_image, self.video, self.media_note, self.subtitles]
        if with_media:
            self.left.children, self.right.children = media, [self.outcome, self.prior_panel]
        else:
            self.left.children, self.right.children = [*media, self.outcome], [self.prior_panel]

    def _layout(self) -> widgets.Widget:
        filters = widgets.VBox([
            widgets.HBox([self.split, self.label, self.prior], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox(list(self.flags.values()), layout=widgets.Layout(flex_flow="row wrap")),
        ])
        navigation = widgets.HBox([self.previous_button, self.next_button, self.position, self.count,
                                   self.jump_text, self.jump_button, self.export_button],
                                  layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        panel = widgets.VBox([filters, navigation, self.status, self.message, self.header,
                              widgets.HBox([self.left, self.right]), self.errors, self.filter_output],
                             layout=widgets.Layout(width="100%", max_width="1200px"))
        panel.add_class("mer-inspector")
        return panel

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _guarded(self, callback):
        """Run a callback inside the error Output; expected errors become the panel's message."""
        @functools.wraps(callback)
        @self.errors.capture()
        def run(*args, **kwargs):
            try:
                callback(*args, **kwargs)
            except EXPECTED_ERRORS as exc:
                self._say(str(exc), error=True)
        return run

    # --- what the controls do --------------------------------------------------------------------
    def _apply_filters(self, **values) -> None:
        """Filter the table (boolean masks, no per-clip work) and keep or move the selection."""
        try:
            rows = filter_rows(self.data.table, Filters(**values))
        except InspectorError as exc:
            self._say(str(exc), error=True)
            return
        self.rows = rows
        self._say("")
        if len(rows) == 0:
            self.show(None)
        elif self.row is None or position(rows, self.row) is None:
            self.show(int(rows[0]))
        else:
            self._update_navigation()

    def go(self, delta: int) -> None:
        """Move ``delta`` clips through the filtered set (wrapping around)."""
        target = step(self.rows, self.row, delta)
        if target is None:
            raise InspectorError("no clip matches the filters; loosen them to move.")
        self._say("")
        self.show(target)

    def jump(self, name: str) -> None:
        """Show the clip called ``name`` (even when the filters hide it: the header says so)."""
        row = find_row(self.data.table, name)
        self._say("" if position(self.rows, row) is not None else
                  f"{name.strip()} is outside the current filters; previous/next return to the matching clips.")
        self.show(row)

    def _on_position(self, change) -> None:
        if self._syncing or len(self.rows) == 0:
            return
        self._say("")
        self.show(int(self.rows[min(max(change["new"], 1), len(self.rows)) - 1]))

    def export(self) -> list[Path]:
        """Write the clip on screen as ``inspector_<clip>.pdf`` and ``.png`` into ``figures_dir``."""
        if self.view is None:
            raise InspectorError("nothing to export: no clip is shown.")
        paths = export_view(self.view, self.media, self.figures_dir)
        self._say("exported " + ", ".join(str(p) for p in paths))
        return paths

    # --- showing a clip --------------------------------------------------------------------------
    def show(self, row: int | None) -> None:
        """Render clip ``row`` (None: the empty state); decodes its media only if it has a clip."""
        self.row = row
        self.view = None if row is None else clip_view(self.data, row)
        self.media = None
        if self.view is not None and self.view.clip_path is not None:
            self.media = self.media_loader(self.view.clip_path)
        self._render()
        self._update_navigation()

    def _render(self) -> None:
        view, media = self.view, self.media
        if view is None:
            self.header.value = '<h3 style="margin:4px 0">No clip matches these filters.</h3>'
            for part in (self.media_note, self.subtitles, self.outcome, self.prior_panel):
                part.value = ""
            self._show_media(None)
            return
        self.header.value = (f'<h3 style="margin:4px 0">{html.escape(view.name)} '
                             f'<span style="font-weight:400;color:#555">· {html.escape(view.split)}</span></h3>')
        notes = [view.video_note] if view.video_note else []
        notes += (media.problems if media is not None else []) + self._show_media(media)
        self._arrange(with_media=self.media_image.layout.display != "none")
        self.media_note.value = "".join(f'<div style="color:#8a6d3b;background:#fcf8e3;padding:3px 6px;'
                                        f'margin:2px 0;line-height:1.4">{html.escape(n)}</div>' for n in notes)
        self.subtitles.value = subtitles_html(view)
        self.outcome.value = outcome_html(view)
        self.prior_panel.value = prior_html(view)

    def _show_media(self, media: ClipMedia | None) -> list[str]:
        """Fill the picture and the player; returns notes on what could not be shown."""
        figure = media_figure(media) if media is not None else None
        self.media_image.value = figure_png(figure) if figure is not None else b""
        self.media_image.layout.display = None if figure is not None else "none"
        path = media.path if media is not None else None
        embed = path is not None and path.stat().st_size <= VIDEO_EMBED_LIMIT
        self.video.value = path.read_bytes() if embed else b""
        self.video.layout.display = None if embed else "none"
        if path is not None and not embed:
            return [f"{path.name} is over {VIDEO_EMBED_LIMIT >> 20} MB, so the player is off; open {path}"]
        return []

    def _update_navigation(self) -> None:
        table, rows = self.data.table, self.rows
        at = position(rows, self.row)
        self._syncing = True
        try:
            self.position.max = max(1, len(rows))
            self.position.value = (at or 0) + 1
        finally:
            self._syncing = False
        self.count.value = f"of {len(rows)} matching ({len(table)} clips)"
        for control in (self.previous_button, self.next_button, self.position):
            control.disabled = len(rows) == 0
        self.export_button.disabled = self.view is None
        hidden = "" if self.row is None or at is not None else \
            '<b style="color:#8a6d3b">This clip is outside the filters.</b><br>'
        self.status.value = (f'<div style="font-size:12px;line-height:1.4;color:#555">{hidden}'
                             f'{self._data_summary()}</div>')

    def _data_summary(self) -> str:
        """What data there is and which filters are off, in two or three short lines."""
        lines = [f"<b>{kind}</b>: {html.escape(note)}" for kind, note in self.data.notes.items()
                 if kind in ("priors", "predictions", "video")]
        off: dict[str, list[str]] = {}  # reason -> filters it turns off
        for name, reason in self.unavailable.items():
            off.setdefault(reason, []).append(f"'{FLAG_LABELS[name]}'")
        for reason, names in off.items():
            lines.append(f"<b>off</b>: {html.escape(', '.join(names))} ({html.escape(reason)})")
        return "<br>".join(lines)

    def _say(self, text: str, error: bool = False) -> None:
        color = "#c62828" if error else "#1a5e20"
        self.message.value = (f'<div style="color:{color};font-weight:600;line-height:1.4">{html.escape(text)}</div>'
                              if text else "")


def open_inspector(ctx, *, clips_dir: str = "", predictions_file: str = "", figures_dir: str = "",
                   start_at: str = "", with_video_only: bool = False) -> Inspector:
    """The inspector for a notebook's context (:func:`mer_lib.notebook.start`).

    ``predictions_file`` defaults to ``<run_dir>/results/predictions.csv`` (notebook 04's),
    ``figures_dir`` to ``mer_lib.config.FIGURES_DIR``; ``with_video_only`` starts with the "has a
    video file" filter on (for a label file that covers many more clips than ``clips_dir`` holds).
    """
    # paths as notebook parameters take them: relative ones from the project root; "" for the default
    predictions = (resolve_path(predictions_file) if predictions_file
                   else ctx.run_dir / "results" / "predictions.csv")
    data = load_inspector_data(ctx.data_root, label_file=ctx["label_file"], features=ctx.features,
                               prior_file=ctx.prior_file, predictions_file=predictions,
                               clips_dir=resolve_path(clips_dir) if clips_dir else None)
    with_video = with_video_only and "with_video" not in unavailable_filters(data.table)
    figures = resolve_path(figures_dir) if figures_dir else FIGURES_DIR
    return Inspector(data, figures_dir=figures, start_at=start_at,
                     filters=Filters(with_video=with_video))
