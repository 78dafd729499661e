"""Word (.docx, .doc), RTF and ODT files: turned into a PDF by LibreOffice, headless, in a fresh profile.

Owns: the checks made before LibreOffice starts (the real unpacked size of a ZIP-based file), the
profile that keeps macros and linked content off, LibreOffice's own memory limit, and reading the
PDF it produces. Must not: hand LibreOffice the clerk's file name (it gets a copy with a plain name).
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

from packet.intake.convert.limits import check_annotations
from packet.intake.convert.pdf import page_count, page_texts, pdf_title, pictured_pages
from packet.intake.convert.refusals import KIND_NAMES, limit_refusal, megabytes, refusal, too_many_pages
from packet.intake.convert.sniff import unpacked_size
from packet.pdfread import PdfReader

ZIP_KINDS = ("docx", "odt")

# A fresh profile per conversion, seeded so that no macro can run and no linked content is fetched.
_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" \
oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" \
oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" \
oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="UseLocking" oor:op="fuse">\
<value>false</value></prop></item>
</oor:items>
"""


def soffice_command() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _address_space_limit(mib: int):
    """A function for Popen's preexec_fn (the worker is single-threaded): LibreOffice's own memory limit."""
    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
    return apply


def convert_office(path: Path, kind: str, job, work_dir: Path) -> tuple[list[str], str | None, bytes, list[int]]:
    if kind in ZIP_KINDS:
        try:
            unpacked = unpacked_size(path, job.max_office_unpacked_bytes)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise refusal("corrupt", "the file is damaged or incomplete (its internal archive cannot be "
                                     "read)") from exc
        if unpacked > job.max_office_unpacked_bytes:
            raise limit_refusal(f"the file unpacks to more than {megabytes(job.max_office_unpacked_bytes)} MB "
                                "(the limit for an unpacked document)")
    soffice = soffice_command()
    if soffice is None:
        raise refusal("conversion_failed", "LibreOffice is not installed, so Word, RTF and ODT files cannot be "
                                           "converted", "ask the administrator to install LibreOffice; the "
                                           "service will try again", transient=True)
    work_dir.mkdir(mode=0o700, exist_ok=True)
    source = work_dir / f"document.{kind}"  # a plain name: the clerk's file name never reaches LibreOffice
    shutil.copyfile(path, source)
    produced = work_dir / "out" / "document.pdf"
    for attempt in (1, 2):  # a first start of a fresh profile occasionally fails; try once more
        profile = work_dir / f"profile-{attempt}"
        (profile / "user").mkdir(parents=True, exist_ok=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, encoding="utf-8")
        home = work_dir / "home"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("UNO_", "URE_"))}
        env.update(HOME=str(home), TMPDIR=str(home / "tmp"), SAL_USE_VCLPLUGIN="svp", LC_ALL="C.UTF-8")
        # No timeout here: the parent's deadline kills this whole process group, LibreOffice included.
        subprocess.run([soffice, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                        f"-env:UserInstallation={profile.as_uri()}", "--convert-to", "pdf",
                        "--outdir", str(produced.parent), str(source)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=str(work_dir), env=env, check=False,
                       preexec_fn=_address_space_limit(job.office_memory_mib))
        if produced.is_file() and produced.stat().st_size > 0:
            break
    else:
        raise refusal("conversion_failed", f"LibreOffice could not turn the {KIND_NAMES[kind]} file into a PDF "
                                           "(it may be damaged, use features LibreOffice cannot read, or need "
                                           f"more than the {job.office_memory_mib} MB memory limit)")
    pdf_bytes = produced.read_bytes()
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes), strict=False)
        pages = page_count(reader)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise refusal("conversion_failed") from exc
    if pages < 1:
        raise refusal("conversion_failed", f"LibreOffice produced no pages from the {KIND_NAMES[kind]} file")
    if pages > job.max_pages:
        raise too_many_pages(pages, job.max_pages)
    check_annotations(reader)  # a document's hyperlinks become link annotations in the PDF
    texts = page_texts(produced, reader, pages, job.timeout)
    return texts, pdf_title(reader), pdf_bytes, pictured_pages(reader, texts)  # a pasted scan: OCR reads it
