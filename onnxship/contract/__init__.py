"""The ONNX contract as code: constants, the one encoder, artifact loading with every client check.

numpy and onnxruntime only: this is what a service imports.
"""
