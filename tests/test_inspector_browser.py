"""The inspector notebook in a real browser: JupyterLab on 127.0.0.1, headless Chromium through Playwright.

A private JupyterLab (free port, random token, temporary root, config, data, runtime and IPython
folders, a kernel spec that runs this interpreter on this checkout) serves a copy of
``notebooks/07_inspector.ipynb`` whose parameters point at data the test writes (papermill's
parameter injection, no execution). Chromium opens it, runs all cells, clicks a filter and picks a
split in the rendered widget, checks the panel's text against what the pure functions say, clicks
export, and screenshots the panel.

Skipped where Chromium is absent (``apt-get install -y chromium``, or ``make browser``; CI installs
it). Set ``MER_INSPECTOR_SCREENSHOTS=runs/inspector-screenshots`` to keep the screenshots.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mer_lib.config import MER_CLASSES, NOTEBOOKS_DIR, PROJ_ROOT
from mer_lib.inspector import Filters, clips_dataset, filter_rows, load_inspector_data
from mer_lib.priors import generate_for_dataset, make_backend

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright cannot download a browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NOTEBOOK = "07_inspector"
CLASSES = list(MER_CLASSES)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server that touches nothing outside its temporary folder."""

    def __init__(self, base: Path):
        self.root = base / "root"
        self.root.mkdir(parents=True)
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir = base / "data"
        kernel_dir = data_dir / "kernels" / "mer-lib"  # the notebook's kernel: this Python, this checkout
        kernel_dir.mkdir(parents=True)
        (kernel_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (mer-lib)", "language": "python", "env": {"PYTHONPATH": str(PROJ_ROOT)}}))
        settings = base / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)  # no news or update pop-ups over the panel
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_DATA_DIR": str(data_dir),
               "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "IPYTHONDIR": str(base / "ipython"),
               "MPLBACKEND": "Agg", "PYTHONPATH": str(PROJ_ROOT)}
        self.log_path = base / "jupyterlab.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 (the server writes to it until close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
             "--ServerApp.allow_root=True",  # CI runs as root
             "--ServerApp.terminals_enabled=False", "--LabApp.expose_app_in_browser=True",
             "--LabApp.extension_manager=readonly",  # the 'pypi' manager would query PyPI
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             f"--LabApp.workspaces_dir={base / 'workspaces'}", f"--LabApp.user_settings_dir={base / 'settings'}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root)
        self._wait_until_up()

    def _wait_until_up(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.close()
        pytest.fail(f"JupyterLab did not start:\n{self.log_path.read_text()[-3000:]}")

    def add_notebook(self, parameters: dict) -> str:
        """A copy of the inspector notebook with ``parameters`` injected, as papermill would."""
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook

        nb = load_notebook_node(str(NOTEBOOKS_DIR / f"{NOTEBOOK}.ipynb"))
        name = f"{NOTEBOOK}-{len(list(self.root.glob('*.ipynb')))}.ipynb"
        nbformat.write(parameterize_notebook(nb, parameters), self.root / name)
        return name

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium, or make browser)")
    pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    server = Lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_and_run(browser, lab: Lab, notebook: str):
    """Open a notebook in JupyterLab, run all its cells, and return the page once the panel is drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # tall enough for the whole panel
    page.set_default_timeout(60_000)
    # ?reset: a fresh workspace, so JupyterLab does not reopen the notebooks of earlier tests
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_function("(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.path === path && w.sessionContext"
                           " && w.sessionContext.session && w.sessionContext.session.kernel; }", arg=notebook)
    page.evaluate("async () => { const w = window.jupyterapp.shell.currentWidget;"
                  " await w.sessionContext.ready; await w.revealed;"
                  " await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_selector(".mer-inspector .widget-html h3")
    except PageTimeout:
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        pytest.fail(f"the inspector did not render; cell errors: {errors[-3:]}\n"
                    f"{lab.log_path.read_text()[-2000:]}")
    return page


def keep_screenshot(path: Path) -> None:
    folder = os.environ.get("MER_INSPECTOR_SCREENSHOTS")
    if folder:
        target = Path(folder) if Path(folder).is_absolute() else PROJ_ROOT / folder
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


def screenshot_panel(page, path: Path) -> None:
    """Scroll the notebook so the panel starts at the top of its window, then photograph the panel."""
    page.evaluate("() => document.querySelector('.mer-inspector').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.locator(".mer-inspector").screenshot(path=str(path))
    check_screenshot(path)
    keep_screenshot(path)


def check_screenshot(path: Path) -> None:
    image = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert image.shape[0] > 500 and image.shape[1] > 900, image.shape
    assert image.std() > 20 and (image < 100).mean() > 0.01  # text and pictures, not a blank page


def panel_errors(page) -> list[str]:
    return page.locator(".mer-inspector .jp-OutputArea-output").all_inner_texts()


def test_demo_notebook_in_chromium(lab, browser, tiny_demo, tmp_path):
    from mer_lib.data.demo import FEATURES

    data = load_inspector_data(tiny_demo, features=FEATURES)
    generate_for_dataset(data.dataset, make_backend("simulated", dataset=data.dataset, seed=0),
                         tmp_path / "priors.jsonl", show_progress=False)
    labelled = np.flatnonzero(data.table.labels >= 0)  # predictions as notebook 04 writes them
    rng = np.random.default_rng(0)
    probs = {stage: rng.dirichlet(np.ones(len(CLASSES)), len(labelled)) for stage in ("stage1", "stage2")}
    frame = pd.DataFrame({"name": data.table.names[labelled], "split": data.table.splits[labelled]})
    for stage, p in probs.items():
        for i, c in enumerate(CLASSES):
            frame[f"{stage}_{c}"] = p[:, i]
    frame.to_csv(tmp_path / "predictions.csv", index=False)
    data = load_inspector_data(tiny_demo, features=FEATURES, prior_file=tmp_path / "priors.jsonl",
                               predictions_file=tmp_path / "predictions.csv")
    expected = filter_rows(data.table, Filters(split="test_corpus", prior_disagrees=True))
    assert len(expected) > 0

    notebook = lab.add_notebook({"data_root": str(tiny_demo), "prior_file": str(tmp_path / "priors.jsonl"),
                                 "predictions_file": str(tmp_path / "predictions.csv"),
                                 "run_dir": str(tmp_path / "run"), "figures_dir": str(tmp_path / "figures")})
    page = open_and_run(browser, lab, notebook)
    panel = page.locator(".mer-inspector")
    page.wait_for_function("() => document.querySelector('.mer-inspector').innerText.includes("
                           f"'of {len(data.table)} matching')")

    # change the filters through the page: tick a checkbox, pick a split
    panel.locator(".widget-checkbox", has_text="prior ≠ human label").locator("input").click()
    panel.locator(".widget-dropdown", has_text="Split").locator("select").select_option("test_corpus")
    page.wait_for_function("() => document.querySelector('.mer-inspector').innerText.includes("
                           f"'of {len(expected)} matching')")
    first = str(data.table.names[expected[0]])
    page.wait_for_function(f"() => document.querySelector('.mer-inspector h3').innerText.includes('{first}')")
    text = panel.inner_text()
    view_label = CLASSES[data.table.labels[expected[0]]]
    for expected_text in ("Human label", "Stage 1", "Stage 2", "Reasoning prior", "Brow", view_label,
                          "No video: no clips_dir is set", "disagrees"):
        if expected_text == "Brow" and CLASSES[data.table.prior_labels[expected[0]]] in ("neutral", "happy"):
            continue  # these support sets hold no brow AU
        assert expected_text in text, expected_text
    assert panel_errors(page) == []

    panel.locator("button", has_text="export PDF + PNG").click()
    page.wait_for_function("() => document.querySelector('.mer-inspector').innerText.includes('exported')")
    assert (tmp_path / "figures" / f"inspector_{first}.pdf").read_bytes().startswith(b"%PDF")
    assert panel_errors(page) == []  # no warning (clipped text, missing glyph) and no traceback

    screenshot_panel(page, tmp_path / "inspector-demo.png")
    page.close()


@pytest.mark.real_data
def test_real_clip_in_chromium(lab, browser, samples_dir, tmp_path):
    clips = samples_dir / "clips"
    generate_for_dataset(clips_dataset(samples_dir, clips), make_backend("offline"), tmp_path / "priors.jsonl",
                         splits=["train_corpus", "unlabelled"], clips_dir=clips, concurrency=2,
                         show_progress=False)
    start = "sample_00000669"  # a labelled clip with speech throughout
    notebook = lab.add_notebook({"data_root": str(samples_dir), "prior_file": str(tmp_path / "priors.jsonl"),
                                 "clips_dir": str(clips), "run_dir": str(tmp_path / "run"),
                                 "figures_dir": str(tmp_path / "figures"), "start_at": start,
                                 "with_video_only": True})
    page = open_and_run(browser, lab, notebook)
    panel = page.locator(".mer-inspector")
    page.wait_for_function("() => document.querySelector('.mer-inspector').innerText.includes('of 16 matching')")
    page.wait_for_function(f"() => document.querySelector('.mer-inspector h3').innerText.includes('{start}')")
    panel.locator("img").first.wait_for()
    assert panel.locator("video").count() == 1
    text = panel.inner_text()
    for expected_text in ("measured: mean F0", "offline-egemaps", "No AUs reported", "English", "Chinese"):
        assert expected_text in text, expected_text
    assert "off: 'model wrong', 'changed its mind (stage 1 → 2)' (no predictions at" in text
    assert panel_errors(page) == []
    # the player holds the clip and Chromium decodes a frame of it (H.264/AAC)
    page.evaluate("() => { document.querySelector('.mer-inspector video').currentTime = 1.0; }")
    page.wait_for_function("() => { const v = document.querySelector('.mer-inspector video');"
                           " return v.readyState >= 3 && !v.seeking; }")
    duration = page.evaluate("() => document.querySelector('.mer-inspector video').duration")
    assert abs(duration - 7.44) < 0.2, duration  # sample_00000669 lasts 7.44 s (PyAV agrees)
    screenshot_panel(page, tmp_path / "inspector-real-clip.png")

    panel.locator("button", has_text="next ▶").click()  # the next clip with a video, decoded on demand
    page.wait_for_function(f"() => !document.querySelector('.mer-inspector h3').innerText.includes('{start}')")
    assert panel_errors(page) == []
    page.close()
