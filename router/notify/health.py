"""How each receiver's deliveries went lately, in this process: the console's health panel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReceiverHealth:
    """A receiver's last delivery that reached its destination, and its last failure."""

    last_success: float | None = None
    last_failure: float | None = None
    last_error: str = ""

    @property
    def failing(self) -> bool:
        """The latest outcome was a failure."""
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure > self.last_success


class DeliveryHealth:
    """Fed by the worker after each delivery attempt; read by the console. Per process: on
    several replicas each knows what it delivered itself."""

    def __init__(self) -> None:
        self._receivers: dict[str, ReceiverHealth] = {}

    def delivered(self, receiver: str, at: float) -> None:
        """A delivery to `receiver` succeeded at `at`."""
        old = self._receivers.get(receiver, ReceiverHealth())
        self._receivers[receiver] = ReceiverHealth(at, old.last_failure, old.last_error)

    def failed(self, receiver: str, at: float, error: str) -> None:
        """A delivery to `receiver` failed at `at` with `error` (already free of secrets)."""
        old = self._receivers.get(receiver, ReceiverHealth())
        self._receivers[receiver] = ReceiverHealth(old.last_success, at, error)

    def of(self, receiver: str) -> ReceiverHealth:
        """What is known of `receiver` (nothing yet: all None)."""
        return self._receivers.get(receiver, ReceiverHealth())
