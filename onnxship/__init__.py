"""onnxship: turn a tabular CSV into a verified ONNX model.

Sub-packages, by job (imports go one way: core <- contract <- serve; core, contract <- train <- convert
<- verify):

- ``core``: errors, params.yaml, atomic files, artifact paths, the stage runner.
- ``contract``: what a client of model.onnx follows: the constants, the one record -> tensors
  encoder, and artifact loading with every check a client makes. numpy + onnxruntime only.
- ``serve``: the standalone scorer, its file readers and writers, its CLI. numpy + onnxruntime only.
- ``train``: reading the CSV, candidate pipelines, cross-validation, our own transformers, lineage.
- ``convert``: skl2onnx export, our converters, graph edits, INT8 quantization, JSON Schemas.
- ``verify``: the parity gate and its diagnosis, the benchmark, the recommendation, plot data.

The stage scripts in ``scripts/`` are thin entry points over these plain functions.
"""
