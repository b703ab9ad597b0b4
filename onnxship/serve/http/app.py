"""The ASGI application (Starlette): routes, request checks, JSON errors and the access log.

``POST /invocations`` scores; ``GET /ping`` and ``GET /health`` answer once the verified artifacts
are loaded (they are loaded before the server listens); ``GET /metadata`` returns the contract.
Every refusal is a JSON body ``{"error_code", "message", ...}`` with its status, and the server goes
on serving. Records are checked and converted by the scorer's own encoder (``Scorer.values``, as
the CLI scorer does for each row) on the event loop; ``session.run`` happens in the batcher's thread.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from onnxship.contract.encode import InvalidRecord
from onnxship.serve.http import protocol
from onnxship.serve.http.batcher import Batcher
from onnxship.serve.http.protocol import HttpError, dumps
from onnxship.serve.scorer import Scorer

JSON = "application/json"
TOO_LARGE = "the body {size}: this server takes at most {limit} bytes (--max-body-bytes)"
DISCARD_MAX = 64 * 1024 * 1024
ROWS = "onnxship.rows"  # the scope key where /invocations leaves its record count for the access log


@dataclass
class Served:
    """What the application serves: the scorer, its batcher, and the answers fixed at start-up."""

    scorer: Scorer
    batcher: Batcher
    max_body_bytes: int
    keep: tuple[str, ...]
    health: dict  # /health's fixed part (sha256s, backend, batching policy)
    metadata: bytes  # /metadata's body
    stopping: Callable[[], bool] = lambda: False  # True once SIGTERM arrived: new requests get 503
    in_flight: int = 0  # /invocations requests being read or scored now


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from the
    Content-Length header before anything is kept, or while the chunks arrive (chunked encoding)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        await _discard(request)
        raise HttpError(413, TOO_LARGE.format(size=f"has {int(length)} bytes", limit=limit))
    chunks, total, more = [], 0, True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk, more = message.get("body", b""), message.get("more_body", False)
        total += len(chunk)
        if total > limit:
            if more:
                await _discard(request)
            raise HttpError(413, TOO_LARGE.format(size="is larger", limit=limit))
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard(request: Request) -> None:
    """Read and drop the rest of a refused body (up to DISCARD_MAX bytes, then the connection is
    closed): a client that sends its whole body before reading the answer then gets its 413 rather
    than a reset connection. Nothing is kept, so memory stays bounded."""
    dropped, more = 0, True
    while more and dropped <= DISCARD_MAX:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        dropped += len(message.get("body", b""))
        more = message.get("more_body", False)


def require_json(request: Request) -> None:
    """415 for a body declared as something else than JSON; no Content-Type at all is read as JSON."""
    kind = request.headers.get("content-type")
    if kind is None:
        return
    media = kind.split(";", 1)[0].strip().lower()
    if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        raise HttpError(415, f"Content-Type {media!r} is not supported: send JSON with Content-Type: {JSON}")


def encode(scorer: Scorer, records: list, keep: tuple[str, ...]) -> tuple[list[list], list[dict]]:
    """Each record's converted values (Scorer.values, as the CLI scorer converts a row) and its
    --keep fields; the first invalid record is a 422 naming its index and field."""
    rows, kept = [], []
    for index, record in enumerate(records):
        try:
            rows.append(scorer.values(record, index + 1))
        except InvalidRecord as exc:
            raise protocol.from_invalid_record(exc) from None
        if keep:
            missing = [name for name in keep if name not in record]
            if missing:
                reason = "the field is missing, and --keep echoes it: send it"
                raise protocol.invalid(index, missing[0], reason)
            kept.append({name: record[name] for name in keep})
    return rows, kept


def routes(served: Served) -> list[Route]:
    scorer = served.scorer
    labels = (scorer.negative_label, scorer.positive_label)

    async def invocations(request: Request) -> Response:
        if served.stopping():
            raise HttpError(503, "the server is shutting down", headers={"Connection": "close"})
        served.in_flight += 1
        try:
            return await score(request)
        finally:
            served.in_flight -= 1

    async def score(request: Request) -> Response:
        require_json(request)
        body = await read_body(request, served.max_body_bytes)
        records = protocol.records(protocol.parse_body(body))
        rows, kept = encode(scorer, records, served.keep)
        request.scope[ROWS] = len(rows)
        probability, decision = await served.batcher.score(rows)
        answer = protocol.predictions(probability, decision, labels)
        for prediction, fields in zip(answer, kept, strict=False):
            prediction.update(fields)
        return json_response({"predictions": answer})

    async def ping(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def health(request: Request) -> Response:
        counters = {"in_flight": served.in_flight, "batches": served.batcher.stats.as_dict()}
        return json_response({**served.health, **counters})

    async def metadata(request: Request) -> Response:
        return Response(served.metadata, media_type=JSON)

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    return json_response(exc.body(), exc.status, exc.headers)


async def _starlette_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (and any other HTTPException), as JSON like ours."""
    status = exc.status_code
    path = request.url.path
    message = {
        404: f"no such path {path}: use /invocations, /ping, /health or /metadata",
        405: f"{request.method} is not allowed on {path}",
    }.get(status, exc.detail)
    return json_response(HttpError(status, message).body(), status, exc.headers)


async def _gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # the client left; nobody reads this (nginx's code for it)


async def _crash(request: Request, exc: Exception) -> Response:
    print(f"error: {request.method} {request.url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return json_response(HttpError(500, f"internal error ({type(exc).__name__})").body(), 500)


def application(served: Served) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        served.batcher.start()
        yield
        await served.batcher.stop()

    app = Starlette(
        routes=routes(served),
        exception_handlers={
            HttpError: _http_error,
            HTTPException: _starlette_error,
            ClientDisconnect: _gone,
            Exception: _crash,
        },
        lifespan=lifespan,
    )
    return app


class AccessLog:
    """ASGI middleware: one line per request on stderr, ``METHOD path status rows ms``."""

    def __init__(self, app: Any, stream: IO[str] | None = None) -> None:
        self.app, self.stream = app, stream or sys.stderr

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - start) * 1000
            rows = scope.get(ROWS, "-")
            self.stream.write(f"{scope['method']} {scope['path']} {status[0]} {rows} {ms:.2f}ms\n")
