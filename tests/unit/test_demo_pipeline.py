"""The demo pipeline's processor keeps a witness of a stop after the stop is cured."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from warden.demo.pipeline import Stage
from warden.demo.report import Reporter

if TYPE_CHECKING:
    from pathlib import Path


def test_a_quarantined_stop_is_over_but_its_witness_stays(tmp_path: Path) -> None:
    producer = Stage("producer", tmp_path, "producer", Reporter(None, "producer"))
    processor = Stage("processor", tmp_path, "processor", Reporter(None, "processor"))
    producer.step()
    processor.step()
    assert processor.status()["last_stop"] == {}
    before = time.time()
    producer.corrupt_next = True
    producer.step()
    processor.step()
    stuck = processor.status()
    assert stuck["stuck_on"] == "batch-000002"
    assert stuck["last_stop"]["batch"] == "batch-000002"
    assert stuck["last_stop"]["at"] >= before
    assert processor.quarantine("batch-000002")[0] == 200
    cured = processor.status()
    assert cured["stuck_on"] == ""
    assert cured["last_stop"] == stuck["last_stop"]


def test_a_stop_reported_again_keeps_its_first_time(tmp_path: Path) -> None:
    producer = Stage("producer", tmp_path, "producer", Reporter(None, "producer"))
    processor = Stage("processor", tmp_path, "processor", Reporter(None, "processor"))
    producer.corrupt_next = True
    producer.step()
    processor.step()
    first = dict(processor.status()["last_stop"])
    processor.reported_at = 0.0  # as if the report-again interval had passed
    processor.step()
    assert processor.status()["last_stop"] == first
