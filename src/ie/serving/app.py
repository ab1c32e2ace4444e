"""The HTTP service Label Studio talks to: the routes of label-studio-ml-backend 2.x, on FastAPI.

==========================  =================================================================
``GET /``, ``GET /health``  ``{"status": "UP", "model_class", "model_version"}`` (+ ``retrain``:
                            the retrainer's status when there is one)
``POST /setup``             ``{"model_version"}``; 422 ``{"status": "error", "error"}`` when the
                            project's labeling config is not ie's (Label Studio then shows the
                            backend in error: predictions for a foreign config would be wrong)
``POST /predict``           ``{"results": [one item per task], "model_version"}`` (see
                            :mod:`ie.serving.protocol` for a failed task's item)
``POST /webhook``           a training event (:data:`~ie.serving.protocol.TRAIN_EVENTS`) → 201
                            ``{"result": retrainer.notify(action, project id), "status": "ok"}``;
                            without a retrainer 501 ``{"status": "error", "error": "retraining is
                            not configured ..."}``; any other action 200 ``{"status": "Unknown event"}``
``GET /versions``           ``{"versions": [model_version]}`` (Label Studio 1.23 asks for it)
``GET /metrics``            ``{}`` (as 2.x)
==========================  =================================================================

Label Studio sends HTTP basic auth on every call when the backend is connected with it; with
``basic_auth`` set every route requires it (compared in constant time). Each request is logged as
one JSON line (method, path, status, duration); bodies, tokens and texts never are.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ie.serving.backend import Backend
from ie.serving.logs import log_event
from ie.serving.protocol import (
    TRAIN_EVENTS,
    PredictRequest,
    SetupRequest,
    WebhookRequest,
    project_id,
)

logger = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "retraining is not configured on this backend: start ie-serve with a retraining config to retrain "
    "from annotations"
)


class Retrainer(Protocol):
    """What ``/webhook`` hands training events to (``ie.serving.retrain`` implements it)."""

    def notify(self, action: str, project_id: int) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def close(self, timeout: float | None = None) -> None: ...


class _Unauthorized(Exception):
    pass


def _basic_auth_check(credentials: tuple[str, str]) -> Any:
    user, password = (c.encode() for c in credentials)

    def check(request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            given_user, sep, given_password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            raise _Unauthorized() from None
        ok_user = secrets.compare_digest(given_user, user)
        ok_password = secrets.compare_digest(given_password, password)
        if scheme.lower() != "basic" or not sep or not (ok_user and ok_password):
            raise _Unauthorized()

    return check


def create_app(
    backend: Backend, retrainer: Retrainer | None = None, basic_auth: tuple[str, str] | None = None
) -> FastAPI:
    """The service for ``backend``; ``basic_auth`` = (user, password) makes every route require it."""
    dependencies = [Depends(_basic_auth_check(basic_auth))] if basic_auth else []
    app = FastAPI(title="ie-serve", summary="Label Studio ML backend for ie", dependencies=dependencies,
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.backend = backend
    app.state.retrainer = retrainer

    @app.exception_handler(_Unauthorized)
    def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"status": "error", "error": "unauthorized"}, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="ie-serve"'})  # fmt: skip

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Any:
        started = time.monotonic()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            log_event(logger, "request", method=request.method, path=request.url.path, status=status,
                      ms=round((time.monotonic() - started) * 1000, 1),
                      client=request.client.host if request.client else None)  # fmt: skip

    @app.get("/")
    @app.get("/health")
    def health() -> dict[str, Any]:
        body: dict[str, Any] = {"status": "UP", "model_class": "JointModel",
                                "model_version": backend.model_version}  # fmt: skip
        if retrainer is not None:
            body["retrain"] = retrainer.status()
        return body

    @app.get("/metrics")
    def metrics() -> dict[str, Any]:
        return {}

    @app.get("/versions")
    def versions() -> dict[str, Any]:
        return {"versions": [backend.model_version]}

    @app.post("/setup")
    def setup(body: SetupRequest) -> Any:
        config = backend.check_config(body.label_config)
        pid = project_id(body.project)
        if not config.ok:
            message = config.describe_problems()
            log_event(logger, "setup_refused", level=logging.WARNING, project=pid, error=message)
            return JSONResponse({"status": "error", "error": message}, status_code=422)
        log_event(logger, "setup", project=pid, model_version=backend.model_version)
        return {"model_version": backend.model_version}

    @app.post("/predict")
    def predict(body: PredictRequest) -> dict[str, Any]:
        results = backend.predict(body.tasks, body.label_config)
        versions = {r.get("model_version") for r in results}
        version = versions.pop() if len(versions) == 1 else backend.model_version
        return {"results": results, "model_version": version}

    @app.post("/webhook")
    async def webhook(request: Request) -> Any:
        try:
            body = WebhookRequest.model_validate(await request.json())
        except (ValueError, ValidationError) as e:
            return JSONResponse({"status": "error", "error": f"not a Label Studio webhook: {e}"},
                                status_code=400)  # fmt: skip
        if body.action not in TRAIN_EVENTS:
            return {"status": "Unknown event"}
        pid = body.project.id if body.project is not None else None
        if retrainer is None:
            log_event(logger, "webhook_ignored", action=body.action, project=pid, reason="not configured")
            return JSONResponse({"status": "error", "error": NOT_CONFIGURED}, status_code=501)
        if pid is None:
            return JSONResponse({"status": "error", "error": f"{body.action}: no project.id in the body"},
                                status_code=400)  # fmt: skip
        result = await run_in_threadpool(retrainer.notify, body.action, pid)
        log_event(logger, "webhook", action=body.action, project=pid)
        return JSONResponse({"result": result, "status": "ok"}, status_code=201)

    return app
