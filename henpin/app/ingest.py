"""`henpin poll`: one ingestion pass now, instead of waiting for its schedule. The ingest flow
reads each watched region's cancel requests, parcels coming back and return requests, and opens
a case for each new one."""

from __future__ import annotations

from flows.ingest import ingest
from tasks.ingest import Opened


def poll_amazon() -> list[Opened]:
    """Run the ingest flow once, in this process; what it found, new cases marked `new`."""
    return ingest()
