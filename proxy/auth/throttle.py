"""Failed-login throttling per client address, so a password flood costs bcrypt time for a few attempts only."""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from proxy.errors import TooManyRequests

MAX_TRACKED_CLIENTS = 10_000  # addresses remembered at once; the least recently seen is forgotten first


class FailureLimiter:
    """At most `max_failures` unsuccessful password checks per client address within `window` seconds.

    An attempt takes a slot when its check starts (so a burst of concurrent wrong passwords is limited before
    bcrypt runs, not after) and gives it back when the password turns out right. Only the address that failed
    is throttled: a legitimate user elsewhere, and tokens from anywhere, are unaffected.
    """

    def __init__(self, max_failures: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def reserve(self, client: str) -> float:
        """Take a slot for one password check; returns its ticket for forgive().

        Raises TooManyRequests (with the seconds until a slot frees up) when the client has none left.
        """
        now = self._clock()
        attempts = self._attempts.setdefault(client, deque())
        self._attempts.move_to_end(client)
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
        if len(attempts) >= self._max:
            retry = max(1, math.ceil(attempts[0] + self._window - now))
            raise TooManyRequests(f"Too many failed logins from your address; retry in {retry} s.", retry_after=retry)
        attempts.append(now)
        while len(self._attempts) > MAX_TRACKED_CLIENTS:
            self._attempts.popitem(last=False)
        return now

    def forgive(self, client: str, ticket: float) -> None:
        """The check with this ticket succeeded: it does not count as a failure."""
        attempts = self._attempts.get(client)
        if attempts is not None:
            with contextlib.suppress(ValueError):  # expired or forgotten meanwhile
                attempts.remove(ticket)
            if not attempts:
                del self._attempts[client]
