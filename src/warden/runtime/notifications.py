"""Outgoing notifications of incidents and pending approvals to chat tools. Runtime (shell).

Slack and Mattermost incoming webhooks, a Microsoft Teams Adaptive Card, or a generic
JSON webhook signed per Standard Webhooks. Delivery runs on its own thread with retries:
a slow or failing receiver never holds up the loop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.ingest.auth import sign
from warden.ingest.senders import read_secret
from warden.runtime.approval_links import ApprovalLink, ApprovalLinks

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

KINDS = {ev.INCIDENT_OPENED: "incident", ev.APPROVAL_REQUESTED: "approval"}
QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Target:
    """One receiver: its payload format, URL, signing secret (webhook) and the kinds it hears."""

    name: str
    format: str
    url: str
    secret: str = ""
    kinds: tuple[str, ...] = ("incident", "approval")


@dataclass(frozen=True, slots=True)
class Notice:
    """What a notification says, before it is shaped for one chat tool."""

    kind: str
    event_id: str
    title: str
    text: str
    link: str
    data: Mapping[str, Any]


def links_for(
    event: ev.Event, people: Mapping[str, tuple[str, ...]], links: ApprovalLinks, base: str
) -> dict[str, str]:
    """One single-use console link per approver the step may count, by name."""
    data = event.data
    roles = set(data.get("approver_roles") or [])
    incident_id = str((data.get("proposal") or {}).get("incident", ""))
    expires = str(data.get("expires_at", ""))
    if not expires:
        return {}
    out = {}
    for name, theirs in sorted(people.items()):
        if roles and not roles & set(theirs):
            continue
        link = ApprovalLink(incident_id, str(data.get("step_hash", "")), name, expires)
        out[name] = f"{base}/console/link/{links.issue(link, event.moment)}"
    return out


def notice_for(
    event: ev.Event,
    console_url: str,
    people: Mapping[str, tuple[str, ...]] | None = None,
    links: ApprovalLinks | None = None,
) -> Notice | None:
    """The notice an event calls for (an incident opened, an approval asked), else None."""
    kind = KINDS.get(event.type)
    if kind is None:
        return None
    data = event.data
    proposal = data.get("proposal") or {}
    incident_id = str(
        data.get("incident_id")
        or proposal.get("incident")
        or event.stream.removeprefix("incident-")
    )
    base = console_url.rstrip("/")
    if kind == "incident":
        service = str(data.get("service", event.subject))
        title = f"Incident {incident_id[:12]} on {service}"
        text = str(data.get("summary", ""))
        link = f"{base}/console/incidents/{incident_id}" if base else ""
        out = {"incident_id": incident_id, "service": service, "severity": data.get("severity")}
    else:
        step = proposal.get("step") or {}
        hash_ = str(data.get("step_hash", ""))
        what = f"{step.get('action', '?')} on {step.get('target', '?')}"
        title = f"Approval needed: {what} (incident {incident_id[:12]})"
        text = (
            f"{proposal.get('rationale', '')}\nProposal {hash_}; expires {data.get('expires_at')}."
            f"\nApprove in the console (signed with your key) or: warden approve {incident_id}"
            f" --step-hash {hash_} --key PATH"
        )
        link = f"{base}/console/inbox?step={hash_}" if base else ""
        out = {"incident_id": incident_id, "step_hash": hash_, "expires_at": data.get("expires_at")}
        if base and people and links is not None:
            personal = links_for(event, people, links, base)
            text += "".join(f"\n{name} (one-time link): {url}" for name, url in personal.items())
            out["links"] = personal
    return Notice(kind, event.id, title, text, link, out)


def payload(fmt: str, notice: Notice) -> dict[str, Any]:
    """The JSON body ``fmt`` (slack, mattermost, teams, webhook) expects for a notice."""
    if fmt == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notice.text[:3000] or " "}},
        ]
        if notice.link:
            button = {"type": "button", "text": {"type": "plain_text", "text": "Open in Warden"}}
            blocks.append({"type": "actions", "elements": [{**button, "url": notice.link}]})
        return {"text": notice.title, "blocks": blocks}
    if fmt == "mattermost":
        more = f"\n[Open in Warden]({notice.link})" if notice.link else ""
        return {"text": f"#### {notice.title}\n{notice.text}{more}", "username": "Warden"}
    if fmt == "teams":
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "wrap": True},
                {"type": "TextBlock", "text": notice.text, "wrap": True},
            ],
        }
        if notice.link:
            card["actions"] = [
                {"type": "Action.OpenUrl", "title": "Open in Warden", "url": notice.link}
            ]
        attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        return {"type": "message", "attachments": [attachment]}
    return {
        "type": f"warden.notification.{notice.kind}",
        "id": notice.event_id,
        "title": notice.title,
        "text": notice.text,
        "link": notice.link,
        "data": dict(notice.data),
    }


def request_for(target: Target, notice: Notice, now: int) -> urllib.request.Request:
    """The POST for one notice to one target; a webhook's is signed (Standard Webhooks)."""
    body = json.dumps(payload(target.format, notice)).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "warden"}
    if target.secret:
        msg_id = f"{notice.event_id}.{target.name}"
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(target.secret, msg_id, now, body),
        }
    return urllib.request.Request(target.url, body, headers, method="POST")


def targets_from(config: Mapping[str, Any]) -> list[Target]:
    """The targets of a checked ``notifications`` section (secrets read now)."""
    found = []
    for name, options in (config.get("targets") or {}).items():
        secret = ""
        if options.get("secret_env") or options.get("secret_file"):
            secret = read_secret(f"notifications.targets.{name}", options)
        kinds = tuple(options.get("events") or ("incident", "approval"))
        found.append(Target(str(name), str(options["format"]), str(options["url"]), secret, kinds))
    return found


class Notifier:
    """A runtime listener that queues notices and delivers them on its own thread."""

    def __init__(
        self,
        targets: list[Target],
        console_url: str = "",
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        people: Mapping[str, tuple[str, ...]] | None = None,
        links: ApprovalLinks | None = None,
    ) -> None:
        self.targets = targets
        self.console_url = console_url
        self.people, self.links = people or {}, links
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s
        self._sleep = sleep
        self._queue: queue.Queue[tuple[Target, Notice] | None] = queue.Queue(QUEUE_SIZE)
        self.delivered = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="warden-notify", daemon=True)
        self._thread.start()

    def __call__(self, event: ev.Event) -> None:
        """Queue the notices ``event`` calls for; never waits (a full queue drops, logged)."""
        notice = notice_for(event, self.console_url, self.people, self.links)
        if notice is None:
            return
        for target in self.targets:
            if notice.kind in target.kinds:
                try:
                    self._queue.put_nowait((target, notice))
                except queue.Full:
                    self.failed += 1
                    log.warning("notification to %s dropped: queue full", target.name)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._deliver(*item)

    def _deliver(self, target: Target, notice: Notice) -> None:
        for attempt in range(self.attempts):
            try:
                request = request_for(target, notice, int(time.time()))
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read()
                self.delivered += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = exc
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()
                retryable = not (
                    isinstance(exc, urllib.error.HTTPError)
                    and 400 <= exc.code < 500
                    and exc.code not in (408, 429)
                )
                if not retryable:
                    break
                if attempt + 1 < self.attempts:
                    self._sleep(self.backoff_s * 2**attempt)
        self.failed += 1
        log.warning("notification %s to %s failed: %s", notice.event_id, target.name, reason)
