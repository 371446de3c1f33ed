"""What a Silence button of a group may cover: worked out once, when its message is posted.

The scope is the Alertmanager route's matchers as its `groupKey` carries them
(`{}/{team="payments"}:{alertname="DiskFull"}`), plus the group's labels; when the route
cannot be read, or its matchers do not hold for the group's own alerts, the labels common
to every alert of the group. A team's receiver adds the team's scope, so a silence made
from a team's message never reaches another team's alerts. Every matcher must hold for
every alert of the group: a silence that would not cover the group it was shown on is not
offered, and neither is one that names no label at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.config.schema import Config
from router.matchers import Matcher, matches_all, parse_matchers
from router.model import NORMALIZED_LABELS, Event, SilenceScope


def split_group_key(group_key: str) -> tuple[list[str], str] | None:
    """`{}/{a="b"}:{c="d"}` -> (["{}", '{a="b"}'], '{c="d"}'); None when it is not of
    that shape (a sender other than Alertmanager, or a hand-written key)."""
    parts: list[str] = []
    i, n = 0, len(group_key)
    while i < n:
        if group_key[i] != "{":
            return None
        end = _closing_brace(group_key, i)
        if end is None:
            return None
        parts.append(group_key[i : end + 1])
        i = end + 1
        if i == n:
            break
        if group_key[i] not in "/:":
            return None
        if group_key[i] == ":":
            rest = group_key[i + 1 :]
            return (parts, rest) if parts and _closing_brace(rest, 0) == len(rest) - 1 else None
        i += 1
    return None


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the `{` at `start`, skipping quoted values."""
    if start >= len(text) or text[start] != "{":
        return None
    quoted = False
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "}":
            return i
        i += 1
    return None


def _parse_level(text: str) -> list[Matcher]:
    """One `{...}` of a group key; `{}` is the root route (no matchers)."""
    if text.strip("{} ") == "":
        return []
    return parse_matchers(text)


def route_matchers(group_key: str) -> list[Matcher] | None:
    """The route's matchers a `groupKey` carries (every level's), or None if unreadable."""
    split = split_group_key(group_key)
    if split is None:
        return None
    levels, _ = split
    try:
        return [m for level in levels for m in _parse_level(level)]
    except ValueError:
        return None


def _common(labels: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not labels:
        return {}
    common = dict(labels[0])
    for other in labels[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return {k: v for k, v in common.items() if v}


def _team_matchers(
    receiver: str, config: Config, sent: Sequence[Mapping[str, str]]
) -> list[Matcher] | None:
    """The team's scope in labels Alertmanager knows, for a team's receiver (`team/name`);
    None when it cannot be said in them (the silence would then be wider than the team)."""
    team_name, slash, _ = receiver.partition("/")
    if not slash:
        return []
    team = next((t for t in config.teams if t.name == team_name), None)
    if team is None:
        return []
    out: list[Matcher] = []
    for matcher in team.matchers:
        if all(matcher.matches(labels) for labels in sent):
            out.append(matcher)
            continue
        # A normalized label (env from `environment: production`) as the sender wrote it.
        values = {labels.get(matcher.name, "") for labels in sent}
        if matcher.name in NORMALIZED_LABELS and len(values) == 1 and "" not in values:
            out.append(Matcher(matcher.name, "=", values.pop()))
            continue
        return None
    return out


def silence_scope(receiver: str, events: Sequence[Event], config: Config) -> SilenceScope:
    """The Alertmanager and matchers a Silence of this group creates (see the module)."""
    if not events:
        return SilenceScope(unavailable="the group has no alerts")
    if any(e.source != "alertmanager" for e in events):
        # Argo CD has no silences: alert-router mutes the group itself.
        return SilenceScope()
    external = next((e.external_url for e in events if e.external_url), "")
    entry = config.alertmanager_for(external)
    if entry is None:
        if not external:
            why = "the webhook named no externalURL"
        else:
            why = f"no configured Alertmanager has external_url {external}"
        return SilenceScope(unavailable=why)
    sent = [e.labels_as_sent() for e in events]
    matchers = _group_matchers(events, sent)
    team = _team_matchers(receiver, config, sent)
    if team is None:
        return SilenceScope(
            alertmanager=entry.display_name,
            unavailable="the team's scope cannot be said in the labels Alertmanager knows",
        )
    chosen = _dedupe([*matchers, *team])
    if not chosen or all(m.op in ("!=", "!~") for m in chosen):
        return SilenceScope(
            alertmanager=entry.display_name, unavailable="the group has no labels to silence on"
        )
    return SilenceScope(
        alertmanager=entry.display_name,
        matchers=tuple((m.name, m.op, m.value) for m in chosen),
    )


def _group_matchers(events: Sequence[Event], sent: Sequence[Mapping[str, str]]) -> list[Matcher]:
    common = _common(sent)
    group_labels = next((dict(e.group_labels) for e in events if e.group_labels), {})
    route = route_matchers(_sent_group_key(events[0].group_key))
    chosen: list[Matcher] = []
    if route is not None and group_labels:
        chosen = [*route, *(Matcher(k, "=", v) for k, v in sorted(group_labels.items()) if v)]
    if not chosen or not all(matches_all(chosen, labels) for labels in sent):
        # The route is unreadable, or what it claims does not hold for its own alerts.
        chosen = [Matcher(k, "=", v) for k, v in sorted(common.items())]
    elif "alertname" in common and not any(m.name == "alertname" for m in chosen):
        chosen.append(Matcher("alertname", "=", common["alertname"]))
    return chosen


def _sent_group_key(group_key: str) -> str:
    """The `groupKey` Alertmanager sent, from ours (`am/<its receiver>/<groupKey>`)."""
    rest = group_key.removeprefix("am/")
    start = rest.find("/{")
    return rest[start + 1 :] if start >= 0 else ""


def _dedupe(matchers: Sequence[Matcher]) -> list[Matcher]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Matcher] = []
    for m in matchers:
        key = (m.name, m.op, m.value)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out
