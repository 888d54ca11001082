"""Photos an operator attaches to a case as evidence: how a returned item came back, for a
SAFE-T claim or an A-to-z dispute (`henpin.app.claim_packs` packs them).

An upload is taken only when its bytes are an image Henpin accepts (JPEG, PNG or WebP, read by
Pillow from the content: a name ending in .jpg proves nothing), no larger than
`MAX_PHOTO_BYTES`, and while the case holds fewer than `MAX_PHOTOS_PER_CASE`; a refusal names
the file and says what to do. The bytes are kept as uploaded (evidence is not re-encoded) in
`HENPIN_HOME/evidence/case-<id>/<sha256>.<ext>`, one row per photo in `case_photos`, a line on
the case's timeline and one in the audit log. The retention purge deletes the files with the
case's personal data (`forget_case_photos`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from henpin.accounts import audit, find_operator
from henpin.store.db import session_scope
from henpin.store.models import Case, CasePhoto, Event

MAX_PHOTO_BYTES = 10 * 2**20  # 10 MB (MiB): a phone's full-size JPEG fits; a video does not
MB = 2**20
MAX_PHOTOS_PER_CASE = 12
MAX_PIXELS = 60_000_000  # above this Pillow's decoder is a denial-of-service risk
#: Pillow's format name → (content type, file extension).
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]  # what the inbox's file picker offers
FOLDER = "evidence"
PHOTOS_ATTACHED = "photos-attached"  # audit action and timeline kind


@dataclass(frozen=True)
class Upload:
    """A file as the operator gave it: its name and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class CheckedPhoto:
    name: str
    data: bytes
    content_type: str
    extension: str
    sha256: str


@dataclass(frozen=True)
class PhotoView:
    """A photo of a case as the inbox, the CLI and the claim pack see it."""

    id: int
    case_id: int
    step: str | None
    file: str  # relative to the data folder
    name: str
    content_type: str
    size: int
    sha256: str
    added_by: str
    added_at: datetime
    purged: bool


class PhotoRefused(Exception):
    """An upload (or all of them) refused; `code` names why, `name` the file (for the inbox's
    translated message), the text says it in English."""

    def __init__(self, code: str, message: str, name: str = "", **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.params = params


def check_photo(upload: Upload) -> CheckedPhoto:
    """The upload as a photo Henpin keeps, or PhotoRefused naming the file."""
    name = upload.name or "photo"
    if not upload.data:
        raise PhotoRefused("empty", f"{name} is empty; choose the photo again.", name)
    if len(upload.data) > MAX_PHOTO_BYTES:
        raise PhotoRefused(
            "too-large",
            f"{name} is {len(upload.data) / MB:.1f} MB; the limit is "
            f"{MAX_PHOTO_BYTES // MB} MB a photo. Take it at a lower resolution.",
            name,
            limit_mb=MAX_PHOTO_BYTES // MB,
        )
    found = _image_format(upload.data)
    if found not in FORMATS:
        raise PhotoRefused(
            "not-an-image",
            f"{name} is not a JPEG, PNG or WebP image (whatever its name says); attach a photo "
            "in one of those formats.",
            name,
        )
    content_type, extension = FORMATS[found]
    digest = hashlib.sha256(upload.data).hexdigest()
    return CheckedPhoto(name[:200], upload.data, content_type, extension, digest)


def _image_format(data: bytes) -> str | None:
    """Pillow's name for the image format of `data`, read and verified from the bytes; None when
    they are no image it can read whole, or one too large to decode safely."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                found = image.format
                image.verify()  # the whole file, not only its header
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    except Image.DecompressionBombWarning:
        return None
    if width * height > MAX_PIXELS:
        return None
    return found


def check_photos(uploads: Sequence[Upload], already: int = 0) -> list[CheckedPhoto]:
    """Each upload checked; refused as a whole when any is refused or they would take the case
    over `MAX_PHOTOS_PER_CASE` (with the `already` kept)."""
    if already + len(uploads) > MAX_PHOTOS_PER_CASE:
        raise PhotoRefused(
            "too-many",
            f"A case keeps at most {MAX_PHOTOS_PER_CASE} photos; it has {already} and "
            f"{len(uploads)} were attached. Choose the {max(MAX_PHOTOS_PER_CASE - already, 0)} "
            "that show the item best.",
            limit=MAX_PHOTOS_PER_CASE,
            already=already,
        )
    return [check_photo(u) for u in uploads]


def photo_path(home: Path, photo: PhotoView) -> Path:
    return home / photo.file


def attach_photos(
    store_url: str,
    home: Path,
    case_id: int,
    uploads: Sequence[Upload],
    *,
    operator: str,
    where: str,
    step: str | None = None,
) -> list[PhotoView]:
    """Keep the uploads as photos of the case: checked, written under the data folder, recorded,
    on the timeline and audited. Only active operators and admins attach; a case whose personal
    data was purged takes no more photos."""
    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        raise PhotoRefused("not-allowed", f"{operator} is not an active operator or admin.")
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        if case is None:
            raise PhotoRefused("no-case", f"There is no case {case_id}.")
        if case.personal_data_purged_at is not None:
            raise PhotoRefused("purged", f"Case {case_id} was purged; it takes no more photos.")
        already = _kept(s, case_id)
    checked = check_photos(uploads, already)
    if not checked:
        return []
    folder = home / FOLDER / f"case-{case_id}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo in checked:
        relative = f"{FOLDER}/case-{case_id}/{photo.sha256}.{photo.extension}"
        _write_once(home / relative, photo.data)
        rows.append(
            CasePhoto(
                case_id=case_id,
                step=step,
                file=relative,
                name=photo.name,
                content_type=photo.content_type,
                size=len(photo.data),
                sha256=photo.sha256,
                added_by=operator,
            )
        )
    names = [p.name for p in checked]
    with session_scope(store_url) as s:
        s.add_all(rows)
        s.add(
            Event(
                case_id=case_id,
                kind=PHOTOS_ATTACHED,
                message=f"{operator} attached {len(rows)} photo(s): {', '.join(names)}",
                data={"operator": operator, "photos": len(rows), "step": step},
            )
        )
        s.flush()
        views = [_view(r) for r in rows]
    audit(
        store_url,
        operator,
        PHOTOS_ATTACHED,
        target=f"case {case_id}",
        where=where,
        detail={"photos": len(rows), "sha256": [p.sha256 for p in checked], "step": step},
    )
    return views


def _write_once(path: Path, data: bytes) -> None:
    """Write the file whole (a temporary name, then renamed), readable by its owner only."""
    if path.exists():
        return  # the same bytes (its name is their hash)
    temporary = path.with_suffix(path.suffix + ".part")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
    temporary.replace(path)


def _kept(s: Session, case_id: int) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(CasePhoto)
            .where(CasePhoto.case_id == case_id, CasePhoto.purged_at.is_(None))
        )
        or 0
    )


def _view(row: CasePhoto) -> PhotoView:
    return PhotoView(
        id=row.id,
        case_id=row.case_id,
        step=row.step,
        file=row.file,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        added_by=row.added_by,
        added_at=row.added_at,
        purged=row.purged_at is not None,
    )


def case_photos(store_url: str, case_id: int) -> list[PhotoView]:
    """The case's photos still kept, in the order they were attached."""
    with session_scope(store_url) as s:
        rows = s.scalars(
            select(CasePhoto)
            .where(CasePhoto.case_id == case_id, CasePhoto.purged_at.is_(None))
            .order_by(CasePhoto.id)
        ).all()
        return [_view(r) for r in rows]


def read_photo(home: Path, photo: PhotoView) -> bytes | None:
    """The photo's bytes; None when its file is gone (the data folder moved or was cleaned)."""
    try:
        return photo_path(home, photo).read_bytes()
    except FileNotFoundError:
        return None


def forget_case_photos(
    s: Session, case_ids: Iterable[int], now: datetime, *, dry_run: bool, home: Path | None = None
) -> int:
    """For the retention purge: delete the files of these cases' photos and mark their rows
    purged (the operator's file name goes too). A dry run deletes nothing. Returns how many
    photos went (or would go). `home`: the data folder, HENPIN_HOME's by default."""
    ids = list(case_ids)
    if not ids:
        return 0
    rows = s.scalars(
        select(CasePhoto).where(CasePhoto.case_id.in_(ids), CasePhoto.purged_at.is_(None))
    ).all()
    if dry_run:
        return len(rows)
    if home is None:
        from henpin.settings import load_settings

        home = load_settings().home
    folders = set()
    for row in rows:
        path = home / row.file
        path.unlink(missing_ok=True)
        folders.add(path.parent)
        row.purged_at = now
        row.name = "(purged)"
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty: another photo of it is still kept
            folder.rmdir()
    return len(rows)
