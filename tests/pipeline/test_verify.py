"""verify: hashes, page counts, Bates continuity and labels, privileged marks, withheld pages by
content, and byte identity with a rebuild from the archive."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest
from helpers import make_config, make_pdf
from pdfkit import HOSTILE, hostile_pdf, inflating_pdf, tamper
from PIL import Image
from pypdf import PdfReader, PdfWriter
from sealkit import CASE_ID, NOW, WHO, reseal_records, sealable_case

from packet.cli import main
from packet.fsutil import sha256_file
from packet.pdf.inspect import find_active_content
from packet.pipeline.seal import seal_case
from packet.pipeline.verify import verify_submission

PRIVILEGED = "privileged/counsel memo.pdf"
SCAN = "privileged/peer review scan.pdf"
FAX_RELEASABLE = "medical-records/outside clinic fax.pdf"
FAX_WITHHELD = "privileged/faxed utilization review.pdf"
FAX_DUPLICATE = "privileged/clinic fax counsel copy.pdf"
LETTER_RELEASABLE = "correspondence/um letter.pdf"
LETTER_WITHHELD = "privileged/letterhead memo.pdf"
SHORT_NOTE = "privileged/note to file.pdf"
SHORT_NOTE_TEXT = "Counsel advises settling before hearing."  # 40 characters


def _image_pdf(path: Path) -> Path:
    """A scanned page: one noisy image, no text (what a fax of a peer-review record looks like)."""
    import random

    rng = random.Random(7)
    image = Image.new("L", (300, 400))
    image.putdata([rng.randrange(256) for _ in range(300 * 400)])
    buffer = io.BytesIO()
    image.save(buffer, format="PDF", resolution=50)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


FAX_WORDS = ("patient seen for follow up of lumbar pain reports improvement with therapy and medication "
             "committee reviewed criteria denial upheld request fusion imaging stenosis conservative care").split()


def _fax_image(seed: int) -> Image.Image:
    """A faxed text page: a grey letterhead band, lines of words, speckle. Every fax made here has
    the same layout; the words (and so the picture's detail) depend on `seed`."""
    import random

    from PIL import ImageDraw

    rng = random.Random(seed)
    image = Image.new("L", (850, 1100), 250)
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 40, 790, 120), fill=200)
    draw.text((80, 70), "OUTSIDE CLINIC  FAX", fill=0)
    y = 160
    while y < 1000:
        line = " ".join(rng.choice(FAX_WORDS) for _ in range(rng.randrange(5, 15)))
        draw.text((80, y), line.upper() if rng.random() < 0.1 else line, fill=0)
        y += rng.choice((28, 28, 28, 56))
    for _ in range(400):
        x, y = rng.randrange(850), rng.randrange(1100)
        draw.point((x, y), fill=rng.randrange(60, 200))
    return image


def _fax_pdf(path: Path, seed: int, scale: float = 1.0) -> Path:
    image = _fax_image(seed)
    if scale != 1.0:
        image = image.resize((int(850 * scale), int(1100 * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PDF", resolution=100 * scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def _letterhead_pdf(path: Path, text: str) -> Path:
    """A letter on the plan's letterhead: the same logo picture (same bytes) on every letter."""
    import random

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    rng = random.Random(5)
    logo = Image.frombytes("RGB", (200, 80), bytes(rng.getrandbits(8) for _ in range(200 * 80 * 3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawImage(ImageReader(logo), 72, 690, width=150, height=60)
    y = 640
    for line in text.splitlines():
        c.drawString(72, y, line)
        y -= 14
    c.showPage()
    c.save()
    return path


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("sealed") / "root"
    config = make_config(root)
    case_dir = sealable_case(config.paths.inbox)
    _image_pdf(case_dir / SCAN)
    # A faxed record (releasable) and a faxed review (withheld): image-only pages of the same
    # layout, so that only what they show tells them apart; and a privileged note of one line.
    _fax_pdf(case_dir / FAX_RELEASABLE, seed=11)
    _fax_pdf(case_dir / FAX_WITHHELD, seed=12)
    # Counsel's file holds a second, coarser scan of the releasable fax: the same picture.
    _fax_pdf(case_dir / FAX_DUPLICATE, seed=11, scale=0.5)
    make_pdf(case_dir / SHORT_NOTE, [f"Note to file\n{SHORT_NOTE_TEXT}"])
    # The plan's letterhead (one logo image) on a releasable letter and on a privileged memo.
    _letterhead_pdf(case_dir / LETTER_RELEASABLE, "Utilization management letter\nDate: 09/15/2026\n"
                    f"{WHO}\nYour request for lumbar fusion was reviewed by our medical director.")
    _letterhead_pdf(case_dir / LETTER_WITHHELD, "Letterhead memo to counsel\nDate: 09/16/2026\n"
                    f"{WHO}\nThe director asks whether the fusion criteria were applied consistently.")
    # A text file: its PDF is a conversion, archived beside the original for the rebuild.
    (case_dir / "medical-records" / "phone note.txt").write_text(
        f"Telephone encounter note\nDate: 11/02/2026\n{WHO}\nPatient reports worsening back pain.\n")
    with open(case_dir / "overrides.toml", "a") as handle:
        handle.write(f'["{SCAN}"]\ncategory = "plan_statements"\ntitle = "Peer review record"\n')
        handle.write(f'["{FAX_WITHHELD}"]\ncategory = "plan_statements"\ntitle = "Faxed utilization review"\n')
        handle.write(f'["{SHORT_NOTE}"]\ncategory = "plan_statements"\n')
        handle.write(f'["{FAX_DUPLICATE}"]\ncategory = "plan_statements"\n')
        handle.write(f'["{LETTER_WITHHELD}"]\ncategory = "plan_statements"\n')
    seal_case(config, CASE_ID, now=NOW)
    return root


@pytest.fixture
def sealed(sealed_template, tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(sealed_template, root)
    config = make_config(root)
    # For the command line, which takes state/ and archive/ from the environment.
    monkeypatch.setenv("IMR_STATE", str(config.paths.state))
    monkeypatch.setenv("IMR_ARCHIVE", str(config.paths.archive))
    monkeypatch.setenv("IMR_INBOX", str(config.paths.inbox))
    monkeypatch.setenv("IMR_OUTBOX", str(config.paths.outbox))
    monkeypatch.delenv("IMR_CONFIG", raising=False)
    return config, config.paths.outbox / CASE_ID / "submission-01"


def _manifest(submission: Path) -> dict:
    return json.loads((submission / "manifest.json").read_text())


def _write_manifest(submission: Path, manifest: dict) -> None:
    (submission / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def _rehash(submission: Path, name: str) -> None:
    """Make the manifest (and the seal's records of it: archive snapshot, `sealed` audit entry)
    agree with a changed file, so only the content checks can catch it."""
    manifest = _manifest(submission)
    for output in manifest["outputs"]:
        if output["file"] == name:
            output["sha256"] = sha256_file(submission / name)
            if name.endswith(".pdf"):
                output["pages"] = len(PdfReader(submission / name).pages)
    _write_manifest(submission, manifest)
    reseal_records(make_config(submission.parents[2]), submission)


def _doc(manifest: dict, source: str) -> dict:
    return next(d for d in manifest["documents"] if d["source"] == source)


def _verify_cli(submission: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["verify", str(submission), *extra])
    return code, capsys.readouterr().out


def test_untouched_submission_passes_with_rebuild(sealed, capsys):
    config, submission = sealed
    report = verify_submission(submission, config, rebuild=True)
    assert report.ok, report.text()
    assert len(report.checks) == 6 and "byte-identical" in report.checks[-1]
    assert any(check.startswith("no active content and no stream over") for check in report.checks)
    code, out = _verify_cli(submission, capsys, "--rebuild")
    assert code == 0 and out.startswith("OK:")
    events = [json.loads(line) for line in config.audit_log.read_text().splitlines()]
    verified = [e for e in events if e["event"] == "verified"]
    assert verified[-1]["ok"] is True and verified[-1]["rebuild"] is True and verified[-1]["case"] == CASE_ID
    assert not list(config.work_dir.glob("verify-rebuild-*")), "the scratch rebuild is removed"
    converted = list((config.paths.archive / CASE_ID / "submission-01" / "_sealed" / "converted").iterdir())
    manifest = _manifest(submission)
    note = _doc(manifest, "medical-records/phone note.txt")
    # The text file's PDF, and the scans OCR read (the copy with their text layer), are archived.
    scanned = {f"{d['sha256']}.pdf" for d in manifest["documents"] if d["ocr"] is not None}
    assert scanned, "the faxed pages were read by OCR"
    assert sorted(p.name for p in converted) == sorted({f"{note['sha256']}.pdf"} | scanned) and note["packet_pages"]


@pytest.mark.parametrize("name", ["imr-org-packet.pdf", "member-packet.pdf", "annotated-list.csv"])
def test_a_tampered_byte_fails_verify_with_exit_1(sealed, capsys, name):
    _config, submission = sealed
    path = submission / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, out = _verify_cli(submission, capsys)
    assert code == 1
    assert out.startswith("FAILED:")
    assert f"{name}: SHA-256" in out and "does not match" in out


def test_missing_and_unlisted_files_fail(sealed):
    config, submission = sealed
    (submission / "annotated-list.csv").unlink()
    (submission / "extra.pdf").write_bytes(b"%PDF-1.4\n")
    failures = verify_submission(submission, config).failures
    assert any("annotated-list.csv: listed in the manifest but missing" in f for f in failures)
    assert any("extra.pdf: file is not listed" in f for f in failures)


def _alter(original: Path) -> None:
    """Rewrite an archived original with the same page count and one word changed."""
    make_pdf(original, [f"MRI LUMBAR SPINE REPORT\n{WHO}\nFindings: no disc protrusion.",
                        f"MRI LUMBAR SPINE REPORT page two\n{WHO}\nImpression: normal."])


def test_rebuild_fails_when_an_archived_original_is_altered(sealed):
    config, submission = sealed
    original = config.paths.archive / CASE_ID / "submission-01" / "medical-records" / "mri report.pdf"
    _alter(original)
    assert verify_submission(submission, config).ok, "the outputs themselves are untouched"
    report = verify_submission(submission, config, rebuild=True)
    assert not report.ok
    assert any("mri report.pdf" in f and "altered after sealing" in f for f in report.failures), report.failures


def test_rebuild_catches_an_altered_original_even_when_its_hash_list_is_forged(sealed):
    config, submission = sealed
    archive = config.paths.archive / CASE_ID / "submission-01"
    original = archive / "medical-records" / "mri report.pdf"
    before = sha256_file(original)
    _alter(original)
    sums = archive / "_sealed" / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(before, sha256_file(original)))
    report = verify_submission(submission, config, rebuild=True)
    assert any("imr-org-packet.pdf differs from the rebuild" in f for f in report.failures), report.failures


def _copy_page_into(target: Path, source_pdf: Path, page_index: int) -> None:
    writer = PdfWriter(clone_from=target)
    writer.add_page(PdfReader(source_pdf).pages[page_index])
    with open(target, "wb") as handle:
        writer.write(handle)


@pytest.mark.parametrize("recipient", ["member-packet.pdf", "provider-packet.pdf", "annotated-list.pdf"])
def test_a_withheld_page_copied_from_the_packet_is_caught_by_content(sealed, recipient):
    config, submission = sealed
    manifest = _manifest(submission)
    memo = _doc(manifest, PRIVILEGED)
    _copy_page_into(submission / recipient, submission / "imr-org-packet.pdf", memo["packet_pages"][1] - 1)
    _rehash(submission, recipient)  # the hashes agree: only the page content gives it away
    report = verify_submission(submission, config)
    assert any(f.startswith(f"{recipient} page ") and PRIVILEGED in f for f in report.failures), report.failures


def test_a_withheld_page_copied_from_the_original_is_caught_by_content(sealed):
    config, submission = sealed
    original = config.paths.archive / CASE_ID / "submission-01" / PRIVILEGED
    _copy_page_into(submission / "member-packet.pdf", original, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config)
    assert any("member-packet.pdf page" in f and PRIVILEGED in f for f in report.failures), report.failures


def test_a_withheld_scanned_page_without_text_is_caught_by_its_image(sealed):
    config, submission = sealed
    scan = _doc(_manifest(submission), SCAN)
    assert scan["privileged"] and scan["packet_pages"]
    _copy_page_into(submission / "member-packet.pdf", submission / "imr-org-packet.pdf",
                    scan["packet_pages"][0] - 1)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config)
    assert any("member-packet.pdf page" in f and SCAN in f for f in report.failures), report.failures


def test_a_page_of_an_included_document_in_the_member_packet_is_not_a_failure(sealed):
    config, submission = sealed
    mri = _doc(_manifest(submission), "medical-records/mri report.pdf")
    _copy_page_into(submission / "member-packet.pdf", submission / "imr-org-packet.pdf", mri["packet_pages"][0] - 1)
    _rehash(submission, "member-packet.pdf")
    assert verify_submission(submission, config).ok


def test_privileged_mark_must_be_on_every_privileged_page_and_nowhere_else(sealed):
    config, submission = sealed
    manifest = _manifest(submission)
    _doc(manifest, "medical-records/mri report.pdf")["privileged"] = True
    _doc(manifest, PRIVILEGED)["privileged"] = False
    _write_manifest(submission, manifest)
    failures = verify_submission(submission, config).failures
    mri_pages = _doc(manifest, "medical-records/mri report.pdf")["packet_pages"]
    memo_pages = _doc(manifest, PRIVILEGED)["packet_pages"]
    for page in mri_pages:
        assert f"imr-org-packet.pdf page {page}: belongs to a privileged document but does not carry the " \
               "privileged mark" in failures
    for page in memo_pages:
        assert f"imr-org-packet.pdf page {page}: carries the privileged mark but is not a page of a " \
               "privileged document" in failures


def test_bates_gap_overlap_and_page_labels(sealed):
    config, submission = sealed
    manifest = _manifest(submission)
    documents = [d for d in manifest["documents"] if d["packet_pages"]]
    last = documents[-1]
    number = int(last["bates_first"].rsplit("-", 1)[1])
    last["bates_first"] = f"{CASE_ID}-{number + 1:06d}"
    last["bates_last"] = f"{CASE_ID}-{number + last['pages']:06d}"
    _write_manifest(submission, manifest)
    failures = verify_submission(submission, config).failures
    assert any(f.startswith("Bates gap:") for f in failures), failures
    assert any("has page label" in f and f"expected the Bates number {last['bates_first']}" in f for f in failures)


def test_page_labels_in_the_pdf_must_equal_bates_numbers(sealed):
    config, submission = sealed
    packet = submission / "imr-org-packet.pdf"
    writer = PdfWriter(clone_from=packet)
    writer.set_page_label(0, len(writer.pages) - 1, style="/D", start=1)
    with open(packet, "wb") as handle:
        writer.write(handle)
    _rehash(submission, "imr-org-packet.pdf")
    failures = verify_submission(submission, config).failures
    assert any("has page label" in f for f in failures), failures


def test_a_later_submission_must_continue_the_numbering(sealed):
    config, submission = sealed
    copy = submission.parent / "submission-02"
    shutil.copytree(submission, copy)
    manifest = _manifest(copy)
    manifest["submission"], manifest["kind"] = 2, "supplement"
    _write_manifest(copy, manifest)
    failures = verify_submission(copy, config).failures
    next_bates = _manifest(submission)["bates"]["next"]
    assert f"Bates numbers start at 1 but must continue at {next_bates} " \
           f"(submission 1 ended at {next_bates - 1})" in failures


def test_verify_of_a_folder_without_manifest_is_a_usage_problem(sealed, capsys, tmp_path):
    code = main(["verify", str(tmp_path)])
    assert code == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_rebuild_names_library_versions_that_changed(sealed):
    config, submission = sealed
    manifest = _manifest(submission)
    manifest["versions"]["pypdf"] = "0.0.1"
    _write_manifest(submission, manifest)
    failures = verify_submission(submission, config, rebuild=True).failures
    assert "rebuild: manifest.json differs from the rebuild from the archived originals" in failures
    assert any("pypdf 0.0.1 at sealing" in f for f in failures), failures


def test_a_withheld_page_retyped_into_the_member_packet_is_caught_by_its_text(sealed, tmp_path):
    """Same words, different drawing (another page size moves every line): only the text matches."""
    from reportlab.lib.pagesizes import A4

    from sealkit import PRIVILEGED_TEXT

    config, submission = sealed
    retyped = make_pdf(tmp_path / "retyped.pdf",
                       [f"PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION\nMemo from counsel\n{WHO}\n"
                        + PRIVILEGED_TEXT], pagesize=A4)
    _copy_page_into(submission / "member-packet.pdf", retyped, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config)
    assert any("holds the text of withheld document" in f and PRIVILEGED in f for f in report.failures), \
        report.failures


# ------------------------------------------------------------------------------------------------
# Withheld pages re-encoded or retyped; releasable scans and shared boilerplate are not failures
# ------------------------------------------------------------------------------------------------

def _reencoded_page(picture: Image.Image, *, scale: float, quality: int, tmp_path: Path) -> Path:
    """A new page drawing `picture` resized by `scale` and re-compressed as JPEG, at another size."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    width, height = picture.size
    small = picture.convert("RGB").resize((int(width * scale), int(height * scale)), Image.LANCZOS)
    jpeg = io.BytesIO()
    small.save(jpeg, format="JPEG", quality=quality)
    jpeg.seek(0)
    path = tmp_path / "reencoded.pdf"
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawImage(ImageReader(Image.open(jpeg)), 50, 60, width=500, height=500 * height / width)
    c.showPage()
    c.save()
    return path


def _org_picture(submission: Path, source: str) -> tuple[Image.Image, bytes]:
    """The picture of a scanned document's first page in the org packet, and its stream bytes."""
    number = _doc(_manifest(submission), source)["packet_pages"][0]
    page = PdfReader(submission / "imr-org-packet.pdf").pages[number - 1]
    images = list(page.images)
    assert len(images) == 1, "the scanned page draws one picture"
    return images[0].image, images[0].data


@pytest.mark.parametrize("scale, quality", [(0.6, 70), (1.5, 85), (0.35, 50)])
def test_a_reencoded_withheld_scan_in_the_member_packet_is_caught(sealed, tmp_path, scale, quality):
    config, submission = sealed
    assert _doc(_manifest(submission), FAX_WITHHELD)["privileged"]
    picture, _data = _org_picture(submission, FAX_WITHHELD)
    page_pdf = _reencoded_page(picture, scale=scale, quality=quality, tmp_path=tmp_path)
    injected = PdfReader(page_pdf).pages[0]
    assert not injected.extract_text().strip(), "no text: only the picture can give it away"
    _copy_page_into(submission / "member-packet.pdf", page_pdf, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    pages = len(PdfReader(submission / "member-packet.pdf").pages)
    assert any(f.startswith(f"member-packet.pdf page {pages}:") and FAX_WITHHELD in f and "image" in f
               for f in report.failures), report.failures
    assert all(FAX_WITHHELD in f for f in report.failures), report.failures


def test_a_losslessly_reencoded_noise_scan_is_caught_by_its_pixels(sealed, tmp_path):
    """A picture without structure (noise) is recognised when its pixels survive re-encoding."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    config, submission = sealed
    picture, data = _org_picture(submission, SCAN)
    path = tmp_path / "redrawn.pdf"
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.drawImage(ImageReader(picture.convert("RGB")), 36, 36, width=300, height=400)
    c.showPage()
    c.save()
    assert data not in path.read_bytes()
    _copy_page_into(submission / "member-packet.pdf", path, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert any("member-packet.pdf page" in f and SCAN in f for f in report.failures), report.failures


def test_a_short_withheld_note_retyped_into_the_member_packet_is_caught(sealed, tmp_path):
    from reportlab.lib.pagesizes import A4

    config, submission = sealed
    assert len(SHORT_NOTE_TEXT) == 40 and _doc(_manifest(submission), SHORT_NOTE)["privileged"]
    retyped = make_pdf(tmp_path / "retyped.pdf", [f"Some words first.\n\n{SHORT_NOTE_TEXT}"], pagesize=A4)
    _copy_page_into(submission / "member-packet.pdf", retyped, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert any("member-packet.pdf page" in f and "holds the text of withheld document" in f and SHORT_NOTE in f
               for f in report.failures), report.failures


def test_a_short_withheld_note_pasted_into_the_csv_list_is_caught(sealed):
    config, submission = sealed
    with open(submission / "annotated-list.csv", "a", encoding="utf-8") as handle:
        handle.write(f'99,"{SHORT_NOTE_TEXT}",,,,,,,,,,\r\n')
    _rehash(submission, "annotated-list.csv")
    report = verify_submission(submission, config, audit=False)
    assert any(f.startswith("annotated-list.csv (file): holds the text") and SHORT_NOTE in f
               for f in report.failures), report.failures


def test_untouched_submission_with_releasable_and_withheld_scans_passes(sealed):
    config, submission = sealed
    manifest = _manifest(submission)
    releasable, withheld = _doc(manifest, FAX_RELEASABLE), _doc(manifest, FAX_WITHHELD)
    assert not releasable["privileged"] and not releasable["withheld_from_member"] and releasable["packet_pages"]
    assert withheld["privileged"] and withheld["packet_pages"]
    # The two faxes look alike (same layout) but are different pictures.
    assert _org_picture(submission, FAX_RELEASABLE)[1] != _org_picture(submission, FAX_WITHHELD)[1]
    report = verify_submission(submission, config, audit=False)
    assert report.ok, report.text()


@pytest.mark.parametrize("how", ["copied", "reencoded"])
def test_a_releasable_scan_in_a_mailing_is_not_a_failure(sealed, tmp_path, how):
    """A copy set shows the releasable fax. It resembles the withheld fax in layout, and it is the
    same picture as counsel's coarser scan of it: a picture as like a releasable one as a
    withheld one is no leak."""
    config, submission = sealed
    assert _doc(_manifest(submission), FAX_DUPLICATE)["privileged"]
    if how == "copied":
        page = _doc(_manifest(submission), FAX_RELEASABLE)["packet_pages"][0]
        _copy_page_into(submission / "member-packet.pdf", submission / "imr-org-packet.pdf", page - 1)
    else:
        picture, _data = _org_picture(submission, FAX_RELEASABLE)
        _copy_page_into(submission / "member-packet.pdf",
                        _reencoded_page(picture, scale=0.6, quality=70, tmp_path=tmp_path), 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert report.ok, report.text()


def test_boilerplate_shared_with_withheld_pages_is_not_a_failure(sealed, tmp_path):
    """The member's header, the releasable letter's words and the mark-free title words appear on
    withheld pages too; a page made of them proves nothing."""
    config, submission = sealed
    page = make_pdf(tmp_path / "boilerplate.pdf",
                    [f"Memo from counsel\n{WHO}\nGrievance Resolution Letter\nDate: 10/02/2026\n{WHO}\n"
                     "We have upheld our decision to deny the requested lumbar fusion."])
    _copy_page_into(submission / "member-packet.pdf", page, 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert report.ok, report.text()


def test_an_unrelated_fax_of_the_same_layout_is_not_a_failure(sealed, tmp_path):
    """A picture that only shares the withheld fax's layout (letterhead band, lines of text)."""
    config, submission = sealed
    _copy_page_into(submission / "member-packet.pdf", _fax_pdf(tmp_path / "other fax.pdf", seed=14), 0)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert report.ok, report.text()


def test_a_releasable_letter_on_the_letterhead_of_a_withheld_memo_is_not_a_failure(sealed):
    """The logo is on a withheld page, but also on a releasable one: in a copy set it is no leak.
    The withheld memo itself is still caught (by its text, whatever its logo)."""
    config, submission = sealed
    manifest = _manifest(submission)
    assert not _doc(manifest, LETTER_RELEASABLE)["withheld_from_member"]
    assert _doc(manifest, LETTER_WITHHELD)["privileged"]
    page = _doc(manifest, LETTER_RELEASABLE)["packet_pages"][0]
    _copy_page_into(submission / "member-packet.pdf", submission / "imr-org-packet.pdf", page - 1)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert report.ok, report.text()
    page = _doc(manifest, LETTER_WITHHELD)["packet_pages"][0]
    _copy_page_into(submission / "member-packet.pdf", submission / "imr-org-packet.pdf", page - 1)
    _rehash(submission, "member-packet.pdf")
    report = verify_submission(submission, config, audit=False)
    assert any(LETTER_WITHHELD in f for f in report.failures), report.failures


# --- active content and oversized streams in any output ---------------------------------------------
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_verify_names_the_output_and_the_kind_of_active_content_added_to_it(sealed, kind):
    config, submission = sealed
    for name in ("imr-org-packet.pdf", "member-packet.pdf"):
        tamper(submission / name, kind)
        _rehash(submission, name)  # so only the object scan can catch it
    report = verify_submission(submission, config, audit=False)
    word = HOSTILE[kind][1]
    for name in ("imr-org-packet.pdf", "member-packet.pdf"):
        assert any(f.startswith(f"{name}: active content: ") and word in f for f in report.failures), report.text()
    assert not any(f.startswith("provider-packet.pdf: active content") for f in report.failures)


def test_the_outputs_objects_are_read_in_a_worker_and_here_only_with_one_process(sealed, monkeypatch):
    """An output may have been tampered with: its objects are read in a worker (memory and time
    limits), not in verify's own process; with `[limits] workers = 1` they are read here."""
    import packet.pipeline.verify as verify_module

    config, submission = sealed
    tamper(submission / "imr-org-packet.pdf", "names_javascript")
    _rehash(submission, "imr-org-packet.pdf")
    read_here: list[list[str]] = []
    real_scan = verify_module.scan_outputs

    def not_here(paths, limit, bound):
        read_here.append(list(paths))
        return real_scan(paths, limit, bound)

    monkeypatch.setattr(verify_module, "scan_outputs", not_here)
    monkeypatch.setattr(verify_module._ObjectScan, "IN_PROCESS_BYTES", 0)  # these outputs are small
    report = verify_submission(submission, config, audit=False)
    assert read_here == []
    assert any(f.startswith("imr-org-packet.pdf: active content: ") for f in report.failures), report.text()
    single = dataclasses.replace(config, limits=dataclasses.replace(config.limits, workers=1))
    report = verify_submission(submission, single, audit=False)
    assert len(read_here) == 1 and any(p.endswith("imr-org-packet.pdf") for p in read_here[0])
    assert any(f.startswith("imr-org-packet.pdf: active content: ") for f in report.failures), report.text()


def test_small_outputs_are_read_here_unless_a_worker_is_idle(sealed, monkeypatch):
    """Starting a worker takes longer than reading a few small outputs: they are read here, unless
    an idle worker waits (then there, as large ones always are)."""
    import packet.pipeline.verify as verify_module

    config, submission = sealed
    tamper(submission / "member-packet.pdf", "names_javascript")
    _rehash(submission, "member-packet.pdf")
    read_here: list[int] = []
    real_scan = verify_module.scan_outputs
    monkeypatch.setattr(verify_module, "scan_outputs", lambda *a: read_here.append(1) or real_scan(*a))
    for idle, here in (([], True), ([12345], False)):
        monkeypatch.setattr(verify_module.pool, "idle_pids", lambda role=None, idle=idle: idle)
        read_here.clear()
        report = verify_submission(submission, config, audit=False)
        assert bool(read_here) == here
        assert any(f.startswith("member-packet.pdf: active content: ") for f in report.failures), report.text()


class _Answering:
    """A stand-in worker: answers `wait` with what it was given, in turn (an answer, None for a
    death, or an exception), having used `cpu` seconds of CPU."""

    def __init__(self, *answers, cpu: float = 1e9):
        self.answers, self.cpu, self.stopped = list(answers), cpu, False
        self.started = self.deadline = __import__("time").monotonic()

    def wait(self, deadline=None):
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def cpu_seconds(self):
        return self.cpu

    def stop(self, *, kill):
        self.stopped = True


@pytest.mark.parametrize("answer, why", [(None, "stopped the worker"), ("timeout", "not read within"),
                                         (("error", MemoryError(), True, 0.0), "MemoryError")])
def test_an_object_scan_the_worker_could_not_finish_fails_verify(sealed, answer, why):
    """A worker that died (its memory limit), ran out of time or ran out of memory on the outputs
    leaves every output it was reading as a failure: never as checked."""
    from packet.pipeline.verify import _Checker, _ObjectScan
    from packet.workers.pool import WorkerTimeout

    config, submission = sealed
    single = dataclasses.replace(config, limits=dataclasses.replace(config.limits, workers=1))
    scan = _ObjectScan(submission, {"imr-org-packet.pdf": {}, "member-packet.pdf": {}}, single)
    worker = scan.worker = _Answering(WorkerTimeout() if answer == "timeout" else answer)  # used its CPU
    check = _Checker()
    scan.finish(check)
    assert worker.stopped
    assert len(check.failures) == 2 and all("objects cannot be read" in f and why in f for f in check.failures)
    assert check.checks == []


def test_an_object_scan_starved_of_cpu_at_its_deadline_is_waited_for(sealed, monkeypatch):
    """At its deadline a worker that had little CPU (a busy machine) is given more time, as a
    conversion is; its findings then count."""
    from packet.pipeline import verify as verify_module
    from packet.pipeline.verify import _Checker, _ObjectScan
    from packet.workers.pool import WorkerTimeout

    config, submission = sealed
    single = dataclasses.replace(config, limits=dataclasses.replace(config.limits, workers=1))
    scan = _ObjectScan(submission, {"imr-org-packet.pdf": {}}, single)
    found = [{"oversized": [], "active": ["JavaScript action (object 9)"]}]
    scan.worker = _Answering(WorkerTimeout(), ("ok", found, False, 0.0), cpu=0.0)
    monkeypatch.setattr(verify_module.pool, "give_back", lambda worker, **kw: True)
    monkeypatch.setattr("os.getloadavg", lambda: (40.0, 40.0, 40.0))  # the machine is busy
    check = _Checker()
    scan.finish(check)
    assert check.failures == ["imr-org-packet.pdf: active content: JavaScript action (object 9)"]


def test_verify_fails_an_output_carrying_a_stream_past_the_bound(sealed, tmp_path):
    config, submission = sealed
    bomb = inflating_pdf(tmp_path / "bomb.pdf", 3 * 1024 * 1024)
    writer = PdfWriter(clone_from=submission / "provider-packet.pdf")
    writer.append(bomb)
    writer.write(submission / "provider-packet.pdf")
    _rehash(submission, "provider-packet.pdf")
    assert verify_submission(submission, config, audit=False).ok  # under the default bound (512 MiB)
    small = dataclasses.replace(config, limits=dataclasses.replace(config.limits, max_stream_bytes=2 * 1024 * 1024))
    report = verify_submission(submission, small, audit=False)
    assert [f for f in report.failures if "stream over the size limit" in f] and all(
        f.startswith("provider-packet.pdf: ") for f in report.failures), report.text()


def test_hostile_inputs_are_sealed_clean_and_verify(tmp_path):
    """Every kind of active content in the clerk's files: the sealed submission, the print folder
    and the archive's rebuild carry none of it, and verify passes."""
    config = make_config(tmp_path / "root")
    case_dir = sealable_case(config.paths.inbox)
    for kind in sorted(HOSTILE):
        hostile_pdf(case_dir / "medical-records" / f"clinic note {kind}.pdf", kind,
                    text=f"Clinic note\nDate of service: 10/01/2026\n{WHO}\n{kind}")
    submission = seal_case(config, CASE_ID, now=NOW)
    outputs = sorted(submission.glob("*.pdf")) + sorted((config.paths.outbox / "_print").glob("*.pdf"))
    assert len(outputs) >= 6
    for path in outputs:
        assert find_active_content(PdfReader(path)) == [], path.name
    report = verify_submission(submission, config, audit=False, rebuild=True)
    assert report.ok, report.text()


# ------------------------------------------------------------------------------------------------
# Page texts: pdftotext for every file, else pypdf for every file (one extractor on both sides)
# ------------------------------------------------------------------------------------------------

def _retyped_memo_in_member_packet(submission: Path, tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4

    from sealkit import PRIVILEGED_TEXT

    retyped = make_pdf(tmp_path / "retyped.pdf", [f"Memo from counsel\n{WHO}\n" + PRIVILEGED_TEXT], pagesize=A4)
    _copy_page_into(submission / "member-packet.pdf", retyped, 0)
    _rehash(submission, "member-packet.pdf")


def test_verify_reads_page_texts_with_pdftotext_and_still_finds_marks_and_leaks(sealed, tmp_path, monkeypatch):
    import packet.pipeline.leaks as leaks_module
    import packet.pipeline.verify as verify_module

    def no_pypdf_text(page):
        raise AssertionError("pypdf's text extraction was used")

    monkeypatch.setattr(verify_module, "page_text", no_pypdf_text)
    monkeypatch.setattr(leaks_module, "page_text", no_pypdf_text)
    config, submission = sealed
    report = verify_submission(submission, config)
    assert report.ok, report.text()
    assert any("privileged mark is on all" in check for check in report.checks)
    _retyped_memo_in_member_packet(submission, tmp_path)
    report = verify_submission(submission, config)
    assert any("holds the text of withheld document" in f and PRIVILEGED in f for f in report.failures), \
        report.failures


def test_without_pdftotext_verify_reads_every_file_with_pypdf_and_still_finds_leaks(sealed, tmp_path, monkeypatch):
    import packet.pipeline.pagetext as pagetext_module

    monkeypatch.setattr(pagetext_module.shutil, "which", lambda name: None)
    config, submission = sealed
    report = verify_submission(submission, config)
    assert report.ok, report.text()
    _retyped_memo_in_member_packet(submission, tmp_path)
    report = verify_submission(submission, config)
    assert any("holds the text of withheld document" in f and PRIVILEGED in f for f in report.failures), \
        report.failures
