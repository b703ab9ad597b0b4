"""Deprecated alias for commands written before the Spark scorer moved to ``onnxship/serve/spark/``:
``python -m onnxship.spark score ...`` warns, then runs ``python -m onnxship.serve.spark score ...``.
Import the library from ``onnxship.serve.spark``. To be removed in the next minor release."""

if __name__ == "__main__":
    import sys

    from onnxship.serve.spark.cli import main

    moved = "python -m onnxship.spark is deprecated: run python -m onnxship.serve.spark"
    print(f"warning: {moved}", file=sys.stderr)
    sys.exit(main())
