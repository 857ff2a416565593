"""Telemetry: Prometheus metrics, OpenTelemetry traces and the KPI report, fed by events."""
