"""Python plugin actions cannot run past their timeout: a real plugin that sleeps forever."""

from __future__ import annotations

import os
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.errors import ConfigError
from warden.execution.adapters.plugin import PluginActionAdapter
from warden.execution.adapters.registry import build_adapters

if TYPE_CHECKING:
    from collections.abc import Callable


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] not in ("Z", "X")


def _until(done: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A plugin module whose action starts a helper process, notes the pids, and sleeps."""
    module = f"sleepy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, time

            PIDS = {str(tmp_path / "pids")!r}

            def hang(target, params):
                helper = subprocess.Popen(["sleep", "3600"])
                with open(PIDS, "w") as out:
                    out.write(f"{{os.getpid()}} {{helper.pid}}")
                time.sleep(3600)
                return {{"never": True}}

            def slow_check(target, params):
                time.sleep(3600)
                return True

            def quick(target, params):
                return {{"pid": os.getpid()}}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_a_plugin_that_sleeps_forever_is_killed_with_what_it_started(
    sleepy: str, tmp_path: Path
) -> None:
    adapter = PluginActionAdapter()
    adapter.load("flush_cache", f"{sleepy}:hang", f"{sleepy}:slow_check", timeout_s=1.5)
    result = adapter.run("flush_cache", "cache-1", {"idempotency_key": "k"})
    assert not result.ok
    assert result.output["timed_out"] is True
    # The effect is unknown: the executor retries only an action the catalog calls idempotent.
    assert result.output["retryable"] is None
    assert "no answer within 1.5 s" in result.detail
    assert "process group were killed" in result.detail
    plugin_pid, helper_pid = map(int, (tmp_path / "pids").read_text().split())
    _until(lambda: not _alive(plugin_pid), "the plugin's process to die")
    _until(lambda: not _alive(helper_pid), "the process it started to die")
    # A check that hangs tells nothing, and does not hang its caller either.
    assert adapter.check("flush_cache", "cache-1") is None


def test_a_plugin_in_time_answers_from_its_own_process(sleepy: str) -> None:
    adapter = PluginActionAdapter()
    adapter.load("flush_cache", f"{sleepy}:quick", timeout_s=30)
    result = adapter.run("flush_cache", "cache-1", {})
    assert result.ok
    assert result.output["pid"] != os.getpid()


def test_the_timeout_is_configured_per_action(sleepy: str) -> None:
    config = {"actions": {"flush": {"adapter": "python", "entry_point": f"{sleepy}:hang"}}}
    config["actions"]["flush"]["timeout_s"] = 1
    with build_adapters(config) as adapters:
        result = adapters["flush"].run("flush", "cache-1", {})
    assert result.output["timed_out"] is True
    bad = {"actions": {"flush": {"adapter": "python", "entry_point": f"{sleepy}:hang"}}}
    bad["actions"]["flush"]["timeout_s"] = -1
    with pytest.raises(ConfigError, match="timeout_s: -1 must be a positive number of seconds"):
        build_adapters(bad)


def test_a_registered_function_that_overruns_is_isolated_until_it_ends() -> None:
    release = threading.Event()
    calls: list[str] = []

    def stuck(target: str, params: dict[str, Any]) -> dict[str, Any]:
        calls.append(target)
        release.wait(60)
        return {}

    adapter = PluginActionAdapter()
    adapter.register("drain", stuck, timeout_s=0.3)
    first = adapter.run("drain", "payments", {})
    assert first.output["timed_out"] is True
    assert "a thread cannot be stopped" in first.detail
    assert adapter.abandoned() == [("drain", "payments")]
    refused = adapter.run("drain", "payments", {})  # no second copy while the first runs
    assert refused.output["retryable"] is True
    assert "still running" in refused.detail
    assert calls == ["payments"]
    release.set()
    _until(lambda: adapter.abandoned() == [], "the abandoned call to end")
    adapter.run("drain", "payments", {})
    assert calls == ["payments", "payments"]
