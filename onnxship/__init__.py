"""onnxship: turn a tabular CSV into a verified ONNX model.

The pipeline stages in ``scripts/`` are thin entry points; the work lives in
these modules as plain functions so that it can be tested without DVC.
"""
