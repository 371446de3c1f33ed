"""Load routes.yaml: env substitution, complete validation, every problem as `file:line:col`.

The file is composed into a YAML node tree first so that every problem (a schema error from
pydantic, an undefined receiver, a bad matcher, a missing environment variable) can be traced
back to the line and column of the key or value it is about. Validation is the schema
(router/config/schema.py) plus one semantic pass (router/config/validate.py); `check`,
`serve` and a reload all go through `load_config`, so they accept and refuse the same files.

Team files the root file declares are read the same way (router/config/teams.py merges them
in); a team file's problems do not fail the config but are kept in `Config.team_problems`,
which `check` reports and `serve` contains. Route test files use `parse_document` too.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from router.config.schema import Config, Loc, TeamConfig, TeamFile, TeamLoad, TeamStatus, format_loc
from router.config.teams import mount_teams
from router.config.validate import Report, check_semantics, check_team_semantics, did_you_mean
from router.secrets import redact

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# `$${` is a literal `${`; `${NAME}` and `${NAME:-default}` are references.
_REFERENCE_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
# Keys whose values are credentials: never echoed in a problem message.
_SECRET_KEY_RE = re.compile(
    r"token|password|secret|webhook_url|api_key|authorization|routing_key", re.I
)
_SECRET_ENV_RE = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|WEBHOOK|CREDENTIAL|AUTH", re.I)
_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@\s]+)@")
# Alertmanager keys people will paste in, and what to write here instead.
_KEY_HINTS = {
    "match": "use matchers: ['name=\"value\"']",
    "match_re": "use matchers: ['name=~\"regex\"']",
    "source_match": "use source_matchers: ['name=\"value\"']",
    "source_match_re": "use source_matchers: ['name=~\"regex\"']",
    "target_match": "use target_matchers: ['name=\"value\"']",
    "target_match_re": "use target_matchers: ['name=~\"regex\"']",
    "group_wait": "alert-router has no grouping timers: groups come from the source",
    "group_interval": "alert-router has no grouping timers: groups come from the source",
    "mute_time_intervals": "time intervals are set on routes",
}


class ConfigError(Exception):
    """An invalid config; `problems` holds one `PATH:LINE:COL: field: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- YAML with positions ---------------------------------------------------------------


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.1 implicit types minus base-60 numbers and timestamps, with Go's octal.

    Without base-60, an unquoted `start_time: 08:30` stays the string it looks like (as in
    Go's yaml, which Alertmanager uses) instead of becoming the integer 510; without
    timestamps, a date stays a string too; `0o17` is octal and `010` the text "010".
    """


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
    list("yYnNtTfFoO"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    # `010` is no number: time intervals read it as Alertmanager does, as the day 10.
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value)


def _key_text(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


@dataclass(frozen=True, slots=True)
class _Position:
    line: int
    col: int


def _position(node: yaml.Node) -> _Position:
    mark = node.start_mark
    return _Position(mark.line + 1, mark.column + 1) if mark is not None else _Position(1, 1)


@dataclass(slots=True)
class _Found:
    node: yaml.Node
    key: yaml.Node | None  # the key node of the last mapping step, if the path ended on one
    depth: int  # how many segments of the path were resolved


def _locate(root: yaml.Node, loc: Loc) -> _Found:
    """Follow `loc` down the node tree as far as it goes."""
    node = root
    key: yaml.Node | None = None
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            # The last occurrence wins, as in construction (and after merge keys are flattened).
            match = [(k, v) for k, v in _pairs(node) if _key_text(k) == str(part)]
            if not match:
                return _Found(node, key, depth)
            key, node = match[-1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return _Found(node, key, depth)
            key, node = None, node.value[part]
        else:
            return _Found(node, key, depth)
    return _Found(node, key, len(loc))


def _walk_values(root: yaml.Node) -> Iterator[tuple[Loc, yaml.Node, str | None]]:
    """Every node with its path and the key it is the value of; aliases visited once."""
    seen: set[int] = set()
    stack: list[tuple[Loc, yaml.Node, str | None]] = [((), root, None)]
    while stack:
        loc, node, key = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield loc, node, key
        if isinstance(node, yaml.MappingNode):
            for k, v in reversed(_pairs(node)):
                text = _key_text(k)
                if text is not None and k.tag != _MERGE_TAG:
                    stack.append(((*loc, text), v, text))
                elif k.tag == _MERGE_TAG:
                    stack.append((loc, v, None))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in reversed(list(enumerate(node.value))):
                stack.append(((*loc, i), item, key))


# --- problems ------------------------------------------------------------------------


class _Problems:
    def __init__(self, filename: str, root: yaml.Node | None) -> None:
        self.filename = filename
        self.root = root
        self.items: list[tuple[int, int, str]] = []
        # Nodes already reported (e.g. an unset variable): later errors about them are noise.
        self.silenced: set[int] = set()
        self.secrets: set[str] = set()

    def at(self, position: _Position, loc: Loc, message: str) -> None:
        where = format_loc(loc)
        text = f"{where}: {message}" if where else message
        self.items.append((position.line, position.col, text))

    def at_loc(self, loc: Loc, message: str, *, on_key: bool = False) -> None:
        """Report at the node `loc` names (its key with `on_key`), or its nearest ancestor."""
        if self.root is None:
            self.at(_Position(1, 1), loc, message)
            return
        found = _locate(self.root, loc)
        if id(found.node) in self.silenced:
            return
        target = found.node
        if on_key and found.depth == len(loc) and found.key is not None:
            target = found.key
        self.at(_position(target), loc, message)

    def render(self) -> list[str]:
        out: list[str] = []
        for line, col, text in sorted(set(self.items)):
            out.append(f"{self.filename}:{line}:{col}: {_one_line(redact(text, self.secrets))}")
        return out


def _one_line(text: str) -> str:
    # A key with a line break or a control character in it must not split its problem line.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _is_secret(loc: Loc, key: str | None) -> bool:
    if key is None:
        return False
    # A webhook receiver's URL often carries its token in the path or query.
    return bool(_SECRET_KEY_RE.search(key)) or (key == "url" and "webhook" in loc[:-1])


def _collect_secrets(root: yaml.Node, problems: _Problems) -> None:
    for loc, node, key in _walk_values(root):
        if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str):
            continue
        value: str = node.value
        if _is_secret(loc, key) and len(value) >= 3:
            problems.secrets.add(value)
        userinfo = _USERINFO_RE.match(value)
        if userinfo is not None:
            problems.secrets.add(userinfo.group(1))


def _check_duplicate_keys(root: yaml.Node, problems: _Problems) -> None:
    for loc, node, _ in _walk_values(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[str, yaml.Node] = {}
        for key_node, _value in _pairs(node):
            text = _key_text(key_node)
            if text is None or key_node.tag == _MERGE_TAG:
                continue
            if text in first:
                earlier = _position(first[text])
                problems.at(
                    _position(key_node),
                    (*loc, text),
                    f"duplicate key {text!r} (first given on line {earlier.line})",
                )
            else:
                first[text] = key_node


def _implicit_tag(text: str) -> str:
    """The tag a plain scalar with this text resolves to (PyYAML's `resolve`, typed)."""
    candidates: list[tuple[str, re.Pattern[str]]] = _Resolver.yaml_implicit_resolvers.get(
        text[:1], []
    )
    for tag, pattern in candidates:
        if pattern.match(text):
            return tag
    return _STR_TAG


def _substitute(root: yaml.Node, env: Mapping[str, str], problems: _Problems) -> None:
    """Replace `${VAR}` / `${VAR:-default}` in scalar values (never in keys), in place."""
    for loc, node, _key in _walk_values(root):
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG or "$" not in node.value:
            continue
        original: str = node.value
        failed = False

        def replace(match: re.Match[str], loc: Loc = loc, node: yaml.ScalarNode = node) -> str:
            nonlocal failed
            if match.group(0) == "$${":
                return "${"
            inner = match.group(1)
            parsed = _NAME_RE.fullmatch(inner) if inner is not None else None
            if parsed is None:
                failed = True
                problems.at(
                    _position(node),
                    loc,
                    "malformed variable reference: expected ${NAME} or ${NAME:-default}"
                    " (write $${ for a literal ${)",
                )
                return ""
            name, default = parsed.group(1), parsed.group(2)
            value = env.get(name)
            if value is not None and len(value) >= 3 and _SECRET_ENV_RE.search(name):
                # Wherever a credential ends up (even in a mistyped field), never echo it.
                problems.secrets.add(value)
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                failed = True
                problems.at(
                    _position(node),
                    loc,
                    f"environment variable {name} is not set"
                    f" (set it, or give a default: ${{{name}:-...}})",
                )
                return ""
            return value

        result = _REFERENCE_RE.sub(replace, original)
        if failed:
            problems.silenced.add(id(node))
        if result == original:
            continue
        node.value = result
        if node.style is None and result != "":
            # A plain scalar takes the type its new text has: `${PORT:-8080}` is an int.
            node.tag = _implicit_tag(result)


# --- pydantic errors -----------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model that the mapping at `loc` is validated as, if any."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            for name, field in current.model_fields.items():
                if part in (name, field.alias):
                    current = field.annotation
                    break
            else:
                return None
        elif get_origin(current) is list and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _yaml_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _report_validation_error(
    error: ErrorDetails, problems: _Problems, root: type[BaseModel]
) -> None:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "missing":
        problems.at_loc(loc, "missing required field")
    elif kind == "extra_forbidden":
        name = str(loc[-1])
        model = _model_at(loc[:-1], root)
        if name in _KEY_HINTS:
            hint = f" ({_KEY_HINTS[name]})"
        else:
            hint = did_you_mean(name, _allowed_keys(model)) if model else ""
        if not hint and model is not None:
            hint = f" (allowed: {', '.join(_allowed_keys(model))})"
        problems.at_loc(loc, f"unknown field {name!r}{hint}", on_key=True)
    elif "[key]" in loc:
        cut = loc.index("[key]")
        problems.at_loc(
            loc[:cut], f"invalid key {str(loc[cut - 1])!r}: {_lower(error['msg'])}", on_key=True
        )
    elif kind in _EXPECTED:
        problems.at_loc(loc, f"expected {_EXPECTED[kind]}, got {_yaml_kind(error['input'])}")
    else:
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        problems.at_loc(loc, _lower(message))


def _lower(message: str) -> str:
    # pydantic capitalizes; our messages continue a `field: ` prefix.
    if message[:1].isupper() and not message[1:2].isupper():
        return message[:1].lower() + message[1:]
    return message


# --- entry points ----------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
# A semantic pass: the plain data the file was read into, and where to report problems.
Check = Callable[[Mapping[str, Any], Report], None]


@dataclass(frozen=True, slots=True)
class Document(Generic[M]):
    """A YAML file validated as model `M`, able to name positions in the file afterwards."""

    value: M
    filename: str
    root: yaml.Node
    secrets: frozenset[str]

    def problem(self, loc: Loc, message: str) -> str:
        """`file:line:col: loc: message` for the node at `loc` (or its nearest ancestor)."""
        problems = _Problems(self.filename, self.root)
        problems.secrets.update(self.secrets)
        problems.at_loc(loc, message)
        [line] = problems.render()
        return line


def parse_document(
    text: str,
    filename: str,
    model: type[M],
    *,
    env: Mapping[str, str] | None = None,
    check: Check | None = None,
) -> Document[M]:
    """Validate YAML text as `model` completely, `${VAR}` references resolved from `env`
    (None: no substitution); raises ConfigError listing every problem, as file:line:col."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError([_reader_error(filename, text, exc)]) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_yaml_error(filename, exc)]) from None
        if root is None:
            raise ConfigError([f"{filename}:1:1: the file is empty"])
        problems = _Problems(filename, root)
        _check_duplicate_keys(root, problems)
        if env is not None:
            _substitute(root, env, problems)
        _collect_secrets(root, problems)
        try:
            data = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            problems.items.clear()
            raise ConfigError([_yaml_error(filename, exc)]) from None
    finally:
        loader.dispose()

    if not isinstance(data, dict):
        problems.at(_position(root), (), f"the top level must be a mapping, not {_yaml_kind(data)}")
        raise ConfigError(problems.render())
    value: M | None = None
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _report_validation_error(error, problems, model)
    if check is not None:
        check(data, problems.at_loc)
    if problems.items or value is None:
        raise ConfigError(problems.render())
    return Document(value, filename, root, frozenset(problems.secrets))


def parse_config(
    text: str,
    filename: str,
    env: Mapping[str, str] | None = None,
    *,
    previous: Config | None = None,
) -> Config:
    """Validate config text completely; raises ConfigError listing every problem found.

    Team files (relative to `filename`) are loaded too, and contained: one that fails to
    load does not fail the config; its problems are in `Config.team_problems` and its
    alerts go to its last good version in `previous`, or else to its fallback receiver.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    config = parse_document(text, filename, Config, env=environ, check=check_semantics).value
    if not config.teams:
        return config
    base = Path(filename).parent
    loads = [
        load_team(team, base, environ, previous, config.route.receiver) for team in config.teams
    ]
    return mount_teams(config, loads)


def load_team(
    team: TeamConfig,
    base: Path,
    env: Mapping[str, str],
    previous: Config | None,
    root_receiver: str | None,
) -> TeamLoad:
    """Read one team's file; on any problem, keep its version in `previous` if it had one."""
    filename = str(base / team.file)
    fallback = team.fallback or root_receiver or ""
    try:
        text = read_file(filename)
        content = parse_document(
            text, filename, TeamFile, env=env, check=check_team_semantics
        ).value
    except ConfigError as exc:
        problems = tuple(exc.problems)
        last = (
            next((t for t in previous.team_loads if t.name == team.name), None)
            if previous
            else None
        )
        if last is not None and last.content is not None:
            return TeamLoad(
                team.name, filename, TeamStatus.LAST_GOOD, last.content, fallback, problems
            )
        return TeamLoad(team.name, filename, TeamStatus.FALLBACK, None, fallback, problems)
    return TeamLoad(team.name, filename, TeamStatus.LOADED, content, fallback)


def _reader_error(filename: str, text: str, exc: yaml.reader.ReaderError) -> str:
    before = text[: exc.position]
    line, col = before.count("\n") + 1, exc.position - before.rfind("\n")
    return f"{filename}:{line}:{col}: character U+{exc.character:04X} is not allowed in YAML"


def _yaml_error(filename: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    # Only the problem and its context: the snippet PyYAML appends could show a secret.
    parts = [p for p in (exc.context, exc.problem) if p]
    return f"{filename}:{line}:{col}: YAML syntax error: {', '.join(parts)}"


def read_file(filename: str) -> str:
    """A UTF-8 file's text; ConfigError (`file:1:1: ...`) when it cannot be read."""
    try:
        return Path(filename).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{filename}:1:1: the file is not valid UTF-8"]) from None
    except OSError as exc:
        raise ConfigError([f"{filename}:1:1: cannot read the file: {exc.strerror}"]) from None


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, previous: Config | None = None
) -> Config:
    """Read and validate a routes.yaml; `env` (default os.environ) feeds `${VAR}` references.

    `previous` is the config running so far: a team whose file now fails keeps its version
    from there (see parse_config).
    """
    filename = str(path)
    return parse_config(read_file(filename), filename, env, previous=previous)


def load_complete(path: str) -> tuple[Config | None, list[str]]:
    """The config with every team file loaded, or None and each problem (`path:line:col:
    ...`); a team file that `serve` would contain still counts as a problem here."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, list(exc.problems)
    problems = config.team_problems
    return (None, problems) if problems else (config, [])
