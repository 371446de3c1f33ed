"""The LogQL query template: `enrich.loki.query` compiled in a jinja2 sandbox.

The template is rendered in a jinja2 sandbox with `StrictUndefined` over one variable,
`labels` (`labels.app`, `labels["app"]`, `"app" in labels`, `labels.get("app", "")`). A
referenced label the event lacks means no query at all. Every `{{ ... }}` output is escaped
for a LogQL double-quoted string (backslash, double quote, control characters) unless it is
already escaped, so a label value can neither break the query nor inject matchers or
pipeline stages: `{app="{{ labels.app }}"}` is safe as written. Two filters exist for
explicit use: `logql` (the same escaping; applying it again is a no-op) and `logql_regex`
(the value as a literal inside a regex, e.g. `|~ "{{ labels.pod | logql_regex }}"`).
Backtick raw strings cannot escape a backtick, so templates must put label values inside
double quotes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
import jinja2.sandbox
from jinja2.utils import missing

from router.enrich.streams import one_line

# Characters Go's regexp.QuoteMeta escapes (LogQL regexes are RE2).
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


class LogQLSafe(str):
    """Text already escaped for a LogQL double-quoted string: not escaped again."""

    __slots__ = ()


def logql_escape(value: object) -> LogQLSafe:
    """`value` escaped for the inside of a LogQL (Go) double-quoted string literal."""
    if isinstance(value, LogQLSafe):
        return value
    out: list[str] = []
    for ch in str(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch < " " or "\x7f" <= ch <= "\x9f":
            # Go rejects raw control characters in a string literal; \u is a valid escape.
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return LogQLSafe("".join(out))


def logql_regex(value: object) -> LogQLSafe:
    """`value` as a literal inside a LogQL regex string (RE2 QuoteMeta, then string-escaped)."""
    quoted = "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in str(value))
    return logql_escape(quoted)


def _finalize(value: object) -> object:
    # Runs on every `{{ ... }}` output: escaping by default is what makes templates written
    # the obvious way safe. A StrictUndefined raises here, when str() is taken.
    return logql_escape(value)


class QueryTemplateError(Exception):
    """The query template could not be rendered for an event."""


class MissingLabelError(jinja2.UndefinedError):
    """The query template referenced a label the event does not have."""

    def __init__(self, label: str) -> None:
        super().__init__(f"label {label!r} missing")
        self.label = label


class _LabelView:
    """The template's `labels`: attribute and item access to label values, nothing else.

    Not a dict, so a label called `items` or `values` is the label, not a dict method.
    """

    __slots__ = ("_labels",)

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._labels = labels

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._labels[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> str:
        return self._labels[name]

    def __contains__(self, name: object) -> bool:
        return name in self._labels

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def get(self, name: str, default: str = "") -> str:
        """The label's value, or `default` when the event does not have it."""
        return self._labels.get(name, default)


class _LabelUndefined(jinja2.StrictUndefined):
    """StrictUndefined that, for a missing label, raises `MissingLabelError` naming it."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[jinja2.TemplateRuntimeError] = jinja2.UndefinedError,
    ) -> None:
        # Only a plain lookup miss on `labels` is a missing label; the sandbox's refusals
        # (`labels.__class__`) arrive with their own hint and SecurityError.
        if (
            hint is None
            and exc is jinja2.UndefinedError
            and isinstance(obj, _LabelView)
            and isinstance(name, str)
        ):
            # Undefined raises `exc(hint)` on use: the hint carries the label's name.
            hint, exc = name, MissingLabelError
        super().__init__(hint, obj, name, exc)


def _environment() -> jinja2.sandbox.SandboxedEnvironment:
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=_LabelUndefined, finalize=_finalize, autoescape=False
    )
    env.filters["logql"] = logql_escape
    env.filters["logql_regex"] = logql_regex
    return env


class LogQLTemplate:
    """`enrich.loki.query` compiled once; `render(labels)` gives the LogQL for one event."""

    def __init__(self, source: str) -> None:
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            # Config loading checks this already; a bad template still must not crash us.
            raise QueryTemplateError(f"invalid query template: {exc.message}") from exc

    def render(self, labels: Mapping[str, str]) -> str:
        """The query for these labels; `MissingLabelError` or `QueryTemplateError` if none."""
        try:
            text = self._template.render(labels=_LabelView(labels))
        except MissingLabelError:
            raise
        except Exception as exc:  # a template may fail in any way; it must not take us down
            raise QueryTemplateError(f"query template failed: {one_line(str(exc))}") from exc
        text = text.strip()
        if not text:
            raise QueryTemplateError("query template rendered an empty query")
        return text
