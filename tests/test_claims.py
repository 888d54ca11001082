"""Evidence photos and claim packs: what an upload must be to be kept, what a case's claim pack
holds, who may make one, and that the retention purge deletes the photos."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from henpin.accounts import add_operator
from henpin.app.claim_packs import ClaimPackRefused, build_claim_pack
from henpin.cli import main
from henpin.evidence import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS_PER_CASE,
    PhotoRefused,
    Upload,
    attach_photos,
    case_photos,
    check_photo,
    forget_case_photos,
)
from henpin.settings import load_settings
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Case, CasePhoto, Decision, Event
from henpin.store.purge import purge_closed_cases
from tests.test_inbox_support import fresh_store, refund_action, waiting_case

ORDER = "114-0000000-0000801"


def image(fmt: str = "PNG", colour: str = "red", size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


@pytest.fixture
def home() -> Path:
    return load_settings().home


def returned_case(url: str) -> int:
    """A return request whose item came back damaged: inspected, refunded in part."""
    case_id = waiting_case(
        url,
        ORDER,
        timedelta(hours=4),
        type="return-request",
        waiting_step="item-condition",
        choices=["inspected", "escalate"],
        details={
            "reason_code": "DAMAGED_BY_CARRIER",
            "buyer_comment": "Zyxwv says it broke",
            "return": {
                "order_id": ORDER,
                "rma_id": "DzQ7RMA01",
                "reason_code": "DAMAGED_BY_CARRIER",
                "buyer_comment": "Zyxwv says it broke",
                "return_delivery_date": "2026-12-01T09:00:00Z",
            },
        },
    )
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.order_snapshot = {**case.order_snapshot, "buyer_name": "Zyxwv Qutsr"}
        s.add(
            Decision(
                case_id=case_id,
                step="item-condition",
                choice="inspected",
                operator="alice",
                source="inbox",
                data={"condition": "damaged"},
                note="Box crushed, kettle lid cracked",
            )
        )
        s.add(Event(case_id=case_id, kind="note", message="The item came back on 2026-12-01"))
    refund_action(url, case_id, "refund-801", "CustomerReturn", "124.95")
    return case_id


def test_an_upload_is_an_image_by_its_content_not_its_name() -> None:
    kept = check_photo(Upload("lid.jpg", image("JPEG")))
    assert (kept.content_type, kept.extension) == ("image/jpeg", "jpg")
    assert check_photo(Upload("lid.jpeg", image("PNG"))).content_type == "image/png"  # bytes win
    assert check_photo(Upload("box.webp", image("WEBP"))).extension == "webp"

    with pytest.raises(PhotoRefused, match=r"^invoice\.jpg is not a JPEG, PNG or WebP") as bad:
        check_photo(Upload("invoice.jpg", b"%PDF-1.7\n not a photo at all"))
    assert (bad.value.code, bad.value.name) == ("not-an-image", "invoice.jpg")
    cut = image("JPEG", size=(400, 300))[:200]  # a header that promises more than there is
    with pytest.raises(PhotoRefused, match=r"half\.jpg"):
        check_photo(Upload("half.jpg", cut))
    with pytest.raises(PhotoRefused, match=r"anim\.gif"):
        check_photo(Upload("anim.gif", image("GIF")))
    with pytest.raises(PhotoRefused, match=r"empty\.png is empty"):
        check_photo(Upload("empty.png", b""))


def test_a_photo_over_the_size_limit_is_refused_naming_it() -> None:
    big = image("PNG") + b"\0" * MAX_PHOTO_BYTES
    with pytest.raises(PhotoRefused, match=r"^huge\.png is 10\.\d MB; the limit is 10 MB") as e:
        check_photo(Upload("huge.png", big))
    assert e.value.code == "too-large" and e.value.name == "huge.png"


def test_photos_are_kept_with_the_case_counted_and_audited(store: str, home: Path) -> None:
    case_id = returned_case(store)
    photos = [Upload(f"side-{n}.png", image(colour=c)) for n, c in enumerate(["red", "blue"])]
    kept = attach_photos(
        store, home, case_id, photos, operator="alice", where="test", step="item-condition"
    )
    assert [p.name for p in kept] == ["side-0.png", "side-1.png"]
    for photo, upload in zip(kept, photos, strict=True):
        assert (home / photo.file).read_bytes() == upload.data
        assert (home / photo.file).parent == home / "evidence" / f"case-{case_id}"
    assert [p.sha256 for p in case_photos(store, case_id)] == [p.sha256 for p in kept]
    with session_scope(store) as s:
        audited = s.scalars(select(AuditEntry).where(AuditEntry.action == "photos-attached")).one()
        assert (audited.actor, audited.target, audited.detail["photos"]) == (
            "alice",
            f"case {case_id}",
            2,
        )
        line = s.scalars(select(Event).where(Event.kind == "photos-attached")).one()
        assert "side-0.png, side-1.png" in line.message

    room = MAX_PHOTOS_PER_CASE - 2
    more = [Upload(f"more-{n}.png", image(colour=(n, 0, 0))) for n in range(room + 1)]  # type: ignore[arg-type]
    with pytest.raises(PhotoRefused, match=f"at most {MAX_PHOTOS_PER_CASE} photos; it has 2"):
        attach_photos(store, home, case_id, more, operator="alice", where="test")
    bad = [Upload("ok.png", image()), Upload("notes.png", b"just text")]
    with pytest.raises(PhotoRefused, match=r"notes\.png"):
        attach_photos(store, home, case_id, bad, operator="alice", where="test")
    assert len(case_photos(store, case_id)) == 2  # nothing of a refused batch is kept


def test_viewers_attach_nothing_and_make_no_claim_pack(store: str, home: Path) -> None:
    case_id = returned_case(store)
    add_operator(store, "victor", "viewer-password-1", role="viewer")
    with pytest.raises(PhotoRefused, match="victor is not an active operator or admin"):
        attach_photos(
            store, home, case_id, [Upload("a.png", image())], operator="victor", where="test"
        )
    with pytest.raises(ClaimPackRefused, match="victor is not an active operator or admin"):
        build_claim_pack(store, home, case_id, operator="victor", where="test")
    with pytest.raises(ClaimPackRefused, match="no case 999"):
        build_claim_pack(store, home, 999, operator="alice", where="test")
    assert not (home / "evidence").exists()


def test_the_claim_pack_holds_photos_order_return_refunds_timeline_decisions(
    store: str, home: Path
) -> None:
    case_id = returned_case(store)
    lid = image("JPEG", colour="green")
    attach_photos(
        store,
        home,
        case_id,
        [Upload("Lid cracked!.jpg", lid), Upload("box.png", image())],
        operator="alice",
        where="test",
        step="item-condition",
    )
    pack = build_claim_pack(store, home, case_id, operator="alice", where="inbox 127.0.0.1")
    assert pack.file_name == f"claim-pack-case-{case_id}-{ORDER}.zip" and pack.photos == 2
    files = zipfile.ZipFile(io.BytesIO(pack.data))
    assert sorted(files.namelist()) == [
        "case.json",
        "claim.txt",
        "photos/01-Lid_cracked.jpg",
        "photos/02-box.png",
    ]
    assert files.read("photos/01-Lid_cracked.jpg") == lid
    facts = json.loads(files.read("case.json"))
    assert facts["case"]["order_id"] == ORDER and facts["case"]["type"] == "return-request"
    assert facts["order"]["items"][0]["sku"] == "KETTLE-JP-01"
    assert facts["return"]["rma_id"] == "DzQ7RMA01"
    assert facts["facts"]["reason_code"] == "DAMAGED_BY_CARRIER"
    [refund] = facts["refunds"]
    assert refund["refund"]["items"][0]["components"][0]["amount"] == "124.95"
    assert [(d["choice"], d["fields"]) for d in facts["decisions"]] == [
        ("inspected", {"condition": "damaged"})
    ]
    assert any("came back on 2026-12-01" in e["message"] for e in facts["timeline"])
    assert [p["file"] for p in facts["photos"]] == [
        "photos/01-Lid_cracked.jpg",
        "photos/02-box.png",
    ]
    text = files.read("claim.txt").decode()
    assert f"Claim pack for order {ORDER}" in text
    assert "Return (RMA) id: DzQ7RMA01" in text
    assert "Condition recorded at inspection: damaged" in text
    assert "Principal 124.95 EUR" in text
    assert "Manage SAFE-T Claims" in text
    everything = repr(facts) + text
    assert "Zyxwv" not in everything  # the buyer's name and words stay out

    with session_scope(store) as s:
        audited = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "claim-pack-exported")
        ).one()
        assert (audited.actor, audited.source, audited.detail) == (
            "alice",
            "inbox 127.0.0.1",
            {"photos": 2, "missing_photos": 0},
        )


def test_henpin_claim_pack_writes_the_zip(
    store: str, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = returned_case(store)
    attach_photos(
        store, home, case_id, [Upload("lid.png", image())], operator="alice", where="test"
    )
    out = tmp_path / "pack.zip"
    assert (
        main(["claim-pack", str(case_id), "--out", str(out), "--operator", "alice", "--json"]) == 0
    )
    said = json.loads(capsys.readouterr().out)
    assert said["written"] is True and said["photos"] == 1 and said["bytes"] == out.stat().st_size
    assert "photos/01-lid.png" in zipfile.ZipFile(out).namelist()
    assert main(["claim-pack", "999", "--out", str(tmp_path / "x.zip"), "--operator", "alice"]) == 1
    assert "There is no case 999. Nothing was written." in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()
    with session_scope(store) as s:
        sources = s.scalars(
            select(AuditEntry.source).where(AuditEntry.action == "claim-pack-exported")
        ).all()
    assert sources == ["cli"]


def test_the_purge_deletes_the_photos_with_the_buyer_data(store: str, home: Path) -> None:
    case_id = returned_case(store)
    kept = attach_photos(
        store, home, case_id, [Upload("lid.png", image())], operator="alice", where="test"
    )
    photo = home / kept[0].file
    now = datetime.now(UTC)
    with session_scope(store) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.closed_at = "closed", now - timedelta(days=400)

    plan = purge_closed_cases(store, now, 30, dry_run=True)
    assert plan.places["photos"] == 1 and photo.exists()  # a dry run deletes nothing

    report = purge_closed_cases(store, now, 30)
    assert report.case_ids == [case_id] and report.places["photos"] == 1
    assert not photo.exists() and not photo.parent.exists()
    assert case_photos(store, case_id) == []
    with session_scope(store) as s:
        row = s.scalars(select(CasePhoto)).one()
        assert row.purged_at is not None and row.name == "(purged)"
    pack = build_claim_pack(store, home, case_id, operator="alice", where="test")
    assert pack.photos == 0
    assert not any(
        n.startswith("photos/") for n in zipfile.ZipFile(io.BytesIO(pack.data)).namelist()
    )
    with pytest.raises(PhotoRefused, match="was purged"):
        attach_photos(
            store, home, case_id, [Upload("late.png", image())], operator="alice", where="test"
        )


def test_photos_pack_and_purge_on_either_database(case_store: str, tmp_path: Path) -> None:
    """The same on SQLite and PostgreSQL: the photo's row, the pack, the purge's deletion."""
    add_operator(case_store, "alice", "a-password-of-twelve")
    case_id = returned_case(case_store)
    home = tmp_path / "data"
    [kept] = attach_photos(
        case_store, home, case_id, [Upload("lid.png", image())], operator="alice", where="test"
    )
    pack = build_claim_pack(case_store, home, case_id, operator="alice", where="test")
    assert zipfile.ZipFile(io.BytesIO(pack.data)).read("photos/01-lid.png") == image()
    now = datetime.now(UTC)
    with session_scope(case_store) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.closed_at = "closed", now - timedelta(days=400)
        forgotten = forget_case_photos(s, [case_id], now, dry_run=False, home=home)
    assert forgotten == 1 and not (home / kept.file).exists()
    assert case_photos(case_store, case_id) == []


def test_the_case_page_shows_photos_and_makes_the_claim_pack_for_operators_only(
    store: str, home: Path
) -> None:
    """AppTest: the photos and the claim pack on a return's case page; viewers see neither."""
    from tests.test_inbox_support import on_page, signed_in, texts

    case_id = returned_case(store)
    attach_photos(
        store, home, case_id, [Upload("lid.png", image())], operator="alice", where="test"
    )
    at = on_page(signed_in(), "case", case=str(case_id))
    assert not at.exception
    assert "Photos and claim pack" in texts(at)
    assert at.get("image")  # the photo is shown
    assert not at.get("download_button")  # made on a click, not on every view
    at = at.button(key=f"claim_pack.make.{case_id}").click().run()
    assert not at.exception
    [download] = at.get("download_button")
    assert f"claim-pack-case-{case_id}-{ORDER}.zip (1 photo(s))" in download.proto.label
    with session_scope(store) as s:
        made = s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "alice")).all()
    assert made.count("claim-pack-exported") == 1

    add_operator(store, "victor", "viewer-password-1", role="viewer")
    viewer = on_page(signed_in("victor", "viewer-password-1"), "case", case=str(case_id))
    assert not viewer.exception
    assert "Photos and claim packs are for operators and admins." in texts(viewer)
    assert not viewer.get("image")
    assert not [b for b in viewer.button if str(b.key).startswith("claim_pack.")]


def test_a_case_opens_by_its_number(store: str) -> None:
    from tests.test_inbox_support import on_page, signed_in

    case_id = returned_case(store)
    at = on_page(signed_in(), "case")
    [number] = [n for n in at.number_input if n.label == "Case number"]
    [submit] = [b for b in at.button if b.label == "Open the case"]
    number.set_value(case_id)
    at = submit.click().run()
    assert not at.exception
    assert at.query_params["case"] in (str(case_id), [str(case_id)])
    assert any(ORDER in str(t.value) for t in at.title)
