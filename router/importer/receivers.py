"""Alertmanager receivers as alert-router receivers: Slack, email, webhook, PagerDuty and
Teams (`msteamsv2`, and the retired `msteams` connectors) carried over, with `global`
defaults applied as Alertmanager applies them; every receiver keeps its name.

Nothing is dropped. An alert-router receiver has exactly one integration, so a receiver
carries its first integration alert-router can send to; every other integration (one
alert-router has no equivalent for, such as Opsgenie or Telegram, one that cannot be
carried as written, or a second one) stays in Alertmanager: `kept` lists them, and the
forwarding alertmanager.yml keeps them and routes the same alerts to them
(router/importer/forward.py). A receiver left with nothing here (`elsewhere`) has a muted
`log` receiver in its place, so the routes keep their shape; a receiver with no
integration at all (Alertmanager's way to drop alerts) stays silent the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import getaddresses

from router.durations import parse_duration
from router.importer.document import Malformed, Node
from router.importer.report import EnvRef, Report

Body = dict[str, object]

# Alertmanager's send_resolved defaults: off for Slack and email, on for the rest.
_SEND_RESOLVED_DEFAULT = {"slack_configs": False, "email_configs": False}
_PAGERDUTY_DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
_PAGERDUTY_SEVERITIES = frozenset({"critical", "error", "warning", "info"})
_SLACK_DEFAULT_APP_URL = "https://slack.com/api/chat.postMessage"
_SLACK_DEFAULT_API = "https://slack.com/api/"
# Slack message layout, which alert-router writes from its own templates.
_SLACK_LAYOUT = (
    "title",
    "title_link",
    "pretext",
    "text",
    "message_text",
    "fields",
    "footer",
    "fallback",
    "callback_id",
    "color",
    "icon_url",
    "image_url",
    "thumb_url",
    "mrkdwn_in",
    "actions",
)
_SLACK_FLAGS = ("short_fields", "link_names")
_SLACK_HANDLED = frozenset(
    {
        "send_resolved",
        "api_url",
        "api_url_file",
        "app_token",
        "app_token_file",
        "app_url",
        "http_config",
        "channel",
        "username",
        "icon_emoji",
        "timeout",
        # alert-router always edits its Slack message in place.
        "update_message",
        *_SLACK_LAYOUT,
        *_SLACK_FLAGS,
    }
)
_EMAIL_HANDLED = frozenset(
    {
        "send_resolved",
        "to",
        "from",
        "hello",
        "smarthost",
        "auth_username",
        "auth_password",
        "auth_password_file",
        "auth_secret",
        "auth_secret_file",
        "auth_identity",
        "headers",
        "html",
        "text",
        "require_tls",
        "force_implicit_tls",
        "tls_config",
        # alert-router threads a group's emails on its own.
        "threading",
    }
)
_WEBHOOK_HANDLED = frozenset(
    {"send_resolved", "url", "url_file", "http_config", "max_alerts", "timeout", "payload"}
)
_HTTP_AUTH_KEYS = ("authorization", "bearer_token", "bearer_token_file")
# What alert-router writes itself in a PagerDuty event or a Teams card.
_PAGERDUTY_LAYOUT = (
    "client",
    "client_url",
    "description",
    "details",
    "images",
    "links",
    "source",
    "component",
    "group",
    "class",
)
_PAGERDUTY_HANDLED = frozenset(
    {
        "send_resolved",
        "routing_key",
        "routing_key_file",
        "url",
        "severity",
        "http_config",
        "timeout",
        *_PAGERDUTY_LAYOUT,
    }
)
_MSTEAMS_LAYOUT = ("title", "summary", "text")
_MSTEAMS_HANDLED = frozenset(
    {"send_resolved", "webhook_url", "webhook_url_file", "http_config", "timeout", *_MSTEAMS_LAYOUT}
)


class _CannotCarry(Exception):
    """This integration config cannot become an alert-router receiver; says why."""


@dataclass(frozen=True, slots=True)
class Kept:
    """One integration that stays in Alertmanager (`pagerduty_configs[0]`), and why."""

    key: str
    index: int
    why: str


@dataclass(slots=True)
class Receivers:
    """The converted receivers, and what routes need to know about each."""

    configs: list[Body] = field(default_factory=list)
    send_resolved: dict[str, bool] = field(default_factory=dict)
    # Receivers without any integration: Alertmanager sends them nothing.
    silent: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)
    # Per receiver, the integrations that stay in Alertmanager.
    kept: dict[str, list[Kept]] = field(default_factory=dict)
    # Receivers alert-router sends nothing to: all they have stays in Alertmanager.
    elsewhere: set[str] = field(default_factory=set)

    @property
    def muted(self) -> set[str]:
        """Receivers whose routes alert-router mutes: it has nothing to send to them."""
        return self.silent | self.elsewhere


def _templated(text: str) -> bool:
    return "{{" in text


@dataclass(slots=True)
class _Context:
    receiver: str
    key: str
    index: int
    report: Report
    glob: Node | None

    @property
    def prefix(self) -> str:
        return f"receiver {self.receiver!r}: {self.key}[{self.index}]"

    def global_value(self, key: str) -> Node | None:
        value = self.glob.get(key) if self.glob is not None else None
        return None if value is None or value.is_null else value

    def note(self, node: Node, message: str) -> None:
        self.report.note(node.line, f"{self.prefix}{message}")

    def secret(
        self, value: Node | None, file: Node | None, stem: str, origin: str
    ) -> EnvRef | None:
        """A `${NAME}` for an inline secret or one Alertmanager read from a file."""
        if value is not None and value.text():
            return self.report.secret(stem, origin, value.line)
        if file is not None and file.text():
            return self.report.secret(stem, f"{origin}_file", file.line, from_file=file.text())
        return None


def _given(cfg: Node, key: str) -> Node | None:
    value = cfg.get(key)
    return None if value is None or value.is_null else value


def _timeout(cfg: Node, ctx: _Context, body: Body) -> None:
    node = _given(cfg, "timeout")
    if node is None:
        return
    text = node.text("timeout")
    try:
        seconds = parse_duration(text)
    except ValueError:
        ctx.note(node, f".timeout {text!r} is not a duration alert-router reads; not carried over")
        return
    if seconds > 0:
        body["timeout"] = text


def _unknown_keys(cfg: Node, handled: frozenset[str], ctx: _Context) -> None:
    for key, value in cfg.items():
        if key not in handled:
            ctx.note(value, f".{key}: not carried over (alert-router has no such setting)")


def _http_notes(http: Node | None, ctx: _Context, where: str) -> None:
    if http is None:
        return
    for key, value in http.items():
        if key not in _HTTP_AUTH_KEYS and not value.is_null:
            ctx.note(
                value,
                f".{where}.{key}: not carried over (alert-router makes its own HTTP connections)",
            )


def _bearer(http: Node | None, ctx: _Context, stem: str, origin: str) -> EnvRef | None:
    """The bearer token an http_config sends, as a reference; notes other schemes."""
    if http is None:
        return None
    auth = _given(http, "authorization")
    if auth is not None:
        kind = _given(auth, "type")
        if kind is not None and kind.text().lower() != "bearer":
            ctx.note(
                kind,
                f".http_config.authorization type {kind.text()!r}: not carried over"
                " (alert-router sends bearer tokens only)",
            )
            return None
        return ctx.secret(
            _given(auth, "credentials"),
            _given(auth, "credentials_file"),
            stem,
            f"{origin}.http_config.authorization.credentials",
        )
    return ctx.secret(
        _given(http, "bearer_token"),
        _given(http, "bearer_token_file"),
        stem,
        f"{origin}.http_config.bearer_token",
    )


def _slack(cfg: Node, ctx: _Context) -> Body:
    origin = f"receiver {ctx.receiver!r} {ctx.key}[{ctx.index}]"
    local_http = _given(cfg, "http_config")
    local_url = _given(cfg, "api_url") or _given(cfg, "api_url_file")
    token = ctx.secret(
        _given(cfg, "app_token"),
        _given(cfg, "app_token_file"),
        f"{ctx.receiver}_SLACK_TOKEN",
        f"{origin}.app_token",
    )
    has_local_auth = local_http is not None and _given(local_http, "authorization") is not None
    if token is None and not has_local_auth and local_url is None:
        token = ctx.secret(
            ctx.global_value("slack_app_token"),
            ctx.global_value("slack_app_token_file"),
            "SLACK_TOKEN",
            "global.slack_app_token",
        )
    body: Body = {}
    api_base = ""
    if token is not None:
        app_url = _given(cfg, "app_url") or ctx.global_value("slack_app_url")
        api_base = app_url.text() if app_url is not None else _SLACK_DEFAULT_APP_URL
    else:
        url_node = _given(cfg, "api_url") or ctx.global_value("slack_api_url")
        url_text = url_node.text() if url_node is not None else ""
        if url_text.rstrip("/").endswith("/chat.postMessage") and has_local_auth:
            # A Slack app token sent by http_config: chat.postMessage takes Alertmanager's
            # webhook-style body with a bearer token.
            token = _bearer(local_http, ctx, f"{ctx.receiver}_SLACK_TOKEN", origin)
            api_base = url_text
    if token is not None:
        base = api_base.rstrip("/")
        if not base.endswith("/chat.postMessage") or _templated(base):
            raise _CannotCarry(f"the Slack app URL {api_base!r} is not a chat.postMessage URL")
        base = base.removesuffix("chat.postMessage")
        body["token"] = token
        if base != _SLACK_DEFAULT_API:
            body["api_url"] = base
    else:
        if local_url is not None:
            webhook = ctx.secret(
                _given(cfg, "api_url"),
                _given(cfg, "api_url_file"),
                f"{ctx.receiver}_SLACK_WEBHOOK_URL",
                f"{origin}.api_url",
            )
        else:
            webhook = ctx.secret(
                ctx.global_value("slack_api_url"),
                ctx.global_value("slack_api_url_file"),
                "SLACK_WEBHOOK_URL",
                "global.slack_api_url",
            )
        if webhook is None:
            raise _CannotCarry("it has no Slack API URL (nor does global)")
        body["webhook_url"] = webhook
    channel = _given(cfg, "channel")
    if channel is not None and _templated(channel.text("channel")):
        if token is not None:
            raise _CannotCarry(f"its channel {channel.text()!r} is a Go template")
        ctx.note(
            channel, ".channel: a Go template, not carried over (the webhook's own channel is used)"
        )
    elif channel is not None:
        body["channel"] = channel.text()
    if token is not None and "channel" not in body:
        raise _CannotCarry("a Slack app token needs a channel")
    for key in ("username", "icon_emoji"):
        node = _given(cfg, key)
        if node is None:
            continue
        if _templated(node.text(key)):
            ctx.note(node, f".{key}: a Go template, not carried over")
        else:
            body[key] = node.text()
    _timeout(cfg, ctx, body)
    for key in _SLACK_LAYOUT:
        node = _given(cfg, key)
        if node is not None:
            ctx.note(
                node,
                f".{key}: not carried over (alert-router lays out its own Slack"
                " message, from templates/)",
            )
    for key in _SLACK_FLAGS:
        node = _given(cfg, key)
        if node is not None and node.flag(key):
            ctx.note(
                node, f".{key}: not carried over (alert-router lays out its own Slack message)"
            )
    _http_notes(local_http, ctx, "http_config")
    _unknown_keys(cfg, _SLACK_HANDLED, ctx)
    return {"slack": body}


def _email_note(cfg: Node, ctx: _Context, key: str, global_key: str, why: str) -> None:
    """Note a setting with no equivalent: once at `global` when it comes from there."""
    local = _given(cfg, key)
    node = local or ctx.global_value(global_key)
    if node is None or (node.is_map and not node.items()) or (not node.is_map and not node.text()):
        return
    if local is not None:
        ctx.note(node, f".{key}: not carried over ({why})")
    else:
        ctx.report.note(node.line, f"global.{global_key}: not carried over ({why})")


def _email(cfg: Node, ctx: _Context) -> Body:
    origin = f"receiver {ctx.receiver!r} {ctx.key}[{ctx.index}]"
    to_node = _given(cfg, "to")
    to_text = to_node.text("to") if to_node is not None else ""
    if _templated(to_text):
        raise _CannotCarry(f"its recipients {to_text!r} are a Go template")
    addresses = [address for _name, address in getaddresses([to_text]) if address]
    if not addresses:
        raise _CannotCarry("it has no recipients (to)")
    sender = _given(cfg, "from") or ctx.global_value("smtp_from")
    sender_text = sender.text("from") if sender is not None else ""
    if not sender_text or _templated(sender_text):
        raise _CannotCarry("it has no plain sender address (from, global.smtp_from)")
    smarthost = _given(cfg, "smarthost") or ctx.global_value("smtp_smarthost")
    smarthost_text = smarthost.text("smarthost") if smarthost is not None else ""
    host, sep, port = smarthost_text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise _CannotCarry(
            f"its smarthost {smarthost_text!r} is not host:port (smarthost, global.smtp_smarthost)"
        )
    body: Body = {"to": addresses, "from": sender_text, "smarthost": smarthost_text}
    username = _given(cfg, "auth_username") or ctx.global_value("smtp_auth_username")
    if username is not None and username.text():
        body["username"] = username.text()
    local_password = _given(cfg, "auth_password") or _given(cfg, "auth_password_file")
    if local_password is not None:
        password = ctx.secret(
            _given(cfg, "auth_password"),
            _given(cfg, "auth_password_file"),
            f"{ctx.receiver}_SMTP_PASSWORD",
            f"{origin}.auth_password",
        )
    else:
        password = ctx.secret(
            ctx.global_value("smtp_auth_password"),
            ctx.global_value("smtp_auth_password_file"),
            "SMTP_PASSWORD",
            "global.smtp_auth_password",
        )
    if password is not None:
        body["password"] = password
    for key, global_key, why in (
        ("auth_secret", "smtp_auth_secret", "CRAM-MD5 is not supported"),
        ("auth_secret_file", "smtp_auth_secret_file", "CRAM-MD5 is not supported"),
        ("hello", "smtp_hello", "alert-router greets with its own host name"),
        ("tls_config", "smtp_tls_config", "alert-router verifies TLS with the system's CAs"),
    ):
        _email_note(cfg, ctx, key, global_key, why)
    identity = _given(cfg, "auth_identity") or ctx.global_value("smtp_auth_identity")
    if identity is not None and identity.text() != body.get("username", ""):
        _email_note(
            cfg, ctx, "auth_identity", "smtp_auth_identity", "alert-router logs in as the username"
        )
    require = _given(cfg, "require_tls") or ctx.global_value("smtp_require_tls")
    require_tls = require.flag("require_tls") if require is not None else True
    implicit_node = _given(cfg, "force_implicit_tls") or ctx.global_value("smtp_force_implicit_tls")
    implicit = (
        implicit_node.flag("force_implicit_tls") if implicit_node is not None else port == "465"
    )
    if implicit:
        body["tls"] = True
        body["starttls"] = False
    elif not require_tls:
        body["starttls"] = False
    headers = _given(cfg, "headers")
    carried: dict[str, str] = {}
    for name, value in headers.items("headers") if headers is not None else []:
        if _templated(value.text(f"headers.{name}")):
            ctx.note(value, f".headers.{name}: a Go template, not carried over")
        else:
            carried[name] = value.text()
    if carried:
        body["headers"] = carried
    for key in ("html", "text"):
        node = _given(cfg, key)
        if node is not None:
            ctx.note(
                node,
                f".{key}: not carried over (alert-router writes its own email from templates/)",
            )
    _unknown_keys(cfg, _EMAIL_HANDLED, ctx)
    return {"email": body}


def _webhook(cfg: Node, ctx: _Context) -> Body:
    origin = f"receiver {ctx.receiver!r} {ctx.key}[{ctx.index}]"
    url = ctx.secret(
        _given(cfg, "url"), _given(cfg, "url_file"), f"{ctx.receiver}_WEBHOOK_URL", f"{origin}.url"
    )
    if url is None:
        raise _CannotCarry("it has no url")
    body: Body = {"url": url}
    local_http = _given(cfg, "http_config")
    http = local_http or ctx.global_value("http_config")
    token = _bearer(http, ctx, f"{ctx.receiver}_WEBHOOK_TOKEN", origin)
    if token is not None:
        body["bearer_token"] = token
    if http is not None and _given(http, "basic_auth") is not None:
        basic = _given(http, "basic_auth")
        assert basic is not None
        ctx.note(
            basic,
            ".http_config.basic_auth: not carried over (set `headers:` with an"
            " Authorization header, or a bearer_token)",
        )
    if local_http is not None:
        _http_notes(local_http, ctx, "http_config")
    _timeout(cfg, ctx, body)
    max_alerts = _given(cfg, "max_alerts")
    if max_alerts is not None and max_alerts.text() not in ("0", ""):
        ctx.note(
            max_alerts,
            ".max_alerts: not carried over (set it on the forwarding"
            " alertmanager.yml's webhook instead)",
        )
    payload = _given(cfg, "payload")
    if payload is not None:
        ctx.note(payload, ".payload: not carried over")
    ctx.note(
        cfg,
        ": alert-router posts its own JSON (the normalized notification), not"
        " Alertmanager's webhook payload: check the receiving end reads it",
    )
    _unknown_keys(cfg, _WEBHOOK_HANDLED, ctx)
    return {"webhook": body}


def _rest(
    cfg: Node,
    ctx: _Context,
    body: Body,
    layout: tuple[str, ...],
    what: str,
    handled: frozenset[str],
) -> None:
    """The timeout carried over; layout keys (alert-router writes its own `what`),
    http_config details and unknown keys noted."""
    _timeout(cfg, ctx, body)
    for key in layout:
        node = _given(cfg, key)
        if node is not None:
            ctx.note(node, f".{key}: not carried over (alert-router writes its own {what})")
    _http_notes(_given(cfg, "http_config"), ctx, "http_config")
    _unknown_keys(cfg, handled, ctx)


def _required_secret(cfg: Node, ctx: _Context, key: str, stem: str) -> EnvRef:
    """The reference for `key` (or the file `key_file` names); _CannotCarry when it is
    missing or a Go template."""
    node = _given(cfg, key)
    if node is not None and _templated(node.text(key)):
        raise _CannotCarry(f"its {key} is a Go template")
    origin = f"receiver {ctx.receiver!r} {ctx.key}[{ctx.index}].{key}"
    ref = ctx.secret(node, _given(cfg, f"{key}_file"), f"{ctx.receiver}_{stem}", origin)
    if ref is None:
        raise _CannotCarry(f"it has no {key}")
    return ref


def _pagerduty(cfg: Node, ctx: _Context) -> Body:
    if _given(cfg, "service_key") is not None or _given(cfg, "service_key_file") is not None:
        raise _CannotCarry(
            "it uses service_key (Events API v1); alert-router sends Events API v2 (routing_key)"
        )
    body: Body = {"routing_key": _required_secret(cfg, ctx, "routing_key", "PAGERDUTY_ROUTING_KEY")}
    url_node = _given(cfg, "url") or ctx.global_value("pagerduty_url")
    url = url_node.text("url") if url_node is not None else _PAGERDUTY_DEFAULT_URL
    if _templated(url) or not url.startswith(("http://", "https://")):
        raise _CannotCarry(f"its url {url!r} is not an http(s) URL")
    if url.rstrip("/") != _PAGERDUTY_DEFAULT_URL:
        body["url"] = url
    severity = _given(cfg, "severity")
    if severity is not None:
        text = severity.text("severity")
        if text in _PAGERDUTY_SEVERITIES:
            body["severity"] = text
        else:
            ctx.note(
                severity,
                f".severity {text!r}: not carried over (alert-router maps each alert's own"
                " severity to critical, error, warning or info)",
            )
    _rest(cfg, ctx, body, _PAGERDUTY_LAYOUT, "PagerDuty event", _PAGERDUTY_HANDLED)
    return {"pagerduty": body}


def _msteams(cfg: Node, ctx: _Context) -> Body:
    body: Body = {"webhook_url": _required_secret(cfg, ctx, "webhook_url", "TEAMS_WEBHOOK_URL")}
    if ctx.key == "msteams_configs":
        ctx.note(
            cfg,
            ": an Office 365 connector (retired by Microsoft): carried over as a Teams"
            " receiver, which posts Adaptive Cards; move it to a Workflows URL",
        )
    _rest(cfg, ctx, body, _MSTEAMS_LAYOUT, "Teams card", _MSTEAMS_HANDLED)
    return {"msteams": body}


_CONVERTERS: dict[str, Callable[[Node, _Context], Body]] = {
    "slack_configs": _slack,
    "email_configs": _email,
    "webhook_configs": _webhook,
    "pagerduty_configs": _pagerduty,
    "msteamsv2_configs": _msteams,
    "msteams_configs": _msteams,
}


def _send_resolved(key: str, cfg: Node) -> bool:
    node = _given(cfg, "send_resolved")
    if node is None:
        return _SEND_RESOLVED_DEFAULT.get(key, True)
    return node.flag("send_resolved")


def convert_receivers(root: Node, report: Report) -> Receivers:
    """Every receiver of the config, in order; Malformed if the list is not one."""
    glob = root.get("global")
    if glob is not None and not glob.is_null and not glob.is_map:
        raise Malformed(glob.line, "global must be a mapping")
    if glob is not None:
        http = glob.get("http_config")
        if http is not None and http.items("global.http_config"):
            report.note(
                http.line,
                "global.http_config: not carried over (alert-router makes its own HTTP"
                " connections: proxies and TLS settings come from its environment)",
            )
    out = Receivers()
    receivers = root.get("receivers")
    for node in receivers.seq("receivers") if receivers is not None else []:
        name_node = node.get("name")
        name = name_node.text("receiver name") if name_node is not None else ""
        if not name:
            raise Malformed(node.line, "missing name in receiver")
        if name in out.names:
            raise Malformed(node.line, f"receiver name {name!r} is not unique")
        out.names.append(name)
        body, send_resolved, kept = _receiver(node, name, glob, report)
        out.configs.append({"name": name, **body})
        out.send_resolved[name] = send_resolved
        if kept:
            out.kept[name] = kept
        if body == {"log": {}}:
            (out.elsewhere if kept else out.silent).add(name)
    return out


def _integrations(node: Node) -> list[tuple[str, int, Node]]:
    found: list[tuple[str, int, Node]] = []
    for key, value in node.items("receiver"):
        if key.endswith("_configs"):
            found.extend((key, i, cfg) for i, cfg in enumerate(value.seq(key)))
    return found


def _receiver(
    node: Node, name: str, glob: Node | None, report: Report
) -> tuple[Body, bool, list[Kept]]:
    for key, value in node.items("receiver"):
        if key != "name" and not key.endswith("_configs"):
            report.note(value.line, f"receiver {name!r}: {key}: not carried over")
    integrations = _integrations(node)
    if not integrations:
        report.note(
            node.line,
            f"receiver {name!r} has no integrations (Alertmanager sends it nothing): it stays"
            " silent, every route to it is muted (a `log` receiver stands in for the name)",
        )
        return {"log": {}}, True, []
    chosen: tuple[str, int, Body, bool] | None = None
    kept: list[Kept] = []
    for key, index, cfg in integrations:
        ctx = _Context(name, key, index, report, glob)
        if chosen is not None:
            why = f"an alert-router receiver has one integration (it took {chosen[0]}[{chosen[1]}])"
            kept.append(Kept(key, index, why))
            report.note(cfg.line, f"{ctx.prefix}: stays in Alertmanager: {why}")
            continue
        converter = _CONVERTERS.get(key)
        if converter is None:
            why = f"alert-router has no {key.removesuffix('_configs')} integration"
            kept.append(Kept(key, index, why))
            report.note(cfg.line, f"{ctx.prefix}: stays in Alertmanager: {why}")
            continue
        if not cfg.is_map:
            raise Malformed(cfg.line, f"{key} items must be mappings")
        mark = report.checkpoint()
        try:
            body = converter(cfg, ctx)
        except _CannotCarry as exc:
            # What was noted or referenced for a config that is not carried is moot.
            report.rollback(mark)
            kept.append(Kept(key, index, str(exc)))
            report.note(cfg.line, f"{ctx.prefix}: stays in Alertmanager: {exc}")
            continue
        chosen = (key, index, body, _send_resolved(key, cfg))
    if chosen is None:
        report.note(
            node.line,
            f"receiver {name!r} stays in Alertmanager (alert-router has nothing it can send"
            " to): the forwarding alertmanager.yml keeps it and routes the same alerts to it;"
            " in routes.yaml a muted `log` receiver holds its place",
        )
        first_key, _index, first_cfg = integrations[0]
        return {"log": {}}, _send_resolved(first_key, first_cfg) if first_cfg.is_map else True, kept
    return chosen[2], chosen[3], kept
