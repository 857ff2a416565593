"""Checking that a plan did what it promised, then resolving the incident. Runtime."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain import verification
from warden.domain.ids import incident_stream, service_stream
from warden.remediation.lifecycle import Lifecycle

if TYPE_CHECKING:
    from warden.domain.incident import Incident


class Verifying(Lifecycle):
    """Runs a plan's verifications until they pass or time out."""

    def _verifications(self, current: Incident) -> list[str]:
        assert current.plan is not None
        kinds = []
        for step in current.plan.steps:
            spec = self.catalog.get(step.action)
            kind = spec.verification if spec else "health_probe"
            if kind not in kinds:
                kinds.append(kind)
        return kinds

    def _verify(self, current: Incident) -> None:
        self._hold_leases(current)  # renew: the targets stay ours until the incident closes
        started = ev.parse_time(current.verification_started_at)
        world = self.world()
        checks = [
            verification.check(kind, current.service, world, started)
            for kind in self._verifications(current)
        ]
        if all(c.passed for c in checks):
            self._pass(current, checks)
            return
        now = self.clock.now()
        if (now - started).total_seconds() > self.settings.verification_timeout_s:
            waiting = "; ".join(c.detail for c in checks if not c.passed)
            reason = (
                f"not verified {self.settings.verification_timeout_s:g} s after acting: {waiting}"
            )
            failed = self._event(current, ev.VERIFICATION_FAILED, {"reason": reason})
            self._append(current, current.id, failed)
            self._fail_plan(self._refreshed(current.id), reason)
            return
        if any(c.kind == "health_probe" and not c.passed for c in checks):
            self._probe_for_verification(current.service)

    def _pass(self, current: Incident, checks: list[verification.Check]) -> None:
        recovered = self._recovered_batches(current)
        if recovered:
            # Before the resolution: after a crash between the two, verification passes
            # again and these are appended again, as no-ops (derived ids).
            self.store.append(service_stream(current.service), recovered)
        passed = self._event(
            current,
            ev.VERIFICATION_PASSED,
            {"checks": [{"kind": c.kind, "detail": c.detail} for c in checks]},
        )
        now = self.clock.now()
        first_signal = ev.parse_time(current.first_signal_at)
        resolved = self._event(
            current,
            ev.INCIDENT_RESOLVED,
            {
                "reason": "verified: " + "; ".join(c.detail for c in checks),
                "mttr_s": round((now - first_signal).total_seconds(), 3),
                "time_to_detect_s": round(
                    (ev.parse_time(current.opened_at) - first_signal).total_seconds(), 3
                ),
            },
        )
        self._append(current, current.id, passed, resolved)

    def _recovered_batches(self, current: Incident) -> list[ev.Event]:
        """Batches this incident quarantined, and verified quiet after, are failures no more.

        The pipeline would report them recovered only if it reprocessed them itself; the
        quarantine took them out of its way, so without these they would stay open
        failures and shadow every later failure of the service.
        """
        assert current.plan is not None
        return [
            ev.derived_event(
                ev.BATCH_RECOVERED,
                incident_stream(current.id),
                {"service": current.service, "pipeline": params["pipeline"], "batch": batch},
                ev.format_time(self.clock.now()),
                key=f"{params['pipeline']}/{batch}",
                subject=current.service,
                correlation_id=current.correlation_id,
                traceparent=current.traceparent,
            )
            for index, step in enumerate(current.plan.steps)
            if step.action == "quarantine_batch"
            and index in current.succeeded
            and index not in current.compensated
            for params in [dict(step.params)]
            for batch in [str(params["batch"])]
        ]

    def _probe_for_verification(self, service: str) -> None:
        probe = self.probes.get(service)
        if probe is None:
            return
        last = self._last_verification_probe.get(service, 0.0)
        if time.monotonic() - last < self.settings.verification_probe_every_s:
            return
        self._last_verification_probe[service] = time.monotonic()
        self.record_probe(service, repr(probe), probe.check(), "verification")
