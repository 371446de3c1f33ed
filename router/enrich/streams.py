"""Loki's `query_range` answer: its streams parsed into (time, line), and text made fit for a
message (no terminal escapes or control characters, one line, cut to width)."""

from __future__ import annotations

import re

ELLIPSIS = "…"
# Loki's error texts are cut to this many characters in a note.
MAX_ERROR_CHARS = 200

# Terminal escape sequences: CSI (colours, cursor), OSC (titles, hyperlinks), DCS/SOS/PM/APC
# strings, two-character escapes, and the 8-bit CSI.
_ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_LINE_BREAKS_RE = re.compile(r"[\t\n\r\v\f]+")
# Other C0/C1 controls, DEL, and the bidi overrides that can make text read backwards.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACE_RE = re.compile(r"\s+")


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` without escapes or controls, on one line, cut to `limit` characters."""
    text = _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", _ANSI_RE.sub("", text))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def clean_line(line: str, max_chars: int) -> str:
    """A log line fit for a message: no terminal escapes or controls, one line, cut to width."""
    text = _ANSI_RE.sub("", line)
    text = _LINE_BREAKS_RE.sub(" ", text)
    text = _CONTROL_RE.sub("", text).rstrip()
    if len(text) > max_chars:
        text = text[: max_chars - 1] + ELLIPSIS
    return text


class MalformedResponse(ValueError):
    """Loki answered 200 with something that is not a streams result."""


def parse_streams(body: object) -> list[tuple[int, str]]:
    """(timestamp ns, line) of every entry of a `query_range` streams response, oldest first.

    Streams are merged and sorted by time; entries with equal timestamps keep Loki's push
    order (a `backward` answer lists them newest first, so each stream is reversed first).
    """
    if not isinstance(body, dict):
        raise MalformedResponse("not a JSON object")
    if body.get("status") != "success":
        raise MalformedResponse(f"status is {body.get('status')!r}, not 'success'")
    data = body.get("data")
    if not isinstance(data, dict):
        raise MalformedResponse("no data object")
    result_type = data.get("resultType")
    if result_type != "streams":
        raise MalformedResponse(
            f"a {result_type} result, not log lines (the query must be a log query)"
            if isinstance(result_type, str)
            else "no resultType"
        )
    result = data.get("result")
    if not isinstance(result, list):
        raise MalformedResponse("data.result is not a list")
    entries: list[tuple[int, str]] = []
    for stream in result:
        values = stream.get("values") if isinstance(stream, dict) else None
        if not isinstance(values, list):
            raise MalformedResponse("a stream without a values list")
        parsed: list[tuple[int, str]] = []
        for value in values:
            # [ts, line] or, with structured metadata, [ts, line, {metadata}].
            if not isinstance(value, list) or len(value) not in (2, 3):
                raise MalformedResponse("a value that is not [timestamp, line]")
            ts, line = value[0], value[1]
            if isinstance(ts, str) and ts.isdigit():
                ts = int(ts)
            if not isinstance(ts, int) or isinstance(ts, bool) or not isinstance(line, str):
                raise MalformedResponse("a value that is not [nanosecond string, line]")
            parsed.append((ts, line))
        parsed.reverse()
        entries.extend(parsed)
    entries.sort(key=lambda entry: entry[0])
    return entries
