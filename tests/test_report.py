"""report.json/.md/.html: atomic writes, documented keys, escaping, and rendering in headless Chromium.

The predictions here are the dictionary baseline's, built from articles 2-5 and run over all five:
real system output with hits and misses, without needing a trained model (tests/test_evaluate.py
runs the same reports on a trained one).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from modelkit import GOLD
from report_keys import check_documented_keys

import ie.evaluation.report
from ie.core.document import Document
from ie.core.schema import SCHEMA
from ie.evaluation.baseline import DictionaryBaseline
from ie.evaluation.report import REPORT_FILES, render_html, summary_table, write_reports
from ie.evaluation.run import Evaluation, evaluate_predictions, load_gold
from ie.events.assembly import assemble

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    gold, info = load_gold([GOLD])
    pred = DictionaryBaseline.fit(gold[1:]).predict_documents(gold)
    return evaluate_predictions(gold, pred, info, None, gold[1:], "articles 2-5 of the seeds")


def test_reports_written_with_documented_keys(tmp_path: Path, evaluation: Evaluation):
    paths = write_reports(tmp_path / "out", evaluation)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(REPORT_FILES)
    assert set(paths) == set(REPORT_FILES)
    report = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert check_documented_keys(report) > 200
    assert report["entities"]["micro"]["f1"] == evaluation.report["entities"]["micro"]["f1"]
    assert report["mode"] == "model" and report["cv"] is None
    assert report["baseline"]["trained_on_eval"] is True
    assert any("include 4 of the 5 evaluated articles" in n for n in report["notes"])
    md = paths["report.md"].read_text(encoding="utf-8")
    for heading in ("## Summary", "## Spans per type", "## Relations per type", "## Span type confusion"):
        assert heading in md
    assert all(label in md for label in (*SCHEMA.span_labels, *SCHEMA.relation_labels))


def test_both_baselines_beside_the_model(tmp_path: Path, evaluation: Evaluation):
    """The gazetteer baseline's figures stand beside the dictionary baseline's in the printed summary,
    report.md (summary and per type) and report.html, read back from report.json."""
    report = evaluation.report
    gaz, dic = report["gazetteer_baseline"], report["baseline"]
    assert gaz["entities"]["micro"]["f1"] != dic["entities"]["micro"]["f1"]  # two different systems
    paths = write_reports(tmp_path / "out", evaluation)
    f = lambda x: f"{x:.4f}"  # noqa: E731
    row = next(line for line in summary_table(report).splitlines() if line.startswith("entities (seqeval"))
    expected = [f(b["entities"][avg]["f1"]) for b in (dic, gaz) for avg in ("micro", "macro")]
    assert row.split()[-4:] == expected
    md = paths["report.md"].read_text(encoding="utf-8")
    page = paths["report.html"].read_text(encoding="utf-8")
    assert "gazetteer F1" in md and "gazetteer F1" in page and gaz["method"] in md
    for label in ("ACTOR", "LOC", "FAC", "WEAPON"):
        line = next(x for x in md.splitlines() if x.startswith(f"| {label} |"))
        assert line.split(" | ")[-2:] == [f(dic["entities"]["per_type"][label]["f1"]),
                                          f(gaz["entities"]["per_type"][label]["f1"]) + " |"]  # fmt: skip


def test_a_failed_render_leaves_the_previous_reports_untouched(tmp_path: Path, evaluation, monkeypatch):
    out = tmp_path / "out"
    write_reports(out, evaluation)
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}

    def broken(*_args, **_kw):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(ie.evaluation.report, "render_html", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_reports(out, evaluation)
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before
    assert sorted(os.listdir(out)) == sorted(REPORT_FILES)  # no temp file left behind


def test_html_escapes_text_and_is_self_contained(evaluation: Evaluation):
    gold = evaluation.gold[0]
    nasty = "\n<script>alert('x')</script> & \"quotes\""
    doc = Document('<img src=x onerror="1">', gold.text + nasty, list(gold.spans), list(gold.relations),
                   {"source": "<b>source</b>"})  # fmt: skip
    page = render_html(Evaluation({**evaluation.report, "per_article": []}, [doc], [doc]))
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;b&gt;source&lt;/b&gt;" in page
    real = render_html(evaluation)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b|\bsrc=|@import|url\(|https?://", real)
    assert "<style>" in real


class _SpanColours(HTMLParser):
    """(colour class ``l<i>``, label) of every labelled span of the report: the marks of both
    columns (their ``data-label``) and the legend (its text)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._legend: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if "span" not in classes or tag not in ("mark", "span"):
            return
        (colour,) = (c for c in classes if re.fullmatch(r"l\d+", c))
        if tag == "mark":
            self.found.append((colour, attr["data-label"] or ""))
        else:
            self._legend = colour

    def handle_data(self, data: str) -> None:
        if self._legend is not None:
            self.found.append((self._legend, data))
            self._legend = None


def _rgb(hex_colour: str) -> tuple[int, ...]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_html_shows_each_label_in_its_schema_colour(evaluation: Evaluation):
    """Borders in the label's schema colour (the one the labeling interface shows), backgrounds a
    light tint of it, for every label: in the legend, the gold and the predicted spans."""
    page = render_html(evaluation)
    rules = {
        cls: (bg, border)
        for cls, bg, border in re.findall(
            r"\.(l\d+) \{ background: (#[0-9a-f]{6}); border-color: (#[0-9a-f]{6}); \}", page
        )
    }
    spans = _SpanColours()
    spans.feed(page)
    assert len(spans.found) > 100  # the articles' marks, not only the legend
    drawn: dict[str, set[str]] = {}
    for colour_class, label in spans.found:
        drawn.setdefault(label, set()).add(colour_class)
    assert set(drawn) == set(SCHEMA.span_labels)
    for label, classes in drawn.items():
        assert len(classes) == 1, (label, classes)  # a label is drawn one way everywhere
        bg, border = rules[classes.pop()]
        assert border == SCHEMA.color(label)
        colour, tint = _rgb(border), _rgb(bg)
        assert all(c <= t and t >= 190 for c, t in zip(colour, tint, strict=True)), (label, bg)
        assert sorted(range(3), key=colour.__getitem__) == sorted(range(3), key=tint.__getitem__)


def chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


_PROBE = """<script>
const cols = (a, role) => a.querySelector('.col.' + role);
const rect = (el) => el.getBoundingClientRect();
const out = [...document.querySelectorAll('section.article')].map((a) => ({
  id: a.dataset.article,
  dir: getComputedStyle(a.querySelector('.col.gold .text')).direction,
  predDir: getComputedStyle(a.querySelector('.col.predicted .text')).direction,
  goldLeft: rect(cols(a, 'gold')).left, predLeft: rect(cols(a, 'predicted')).left,
  goldWidth: rect(cols(a, 'gold')).width, predWidth: rect(cols(a, 'predicted')).width,
  goldHeading: cols(a, 'gold').querySelector('h3').innerText,
  predHeading: cols(a, 'predicted').querySelector('h3').innerText,
  marks: [...cols(a, 'gold').querySelectorAll('mark')].slice(0, 400).map((m) => ({
    text: m.querySelector('bdi').innerText, label: m.querySelector('.lab').innerText,
    visible: rect(m).width > 0 && rect(m).height > 0 && getComputedStyle(m).visibility === 'visible'})),
  borders: [...a.querySelectorAll('mark')].map((m) => [m.dataset.label, getComputedStyle(m).borderTopColor]),
  events: (() => {
    const ev = a.querySelector('.events');
    if (!ev) return null;
    const rows = [...ev.querySelectorAll('table.strikes tr[data-reference]')];
    const card = (r, side) => r.querySelector(`td[data-side="${side}"]`);
    return {
      visible: rect(ev).width > 0 && rect(ev).height > 0 && getComputedStyle(ev).visibility === 'visible',
      refStrikes: Number(ev.dataset.refStrikes), rows: rows.length,
      triggers: rows.map((r) => {
        const t = card(r, 'reference').querySelector('[data-field="mentions"] bdi');
        return {text: t.innerText, visible: rect(t).width > 0 && rect(t).height > 0,
                dir: getComputedStyle(t.closest('td')).direction};
      }),
      matchedRows: [...ev.querySelectorAll('table.strikes tr.matched')].map((r) => ({
        refLeft: rect(card(r, 'reference')).left, predLeft: rect(card(r, 'predicted')).left})),
    };
  })(),
}));
document.body.setAttribute('data-probe', JSON.stringify(out));
</script>"""


def test_html_report_renders_in_headless_chromium(tmp_path: Path, evaluation: Evaluation):
    """Rendered by Debian's chromium: every article, right to left, gold and predicted columns side
    by side (gold on the right), and a known gold span visible with its label."""
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium binary on PATH (Debian: apt-get install -y chromium); the HTML report "
                    "cannot be rendered here")  # fmt: skip
    write_reports(tmp_path / "out", evaluation)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    # The report itself has no script; a copy gets a probe that reads the layout Chromium computed.
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.replace("</body>", _PROBE + "\n</body>"), encoding="utf-8")
    done = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe_page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    m = re.search(r'<body[^>]*data-probe="([^"]*)"', dom)
    assert m, f"the probe did not run; DOM head: {dom[:500]}"
    articles = json.loads(html.unescape(m.group(1)))

    assert [a["id"] for a in articles] == [d.id for d in evaluation.gold]  # every article, in order
    for a in articles:
        assert a["dir"] == "rtl" and a["predDir"] == "rtl"
        assert a["goldHeading"].startswith("Gold") and a["predHeading"].startswith("Predicted")
        assert a["goldWidth"] > 200 and a["predWidth"] > 200
        assert a["goldLeft"] > a["predLeft"]  # right to left: the first column (gold) is on the right
    first = articles[0]["marks"]
    assert {"text": "لقوات التحالف الدولي", "label": "ACTOR", "visible": True} in first
    assert {"text": "لهجوم صاروخي", "label": "ATTACK", "visible": True} in first
    assert len(first) == len(evaluation.gold[0].spans)
    # every span drawn with its label's schema colour
    borders = {tuple(b) for a in articles for b in a["borders"]}
    assert {label for label, _ in borders} == set(SCHEMA.span_labels)
    assert borders == {(label, "rgb({}, {}, {})".format(*_rgb(SCHEMA.color(label)))) for label, _ in borders}
    # the events of every article are drawn: each reference strike with its trigger, right to left
    # (the reference card right of the predicted one, like the gold column above)
    for a, gold in zip(articles, evaluation.gold, strict=True):
        ev = a["events"]
        reference = assemble(gold)
        assert ev is not None and ev["visible"], a["id"]
        assert ev["refStrikes"] == ev["rows"] == len(reference.strikes) > 0
        assert [t["text"] for t in ev["triggers"]] == [s.trigger.text for s in reference.strikes]
        assert all(t["visible"] and t["dir"] == "rtl" for t in ev["triggers"])
        assert ev["matchedRows"] and all(r["refLeft"] > r["predLeft"] for r in ev["matchedRows"])
    # the static markup carries the same structure
    assert dom.count('<section class="article"') == len(evaluation.gold)
    assert dom.count('dir="rtl" lang="ar"') == len(evaluation.gold)
