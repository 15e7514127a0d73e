"""Happy Eyeballs version 2 (RFC 8305): which address to try next, and when, as a sans-I/O schedule.

The owner asks DNS for AAAA and A at once, feeds each answer in (:meth:`HappyEyeballs.answer`), starts
the connection attempts :meth:`~HappyEyeballs.poll` asks for, and reports how each ends
(:meth:`~HappyEyeballs.connected`, :meth:`~HappyEyeballs.failed`); the first attempt to connect wins and
the others are to be cancelled. Every method takes ``now``, so a fake clock drives the unit tests.

The rules, by section of RFC 8305:

- 3: an A answer that comes before the AAAA answer waits the Resolution Delay (50 ms) for it; a positive
  AAAA answer starts the attempts at once; a negative one leaves IPv4 to go ahead.
- 4: the addresses are ordered by RFC 6724's destination selection as far as a host without a policy
  table needs it (rule 1: a family with no source address or route goes last; rule 6: IPv6 before IPv4),
  then the families interleaved, ``first_family_count`` addresses of the first family first. Addresses
  that arrive later join the list of those not tried yet, in that order.
- 5: one attempt at a time, the next one the Connection Attempt Delay (250 ms) after the last started,
  or at once when an attempt fails (as curl and asyncio's staggered race do; the RFC's delay is there so
  as not to wait on a broken path, and a failed one is known broken). The first to connect wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

IPV4 = 4
IPV6 = 6

RESOLUTION_DELAY = 0.05
"""RFC 8305 section 3: how long an A answer waits for the AAAA answer."""
CONNECTION_ATTEMPT_DELAY = 0.25
"""RFC 8305 section 5: the recommended default between attempts..."""
MIN_ATTEMPT_DELAY = 0.1
"""...at least 100 ms (the recommended minimum; 10 ms is the floor)..."""
MAX_ATTEMPT_DELAY = 2.0
"""...and at most 2 s (section 5)."""


@dataclass(frozen=True, slots=True)
class Config:
    resolution_delay: float = RESOLUTION_DELAY
    attempt_delay: float = CONNECTION_ATTEMPT_DELAY
    first_family_count: int = 1
    """RFC 8305 section 4's "First Address Family Count": addresses of the preferred family tried before
    the other family's first."""

    def __post_init__(self) -> None:
        if not MIN_ATTEMPT_DELAY <= self.attempt_delay <= MAX_ATTEMPT_DELAY:
            raise ValueError(f"the connection attempt delay must be {MIN_ATTEMPT_DELAY:g} to "
                             f"{MAX_ATTEMPT_DELAY:g} s (RFC 8305 section 5)")
        if self.resolution_delay < 0 or self.first_family_count < 1:
            raise ValueError("resolution_delay must be 0 or more and first_family_count at least 1")


class Candidate(NamedTuple):
    family: int
    """IPV4 or IPV6."""
    address: int


class StartAttempt(NamedTuple):
    candidate: Candidate
    why: str
    """"first", "delay" (the last attempt has not connected within the delay) or "failed" (it failed)."""


class CancelAttempt(NamedTuple):
    candidate: Candidate


Action = StartAttempt | CancelAttempt


@dataclass
class HappyEyeballs:
    asked: Sequence[int]
    """The families whose answers are awaited (AAAA for IPV6, A for IPV4); the others never come."""
    now: float
    config: Config = field(default_factory=Config)
    usable: Callable[[int], bool] = lambda _family: True
    """Whether a family has a source address and a route (RFC 6724 rule 1), asked when ordering."""

    def __post_init__(self) -> None:
        self.answered: dict[int, bool] = {}
        """Family -> whether its answer had addresses."""
        self.candidates: list[Candidate] = []
        """Every address known, in the order the answers gave them."""
        self.tried: list[Candidate] = []
        self.in_flight: list[Candidate] = []
        self.failures: list[tuple[Candidate, str]] = []
        self.winner: Candidate | None = None
        self.waiting_since: float | None = None
        """When an A answer began waiting for the AAAA answer (section 3), if one is."""
        self._next_at = self.now
        self._why = "first"

    # ------------------------------------------------------------------ input

    def answer(self, family: int, addresses: Sequence[int], now: float) -> None:
        """The answer for ``family``: its addresses, none for a negative answer or a failed query."""
        if family in self.answered or family not in self.asked:
            return
        self.answered[family] = bool(addresses)
        for address in addresses:
            candidate = Candidate(family, address)
            if candidate not in self.candidates:
                self.candidates.append(candidate)
        if (family == IPV4 and addresses and IPV6 in self.asked and IPV6 not in self.answered
                and not self.tried):
            self.waiting_since = now

    def failed(self, candidate: Candidate, reason: str, now: float) -> None:
        """An attempt failed (refused, unreachable, timed out): the next one may start at once."""
        if candidate in self.in_flight:
            self.in_flight.remove(candidate)
            self.failures.append((candidate, reason))
            self._next_at = now
            self._why = "failed"

    def connected(self, candidate: Candidate, now: float) -> list[Action]:
        """An attempt connected: it wins, and every other attempt is to be cancelled (section 5)."""
        if self.winner is not None or candidate not in self.in_flight:
            return []
        self.winner = candidate
        self.in_flight.remove(candidate)
        cancel: list[Action] = [CancelAttempt(c) for c in self.in_flight]
        self.in_flight.clear()
        return cancel

    # ------------------------------------------------------------------ output

    def poll(self, now: float) -> list[Action]:
        """The attempt to start now, if one is due."""
        if self.winner is not None or not self._may_start(now) or now < self._next_at:
            return []
        nxt = self._next_candidate()
        if nxt is None:
            return []
        why = "first" if not self.tried else self._why
        self.tried.append(nxt)
        self.in_flight.append(nxt)
        self.waiting_since = None
        self._next_at = now + self.config.attempt_delay
        self._why = "delay"
        return [StartAttempt(nxt, why)]

    def next_deadline(self) -> float | None:
        """When :meth:`poll` may have something to do without any new input."""
        if self.winner is not None or self._next_candidate() is None:
            return None
        if not self.tried and not self._may_start(-math.inf):
            if self.waiting_since is None:
                return None  # waiting for an answer, not for a time
            return max(self.waiting_since + self.config.resolution_delay, self._next_at)
        return self._next_at

    @property
    def waiting_for_answers(self) -> bool:
        return any(f not in self.answered for f in self.asked)

    @property
    def exhausted(self) -> bool:
        """Nothing left to try and nothing in flight: every address failed (or none came)."""
        return (self.winner is None and not self.in_flight and not self.waiting_for_answers
                and self._next_candidate() is None)

    def order(self) -> list[Candidate]:
        """Every known address in the order to try them (section 4)."""
        families = sorted({c.family for c in self.candidates},
                          key=lambda f: (not self.usable(f), 0 if f == IPV6 else 1))  # RFC 6724 rules 1, 6
        queues = {f: [c for c in self.candidates if c.family == f] for f in families}
        out: list[Candidate] = []
        if not families:
            return out
        first = families[0]
        out += queues[first][:self.config.first_family_count]
        del queues[first][:self.config.first_family_count]
        turn = families[1:] + families[:1]
        while any(queues.values()):
            for f in turn:
                if queues[f]:
                    out.append(queues[f].pop(0))
        return out

    # ------------------------------------------------------------------ the rules

    def _may_start(self, now: float) -> bool:
        if self.tried:
            return True
        if not self.candidates:
            return False
        if not self.waiting_for_answers or self.answered.get(IPV6):
            return True  # all answers in, or a positive AAAA answer (section 3: go at once)
        if self.waiting_since is None:
            return True  # what is missing is not the AAAA answer
        return now >= self.waiting_since + self.config.resolution_delay

    def _next_candidate(self) -> Candidate | None:
        for c in self.order():
            if c not in self.tried:
                return c
        return None
