"""What an import could not carry over, line by line, and the secrets it left to set.

Report lines name the source line (`alertmanager.yml:42: ...`) and never a secret's value;
secrets become `${NAME}` references whose names follow the receiver and the field, so the
same config always gives the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NOT_NAME = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class EnvRef:
    """A `${NAME}` reference written into routes.yaml in place of a secret."""

    name: str


@dataclass(frozen=True, slots=True)
class SecretVar:
    """An environment variable the imported routes.yaml needs, and where its value was."""

    name: str
    origin: str  # e.g. "receiver 'team-x' slack_configs[0].api_url"
    line: int
    from_file: str = ""  # Alertmanager read the value from this file


@dataclass(slots=True)
class Report:
    """Notes per source line, and the secrets to set, for one import."""

    where: str
    notes: list[tuple[int, str]] = field(default_factory=list)
    secrets: list[SecretVar] = field(default_factory=list)
    _by_origin: dict[str, SecretVar] = field(default_factory=dict)

    def note(self, line: int, message: str) -> None:
        """One thing not carried over (or carried differently), at a source line."""
        if (line, message) not in self.notes:
            self.notes.append((line, message))

    def secret(self, stem: str, origin: str, line: int, from_file: str = "") -> EnvRef:
        """The reference for a secret; the same origin always gets the same variable."""
        known = self._by_origin.get(origin)
        if known is not None:
            return EnvRef(known.name)
        base = _NOT_NAME.sub("_", stem.upper()).strip("_") or "SECRET"
        if base[0].isdigit():
            base = f"R_{base}"
        taken = {var.name for var in self.secrets}
        name = base
        counter = 2
        while name in taken:
            name = f"{base}_{counter}"
            counter += 1
        var = SecretVar(name, origin, line, from_file)
        self.secrets.append(var)
        self._by_origin[origin] = var
        return EnvRef(name)

    def checkpoint(self) -> tuple[int, int]:
        """A mark to roll back to when a piece that was being converted is dropped."""
        return len(self.notes), len(self.secrets)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget the notes and secrets added since `mark`."""
        notes, secrets = mark
        for var in self.secrets[secrets:]:
            del self._by_origin[var.origin]
        del self.notes[notes:]
        del self.secrets[secrets:]

    def lines(self) -> list[str]:
        """The notes as `where:LINE: message`, in file order (line 0: about the whole file)."""
        return [
            f"{self.where}:{line}: {message}" if line else f"{self.where}: {message}"
            for line, message in sorted(self.notes)
        ]

    def secret_lines(self) -> list[str]:
        """One line per variable to set: its name, and where the value is in the source."""
        width = max((len(var.name) for var in self.secrets), default=0)
        out = []
        for var in self.secrets:
            source = (
                f" (Alertmanager read it from the file {var.from_file})" if var.from_file else ""
            )
            out.append(f"  {var.name.ljust(width)}  {var.origin}, line {var.line}{source}")
        return out
