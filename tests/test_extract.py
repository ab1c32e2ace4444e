"""``ie-extract`` and the Extractor API with a real model trained on the seeds (``tiny_model``)."""

from __future__ import annotations

import errno
import inspect
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from modelkit import ROOT, console_command, free_port

import ie.cli.extract
import ie.events.outputs
from ie.annotation.client import build_import
from ie.annotation.labelstudio import load_documents
from ie.cli.extract import main as extract_main
from ie.core.fileio import output_lock
from ie.events.articles import Article, check_inputs, count_articles, iter_articles
from ie.events.extraction import Extractor
from ie.events.records import SCHEMA_PATH, record_json_schema_text

SEEDS = ROOT / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _mentions(node) -> list[dict]:
    """Every object with text/start/end anywhere in a record."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if {"text", "start", "end"} <= item.keys():
                found.append(item)
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return found


def _without_scores(node):
    if isinstance(node, dict):
        return {k: _without_scores(v) for k, v in node.items() if k not in ("score", "confidence")}
    if isinstance(node, list):
        return [_without_scores(v) for v in node]
    return node


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def seed_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ie-extract --input seeds/`` through the installed console script."""
    out = tmp_path_factory.mktemp("extract") / "seeds.jsonl"
    done = subprocess.run(
        [*console_command("ie-extract", "ie.cli.extract"), "--model", str(tiny_model), "--input", str(SEEDS),
         "--output", str(out), "--date", "2023-11-14"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 records written" in done.stderr
    return out


def test_committed_json_schema_is_the_generated_one(tmp_path):
    assert SCHEMA_PATH.read_text(encoding="utf-8") == record_json_schema_text(), (
        "regenerate it: ie-extract --write_schema src/ie/resources/extraction_record.schema.json"
    )
    assert extract_main(["--write_schema", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == record_json_schema_text()


def test_seed_records_are_valid_and_every_span_slices_the_article(seed_run, tiny_model, validator):
    records = _lines(seed_run)
    assert [r["id"] for r in records] == [p.stem for p in SEED_FILES]
    totals = {"entities": 0, "relations": 0, "strikes": 0, "mentions": 0}
    for record, path in zip(records, SEED_FILES, strict=True):
        validator.validate(record)
        assert "error" not in record
        assert Path(record["source"]).resolve() == path.resolve()
        assert record["date"] == "2023-11-14"
        assert record["model"].startswith(f"{tiny_model.resolve().name}@") and record["aliases_version"] >= 1
        text = path.read_text(encoding="utf-8")
        for m in _mentions(record):
            assert text[m["start"] : m["end"]] == m["text"], (record["id"], m)
            totals["mentions"] += 1
        ids = {e["id"] for e in record["entities"]}
        for rel in record["relations"]:
            assert rel["head"]["id"] in ids and rel["tail"]["id"] in ids
        totals["entities"] += len(record["entities"])
        totals["relations"] += len(record["relations"])
        totals["strikes"] += len(record["events"]["strikes"])
    # the model predicts real structure, so the checks above are not vacuous
    assert totals["entities"] > 300 and totals["relations"] > 100 and totals["strikes"] > 10, totals


def test_error_records_validate_and_records_do_not_pass_as_errors(validator):
    error = {"id": "x", "source": "in.jsonl", "error": "empty text", "model": None, "aliases_version": None}
    validator.validate(error)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**error, "events": {"strikes": [], "casualties": []}})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"id": "x", "source": "in.jsonl"})


def test_shards_split_the_inputs_and_agree_on_duplicates(tmp_path):
    jsonl = tmp_path / "more.jsonl"
    rows = [{"id": "x", "text": "قصف"}, {"id": SEED_FILES[0].stem, "text": "غارة"}, {"id": 3, "text": "هجوم"}]
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    inputs = check_inputs([SEEDS, jsonl])
    assert count_articles(inputs) == len(SEED_FILES) + 3
    everything = [a for _, a in iter_articles(inputs)]
    shards = [
        [(i, a) for i, a in iter_articles(inputs, want=lambda i, _, r=r: i % 2 == r) if a is not None]
        for r in (0, 1)
    ]
    got = sorted(shards[0] + shards[1], key=lambda ia: ia[0])
    assert [a for _, a in got] == everything
    assert {i for i, _ in shards[0]}.isdisjoint(i for i, _ in shards[1])
    dup = everything[len(SEED_FILES) + 1]
    assert dup.id == SEED_FILES[0].stem and dup.error.startswith("duplicate id")
    assert all(a.error is None for a in everything if a is not dup)


def test_extractor_api_gives_the_cli_records(seed_run, tiny_model):
    extractor = Extractor.from_pretrained(tiny_model)
    articles = [Article(p.stem, p.read_text(encoding="utf-8"), str(SEEDS / p.name), date(2023, 11, 14))
                for p in SEED_FILES]  # fmt: skip
    cli = [_without_scores(r) for r in _lines(seed_run)]
    for r in cli:
        r["source"] = str(Path(r["source"]).resolve())
    for a in articles:
        a.source = str(Path(a.source).resolve())
    many = extractor.extract_many(articles, batch_size=16)
    assert inspect.isgenerator(many)
    first = [r.model_dump(mode="json") for r in many]
    assert [_without_scores(r) for r in first] == cli
    # same inputs, same settings: byte-identical; other batch/chunk sizes: the same structure
    again = [r.model_dump(mode="json") for r in extractor.extract_many(articles, batch_size=16)]
    assert json.dumps(again) == json.dumps(first)
    small = [_without_scores(r.model_dump(mode="json")) for r in extractor.extract_many(articles, 2, 1)]
    assert small == cli
    one = extractor.extract(articles[0].text, "2023-11-14", id=articles[0].id, source=articles[0].source)
    assert _without_scores(one.model_dump(mode="json")) == cli[0]
    with pytest.raises(ValueError, match="empty text"):
        extractor.extract("   ")


def test_extract_many_streams(tiny_model):
    extractor = Extractor.from_pretrained(tiny_model)
    text = SEED_FILES[0].read_text(encoding="utf-8")[:400]
    pulled = []

    def endless():
        for n in itertools.count():
            pulled.append(n)
            yield {"id": f"a{n}", "text": text}

    got = list(itertools.islice(extractor.extract_many(endless(), batch_size=4, chunk_size=2), 3))
    assert [r.id for r in got] == ["a0", "a1", "a2"]
    assert len(pulled) <= 4  # two chunks of two, nothing read ahead beyond the chunk


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_faster_precisions_stay_close_to_float32_and_slice_the_text(
    seed_run, tiny_model, tmp_path, precision
):
    """``--precision`` trades exactness for speed; on the trained seed model the records barely move."""
    out = tmp_path / "events.jsonl"
    argv = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--precision", precision, "--no_progress", "--device", "cpu"]  # fmt: skip
    assert extract_main(argv) == 0
    exact, fast = _lines(seed_run), _lines(out)
    assert [r["id"] for r in fast] == [r["id"] for r in exact]
    texts = {p.name: p.read_text(encoding="utf-8") for p in SEED_FILES}
    for r in fast:
        text = texts[Path(r["source"]).name]
        for m in _mentions(r):
            assert text[m["start"] : m["end"]] == m["text"]

    def spans(records):
        return {(r["id"], e["start"], e["end"], e["label"]) for r in records for e in r["entities"]}

    a, b = spans(exact), spans(fast)
    assert a and 2 * len(a & b) / (len(a) + len(b)) >= 0.95, (len(a), len(b), len(a & b))


def test_unknown_precision_is_refused(tiny_model):
    from ie.model.prediction import Predictor

    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor.from_pretrained(tiny_model, device="cpu", precision="fp8")


def test_resume_repairs_a_truncated_line_and_skips_done_ids(seed_run, tiny_model, tmp_path, capsys):
    lines = seed_run.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # a crash mid-write
    before = out.read_bytes()
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--no_progress"]  # fmt: skip

    assert extract_main(args) == 2  # existing output without --resume: refused, untouched
    assert "--resume" in capsys.readouterr().err
    assert out.read_bytes() == before

    assert extract_main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "3 records written" in err and "2 already done" in err, err
    resumed = out.read_bytes().splitlines(keepends=True)
    assert resumed[:2] == lines[:2]
    assert [json.loads(x)["id"] for x in resumed] == [p.stem for p in SEED_FILES]
    assert [_without_scores(json.loads(x)) for x in resumed] == [
        _without_scores(json.loads(x)) for x in lines
    ]

    assert extract_main([*args, "--resume"]) == 0  # all done: nothing added
    assert out.read_bytes().splitlines(keepends=True) == resumed

    broken = tmp_path / "broken.jsonl"  # not ie-extract output: refused, named, untouched
    broken.write_bytes(lines[0] + b"<html>\n" + lines[1])
    capsys.readouterr()
    assert extract_main([*args[:5], str(broken), "--no_progress", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: line 2 is not an ie-extract jsonl record" in err, err
    assert broken.read_bytes() == lines[0] + b"<html>\n" + lines[1]


def test_resume_merges_the_parts_of_a_crashed_multi_process_run(seed_run, tiny_model, tmp_path):
    lines = seed_run.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_bytes(lines[0])
    # process 1 of 2 had written articles 1 and 3, the second line cut short
    (tmp_path / "out.jsonl.part-1-of-2").write_bytes(lines[1] + lines[3][:50])
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--no_progress", "--resume"]  # fmt: skip
    assert extract_main(args) == 0
    ids = [json.loads(x)["id"] for x in out.read_bytes().splitlines()]
    assert sorted(ids) == [p.stem for p in SEED_FILES] and ids[:2] == [SEED_FILES[0].stem, SEED_FILES[1].stem]
    assert not list(tmp_path.glob("*.part-*"))


def test_broken_articles_get_error_records_and_the_run_goes_on(tiny_model, tmp_path, validator):
    seed = SEED_FILES[0].read_text(encoding="utf-8")
    jsonl = tmp_path / "in.jsonl"
    rows = [
        json.dumps({"id": "good", "text": seed, "date": "2023-11-14"}, ensure_ascii=False),
        json.dumps({"id": "empty", "text": "  "}),
        '{"id": "cut", "text": "نص',
        json.dumps({"text": seed[:200]}, ensure_ascii=False),
        json.dumps({"id": "bad-date", "text": seed[:200], "date": "14/11/2023"}, ensure_ascii=False),
        json.dumps({"id": "good", "text": seed[:300]}, ensure_ascii=False),
        "",
        json.dumps({"id": 7, "text": seed[:300]}, ensure_ascii=False),
    ]
    jsonl.write_text("\n".join(rows) + "\n", encoding="utf-8")
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "latin1.txt").write_bytes("قصف".encode("cp1256"))
    cp1256_line = json.dumps({"id": "arabic-cp1256", "text": seed[:200]}, ensure_ascii=False).encode("cp1256")
    with open(jsonl, "ab") as f:
        f.write(cp1256_line + b"\n")
    (folder / "blank.txt").write_text("\n\n", encoding="utf-8")
    shutil.copy(SEED_FILES[1], folder / "ok.txt")
    out = tmp_path / "out.jsonl"
    assert extract_main(["--model", str(tiny_model), "--input", str(jsonl), str(folder), "--output", str(out),
                         "--no_progress"]) == 0  # fmt: skip
    records = _lines(out)
    for r in records:
        validator.validate(r)
    by_id = {(r["id"], "error" in r): r for r in records}
    expected = ["good", "empty", "in.jsonl:3", "in.jsonl:4", "bad-date", "good", "7", "in.jsonl:9", "blank",
                "latin1", "ok"]  # fmt: skip
    assert [r["id"] for r in records] == expected
    assert by_id[("good", False)]["date"] == "2023-11-14"
    assert "empty" in by_id[("empty", True)]["error"]
    assert "line 3: not valid JSON" in by_id[("in.jsonl:3", True)]["error"]
    assert "'id'" in by_id[("in.jsonl:4", True)]["error"]
    assert "not an ISO date" in by_id[("bad-date", True)]["error"]
    assert "duplicate id 'good'" in by_id[("good", True)]["error"]
    fix = "not UTF-8 (cp1256? convert with iconv -f cp1256 -t utf-8)"
    assert by_id[("latin1", True)]["error"] == f"{folder / 'latin1.txt'}: {fix}"
    assert by_id[("in.jsonl:9", True)]["error"] == f"{jsonl}: line 9: {fix}"
    assert "empty text" in by_id[("blank", True)]["error"]
    for ok in ("7", "ok"):
        assert "error" not in by_id[(ok, False)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/missing", "--input", "{seeds}"], "model folder not found"),
        (["--model", "{tmp}", "--input", "{seeds}"], "no config.json"),
        (["--model", "{model}"], "no inputs"),
        (["--model", "{model}", "--input", "{tmp}/nope.txt"], "no such file"),
        (["--model", "{model}", "--input", "{root}/pyproject.toml"], "unsupported input"),
        (["--model", "{model}", "--input", "{tmp}"], "holds no .txt"),
        (["--model", "{model}", "--input", "{seeds}", "--date", "yesterday"], "--date"),
    ],
)
def test_bad_command_line_is_one_error_and_writes_nothing(tiny_model, tmp_path, capsys, args, message):
    out = tmp_path / "out" / "events.jsonl"
    fill = {"tmp": tmp_path, "seeds": SEEDS, "model": tiny_model, "root": ROOT}
    argv = [a.format(**fill) for a in args] + ["--output", str(out)]
    assert extract_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ie-extract: error:") and message in err[0], err
    assert not out.parent.exists()


def test_label_studio_format_is_importable_predictions(seed_run, tiny_model, tmp_path):
    out = tmp_path / "tasks.json"
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out),
            "--format", "label-studio", "--no_progress"]  # fmt: skip
    assert extract_main(args) == 0
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert len(tasks) == len(SEED_FILES)
    assert not list(tmp_path.glob("*.partial*"))
    records = _lines(seed_run)
    assert {t["predictions"][0]["model_version"] for t in tasks} == {records[0]["model"]}
    # exactly what `ie-studio push --predictions tasks.json` checks before it talks to the server
    pushed = build_import([], predictions=out)
    assert len(pushed) == len(SEED_FILES) and all("predictions" in t for t in pushed)
    docs = load_documents(out, field="predictions")
    for doc, record in zip(docs, records, strict=True):
        assert doc.meta["article_id"] == record["id"]
        assert [(s.start, s.end, s.label) for s in doc.sorted_spans()] == [
            (e["start"], e["end"], e["label"]) for e in record["entities"]
        ]
        assert len(doc.relations) == len(record["relations"])
    assert extract_main([*args, "--resume"]) == 0  # nothing left to do; the list stays whole
    assert json.loads(out.read_text(encoding="utf-8")) == tasks


def test_two_processes_write_each_article_once(seed_run, tiny_model, tmp_path):
    out = tmp_path / "mp.jsonl"
    done = subprocess.run(
        [*console_command("accelerate", "accelerate.commands.accelerate_cli"), "launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(free_port()), "-m", "ie.cli.extract", "--model", str(tiny_model),
         "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14", "--no_progress"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 records written" in done.stderr  # the counts of both processes, gathered
    assert not list(tmp_path.glob("*.part-*"))
    assert [_without_scores(r) for r in _lines(out)] == [_without_scores(r) for r in _lines(seed_run)]


# ---------------------------------------------------------------------------------------------
# re-runs, concurrent runs, unwritable outputs, start-up time (issue 11)
# ---------------------------------------------------------------------------------------------


def test_all_failing_chunk_logs_no_spurious_batch_failure(tiny_model, caplog):
    extractor = Extractor.from_pretrained(tiny_model)
    articles = [Article("a", None, "x.txt", error="x.txt: not UTF-8"), {"id": "b", "text": "   "}]
    with caplog.at_level(logging.WARNING, logger="ie"):
        records = list(extractor.extract_many(articles, batch_size=4))
    assert [(r.id, r.error) for r in records] == [("a", "x.txt: not UTF-8"), ("b", "empty text")]
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_readme_quick_start_can_be_rerun(tiny_model, tmp_path, monkeypatch, capsys):
    """README: ``ie-extract --model M --input seeds/ --output runs/events.jsonl --overwrite``, twice."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    argv = ["--model", str(tiny_model), "--input", "seeds/", "--output", "runs/events.jsonl", "--overwrite",
            "--no_progress"]  # fmt: skip
    assert extract_main(argv) == 0
    first = (tmp_path / "runs" / "events.jsonl").read_bytes()
    assert extract_main(argv) == 0, capsys.readouterr().err
    assert "5 records written" in capsys.readouterr().err
    assert (tmp_path / "runs" / "events.jsonl").read_bytes() == first
    assert [json.loads(x)["id"] for x in first.splitlines()] == [p.stem for p in SEED_FILES]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [".events.jsonl.lock", "events.jsonl"]


def _many_articles(path: Path, n: int) -> list[str]:
    texts = [p.read_text(encoding="utf-8")[:1500] for p in SEED_FILES]
    ids = [f"a{i:03d}" for i in range(n)]
    rows = [
        json.dumps({"id": i, "text": texts[k % len(texts)]}, ensure_ascii=False) for k, i in enumerate(ids)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return ids


def test_a_second_writer_is_refused_and_the_first_run_is_unaffected(tiny_model, tmp_path):
    """Two real processes on one output: the second (--resume or --overwrite) exits 2, changing nothing."""
    ids = _many_articles(tmp_path / "in.jsonl", 48)
    out = tmp_path / "out.jsonl"
    cmd = [*console_command("ie-extract", "ie.cli.extract"), "--model", str(tiny_model), "--input",
           str(tmp_path / "in.jsonl"), "--output", str(out), "--no_progress", "--device", "cpu"]  # fmt: skip
    # --batch_size 1: chunks of 8 articles, so the first lines come early and most of the run is ahead
    first = subprocess.Popen([*cmd, "--batch_size", "1"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not (out.is_file() and b"\n" in out.read_bytes()):
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run wrote nothing in 120 s"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # mid-run, holding the output, for as long as the test needs
        assert first.poll() is None, "the first run ended before it could be paused: give it more articles"
        snapshot = out.read_bytes()
        assert 0 < len(snapshot.splitlines()) < len(ids)
        for flag in ("--resume", "--overwrite"):
            second = subprocess.run([*cmd, flag], capture_output=True, text=True, check=False, cwd=ROOT)
            err = second.stderr.strip().splitlines()
            assert second.returncode == 2, second.stderr[-3000:]
            assert len(err) == 1 and f"another run (pid {first.pid}) is writing it" in err[0], err
            assert out.read_bytes() == snapshot
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err[-3000:]
    assert f"{len(ids)} records written" in first_err
    records = _lines(out)
    assert [r["id"] for r in records] == ids and not any("error" in r for r in records)
    # the lock went with the first run: a resume now runs, finds everything done, adds nothing
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert (
        again.returncode == 0
        and f"0 records written to {out} (0 errors, {len(ids)} already done)" in again.stderr
    )
    assert _lines(out) == records


def test_a_locked_output_is_refused_before_the_model_loads(tiny_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.jsonl"
    loads = _count_model_loads(monkeypatch)
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--no_progress"]
    with output_lock(out):
        for extra in ([], ["--resume"], ["--overwrite"]):
            assert extract_main([*args, *extra]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "another run" in err[0] and str(out) in err[0], err
    assert loads == [] and not out.exists()
    assert extract_main(args) == 0 and len(loads) == 1


def _count_model_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loads: list[Path] = []
    real = Extractor.from_pretrained.__func__

    def counted(cls, path, *args, **kwargs):
        loads.append(Path(path))
        return real(cls, path, *args, **kwargs)

    monkeypatch.setattr(Extractor, "from_pretrained", classmethod(counted))
    return loads


def _mount(*args: str) -> str | None:
    """Run mount(8); its complaint, or None when it worked."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


@pytest.fixture
def tmpfs(tmp_path):
    """A fresh tmpfs mounted on a folder, unmounted afterwards: a real small disk, a real read-only one."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the CI job runs the tests as root)")
    where = tmp_path / "mnt"
    where.mkdir()
    complaint = _mount("-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(where))
    if complaint is not None:
        pytest.skip(f"this machine does not let root mount a tmpfs: {complaint}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _resize(where: Path, size: str) -> None:
    assert _mount("-o", f"remount,size={size}", str(where)) is None


class _ReadOnly:
    """Make a folder read-only for this process: remount ro as root (chmod does not stop root), else chmod."""

    def __init__(self, folder: Path, as_root: bool):
        self.folder, self.as_root = folder, as_root

    def __enter__(self) -> Path:
        if self.as_root:
            assert _mount("-o", "remount,ro", str(self.folder)) is None
        else:
            self.folder.chmod(0o555)
        with pytest.raises(OSError):  # the test is only honest if the folder really is read-only
            (self.folder / "probe").write_bytes(b"")
        return self.folder

    def __exit__(self, *exc) -> None:
        if self.as_root:
            assert _mount("-o", "remount,rw", str(self.folder)) is None
        else:
            self.folder.chmod(0o755)


@pytest.fixture
def writable_dir(tmp_path, request) -> tuple[Path, bool]:
    """A folder ``_ReadOnly`` can make read-only for this user: a tmpfs as root, else a plain folder."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return request.getfixturevalue("tmpfs"), True
    folder = tmp_path / "out"
    folder.mkdir()
    return folder, False


def test_read_only_output_is_refused_before_the_model_loads_and_resume_completes_later(
    seed_run, tiny_model, writable_dir, monkeypatch, capsys
):
    folder, as_root = writable_dir
    lines = seed_run.read_bytes().splitlines(keepends=True)
    out = folder / "events.jsonl"
    out.write_bytes(lines[0] + lines[1] + lines[2][:100])  # an earlier run, cut short
    before = out.read_bytes()
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--date", "2023-11-14", "--no_progress"]
    loads = _count_model_loads(monkeypatch)
    reason = "Read-only file system" if as_root else "Permission denied"
    with _ReadOnly(folder, as_root):
        assert extract_main([*args, "--output", str(out), "--resume"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(folder) in err[0] and reason in err[0], err
        fresh = folder / "sub" / "new.jsonl"
        assert extract_main([*args, "--output", str(fresh)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"cannot write in {folder} ({reason})" in err[0], err
        assert loads == []  # refused before any model was loaded
        assert out.read_bytes() == before and not (folder / "sub").exists()
    assert extract_main([*args, "--output", str(out), "--resume"]) == 0
    assert "3 records written" in capsys.readouterr().err
    assert [_without_scores(r) for r in _lines(out)] == [_without_scores(r) for r in _lines(seed_run)]
    assert out.read_bytes().startswith(lines[0] + lines[1])


def test_full_disk_is_one_line_and_resume_completes_the_output(seed_run, tiny_model, tmpfs, capsys):
    """A real ENOSPC: the seeds' records (~65 kB each) into a 128 kB tmpfs."""
    _resize(tmpfs, "128k")
    out = tmpfs / "events.jsonl"
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--no_progress"]  # fmt: skip
    assert extract_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out}: write failed (No space left on device)" in err[0], err
    assert "--resume" in err[0]
    expected = seed_run.read_bytes().splitlines(keepends=True)
    written = out.read_bytes().splitlines(keepends=True)
    complete = [x for x in written if x.endswith(b"\n")]
    assert 0 < len(complete) < len(expected)
    assert [_without_scores(json.loads(x)) for x in complete] == [
        _without_scores(json.loads(x)) for x in expected[: len(complete)]
    ]
    _resize(tmpfs, "4m")  # space freed
    assert extract_main([*args, "--resume"]) == 0
    assert f"{len(expected) - len(complete)} records written" in capsys.readouterr().err
    assert [_without_scores(r) for r in _lines(out)] == [_without_scores(json.loads(x)) for x in expected]


def test_a_failing_write_is_one_line_and_resume_completes_the_output(
    seed_run, tiny_model, tmp_path, monkeypatch, capsys
):
    """Fault injection at the write call (runs everywhere): ENOSPC half-way through the third record."""
    real = ie.events.outputs.append
    calls = []

    def full_disk(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 3:
            real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(ie.events.outputs, "append", full_disk)
    out = tmp_path / "events.jsonl"
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--no_progress"]  # fmt: skip
    assert extract_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out}: write failed (No space left on device)" in err[0], err
    assert "(2 records written in this run)" in err[0]
    expected = seed_run.read_bytes().splitlines(keepends=True)
    written = out.read_bytes()
    assert written.count(b"\n") == 2 and len(written) > len(expected[0]) + len(expected[1])  # + half a line
    monkeypatch.setattr(ie.events.outputs, "append", real)
    assert extract_main([*args, "--resume"]) == 0
    assert "3 records written" in capsys.readouterr().err
    assert [_without_scores(r) for r in _lines(out)] == [_without_scores(json.loads(x)) for x in expected]


_NO_TORCH = """
import sys
from ie.cli.extract import main
try:
    status = main(sys.argv[1:])
except SystemExit as e:
    status = e.code
heavy = sorted(m for m in ("torch", "transformers", "accelerate") if m in sys.modules)
print("imported:", heavy, "status:", status, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--model", "{tmp}/missing", "--input", "{seeds}", "--output", "{tmp}/o.jsonl"],
        ["--model", "{model}", "--input", "{tmp}/nope.txt", "--output", "{tmp}/o.jsonl"],
        ["--model", "{model}", "--input", "{seeds}", "--output", "{tmp}/o.jsonl", "--resume", "--overwrite"],
        ["--model", "{model}", "--input", "{seeds}", "--output", "{existing}"],
        ["--model", "{model}", "--input", "{seeds}", "--output", "{existing}/sub/o.jsonl"],
        ["--precision", "fp8"],
    ],
)
def test_help_and_argument_errors_answer_without_importing_torch(tiny_model, tmp_path, args):
    """``--help`` and bad arguments must answer at once: torch and transformers take seconds to import."""
    existing = tmp_path / "done.jsonl"
    existing.write_text("{}\n", encoding="utf-8")
    fill = {"tmp": tmp_path, "seeds": SEEDS, "model": tiny_model, "existing": existing}
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *(a.format(**fill) for a in args)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("imported: [] status: "), done.stderr[-3000:]
    assert last.endswith("status: 0" if args == ["--help"] else "status: 2"), done.stderr[-3000:]


def test_cli_precisions_are_the_predictor_s():
    from ie.model.prediction import PRECISIONS

    assert ie.cli.extract.PRECISIONS == PRECISIONS


def test_a_launch_on_a_locked_output_is_refused_by_its_main_process_once(tiny_model, tmp_path):
    """Under ``accelerate launch`` only the main process locks; a held output stops every rank, cleanly."""
    out = tmp_path / "mp.jsonl"
    with output_lock(out):
        done = subprocess.run(
            [*console_command("accelerate", "accelerate.commands.accelerate_cli"), "launch", "--multi_gpu",
             "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
             "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "ie.cli.extract",
             "--model", str(tiny_model),
             "--input", str(SEEDS), "--output", str(out), "--no_progress"],
            capture_output=True, text=True, check=False, cwd=ROOT,
        )  # fmt: skip
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("ie-extract:")]
    assert len(ours) == 1 and f"{out}: another run (pid {os.getpid()}) is writing it" in ours[0], done.stderr
    # every rank left with status 2 (torchrun reports the first); none aborted, none wrote a part file
    assert "exitcode: 2" in done.stderr and "SIGABRT" not in done.stderr, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mp.jsonl.lock"]
