"""Every artifact's file name, in one place. Stages, the scorer and the tests name files through this.

``dvc.yaml`` lists the same paths (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The three files a client needs (their names are also written into onnx_metadata.json).
MODEL_FILE = "model.onnx"
FEATURES_FILE = "onnx_features.json"
METADATA_FILE = "onnx_metadata.json"
INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class Artifacts:
    """The artifact folder of one pipeline run (``artifacts/`` under the project root by default)."""

    root: Path = Path("artifacts")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # train
    @property
    def model_joblib(self) -> Path:
        return self.root / "best_model.joblib"

    @property
    def threshold(self) -> Path:
        return self.root / "threshold.txt"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    @property
    def test_csv(self) -> Path:
        return self.root / "test.csv"

    @property
    def calibration_csv(self) -> Path:
        return self.root / "calibration.csv"

    # export and quantize
    @property
    def model_onnx(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def features(self) -> Path:
        return self.root / FEATURES_FILE

    @property
    def metadata(self) -> Path:
        return self.root / METADATA_FILE

    @property
    def model_int8(self) -> Path:
        return self.root / INT8_FILE

    @property
    def quantize_report(self) -> Path:
        return self.root / "quantize_report.json"

    # verify
    @property
    def parity_report(self) -> Path:
        return self.root / "parity_report.json"

    @property
    def benchmark(self) -> Path:
        return self.root / "benchmark.json"

    @property
    def recommendation(self) -> Path:
        return self.root / "recommendation.json"

    @property
    def metrics(self) -> Path:
        """The headline numbers (onnxship.verify.headline): what `dvc metrics show` prints."""
        return self.root / "metrics.json"

    def plot(self, name: str) -> Path:
        return self.root / "plots" / name
