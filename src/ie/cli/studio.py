"""``ie-studio``: the labeling config, validation, counts, gold building, and a Label Studio server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ie.annotation.labelstudio import (
    ValidationError,
    documents_to_tasks,
    label_config,
    load_documents,
    read_json,
    validate_tasks,
)
from ie.annotation.markup import MarkupError, parse_markup
from ie.annotation.stats import count_table
from ie.cli.conventions import BAD_INPUT, FAILED, basic_auth_from_env, error, run_main, underscore_flags
from ie.core.document import Document
from ie.core.fileio import atomic_write_json


def _fail(message: str, status: int = BAD_INPUT) -> int:
    """One error line; bad input (the default) is status 2, a server that fails is 1."""
    return error("ie-studio", message, status)


def cmd_config(args: argparse.Namespace) -> int:
    sys.stdout.write(label_config())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        tasks = read_json(args.file)
    except ValidationError as e:
        return _fail(str(e))
    docs, problems = validate_tasks(tasks, field=args.field, source=str(args.file))
    for p in problems:
        print(f"ie-studio: error: {p}", file=sys.stderr)
    if problems:
        return BAD_INPUT
    n_spans = sum(len(d.spans) for d in docs)
    n_rels = sum(len(d.relations) for d in docs)
    print(f"{args.file}: OK, {len(docs)} tasks, {n_spans} spans, {n_rels} relations")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    try:
        docs = load_documents(args.file, field=args.field)
    except ValidationError as e:
        return _fail(str(e))
    sys.stdout.write(count_table(docs))
    return 0


def _load_markup(path: Path, seeds: Path, task_id: int) -> Document:
    """Parse one markup file and check that its text is the seed article byte for byte."""
    seed = seeds / (path.stem + ".txt")
    doc = parse_markup(path.read_text(encoding="utf-8"), str(task_id), str(path))
    if not seed.is_file():
        raise MarkupError(f"{path}: no seed article {seed}")
    original = seed.read_text(encoding="utf-8")
    if doc.text != original:
        pos = next((i for i, (a, b) in enumerate(zip(doc.text, original, strict=False)) if a != b),
                   min(len(doc.text), len(original)))  # fmt: skip
        line = original.count("\n", 0, pos) + 1
        raise MarkupError(
            f"{path}: text without markup differs from {seed} at line {line}, "
            f"character {pos}: {doc.text[pos : pos + 20]!r} vs {original[pos : pos + 20]!r}"
        )
    doc.meta["source"] = seed.name
    return doc


def _markup_tasks(paths: list[Path], seeds: Path, out: str, synthetic: bool = False) -> list[dict] | None:
    try:
        docs = [_load_markup(p, seeds, i) for i, p in enumerate(paths, start=1)]
    except MarkupError as e:
        _fail(str(e))
        return None
    tasks = documents_to_tasks(docs)
    for task_id, task in enumerate(tasks, start=1):
        task["id"] = task_id
        task["annotations"][0]["id"] = task_id
        if synthetic:  # team-written training text: evaluation refuses it
            task["data"]["synthetic"] = True
    _, problems = validate_tasks(tasks, source=out)
    for p in problems:
        print(f"ie-studio: error: {p}", file=sys.stderr)
    return None if problems else tasks


def cmd_check_markup(args: argparse.Namespace) -> int:
    """Check markup files without writing anything: the annotator's inner loop."""
    tasks = _markup_tasks([Path(f) for f in args.files], Path(args.seeds), "<markup>")
    if tasks is None:
        return BAD_INPUT
    docs, _ = validate_tasks(tasks)
    sys.stdout.write(count_table(docs))
    return 0


def cmd_build_gold(args: argparse.Namespace) -> int:
    """Markup files → one Label Studio export; checks each text against its seed article."""
    markups = sorted(Path(args.markup_dir).glob("*.md"))
    if not markups:
        return _fail(f"{args.markup_dir}: no *.md markup files")
    tasks = _markup_tasks(markups, Path(args.seeds), str(args.out), args.synthetic)
    if tasks is None:
        return BAD_INPUT
    atomic_write_json(args.out, tasks)
    n_spans = sum(len(t["annotations"][0]["result"]) for t in tasks)
    print(f"wrote {args.out}: {len(tasks)} tasks, {n_spans} result items")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Validate everything first; a project is created only when every input is clean."""
    from ie.annotation import client as sc

    if not args.inputs and args.predictions is None:
        return _fail("nothing to push: give task files / articles and/or --predictions FILE")
    try:
        tasks = sc.build_import(args.inputs, args.predictions)
    except ValidationError as e:
        for p in e.problems:
            print(f"ie-studio: error: {p}", file=sys.stderr)
        return _fail(f"{len(e.problems)} problem(s); nothing was sent to Label Studio")
    try:
        result = sc.push(sc.StudioClient.connect(args.url, args.api_key), tasks, args.title)
    except sc.StudioError as e:
        return _fail(str(e), FAILED)
    n_pred = sum(1 for t in tasks if "predictions" in t)
    n_ann = sum(1 for t in tasks if "annotations" in t)
    print(f"project {result.project_id}: {len(tasks)} tasks ({n_ann} annotated, {n_pred} with predictions)")
    print(result.project_url)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ie.annotation import client as sc

    try:
        tasks, problems = sc.pull(sc.StudioClient.connect(args.url, args.api_key), args.project, args.out)
    except sc.StudioError as e:
        return _fail(str(e), FAILED)
    print(f"wrote {args.out}: {len(tasks)} tasks from project {args.project}")
    for p in problems:
        print(f"ie-studio: error: {p}", file=sys.stderr)
    if problems:
        return _fail(f"{len(problems)} problem(s) in the export; fix them in Label Studio and pull again")
    return 0


def cmd_next(args: argparse.Namespace) -> int:
    """Unannotated tasks, least certain prediction first (active learning); unscored ones last."""
    import json

    from ie.annotation import client as sc

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit must be 1 or more, not {args.limit}")
    try:
        client = sc.StudioClient.connect(args.url, args.api_key)
        queue = sc.annotation_queue(client, args.project, args.limit)
    except sc.StudioError as e:
        return _fail(str(e), FAILED)
    if args.json:
        rows = [
            {"id": t.id, "score": t.score, "model_version": t.model_version or None, "preview": t.preview(),
             "url": f"{client.url}/projects/{args.project}/data?task={t.id}"}
            for t in queue
        ]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for t in queue:
        score = "-" if t.score is None else f"{t.score:.4f}"
        print(f"{t.id}\t{score}\t{t.model_version or '-'}\t{t.preview()}")
    if not queue:
        print(f"project {args.project}: no unannotated tasks", file=sys.stderr)
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    """Connect ``ie-serve`` to a project: predictions, and annotation webhooks for retraining."""
    from ie.annotation import client as sc

    try:
        basic_auth = basic_auth_from_env()
    except ValueError as e:
        return _fail(f"{e} (as for ie-serve)")
    try:
        client = sc.StudioClient.connect(args.url, args.api_key)
        done = sc.connect_backend(client, args.project, args.backend, basic_auth)
    except sc.StudioError as e:
        return _fail(str(e), FAILED)
    hook = "no webhook (retraining events off)"
    if done.webhook_id is not None:
        hook = f"webhook {done.webhook_id}"
    print(f"project {args.project}: ML backend {done.backend_id} at {args.backend.rstrip('/')}, "
          f"model_version {done.model_version or '-'}, {hook}")  # fmt: skip
    return 0


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL, else http://localhost:8080)")
    p.add_argument("--api_key", help="API token (default: $LABEL_STUDIO_API_KEY; prefer the variable)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ie-studio", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("config", help="print the labeling config XML").set_defaults(func=cmd_config)

    v = sub.add_parser("validate", help="validate a Label Studio JSON export")
    v.add_argument("file", type=Path)
    v.add_argument("--field", choices=("annotations", "predictions"), default="annotations")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("stats", help="counts of spans and relations per label and article")
    s.add_argument("file", type=Path)
    s.add_argument("--field", choices=("annotations", "predictions"), default="annotations")
    s.set_defaults(func=cmd_stats)

    g = sub.add_parser("build-gold", help="convert inline markup files into a Label Studio export")
    g.add_argument("--markup_dir", default="data/annotations/markup")
    g.add_argument("--seeds", default="seeds")
    g.add_argument("--out", type=Path, default=Path("data/annotations/seeds.json"))
    g.add_argument("--synthetic", action="store_true", help="mark every task data.synthetic (training only)")
    g.set_defaults(func=cmd_build_gold)

    c = sub.add_parser("check-markup", help="check gold markup files against their seeds; writes nothing")
    c.add_argument("files", nargs="+")
    c.add_argument("--seeds", default="seeds")
    c.set_defaults(func=cmd_check_markup)

    u = sub.add_parser("push", help="create a Label Studio project with the config and import tasks")
    u.add_argument("inputs", nargs="*", type=Path,
                   help="Label Studio JSON task files (annotated or not) and/or .txt articles")  # fmt: skip
    u.add_argument("--predictions", type=Path, help="JSON tasks with predictions (model_version, score)")
    u.add_argument("--title", default="Arabic conflict events", help="project title (3+ characters)")
    _server_args(u)
    u.set_defaults(func=cmd_push)

    q = sub.add_parser("pull", help="export a project's tasks (Label Studio JSON, full) to a file")
    q.add_argument("--project", type=int, required=True, help="project id (shown by push)")
    q.add_argument("--out", type=Path, required=True)
    _server_args(q)
    q.set_defaults(func=cmd_pull)

    n = sub.add_parser(
        "next", help="list a project's unannotated tasks, least certain prediction first (active learning)"
    )
    n.add_argument("--project", type=int, required=True, help="project id (shown by push)")
    n.add_argument("--limit", type=int, help="list only the first K tasks")
    n.add_argument("--json", action="store_true", help="a JSON list (id, score, model_version, preview, url)")
    _server_args(n)
    n.set_defaults(func=cmd_next)

    b = sub.add_parser(
        "connect",
        help="connect a running ie-serve to a project (predictions; annotation webhooks for retraining)",
        description="Connect an ML backend to a project. Basic auth, when ie-serve uses it, is read from "
        "BASIC_AUTH_USER / BASIC_AUTH_PASS and also added to the webhook Label Studio creates for it.",
    )
    b.add_argument("--project", type=int, required=True, help="project id")
    b.add_argument(
        "--backend", default="http://127.0.0.1:9090", help="ie-serve URL (default http://127.0.0.1:9090)"
    )
    _server_args(b)
    b.set_defaults(func=cmd_connect)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv

    def _main() -> int:
        args = build_parser().parse_args(underscore_flags(argv))
        return args.func(args)

    return run_main("ie-studio", _main)


if __name__ == "__main__":
    raise SystemExit(main())
