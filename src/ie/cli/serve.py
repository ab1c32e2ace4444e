"""``ie-serve``: the Label Studio ML backend (pre-annotations with relations) over HTTP.

    ie-serve --model runs/cpu-tiny                      # http://127.0.0.1:9090, loopback only
    BASIC_AUTH_USER=ls BASIC_AUTH_PASS=... ie-serve --model runs/cpu-tiny --host 0.0.0.0

Then in Label Studio: project Settings → Model → Connect Model, URL ``http://127.0.0.1:9090``
(with the same basic-auth user and password when they are set).

* Basic auth comes from ``BASIC_AUTH_USER`` / ``BASIC_AUTH_PASS`` (the names label-studio-ml-backend
  uses); both or neither. ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY`` are read from the
  environment for retraining (they are never printed or logged). A host other than loopback without
  basic auth is served, with a warning: put it behind a TLS reverse proxy.
* Logs: one JSON object per line on stderr (uvicorn's own lines too); no bodies, texts or secrets.
* A bad model folder, bad flags or half-set credentials: one error line, exit 2, before the server
  starts. SIGTERM stops it gracefully (requests in flight finish) with exit 0; Ctrl-C with 130.
* Retraining (``--state_dir``): annotation webhooks and "Start Training" queue a retraining in a
  background worker (:mod:`ie.serving.retrain`); a promoted model replaces the served one atomically
  with a new ``model_version``. A restart serves the last promoted model; a training cut short by a
  crash or kill leaves only a staging folder, removed at the next start.
* ``torch`` and the web stack are imported only once the arguments are checked: ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import logging.config
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ie.cli.conventions import (
    FAILED,
    OK,
    PASS_ENV,
    USER_ENV,
    basic_auth_from_env,
    error,
    run_main,
    underscore_flags,
)
from ie.model.files import check_model_dir

PROG = "ie-serve"
URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"  # as ie.annotation.client (no SDK import here)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a trained model to Label Studio as an ML backend: pre-annotations "
        "(entities, triggers and relations) for the tasks of a project.",
        epilog=f"Basic auth: {USER_ENV} and {PASS_ENV} in the environment. Label Studio (for retraining): "
        f"{URL_ENV} and {KEY_ENV}.",
    )
    p.add_argument(
        "--model", type=Path, required=True, help="trained model directory (train.py --output_dir)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback)")
    p.add_argument("--port", type=int, default=9090, help="port (default 9090, label-studio-ml-backend's)")
    p.add_argument("--log_level", choices=LOG_LEVELS, default="info", help="log level (default info)")
    p.add_argument("--batch_size", type=int, default=16, help="windows per forward pass (default 16)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    r = p.add_argument_group(
        "retraining from annotations (ie.serving.retrain)",
        f"On with --state_dir: Label Studio's annotation webhooks and 'Start Training' retrain the model "
        f"in the background; it needs {URL_ENV} and {KEY_ENV} to pull the project's annotations.",
    )
    r.add_argument("--state_dir", type=Path,
                   help="where promoted models, the served-model pointer and trainings in progress live; "
                   "the served model is the last promoted one (else --model)")  # fmt: skip
    r.add_argument("--retrain_config", default="configs/cpu-tiny.yaml",
                   help="training config of a retraining (default configs/cpu-tiny.yaml)")  # fmt: skip
    r.add_argument("--retrain_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a training config override for retraining (repeatable)")  # fmt: skip
    r.add_argument("--min_annotations", type=int, default=1,
                   help="new or changed annotated tasks needed before a retraining (default 1)")  # fmt: skip
    r.add_argument("--heldout_percent", type=int, default=20,
                   help="share of annotated articles held out to judge a new model (default 20)")  # fmt: skip
    r.add_argument("--tolerance", type=float, default=0.01,
                   help="a new model replaces the served one when its held-out combined F1 is at least "
                   "the served model's minus this (default 0.01)")  # fmt: skip
    r.add_argument("--project", type=int, help="retrain only for this Label Studio project id")
    return p


def retrain_settings(args: argparse.Namespace) -> Any:
    """``RetrainSettings`` from the flags; ValueError with the flag's name when one is wrong."""
    from ie.serving.retrain import RetrainSettings

    overrides: list[str] = []
    for item in args.retrain_set:
        field_name, sep, value = item.partition("=")
        if not sep or not field_name:
            raise ValueError(f"--retrain_set {item!r}: expected FIELD=VALUE")
        overrides += [f"--{field_name.lstrip('-')}", value]
    if not Path(args.retrain_config).is_file():
        raise ValueError(f"--retrain_config {args.retrain_config}: no such file")
    if not os.environ.get(URL_ENV) or not os.environ.get(KEY_ENV):
        raise ValueError(
            f"--state_dir: retraining pulls annotations from Label Studio: set {URL_ENV} and {KEY_ENV}"
        )
    return RetrainSettings(
        config=str(args.retrain_config),
        overrides=tuple(overrides),
        min_new_annotations=args.min_annotations,
        heldout_percent=args.heldout_percent,
        tolerance=args.tolerance,
        project_id=args.project,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, and the event's fields (our modules log JSON
    objects, see ``ie.serving.logs``) or uvicorn's message."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        try:
            fields = json.loads(message) if message.startswith("{") else None
        except ValueError:
            fields = None
        line.update(fields if isinstance(fields, dict) else {"message": message})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's ``log_config``: every logger (ours, uvicorn's) through one JSON handler on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            "ie": {"handlers": ["json"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["json"], "level": upper, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours logs requests
        },
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_main(PROG, lambda: _main(underscore_flags(argv)))


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        model_dir = check_model_dir(args.model)
        basic_auth = basic_auth_from_env()
        settings = retrain_settings(args) if args.state_dir is not None else None
    except ValueError as e:
        return error(PROG, str(e))
    if not 0 < args.port < 65536:
        return error(PROG, f"--port {args.port}: not a TCP port")
    if args.batch_size < 1:
        return error(PROG, "--batch_size must be at least 1")
    if not is_loopback(args.host) and basic_auth is None:
        print(f"{PROG}: warning: serving on {args.host} without basic auth: anyone who reaches this "
              f"port gets predictions; set {USER_ENV}/{PASS_ENV} and put it behind a TLS reverse proxy",
              file=sys.stderr)  # fmt: skip

    logging.config.dictConfig(_log_config(args.log_level))
    import uvicorn
    from transformers.utils import logging as hf_logging

    from ie.serving.app import create_app
    from ie.serving.backend import Backend
    from ie.serving.retrain import RetrainWorker
    from ie.serving.store import ModelStore

    hf_logging.disable_progress_bar()  # a progress bar is not a JSON line
    try:
        # with retraining, the served model is the store's: the last promoted one, else --model
        store = ModelStore(args.state_dir, model_dir) if settings is not None else None
        served_dir = store.current()[0] if store is not None else model_dir
        backend = Backend.from_model_dir(served_dir, batch_size=args.batch_size, device=args.device)
    except (ValueError, OSError) as e:
        return error(PROG, str(e))
    backend.check_config(None)  # loads the SDK now: Label Studio gives /setup 3 s (ML_TIMEOUT_SETUP)
    retrainer = None
    if store is not None:
        retrainer = RetrainWorker(store, settings, on_promoted=lambda path, version: backend.reload(path))
    app = create_app(backend, retrainer=retrainer, basic_auth=basic_auth)
    # logging is configured above (log_config=None: uvicorn keeps it, and only sets its loggers' level)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, log_level=args.log_level,
                            access_log=False, timeout_graceful_shutdown=30)  # fmt: skip
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the handler that
    # was there before: these turn SIGTERM into exit 0 and SIGINT into KeyboardInterrupt, 130 (run_main),
    # also where SIGINT came in ignored (a background job)
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_sigterm),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}  # fmt: skip
    try:
        server.run()
    except _Terminated:
        return OK
    finally:
        if retrainer is not None:  # a training in progress is stopped; the served model stays as it is
            retrainer.close(timeout=30)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not server.started:
        return error(PROG, f"could not serve on {args.host}:{args.port} (see the log above)", FAILED)
    return OK


if __name__ == "__main__":
    sys.exit(main())
