"""Photos as evidence on the case page, and the case's claim pack.

At the return-inspection question the decision form takes photos (a file picker for images,
and this device's camera); they are checked before the decision is sent and kept once it is
accepted (`henpin.evidence`). Below the decision, the case's photos (operators and admins only:
a parcel's label shows the buyer's name and address), a form to add more, and the claim pack
for a SAFE-T claim or A-to-z dispute (`henpin.app.claim_packs`), made on a click (audited) and then
downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from henpin.app.cases import CaseDetail
from henpin.app.claim_packs import ClaimPackRefused, build_claim_pack
from henpin.evidence import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS_PER_CASE,
    MB,
    UPLOAD_TYPES,
    PhotoRefused,
    Upload,
    attach_photos,
    case_photos,
    check_photos,
    read_photo,
)
from ui import display, session
from ui.i18n import t

#: The questions whose form takes photos: the returned item's inspection (asked again when
#: overdue as item-condition-overdue-N).
PHOTO_STEPS = ("item-condition",)


def takes_photos(case: CaseDetail, step: str | None) -> bool:
    return case.type == "return-request" and bool(step) and str(step).startswith(PHOTO_STEPS)


def data_home() -> Path:
    return session.settings().home


def refused_text(refused: PhotoRefused) -> str:
    """A refusal in the operator's language, naming the file."""
    # The file's name as text: a name is the uploader's to choose, and st.error reads markdown.
    return t(f"photo.refused.{refused.code}", name=display.plain(refused.name), **refused.params)


def photo_inputs(form: str, text: str = "photo.upload", fold_camera: bool = True) -> None:
    """Photo inputs inside the st.form `form`: a file picker for images, and the camera (in an
    expander of its own, unless the form is in one already)."""
    st.file_uploader(
        t(text),
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"{form}.photos",
        help=t("photo.upload_help", count=MAX_PHOTOS_PER_CASE, mb=MAX_PHOTO_BYTES // MB),
        max_upload_size=MAX_PHOTO_BYTES // MB,  # the browser refuses larger files at once
    )
    if fold_camera:
        with st.expander(t("photo.camera_open")):
            st.camera_input(t("photo.camera"), key=f"{form}.camera")
    else:
        st.camera_input(t("photo.camera_open"), key=f"{form}.camera")


def uploads_in(form: str) -> list[Upload]:
    """What the form's photo inputs hold, as uploads."""
    files: list[Any] = list(st.session_state.get(f"{form}.photos") or [])
    if (shot := st.session_state.get(f"{form}.camera")) is not None:
        files.append(shot)
    return [Upload(str(f.name), f.getvalue()) for f in files]


def check_form_photos(case_id: int, uploads: list[Upload]) -> str | None:
    """Why the form's photos cannot be kept (in words naming the file), else None."""
    if not uploads:
        return None
    try:
        check_photos(uploads, already=len(case_photos(session.store_url(), case_id)))
    except PhotoRefused as refused:
        return refused_text(refused)
    return None


def keep_form_photos(
    case_id: int, step: str, operator: str, uploads: list[Upload]
) -> tuple[bool, str]:
    """Keep the photos of an accepted decision: whether they were kept, in words."""
    try:
        attach_photos(
            session.store_url(),
            data_home(),
            case_id,
            uploads,
            operator=operator,
            where=session.where(),
            step=step,
        )
    except (PhotoRefused, OSError) as exc:
        why = refused_text(exc) if isinstance(exc, PhotoRefused) else str(exc)
        return False, t("photo.not_kept_after_decision", why=why)
    return True, t("photo.kept", count=len(uploads))


def add_photos_clicked(case_id: int, operator: str) -> None:
    form = f"evidence.{case_id}"
    uploads = uploads_in(form)
    if not uploads:
        st.session_state[f"{form}.result"] = ("warning", t("photo.none_chosen"))
        return
    try:
        attach_photos(
            session.store_url(),
            data_home(),
            case_id,
            uploads,
            operator=operator,
            where=session.where(),
        )
    except PhotoRefused as refused:
        st.session_state[f"{form}.result"] = ("error", refused_text(refused))
        return
    st.session_state[f"{form}.result"] = ("success", t("photo.kept", count=len(uploads)))


def claim_pack_clicked(case_id: int, operator: str) -> None:
    try:
        pack = build_claim_pack(
            session.store_url(), data_home(), case_id, operator=operator, where=session.where()
        )
    except ClaimPackRefused as refused:
        st.session_state[f"claim_pack.{case_id}"] = None
        st.session_state[f"claim_pack.error.{case_id}"] = t(f"claim_pack.refused.{refused.code}")
        return
    st.session_state[f"claim_pack.{case_id}"] = pack


def photos_shown(case: CaseDetail) -> None:
    photos = case_photos(session.store_url(), case.id)
    if not photos:
        st.caption(t("photo.none"))
        return
    home = data_home()
    for column, photo in zip(st.columns(4) * len(photos), photos, strict=False):
        data = read_photo(home, photo)
        caption = t(
            "photo.caption", name=photo.name, who=photo.added_by, at=display.at(photo.added_at)
        )
        if data is None:
            column.warning(t("photo.file_gone", name=photo.name))
        else:
            column.image(data, caption=caption, width=240)


def evidence_part(case: CaseDetail, operator: session.SignedIn) -> None:
    """The case's photos, a form to add more, and its claim pack (operators and admins). Every
    case type has it: an A-to-z claim can come on any order (a parcel refused, a cancellation),
    though photos are asked for only at a return's inspection."""
    st.subheader(t("photo.title"))
    if not operator.can_decide:
        st.caption(t("photo.viewer"))
        return
    photos_shown(case)
    form = f"evidence.{case.id}"
    if (shown := st.session_state.pop(f"{form}.result", None)) is not None:
        {"success": st.success, "warning": st.warning}.get(shown[0], st.error)(shown[1])
    with st.expander(t("photo.add")), st.form(form, clear_on_submit=True):
        photo_inputs(form, "photo.upload_more", fold_camera=False)
        st.form_submit_button(
            t("photo.add_submit"),
            key=f"{form}.submit",
            on_click=session.guarded(add_photos_clicked, "decider"),
            args=(case.id, operator.name),
        )
    st.button(
        t("claim_pack.make"),
        key=f"claim_pack.make.{case.id}",
        help=t("claim_pack.help"),
        on_click=session.guarded(claim_pack_clicked, "decider"),
        args=(case.id, operator.name),
    )
    if error := st.session_state.pop(f"claim_pack.error.{case.id}", None):
        st.error(error)
    pack = st.session_state.get(f"claim_pack.{case.id}")
    if pack is not None:
        st.download_button(
            t("claim_pack.download", name=pack.file_name, count=pack.photos),
            data=pack.data,
            file_name=pack.file_name,
            mime="application/zip",
            key=f"claim_pack.download.{case.id}",
            on_click="ignore",
        )
        for name in pack.missing_photos:
            st.warning(t("photo.file_gone", name=name))
