"""Where a failing backend goes wrong: the pipeline step, the input columns, the contract field or
the quantized node, in plain words.

The gate says THAT a backend disagrees with scikit-learn; this package says WHERE. It compares, on
a bounded set of rows (the worst and flipped rows plus a seeded sample), each scikit-learn step's
output (``steps``) with the ONNX tensor that skl2onnx made for that step (``tensors``: the names
come from converting the same fitted pipeline again, ``convert_sklearn(..., intermediate=True)``),
finds the first step that diverges, maps its columns back to the input columns, and says what kind
of divergence it is (``heuristics``: swapped columns, category order, a step not applied, rounded
constants). It then restores that step's output column by column (``restore``: scikit-learn's
values fed into the rest of the ONNX graph) to measure which input features drive the divergence.
For an INT8 backend it also compares the graph with the FP32 one (``int8``): nodes that are neither
FP32 nodes nor quantization nodes, and, per quantized node, how far the drift drops when that node
alone is put back to FP32. Every sentence it writes is in ``messages``; ``run`` puts it together.

Pure functions; nothing here decides pass or fail. Findings are only emitted for measured
differences, so a correct export gets none.
"""

from onnxship.verify.diagnose.records import DiagnosisInput, Finding, Step
from onnxship.verify.diagnose.run import diagnose, log_lines

__all__ = ["DiagnosisInput", "Finding", "Step", "diagnose", "log_lines"]
