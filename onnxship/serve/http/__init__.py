"""The HTTP scoring server, ``python -m onnxship.serve http`` (MLflow's scoring protocol).

An optional extra (requirements-serve.txt: Starlette and uvicorn), imported only here: the
standalone scorer stays numpy + onnxruntime. ``options`` is standard library only, so the CLI can
describe the command without the extra; ``server`` and ``app`` need it. docs/serving.md#http-server.
"""
