"""The golden history format: what a recorded scenario keeps, and how it is replayed.

One JSON-lines file per scenario: a header (what it shows, the configuration, extra
policies beside the built-in bundle, the moment the recording ended), then the events
replay needs (what came in, and what each action answered), then the incidents that
resulted (plan, decisions, final state). Everything in it is a function of the scenario:
a manual clock, counted ids, ids derived from causes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.config import WardenConfig, load_config
from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.governance.policy import BUILTIN_BUNDLE
from warden.replay import IncidentView, ReplayReport, is_input, replay
from warden.store.records import decode_record, encode_record

if TYPE_CHECKING:
    from collections.abc import Sequence

GOLDEN_DIR = Path(__file__).parent
RECORD_COMMAND = "make golden   (or: .venv/bin/python -m tests.golden.record)"
# What the recorded adapter answers each action from, and the fields it reads.
OUTCOMES = frozenset(
    {
        ev.STEP_INTENDED,
        ev.STEP_SUCCEEDED,
        ev.STEP_FAILED,
        ev.COMPENSATION_INTENDED,
        ev.COMPENSATION_SUCCEEDED,
        ev.COMPENSATION_FAILED,
    }
)
_OUTCOME_FIELDS = ("index", "idempotency_key", "detail", "output", "retryable")


@dataclass(frozen=True)
class Golden:
    """One recorded scenario."""

    name: str
    about: str
    config: str  # warden.yaml without state_dir and policy_dir
    horizon: str  # the time of the last event recorded
    events: tuple[ev.Event, ...]
    incidents: tuple[IncidentView, ...]
    extra_policies: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where the golden file lives."""
        return GOLDEN_DIR / f"{self.name}.jsonl"


def _kept(event: ev.Event) -> ev.Event | None:
    """The part of ``event`` a replay needs, or None when it needs none of it."""
    if is_input(event):
        return event
    if event.type in OUTCOMES:
        data = {k: event.data[k] for k in _OUTCOME_FIELDS if k in event.data}
        return ev.Event(event.id, event.source, event.type, event.time, data, stream=event.stream)
    return None


def capture(
    name: str,
    about: str,
    config: str,
    history: Sequence[ev.Event],
    extra_policies: dict[str, str] | None = None,
) -> Golden:
    """A golden history from everything a live run stored."""
    kept = tuple(k for k in map(_kept, history) if k is not None)
    views = tuple(IncidentView.of(i) for i in incident_fold.fold_all(history).values())
    horizon = max(history, key=lambda e: e.moment).time
    return Golden(name, about, config, horizon, kept, views, dict(extra_policies or {}))


def dump(golden: Golden) -> str:
    """The JSON-lines text of a golden history (stable: sorted keys, one fact a line)."""
    header = {
        "golden": golden.name,
        "about": golden.about,
        "config": golden.config,
        "extra_policies": golden.extra_policies,
        "horizon": golden.horizon,
    }
    lines = [header]
    lines += [{"stream": e.stream, "event": _record(e)} for e in golden.events]
    lines += [{"incident": asdict(v)} for v in golden.incidents]
    return "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)


def _record(event: ev.Event) -> dict[str, Any]:
    """The store's spelling of ``event``, less what every event says alike."""
    raw: dict[str, Any] = json.loads(encode_record(event))
    for constant in ("specversion", "datacontenttype"):
        raw.pop(constant, None)
    if raw.get("schemaversion") == 1:
        del raw["schemaversion"]
    return raw


def load(path: Path) -> Golden:
    """Read a golden file written by :func:`dump`."""
    lines = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]
    header, rest = lines[0], lines[1:]
    events = tuple(
        decode_record(0, line["stream"], json.dumps(line["event"]))
        for line in rest
        if "event" in line
    )
    views = tuple(_view(line["incident"]) for line in rest if "incident" in line)
    return Golden(
        header["golden"],
        header["about"],
        header["config"],
        header["horizon"],
        events,
        views,
        dict(header["extra_policies"]),
    )


def _view(raw: dict[str, Any]) -> IncidentView:
    return IncidentView(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def configure(
    directory: Path, config: str, extra_policies: dict[str, str] | None = None
) -> WardenConfig:
    """The configuration in ``directory``: its state there, the built-in bundle plus extras."""
    directory.mkdir(parents=True, exist_ok=True)
    text = config + f"state_dir: {directory / 'state'}\n"
    if extra_policies:
        bundle = directory / "policies"
        shutil.copytree(BUILTIN_BUNDLE, bundle)
        for file_name, policy in extra_policies.items():
            (bundle / file_name).write_text(policy, encoding="utf-8")
        text += f"policy_dir: {bundle}\n"
    (directory / "warden.yaml").write_text(text, encoding="utf-8")
    return load_config(directory / "warden.yaml")


def replay_golden(golden: Golden, directory: Path) -> ReplayReport:
    """Replay a golden history with today's code; compare with the incidents it recorded."""
    config = configure(directory, golden.config, golden.extra_policies)
    last = max(e.moment for e in golden.events)
    settle_s = (ev.parse_time(golden.horizon) - last).total_seconds()
    return replay(golden.events, config, settle_s=settle_s, expected=golden.incidents)


def explain(golden: Golden, report: ReplayReport) -> str:
    """A readable account of how the replay decided otherwise, and what to do about it."""
    out = [f"golden history {golden.path.name} ({golden.about}) decided differently:"]
    for d in report.differences:
        out += [
            f"  incident {d.incident_id[:12]} on {d.service}, {d.what}:",
            f"    recorded: {d.recorded}",
            f"    replayed: {d.replayed}",
        ]
    out += [f"  note: {n}" for n in report.notes]
    out.append(
        f"If this change of behaviour is intended, re-record the golden histories: {RECORD_COMMAND}"
    )
    return "\n".join(out)
