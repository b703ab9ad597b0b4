"""Serving: the standalone scorer, its file readers and writers, its CLI. numpy + onnxruntime only."""
