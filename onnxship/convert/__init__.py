"""Conversion: skl2onnx export, our converters, graph edits, quantization, the JSON Schemas."""
