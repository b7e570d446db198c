"""A tiny Prometheus text exposition: counters kept in memory, gauges computed at scrape time."""

from __future__ import annotations

from collections import defaultdict

__all__ = ["Labels", "Metrics", "render"]

_HELP = {
    "ai_memory_events_applied_total": ("counter", "Events applied to the read model by this process."),
    "ai_memory_events_rejected_total": ("counter", "Events refused by the projector (bad signature, invalid)."),
    "ai_memory_store_total": ("counter", "Memories stored through this process."),
    "ai_memory_recall_total": ("counter", "Recall requests served."),
    "ai_memory_http_requests_total": ("counter", "HTTP requests by status class."),
    "ai_memory_memories": ("gauge", "Memories in the read model."),
    "ai_memory_rejected_events": ("gauge", "Events recorded as rejected in the read model."),
    "ai_memory_log_chain_breaks": ("gauge", "Breaks in writers' hash chains the projector found (see verify)."),
    "ai_memory_log_end_offset": ("gauge", "Last offset in the log, per partition."),
    "ai_memory_projector_offset": ("gauge", "Last offset applied to the read model, per partition."),
    "ai_memory_webhook_offset": ("gauge", "Last offset applied by the webhook delivery projector, per partition."),
    "ai_memory_webhook_lag": ("gauge", "Log events the webhook delivery projector has not applied, per partition."),
    "ai_memory_webhook_deliveries": ("gauge", "Webhook deliveries made by this node, by status."),
    "ai_memory_webhook_deliveries_total": ("counter", "Webhook deliveries finished by this process, by outcome."),
    "ai_memory_webhook_attempts_total": ("counter", "Webhook POST attempts by this process."),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        if amount:
            self._counters[name][tuple(sorted(labels.items()))] += amount

    def samples(self) -> dict[str, dict[Labels, float]]:
        return {name: dict(values) for name, values in self._counters.items()}


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + inner + "}"


def render(samples: dict[str, dict[Labels, float]]) -> str:
    lines: list[str] = []
    for name in sorted(samples):
        kind, text = _HELP.get(name, ("untyped", name))
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, value in sorted(samples[name].items()):
            number = int(value) if float(value).is_integer() else value
            lines.append(f"{name}{_labels(labels)} {number}")
    return "\n".join(lines) + "\n"
