"""The fast tier's artifacts are the pipeline's: the stage scripts run in-process (``staged``) serve
byte for byte what `dvc repro` in a clone (``built``) serves from the same params, so the scorer,
contract and client tests on ``served`` test what DVC ships."""

from __future__ import annotations

import pytest

from tests.conftest import SERVED


@pytest.mark.parametrize("name", SERVED)
def test_in_process_stages_serve_what_dvc_repro_serves(staged, built, name):
    assert (staged.served / name).read_bytes() == (built.served / name).read_bytes(), name
