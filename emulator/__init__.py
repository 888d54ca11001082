"""Henpin's SP-API emulator: a local Amazon for demo mode and tests.

It speaks Login with Amazon, Orders API 2026-01-01 (with packages), Feeds API 2021-06-30, Reports
API 2021-06-30 (the returns reports) and Messaging API v1 the way python-amazon-sp-api expects
(throttling, simulated feed and report processing, processing reports), with fault modes, and a
control API under ``/_emulator/`` to load orders and return requests, inject faults and inspect
what Henpin did. Start it with ``emulator.server.EmulatorServer`` or ``henpin emulator``; see
docs/emulator.md.
"""
