"""Henpin's SP-API emulator: a local Amazon for demo mode and tests.

It speaks Login with Amazon, Orders API 2026-01-01 and Feeds API 2021-06-30 the way
python-amazon-sp-api expects (throttling, simulated feed processing, processing reports), and a
control API under ``/_emulator/`` to load orders and inspect what Henpin did. Start it with
``emulator.server.EmulatorServer`` or ``henpin emulator``; see docs/emulator.md.
"""
