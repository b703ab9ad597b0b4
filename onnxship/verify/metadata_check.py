"""onnx_metadata.json's decision fields against what train decided. One check, read by the gate
(a reason to fail a backend) and by its diagnosis (a finding), so the two never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetadataCheck:
    """The metadata's threshold and positive class column, next to the trained ones."""

    threshold: float  # onnx_metadata.json's
    trained_threshold: float
    positive_class_index: int
    pointed: Any  # the class whose probability column positive_class_index reads
    positive_label: Any

    @property
    def threshold_differs(self) -> bool:
        return self.threshold != self.trained_threshold

    @property
    def wrong_column(self) -> bool:
        return self.pointed != self.positive_label


def check_metadata(metadata: dict, trained_threshold: float) -> MetadataCheck:
    index = metadata["positive_class_index"]
    return MetadataCheck(
        threshold=metadata["threshold"],
        trained_threshold=trained_threshold,
        positive_class_index=index,
        pointed=metadata["class_order"][index],
        positive_label=metadata["positive_label"],
    )
