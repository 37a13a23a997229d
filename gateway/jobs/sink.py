"""Where a finished generation's artefacts go.

``ArtefactSink.store_all`` turns ``Finished`` artefacts into the job's outputs. Without an
artefact store only artefacts given as URLs can complete a job; bytes fail it clearly
(``artefact_store_unavailable``), never a job that completes without audio.
"""

from __future__ import annotations

from gateway.store.store import JobRecord
from providers.base import Artefact, Finished, UpstreamError


class ArtefactStoreUnavailable(UpstreamError):
    code = "artefact_store_unavailable"


class ArtefactSink:
    """The outputs of a ``Finished`` answer, as they are (no store)."""

    async def store_all(self, record: JobRecord, finished: Finished, fmt: str) -> list[Artefact]:
        if finished.streams:
            for stream in finished.streams.values():  # never read: release them
                await stream.aclose()
            raise ArtefactStoreUnavailable(
                "The provider answered with the audio itself; storing it needs the artefact store.",
                provider=record.provider,
            )
        return list(finished.artefacts)
