"""A minimal MLflow-protocol scoring server over the Scorer, for the load tool's tests and its client cost.

    python -m tools.stub_server --artifacts artifacts --port 8123 [--memo] [--fault wrong-decision|no-4xx]

Not the project's server (``python -m onnxship.serve http``): a stand-in of ~100 lines on aiohttp's
server that speaks the same protocol (``POST /invocations`` with ``dataframe_records`` or
``dataframe_split``, ``GET /ping``; 400 for bad JSON or a wrong shape, 422 naming the field of an
invalid record), so tools/load_test.py can be tested against a real server in a second, and told
wrong answers apart (``--fault``). ``--memo`` answers a body seen before from memory: with the
scoring cost gone, a load run against it measures what the client and HTTP cost alone.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web

from onnxship.core.errors import UserError
from onnxship.serve.scorer import Scorer

FAULTS = ("wrong-decision", "no-4xx")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error_code": status, "message": message}, status=status)


def records_of(payload: object) -> list[dict]:
    """The request's records; ValueError for a shape the protocol does not have."""
    if isinstance(payload, dict) and isinstance(payload.get("dataframe_records"), list):
        records = payload["dataframe_records"]
    elif isinstance(payload, dict) and isinstance(payload.get("dataframe_split"), dict):
        split = payload["dataframe_split"]
        columns, data = split.get("columns"), split.get("data")
        if not isinstance(columns, list) or not isinstance(data, list):
            raise ValueError("dataframe_split needs 'columns' and 'data' lists")
        records = [dict(zip(columns, row, strict=True)) for row in data]
    else:
        raise ValueError("expected {'dataframe_records': [...]} or {'dataframe_split': {...}}")
    if not all(isinstance(r, dict) for r in records):
        raise ValueError("every record must be an object")
    return records


def make_app(scorer: Scorer, memo: bool = False, fault: str | None = None) -> web.Application:
    """The app: /ping, and /invocations scoring with ``scorer`` (one batch per request)."""
    seen: dict[bytes, bytes] = {}

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def invocations(request: web.Request) -> web.Response:
        body = await request.read()
        if memo and body in seen:
            return web.Response(body=seen[body], content_type="application/json")
        try:
            records = records_of(json.loads(body))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return web.json_response({"predictions": []}) if fault == "no-4xx" else _error(400, str(exc))
        try:
            probability, decision = scorer.score_records(records)
        except UserError as exc:
            return web.json_response({"predictions": []}) if fault == "no-4xx" else _error(422, str(exc))
        decisions = [int(d) for d in decision]
        if fault == "wrong-decision" and decisions:
            decisions[0] = 1 - decisions[0]
        predictions = [
            {"probability": float(p), "decision": d, "label": scorer.label(bool(d))}
            for p, d in zip(probability, decisions, strict=True)
        ]
        answer = json.dumps({"predictions": predictions}).encode()
        if memo:
            seen[body] = answer
        return web.Response(body=answer, content_type="application/json")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.stub_server", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--memo", action="store_true", help="answer a body seen before from memory")
    parser.add_argument("--fault", choices=FAULTS, help="answer wrongly on purpose (tests)")
    args = parser.parse_args(argv)
    app = make_app(Scorer(args.artifacts), args.memo, args.fault)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
