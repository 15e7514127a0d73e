"""Token buckets for ICMP errors, shaped like the kernel's (per destination and global).

Linux allows one ICMP error per destination every ``icmp_ratelimit`` (1 s) with a burst of 6
(XRLIM_BURST_FACTOR), and at most ``icmp_msgs_per_sec`` (1000) with a burst of ``icmp_msgs_burst`` (50)
in all.
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def allow(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class IcmpRateLimiter:
    def __init__(self, per_dest_interval: float, per_dest_burst: int, global_rate: float,
                 global_burst: int, max_destinations: int) -> None:
        self.per_dest_rate = 1.0 / per_dest_interval if per_dest_interval > 0 else float("inf")
        self.per_dest_burst = per_dest_burst
        self.global_bucket = TokenBucket(global_rate, global_burst)
        self.destinations: OrderedDict[int, TokenBucket] = OrderedDict()
        self.max_destinations = max_destinations

    def allow(self, dst: int, now: float) -> bool:
        bucket = self.destinations.get(dst)
        if bucket is None:
            if len(self.destinations) >= self.max_destinations:
                self.destinations.popitem(last=False)
            bucket = self.destinations[dst] = TokenBucket(self.per_dest_rate, self.per_dest_burst, now)
        else:
            self.destinations.move_to_end(dst)
        return bucket.allow(now) and self.global_bucket.allow(now)
