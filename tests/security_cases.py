"""Inputs SECURITY.md names, shared by every tier that tests them."""

from __future__ import annotations

#: SECURITY 1: each must be refused before any TCP connect, by registration, probe and proxy.
SECURITY_1_HOSTS = [
    "169.254.169.254",
    "[fd00:ec2::254]",
    "169.254.170.2",
    "168.63.129.16",
    "127.0.0.1",
    "127.1",
    "localhost",
    "0.0.0.0",
    "[::]",
    "[::1]",
    "2852039166",
    "0xA9FEA9FE",
    "0251.0376.0251.0376",
    "[::ffff:169.254.169.254]",
    "[::ffff:100.64.0.1]",
    "[::169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
]
