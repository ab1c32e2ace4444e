"""``ie-extract`` and the Extractor API with a real model trained on the seeds (``tiny_model``)."""

from __future__ import annotations

import inspect
import itertools
import json
import shutil
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from ie.articles import Article, check_inputs, count_articles, iter_articles
from ie.cli.extract import main as extract_main
from ie.extraction import Extractor
from ie.labelstudio import load_documents
from ie.records import SCHEMA_PATH, record_json_schema_text
from ie.studio_client import build_import

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))


def _command(name: str, module: str) -> list[str]:
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


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
        [*_command("ie-extract", "ie.cli.extract"), "--model", str(tiny_model), "--input", str(SEEDS),
         "--output", str(out), "--date", "2023-11-14"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 records written" in done.stderr
    return out


def test_committed_json_schema_is_the_generated_one(tmp_path):
    assert SCHEMA_PATH.read_text(encoding="utf-8") == record_json_schema_text(), (
        "regenerate it: ie-extract --write-schema src/ie/resources/extraction_record.schema.json"
    )
    assert extract_main(["--write-schema", str(tmp_path / "s.json")]) == 0
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
            "--precision", precision, "--no-progress", "--device", "cpu"]  # fmt: skip
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
    from ie.prediction import Predictor

    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor.from_pretrained(tiny_model, device="cpu", precision="fp8")


def test_resume_repairs_a_truncated_line_and_skips_done_ids(seed_run, tiny_model, tmp_path, capsys):
    lines = seed_run.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # a crash mid-write
    before = out.read_bytes()
    args = ["--model", str(tiny_model), "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14",
            "--no-progress"]  # fmt: skip

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
    assert extract_main([*args[:5], str(broken), "--no-progress", "--resume"]) == 2
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
            "--no-progress", "--resume"]  # fmt: skip
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
    (folder / "blank.txt").write_text("\n\n", encoding="utf-8")
    shutil.copy(SEED_FILES[1], folder / "ok.txt")
    out = tmp_path / "out.jsonl"
    assert extract_main(["--model", str(tiny_model), "--input", str(jsonl), str(folder), "--output", str(out),
                         "--no-progress"]) == 0  # fmt: skip
    records = _lines(out)
    for r in records:
        validator.validate(r)
    by_id = {(r["id"], "error" in r): r for r in records}
    expected = ["good", "empty", "in.jsonl:3", "in.jsonl:4", "bad-date", "good", "7", "blank", "latin1", "ok"]
    assert [r["id"] for r in records] == expected
    assert by_id[("good", False)]["date"] == "2023-11-14"
    assert "empty" in by_id[("empty", True)]["error"]
    assert "line 3: not valid JSON" in by_id[("in.jsonl:3", True)]["error"]
    assert "'id'" in by_id[("in.jsonl:4", True)]["error"]
    assert "not an ISO date" in by_id[("bad-date", True)]["error"]
    assert "duplicate id 'good'" in by_id[("good", True)]["error"]
    assert "not UTF-8" in by_id[("latin1", True)]["error"]
    assert "empty text" in by_id[("blank", True)]["error"]
    for ok in ("7", "ok"):
        assert "error" not in by_id[(ok, False)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/missing", "--input", "{seeds}"], "no such model directory"),
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
            "--format", "label-studio", "--no-progress"]  # fmt: skip
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_write_each_article_once(seed_run, tiny_model, tmp_path):
    out = tmp_path / "mp.jsonl"
    done = subprocess.run(
        [*_command("accelerate", "accelerate.commands.accelerate_cli"), "launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()), "-m", "ie.cli.extract", "--model", str(tiny_model),
         "--input", str(SEEDS), "--output", str(out), "--date", "2023-11-14", "--no-progress"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 records written" in done.stderr  # the counts of both processes, gathered
    assert not list(tmp_path.glob("*.part-*"))
    assert [_without_scores(r) for r in _lines(out)] == [_without_scores(r) for r in _lines(seed_run)]
