"""How many streams one process serves at once: the managed-instances gauge's count (pure)."""

from __future__ import annotations

__all__ = ["ConcurrentStreams"]


class ConcurrentStreams:
    """How many streams this process serves at once, and the most since the last sample.

    Under Lambda Managed Instances one execution environment serves many streams, so Lambda's
    ``ConcurrentExecutions`` no longer counts streams: this gauge does (one sample per environment
    per interval: ``Sum`` over the interval ≈ streams open across the fleet, ``Maximum`` = the
    fullest environment). Plain integers on one event loop: nothing to lock.
    """

    __slots__ = ("open", "peak")

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0

    def started(self) -> None:
        self.open += 1
        if self.open > self.peak:
            self.peak = self.open

    def ended(self) -> None:
        self.open -= 1

    def take_peak(self) -> int:
        """The most streams open at once since the last call; the next interval starts from now."""
        peak, self.peak = self.peak, self.open
        return peak
