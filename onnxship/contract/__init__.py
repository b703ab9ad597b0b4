"""The ONNX contract as code: constants, the one encoder, artifact loading with every client check.

numpy, onnxruntime and jsonschema (the contract files' validator) only: this is what a service
imports.
"""
