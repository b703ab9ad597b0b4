"""Your own scikit-learn transformers and their ONNX converters (see plugins/clip.py)."""
