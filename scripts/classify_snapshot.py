"""Every classification decision of a fixed set of documents, for checking that a change to
packet/classify/ decides nothing differently, and for timing `describe`.

    python scripts/classify_snapshot.py inputs  INPUTS.pickle        # convert once (slow)
    python scripts/classify_snapshot.py dump    INPUTS.pickle OUT.json
    python scripts/classify_snapshot.py time    INPUTS.pickle [--runs 5]

The inputs: the benchmark's cold case (bench/cases.py, 1,000 pages in 60 documents, OCR off as the
benchmark builds it), the realistic case folders of tests/realistic.py (OCR on), the shared
real-world corpus (OCR off), the generated evaluation set of bench/guards_eval.py, and documents
mixed at random (seeded) from the lines of all of these. The dump holds, per document, every field
of its `Document` and the identity of each page (`page_identities`); compare two dumps with `cmp`
or `diff`. `time` prints the CPU seconds (time.process_time) of `describe` over the benchmark case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench import guards_eval  # noqa: E402
from bench.cases import CaseSpec, generate_pdf_case  # noqa: E402
from packet.classify.identity import page_identities  # noqa: E402
from packet.classify.rules import describe  # noqa: E402
from packet.config import Config, load_config  # noqa: E402
from packet.intake.convert.batch import convert_many, shutdown_pool  # noqa: E402
from packet.intake.folder import read_case_folder  # noqa: E402
from packet.model.case import load_case  # noqa: E402
from packet.model.models import Converted, SourceFile  # noqa: E402

RECEIVED = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.timezone.utc)
MIXED = 400  # documents mixed from the lines of all the others


def _config(root: Path, ocr: bool) -> Config:
    flags = {key: str(root / key) for key in ("inbox", "outbox", "archive", "state")}
    config = load_config(None, flags=flags, environ={})
    return dataclasses.replace(config, ocr=dataclasses.replace(config.ocr, enabled=ocr))


def _converted_folder(case_dir: Path, config: Config) -> list[tuple[SourceFile, Converted]]:
    sources = list(read_case_folder(case_dir).files)
    results = convert_many(sources, config)
    return [(s, r) for s, r in zip(sources, results) if isinstance(r, Converted)]


def collect(out: Path) -> None:
    """Convert every input once and keep (set, source, converted, facts, override) for `dump`."""
    import realistic  # tests/realistic.py

    items: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inbox = root / "inbox"
        inbox.mkdir()
        config = _config(root, ocr=False)
        bench = generate_pdf_case(inbox, CaseSpec("BENCH-1000", 1000, 60))
        facts = load_case(bench.case_dir)
        items += [("bench", s, c, facts, None) for s, c in _converted_folder(bench.case_dir, config)]
        for build in (realistic.standard_case, realistic.spanish_case, realistic.expedited_case,
                      realistic.supplement_case):
            case = build(inbox)
            facts = load_case(case.case_dir)
            converted = _converted_folder(case.case_dir, _config(root, ocr=True))
            items += [("realistic", s, c, facts, None) for s, c in converted]
            case.apply_clerk_fixes()
            overrides = read_case_folder(case.case_dir).overrides
            items += [("realistic+overrides", s, c, facts, overrides[s.relpath])
                      for s, c in converted if s.relpath in overrides]
        corpus = inbox / "CORPUS-1"
        corpus.mkdir()
        for kind in ("pdf", "docx", "text"):
            for path in sorted((ROOT.parent / "shared" / "corpus" / kind).iterdir()):
                (corpus / f"{kind}-{path.name}").write_bytes(path.read_bytes())
        items += [("corpus", s, c, guards_eval.FACTS, None) for s, c in _converted_folder(corpus, config)]
        shutdown_pool()
    generated = [(f"identity {c.name}", c.pages) for c in guards_eval.identity_cases()]
    generated += guards_eval.member_documents()
    for kind in guards_eval.WITHHELD_TITLES:
        generated += guards_eval.withheld_documents(kind) + guards_eval.mention_documents(kind)
    for name, pages in generated:
        source = SourceFile(relpath=f"{name[:60]}.pdf", path=Path("/nonexistent/x.pdf"), size=1, mtime_ns=0)
        converted = Converted(sha256="ab" * 32, pdf_path=Path("/nonexistent/x.pdf"), pages=len(pages),
                              page_texts=tuple(pages), source_kind="pdf")
        items.append(("guards", source, converted, guards_eval.FACTS, None))
    rng = random.Random(17)
    lines = [line for _, _, c, _, _ in items for text in c.page_texts for line in text.splitlines() if line.strip()]
    for index in range(MIXED):
        pages = tuple("\n".join(rng.choice(lines) for _ in range(rng.randint(1, 40)))
                      for _ in range(rng.randint(1, 4)))
        source = SourceFile(relpath=f"mixed/{index:04d}.pdf", path=Path("/nonexistent/x.pdf"), size=1, mtime_ns=0)
        converted = Converted(sha256="cd" * 32, pdf_path=Path("/nonexistent/x.pdf"), pages=len(pages),
                              page_texts=pages, source_kind="pdf")
        items.append(("mixed", source, converted, rng.choice([guards_eval.FACTS, facts, None]), None))
    out.write_bytes(pickle.dumps(items))
    print(f"{len(items)} documents, {sum(c.pages for _, _, c, _, _ in items)} pages -> {out}")


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def dump(inputs: Path, out: Path) -> None:
    config = load_config(None, check_paths=False)
    records = []
    for kind, source, converted, facts, override in pickle.loads(inputs.read_bytes()):
        document = describe(source, converted, facts, override, config, RECEIVED)
        pages = page_identities(facts, converted, RECEIVED.year) if facts is not None else ()
        records.append({"set": kind, "document": _plain(document), "pages": _plain(pages)})
    out.write_text(json.dumps(records, indent=1, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    print(f"{len(records)} documents -> {out}")


def timing(inputs: Path, runs: int) -> None:
    config = load_config(None, check_paths=False)
    bench = [item for item in pickle.loads(inputs.read_bytes()) if item[0] == "bench"]
    seconds = []
    for _ in range(runs):
        start = time.process_time()
        for _, source, converted, facts, override in bench:
            describe(source, converted, facts, override, config, RECEIVED)
        seconds.append(time.process_time() - start)
    shown = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"describe over the bench case ({len(bench)} documents): CPU s {shown}; min {min(seconds):.2f}")


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "inputs":
        collect(Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "dump":
        dump(Path(argv[1]), Path(argv[2]))
    elif len(argv) >= 2 and argv[0] == "time":
        timing(Path(argv[1]), int(argv[3]) if len(argv) > 3 and argv[2] == "--runs" else 5)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
