"""Messages operators can shape: per-channel Jinja2 templates, run in Jinja2's sandbox.

A channel section of ``bridge.yaml`` may carry::

    templates:
      problem: |                     # or problem_file: /etc/kyoten/templates/problem.j2
        {{ severity }} on {{ event.host }}: {{ event.name }}
        {{ event.opdata }}
        {{ event_url }}
      update: ...
      recovery: ...
      digest: ...
    use_action_message: false        # true: the action's own {ALERT.SUBJECT} / {ALERT.MESSAGE}

The **first line** a template renders is the headline — the mail's ``Subject`` (problem and
digest mails; an update or recovery mail keeps ``Re: <problem subject>``, which mail clients
thread on) and, in Slack, the message's first line and its attachment's title; the **rest** is the
body. A part without a template keeps the shipped default, which is today's layout, written in
code (:mod:`kyoten.alerting.render`) so that it cannot fail; :data:`DEFAULT_TEMPLATES` holds the
same layout as Jinja2 for operators to start from (a test renders both and compares them).

Why Jinja2 (the one new dependency): it is the template language operators of Ansible and Salt
already write, and its :class:`~jinja2.sandbox.SandboxedEnvironment` is made for templates from
people who must not reach Python: no attribute starting with ``_``, no unsafe callables, bounded
``range``. ``str.format`` cannot branch or loop (a digest is a loop), and a home-made language
would be one more thing to learn and to get wrong. ``StrictUndefined`` turns a misspelt name
into an error rather than an empty string, so ``check-config`` catches it.

Safety of an alert first:

* ``kyoten bridge check-config`` (and the bridge at start) compiles every template and renders
  it once against sample events of its kind; a syntax error or a failing expression is refused,
  naming the template and its **line**;
* a template that still fails at render time (say ``{{ event.update.message }}`` on an update
  without one) is logged, counted, shown in ``/health`` (the channel's ``templates``) — and the
  message goes out with the default text. A template can never lose an alert.

Variables: ``event`` (:class:`~kyoten.alerting.events.Event`: ``name``, ``host``, ``severity``,
``opdata``, ``tags``, ``host_groups``, ``started``, ``recovered``, ``update`` …), ``kind``
(``problem``/``update``/``recovery``/``digest``), ``severity`` (its label), ``resolved``,
``update`` (the update or None), ``event_url`` and ``host_url`` (links into the Zabbix frontend,
``""`` when unknown), ``title`` (``[High] <name> on <host>``), ``update_line`` (``<who> acknowledged
<name> on <host>``), ``default`` (the whole default text), ``channel``; for a digest
``events``, a list of ``{event, title, event_url, host_url}``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import links, render
from .events import Event, Kind, Severity, Tag, Update, UpdateAction

log = logging.getLogger("kyoten.alerting.templating")

#: The parts a channel may template.
PARTS = ("problem", "update", "recovery", "digest")
#: Channel types whose text can be templated (towers show state, not text).
TEXT_CHANNELS = ("mail", "slack")
_NAME = "<template>"


@dataclass(frozen=True, slots=True)
class Text:
    """A rendered message: the headline (first line) and the body (the rest)."""

    subject: str
    body: str = ""

    @property
    def full(self) -> str:
        """Headline and body as one text."""
        return f"{self.subject}\n{self.body}" if self.body else self.subject

    @classmethod
    def of(cls, rendered: str) -> Text:
        """Split a rendered template: first line, rest (one blank separator line dropped)."""
        head, _, rest = rendered.strip("\n").partition("\n")
        return cls(head.strip(), rest.rstrip())


@dataclass(frozen=True)
class TemplateSpec:
    """The text settings of one channel (compiled templates by part)."""

    templates: Mapping[str, Any] = field(default_factory=dict)  # part -> jinja2.Template
    use_action_message: bool = False

    def __bool__(self) -> bool:
        return bool(self.templates) or self.use_action_message


@dataclass
class TemplateHealth:
    """Render-time failures of one channel's templates (shown in ``/health``)."""

    failures: int = 0
    last_error: str = ""
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "render_failures": self.failures,
            "last_error": self.last_error or None,
            "last_error_at": self.last_error_at,
        }


# -- the engine -----------------------------------------------------------------------------


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )


def _line_of(exc: BaseException) -> int | None:
    """The template line an exception raised at render time points at (Jinja2 rewrites the
    traceback so that template frames carry the template's own line numbers)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _NAME and frame.lineno is not None:
            line = frame.lineno
    return line


def describe(exc: BaseException) -> str:
    """``line N: Type: message`` for an exception from compiling or rendering a template."""
    line = getattr(exc, "lineno", None) or _line_of(exc)
    message = getattr(exc, "message", None) or str(exc)
    where = f"line {line}: " if line else ""
    return f"{where}{type(exc).__name__}: {message}"[:500]


# -- sample events: what check-config renders each template against ------------------------


def sample_events() -> dict[str, Event]:
    """One made-up event per part, with every field set (and an update with a comment)."""
    problem = Event(
        event_id="1001",
        kind=Kind.PROBLEM,
        severity=Severity.HIGH,
        name="Sample problem",
        host="sample-host",
        trigger_id="2001",
        host_groups=("Sample group",),
        tags=(Tag("scope", "availability"),),
        opdata="42",
        started="2026.01.01 00:00:00",
        send_to="noc",
        subject="Problem: Sample problem",
        message="Problem started at 00:00:00 on 2026.01.01",
        host_id="3001",
        manual_close=True,
        zabbix_url="https://zabbix.example",
    )
    from dataclasses import replace

    update = replace(
        problem,
        kind=Kind.UPDATE,
        acknowledged=True,
        update=Update(
            frozenset({UpdateAction.ACKNOWLEDGE, UpdateAction.COMMENT}),
            "acknowledged, commented",
            message="on it",
            user="Sample User (sample)",
            at="2026.01.01 00:01:00",
        ),
    )
    recovery = replace(problem, kind=Kind.RECOVERY, recovered="2026.01.01 00:10:00")
    return {"problem": problem, "update": update, "recovery": recovery}


# -- contexts -------------------------------------------------------------------------------


def event_context(event: Event, *, channel: str, resolved: bool, default: Text) -> dict[str, Any]:
    """The variables of a problem, update or recovery template."""
    return {
        "event": event,
        "kind": event.kind.value,
        "severity": event.severity.label,
        "resolved": resolved or event.kind is Kind.RECOVERY,
        "update": event.update,
        "event_url": links.event_url(event),
        "host_url": links.host_url(event),
        "title": render.title(event, resolved=resolved),
        "update_line": render.update_line(event) if event.update is not None else "",
        "default": default.full,
        "channel": channel,
    }


def digest_context(events: Sequence[Event], *, channel: str, default: Text) -> dict[str, Any]:
    """The variables of a digest template."""
    return {
        "events": [
            {
                "event": e,
                "title": render.title(e),
                "event_url": links.event_url(e),
                "host_url": links.host_url(e),
            }
            for e in events
        ],
        "kind": "digest",
        "title": default.subject,
        "default": default.full,
        "channel": channel,
    }


def _sample_context(part: str) -> dict[str, Any]:
    if part == "digest":
        events = list(sample_events().values())
        return digest_context(events, channel="check", default=Text("[Digest]", "…"))
    event = sample_events()[part]
    return event_context(event, channel="check", resolved=False, default=Text("title", "body"))


# -- configuration ---------------------------------------------------------------------------


def parse_templates(
    node: Any, use_action_message: Any, path: str, base: Path, errors: list[str]
) -> TemplateSpec:
    """Validate and compile a channel's ``templates`` (and ``use_action_message``).

    Every problem goes to ``errors`` as ``<path>.templates.<part>: line N: <what>`` (the line
    inside the template; for ``<part>_file`` the file is named too), so ``check-config`` lists
    them all. Each template is also rendered once against a sample event of its kind.
    """
    if not isinstance(use_action_message, bool):
        errors.append(f"{path}.use_action_message: must be true or false")
        use_action_message = False
    if node is None:
        return TemplateSpec({}, use_action_message)
    if not isinstance(node, Mapping):
        errors.append(f"{path}.templates: must be a mapping of {', '.join(PARTS)}")
        return TemplateSpec({}, use_action_message)
    sources: dict[str, tuple[str, str]] = {}
    for key, value in node.items():
        part, from_file = (key[: -len("_file")], True) if key.endswith("_file") else (key, False)
        where = f"{path}.templates.{key}"
        if part not in PARTS:
            errors.append(f"{where}: unknown template (known: {', '.join(PARTS)}, or <part>_file)")
            continue
        if part in sources:
            errors.append(f"{where}: {part} is given twice (inline and as a file)")
            continue
        if not isinstance(value, str) or not value:
            errors.append(f"{where}: must be a non-empty string")
            continue
        if from_file:
            file = base / value
            try:
                text = file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{where}: cannot read {file} ({getattr(exc, 'strerror', exc)})")
                continue
            sources[part] = (f"{where} ({file})", text)
        else:
            sources[part] = (where, value)
    compiled: dict[str, Any] = {}
    if sources:
        env = _environment()
        for part, (where, text) in sources.items():
            try:
                template = env.from_string(text)
            except Exception as exc:  # jinja2.TemplateSyntaxError, with its line
                errors.append(f"{where}: {describe(exc)}")
                continue
            try:
                out = template.render(_sample_context(part))
            except Exception as exc:
                errors.append(f"{where}: {describe(exc)} (rendering a sample {part})")
                continue
            if not out.strip():
                errors.append(f"{where}: renders an empty text for a sample {part}")
                continue
            compiled[part] = template
    return TemplateSpec(compiled, use_action_message)


# -- rendering --------------------------------------------------------------------------------


class Renderer:
    """Shapes one channel's texts: its template, the action's message, or the default."""

    def __init__(
        self,
        channel: str,
        spec: TemplateSpec | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.spec = spec or TemplateSpec()
        self.health = TemplateHealth()
        self._clock = clock

    def event_text(self, event: Event, default: Text, *, resolved: bool = False) -> Text:
        """The text of a problem, update or recovery (``default`` when not configured)."""
        if self.spec.use_action_message and (event.subject or event.message):
            return Text(event.subject or default.subject, event.message)
        template = self.spec.templates.get(event.kind.value)
        if template is None:
            return default
        return self._render(
            template,
            event.kind.value,
            default,
            event_context(event, channel=self.channel, resolved=resolved, default=default),
        )

    def digest_text(self, events: Sequence[Event], default: Text) -> Text:
        """The text of a digest."""
        template = self.spec.templates.get("digest")
        if template is None:
            return default
        return self._render(
            template,
            "digest",
            default,
            digest_context(events, channel=self.channel, default=default),
        )

    def is_default(self, kind: str) -> bool:
        """Whether ``kind``'s text is the shipped default (mail then keeps its HTML layout)."""
        if self.spec.use_action_message and kind != "digest":
            return False
        return kind not in self.spec.templates

    def _render(self, template: Any, part: str, default: Text, context: Mapping[str, Any]) -> Text:
        try:
            out = template.render(context)
        except Exception as exc:
            return self._failed(part, describe(exc), default)
        text = Text.of(out)
        if not text.subject:
            return self._failed(part, "rendered an empty headline", default)
        return text

    def _failed(self, part: str, reason: str, default: Text) -> Text:
        self.health.failures += 1
        self.health.last_error = f"templates.{part}: {reason}"
        self.health.last_error_at = self._clock()
        log.warning(
            "%s: template %s failed, sent the default text instead: %s", self.channel, part, reason
        )
        return default


# -- the shipped default, as Jinja2 (documentation; render.py is what runs) -------------------

_FIELDS = """\
Host: {{ event.host }}
Severity: {{ severity }}
{% if event.started %}Started: {{ event.started }}
{% endif %}
{% if kind == "recovery" and event.recovered %}Resolved: {{ event.recovered }}
{% endif %}
{% if event.opdata %}Operational data: {{ event.opdata }}
{% endif %}
{% if event.host_groups %}Host groups: {{ event.host_groups | join(", ") }}
{% endif %}
{% if event.tags %}Tags: {% for t in event.tags %}{{ t.tag }}{% if t.value %}:{{ t.value }}\
{% endif %}{% if not loop.last %}, {% endif %}{% endfor %}

{% endif %}
Event ID: {{ event.event_id }}
{% if event_url or host_url %}

{% if event_url %}Event in Zabbix: {{ event_url }}
{% endif %}
{% if host_url %}Host in Zabbix: {{ host_url }}
{% endif %}
{% endif %}
"""

#: Today's layout as templates, per channel type and part: copy one into ``bridge.yaml`` and
#: change it. The mail problem's first line is its subject; the body then starts with the title.
DEFAULT_TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "mail": {
        "problem": "Problem: {{ event.name }} on {{ event.host }}\n{{ title }}\n\n" + _FIELDS,
        "update": "{{ title }}\n\n{% if update.message %}{{ update.message }}\n\n{% endif %}"
        + _FIELDS,
        "recovery": "{{ title }}\n\n" + _FIELDS,
        "digest": "{{ title }}\n{% for e in events %}{{ e.title }}{% if e.event_url %} "
        "{{ e.event_url }}{% endif %}\n\n{% endfor %}",
    },
    "slack": {
        "problem": "{{ title }}",
        "update": "{{ update_line }}\n{% if update.message %}> {{ update.message }}\n{% endif %}"
        "{% if event_url %}<{{ event_url }}|Open in Zabbix>{% endif %}"
        "{% if event_url and host_url %} · {% endif %}"
        "{% if host_url %}<{{ host_url }}|Problems of {{ event.host }}>{% endif %}",
        "recovery": "{{ title }}\n\n" + _FIELDS,
        "digest": "{{ title }}\n{% for e in events %}{{ e.title }}{% if e.event_url %} "
        "{{ e.event_url }}{% endif %}\n\n{% endfor %}",
    },
}
