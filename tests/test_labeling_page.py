"""The labeling page of a real Label Studio, rendered by headless Chromium, with a model's prediction.

A right-to-left seed article goes into a project with a prediction (spans and relations); Chromium
logs in, opens the task's labeling page and the test reads what the page drew: the text's computed
direction, the highlighted regions (offsets and labels), the relation arrows of the relations
overlay (one per relation, with its label), and the regions panel. Label Studio opens the task
with an annotation pre-filled from the prediction (a project's default), which is what an annotator
sees and what is checked; the prediction's own tab sits beside it. The screenshot is kept
(``tmp_path`` and ``<basetemp>/artifacts/labeling_page.png``) for a person to look at; nothing is
asserted on pixels.

The prediction is the ML backend's: :func:`prediction_for` asks a running ``ie-serve`` (the CPU-sized
model) for it through ``/predict``, as Label Studio does.

Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) must be there: without it the
test fails. Only a missing ``studio`` extra skips it (the ``label_studio_server`` fixture).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from seed_tasks import seed_text
from servekit import running_backend

from ie.annotation.client import StudioClient, interface_problems
from ie.annotation.labelstudio import TEXT_NAME, label_config, validate_tasks

CHROMIUM = Path("/usr/bin/chromium")
# the machine's closed network refuses anything but loopback: no updates, no sync, no QUIC probes
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SEED = "001"  # the article shown
PARAGRAPHS = 3  # of it: ~1,000 characters, ~40 regions and arrows, drawn in a few seconds
RENDER_TIMEOUT_MS = 90_000

# What the page drew, read from the live DOM: Label Studio marks each region's pieces with
# .htx-highlight[data-index] (data-label "N:LABEL", data-start/data-end: offsets into the text) and
# draws each relation as an arrow group in the relations overlay SVG.
_PROBE = """() => {
  const rect = (el) => { const r = el.getBoundingClientRect();
                         return {left: r.left, right: r.right, width: r.width, height: r.height}; };
  const text = document.querySelector('.lsf-richtext');
  const pieces = [...document.querySelectorAll('.lsf-richtext .htx-highlight[data-index]')];
  const regions = new Map();
  for (const h of pieces) {
    const r = regions.get(h.dataset.index) || {index: Number(h.dataset.index), pieces: []};
    r.pieces.push(h);
    regions.set(h.dataset.index, r);
  }
  return {
    direction: text && getComputedStyle(text).direction,
    lineDirection: text && getComputedStyle(text.querySelector('.lsf-richtext__line')).direction,
    textRect: text && rect(text),
    regions: [...regions.values()].sort((a, b) => a.index - b.index).map((r) => ({
      index: r.index,
      label: r.pieces[0].dataset.label.split(':').slice(1).join(':'),
      start: Math.min(...r.pieces.map((p) => Number(p.dataset.start))),
      end: Math.max(...r.pieces.map((p) => Number(p.dataset.end))),
      text: r.pieces.map((p) => p.textContent).join(''),
      visible: r.pieces.some((p) => { const b = rect(p); return b.width > 0 && b.height > 0; }),
      rect: rect(r.pieces[0]),
    })),
    arrows: [...document.querySelectorAll('svg.relations-overlay g[class*="relationItem"]')].map((g) => ({
      label: (g.querySelector('text') || {}).textContent || null,
      visible: g.getAttribute('visibility') !== 'hidden',
      drawn: [...g.querySelectorAll('path[marker-end]')].some((p) => p.getTotalLength() > 0),
    })),
    panel: [...document.querySelectorAll('.lsf-outliner-item')].map((item) => ({
      label: (item.querySelector('.lsf-labels-list') || {}).textContent || null,
      text: (item.querySelector('.lsf-outliner-item__text') || {}).textContent || null,
    })),
  };
}"""

_RENDERED = """([regions, arrows]) =>
  new Set([...document.querySelectorAll('.lsf-richtext .htx-highlight[data-index]')]
          .map((h) => h.dataset.index)).size >= regions
  && document.querySelectorAll('svg.relations-overlay g[class*="relationItem"]').length >= arrows"""


def article() -> str:
    """The first paragraphs of a seed article: Arabic, right to left."""
    return "\n".join(seed_text(SEED).split("\n")[:PARAGRAPHS])


@pytest.fixture(scope="module")
def prediction_for(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], dict[str, Any]]]:
    """``prediction_for(task_text)``: the ML backend's prediction (result, score, model_version).

    ``ie-serve`` runs as its own process with the CPU-sized model and answers ``/predict`` exactly
    as Label Studio calls it (tasks + the project's labeling config).
    """
    log = tmp_path_factory.mktemp("ie-serve") / "serve.log"
    with running_backend(tiny_model, log) as backend:

        def predict(text: str) -> dict[str, Any]:
            answer = backend.call("/predict", {"tasks": [{"id": 1, "data": {TEXT_NAME: text}}],
                                               "label_config": label_config()})  # fmt: skip
            (prediction,) = answer["results"]
            assert "error" not in prediction, prediction
            return prediction

        yield predict


@pytest.fixture
def predicted_task(label_studio_server, prediction_for) -> tuple[str, dict[str, Any], str]:
    """(text, prediction, labeling page URL) of a one-task project imported with the prediction."""
    text = article()
    prediction = prediction_for(text)
    task = {"data": {TEXT_NAME: text}, "predictions": [prediction]}
    _, problems = validate_tasks([task], field="predictions")
    problems += interface_problems([(0, task)], "predictions")
    assert not problems, [str(p) for p in problems]
    client = StudioClient.connect(label_studio_server.url, label_studio_server.api_key)
    project = client.create_project("ie live: labeling page", label_config())
    (task_id,) = client.import_tasks(project, [task])
    return text, prediction, f"{label_studio_server.url}/projects/{project}/data?task={task_id}"


@pytest.fixture
def page(label_studio_server, tmp_path: Path) -> Iterator[Any]:
    """A logged-in page of Debian's headless Chromium (a new profile in a temp dir)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the labeling page cannot be rendered (Debian: apt-get install "
                    "chromium; .ci/run does it)")  # fmt: skip
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="ie-chromium-", dir=tmp_path))
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.goto(f"{label_studio_server.url}/user/login/")
            page.fill("input[name=email]", label_studio_server.user)
            page.fill("input[name=password]", label_studio_server.password)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url(lambda url: "/user/login" not in url, timeout=30_000)
            yield page
        finally:
            context.close()


def test_labeling_page_draws_the_prediction_right_to_left(
    page, predicted_task, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
):
    text, prediction, url = predicted_task
    spans = [r for r in prediction["result"] if r["type"] == "labels"]
    relations = [r for r in prediction["result"] if r["type"] == "relation"]
    assert spans and relations, "the model predicted no spans or no relations for the article"

    from playwright.sync_api import TimeoutError as PageTimeout

    page.goto(url)
    page.wait_for_selector(".lsf-richtext .htx-highlight[data-index]", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_selector('svg.relations-overlay g[class*="relationItem"]', timeout=RENDER_TIMEOUT_MS)
    try:  # all of them: counted below, so a page that draws fewer fails there, with the figures
        page.wait_for_function(_RENDERED, arg=[len(spans), len(relations)], timeout=RENDER_TIMEOUT_MS)
    except PageTimeout:
        pass
    shot = tmp_path / "labeling_page.png"
    page.screenshot(path=str(shot))
    kept = tmp_path_factory.getbasetemp() / "artifacts" / "labeling_page.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, kept)
    drawn = page.evaluate(_PROBE)
    print(f"\nlabeling page: {len(drawn['regions'])} regions ({len(spans)} spans), "
          f"{len(drawn['arrows'])} arrows ({len(relations)} relations); screenshot {kept}")  # fmt: skip

    # right to left: the config's style reaches the text, and the text starts on the right
    assert drawn["direction"] == "rtl" and drawn["lineDirection"] == "rtl"
    box, first = drawn["textRect"], drawn["regions"][0]["rect"]
    assert first["right"] > box["left"] + 0.75 * box["width"], (first, box)

    # one highlighted region per predicted span, at its offsets, with its label and text
    regions = drawn["regions"]
    assert len(regions) == len(spans)
    assert sorted((r["start"], r["end"], r["label"]) for r in regions) == sorted(
        (s["value"]["start"], s["value"]["end"], s["value"]["labels"][0]) for s in spans
    )
    assert all(text[r["start"] : r["end"]] == r["text"] and r["visible"] for r in regions)

    # one arrow per predicted relation, drawn, with the relation's label
    arrows = drawn["arrows"]
    assert len(arrows) == len(relations)
    assert all(a["visible"] and a["drawn"] for a in arrows)
    assert Counter(a["label"] for a in arrows) == Counter(r["labels"][0] for r in relations)

    # the regions panel lists the regions in order with their labels (it renders the first few only)
    panel = drawn["panel"]
    assert len(panel) >= min(5, len(spans))
    ordered = sorted(spans, key=lambda s: (s["value"]["start"], s["value"]["end"]))
    assert [(p["label"], p["text"]) for p in panel[:5]] == [
        (s["value"]["labels"][0], s["value"]["text"]) for s in ordered[:5]
    ]
