"""Free loopback ports for the processes and dead addresses the tests need.

A port the kernel hands out for ``bind(0)`` lies in its ephemeral range (32768-60999 by
default), which outgoing connections (Kafka and PostgreSQL clients) also draw their
source ports from: between the probe closing it and a child process binding it, one of
them can take it. These ports come from 10000-14999 instead, below that range and apart
from the stack's (15432, 18000s, 19092) and the fault tests' private blocks (20000-31999).
"""

from __future__ import annotations

import random
import socket

__all__ = ["free_port", "port_free"]

LOW, HIGH = 10_000, 14_999


def port_free(port: int) -> bool:
    """True when nothing is bound to ``port`` on the loopback address."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing is bound to (for a child to listen on, or to refuse)."""
    for _ in range(200):
        port = random.randint(LOW, HIGH)
        if port_free(port):
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")
