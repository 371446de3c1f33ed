"""The identities alerts are deduplicated by: Alertmanager's label fingerprints, and
digests that keep apart alerts a sender gave one fingerprint."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping


def fingerprint(*parts: str) -> str:
    """A stable 16-hex identity, the same width as Alertmanager's fingerprints."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:16]


# FNV-1a, 64 bits, as Prometheus hashes label sets.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = 2**64 - 1
_HEX = frozenset("0123456789abcdef")
# Encodes to the 0xff byte Prometheus puts after each label name and value.
_SEPARATOR = "\udcff"


def _label_bytes(labels: Iterable[tuple[str, str]]) -> bytes:
    # Label names sorted, each name and value followed by the separator byte.
    pairs = sorted(labels)
    try:
        text = "".join([f"{name}{_SEPARATOR}{value}{_SEPARATOR}" for name, value in pairs])
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate (no JSON body carries one): encoded as it is, never an error.
        parts = [part.encode("utf-8", "surrogatepass") for pair in pairs for part in pair]
        return b"\xff".join(parts) + b"\xff"


def _fnv1a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (Prometheus `LabelSet.Fingerprint`)."""
    return f"{_fnv1a(_label_bytes(labels.items())):016x}"


def is_fingerprint(sent: str) -> bool:
    """Whether `sent` is written as Alertmanager writes fingerprints: 16 lowercase hex."""
    return len(sent) == 16 and _HEX.issuperset(sent)


# Between a sender's fingerprint and a digest of its labels, when it cannot stand alone.
_DISAMBIGUATED = "~"


# Alertmanager re-sends every alert of a group with each change of the group: identities
# computed from labels are remembered for recent label sets, so a repeat costs a lookup.
@functools.lru_cache(maxsize=8192)
def _own(labels: tuple[tuple[str, str], ...]) -> str:
    return f"{_fnv1a(_label_bytes(labels)):016x}"


def _apart(sent: str, labels: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.blake2b(_label_bytes(labels), digest_size=8).hexdigest()
    return f"{sent}{_DISAMBIGUATED}{digest}"


def alert_identity(sent: str, labels: Mapping[str, str], *, shared: bool = False) -> str:
    """The identity an alert is deduplicated, merged and remembered by.

    As in Alertmanager, a sent fingerprint is the alert's identity, and a missing one is
    the labels' own fingerprint. A value that is no fingerprint (a placeholder, another
    scheme) or one `shared` by different alerts of one webhook is kept, followed by a
    digest of the labels, so those alerts stay apart; `as_sent` gives back what was sent.
    Checking every sent fingerprint against its labels would cost a pure-Python hash per
    alert on the webhook path, for the benefit of senders that break their own contract.
    """
    if not sent:
        return _own(tuple(labels.items()))
    if not shared and is_fingerprint(sent):
        return sent
    return _apart(sent, tuple(labels.items()))


def as_sent(identity: str) -> str:
    """The fingerprint the sender sent (or Alertmanager would have) for an alert identity."""
    head, mark, digest = identity.rpartition(_DISAMBIGUATED)
    if mark and len(digest) == 16 and _HEX.issuperset(digest):
        return head
    return identity
