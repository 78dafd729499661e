"""Templates compiled at set-up (packet.mailings.templates.CompiledTemplates, `make setup`): a fresh
process reads them instead of compiling; an edited template, a file of another jinja or Python, or a
damaged file is compiled again, never used."""

from __future__ import annotations

import jinja2
import pytest

from helpers import make_config
from packet.mailings import templates as templates_module
from packet.mailings.templates import Templates, write_compiled
from packet.service import board


@pytest.fixture
def compiled(tmp_path, monkeypatch):
    """The mailings' and the board's caches in a folder of this test, empty, as in a fresh process."""
    for cache, kind in ((templates_module._COMPILED, "mailings"), (board._COMPILED, "board")):  # noqa: SLF001
        monkeypatch.setattr(cache, "folder", tmp_path / "compiled" / kind)
        monkeypatch.setattr(cache, "_code", {})
    return tmp_path / "compiled"


def _no_compiling(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a template was compiled")

    monkeypatch.setattr(jinja2.Environment, "compile", refuse)


def _fresh_process(monkeypatch):
    monkeypatch.setattr(templates_module._COMPILED, "_code", {})  # noqa: SLF001
    monkeypatch.setattr(board._COMPILED, "_code", {})  # noqa: SLF001


def test_every_template_and_the_boards_are_written_and_read_back_without_compiling(tmp_path, compiled,
                                                                                    monkeypatch):
    config = make_config(tmp_path)
    board.write_compiled(config)
    folder = Templates(config).folder
    sources = sorted(folder.glob("*/*.j2"))
    assert len(list((compiled / "mailings").glob("*.cache"))) == len(sources) > 20
    assert len(list((compiled / "board").glob("*.cache"))) == 3
    compiled_here = {path: Templates(config).env.get_template(path.relative_to(folder).as_posix())
                     for path in sources}

    _fresh_process(monkeypatch)
    _no_compiling(monkeypatch)
    fresh = Templates(config)
    for path, template in compiled_here.items():
        loaded = fresh.env.get_template(path.relative_to(folder).as_posix())
        assert loaded.root_render_func.__code__.co_code == template.root_render_func.__code__.co_code
    assert board.refresh_board(config).is_file()  # the board's pages, from the compiled templates


def test_writing_again_writes_only_what_changed(tmp_path, compiled, monkeypatch):
    config = make_config(tmp_path)
    board.write_compiled(config)
    before = {path: path.stat().st_mtime_ns for path in compiled.rglob("*.cache")}
    _fresh_process(monkeypatch)
    _no_compiling(monkeypatch)
    board.write_compiled(config)  # `make test` runs the set-up each time: nothing to compile
    assert {path: path.stat().st_mtime_ns for path in compiled.rglob("*.cache")} == before


def _one_template_folder(tmp_path, text: str):
    folder = tmp_path / "templates"
    (folder / "en").mkdir(parents=True, exist_ok=True)
    (folder / "en" / "note.md.j2").write_text(text, encoding="utf-8")
    return make_config(tmp_path, templates=folder)


def test_an_edited_template_is_compiled_again(tmp_path, compiled, monkeypatch):
    config = _one_template_folder(tmp_path, "Hello {{ name }}")
    write_compiled(config)
    assert Templates(config).env.get_template("en/note.md.j2").render(name="Ana") == "Hello Ana"
    (tmp_path / "templates" / "en" / "note.md.j2").write_text("Goodbye {{ name }}", encoding="utf-8")
    _fresh_process(monkeypatch)
    assert Templates(config).env.get_template("en/note.md.j2").render(name="Ana") == "Goodbye Ana"


@pytest.mark.parametrize("damage", [b"", b"junk", b"j2\x00" * 40, None],
                         ids=["empty", "not a cache", "garbage", "another jinja's magic"])
def test_a_damaged_or_foreign_file_is_compiled_again(tmp_path, compiled, monkeypatch, damage):
    config = _one_template_folder(tmp_path, "Hello {{ name }}")
    write_compiled(config)
    [cached] = list((compiled / "mailings").glob("*.cache"))
    data = cached.read_bytes()
    cached.write_bytes(damage if damage is not None else b"XX" + data[2:])
    _fresh_process(monkeypatch)
    assert Templates(config).env.get_template("en/note.md.j2").render(name="Ana") == "Hello Ana"


def test_an_unwritable_folder_only_costs_the_compiling(tmp_path, compiled, monkeypatch):
    config = _one_template_folder(tmp_path, "Hello {{ name }}")
    compiled.mkdir()
    (compiled / "mailings").write_text("a file where the folder should be", encoding="utf-8")
    # A process reading: nothing there, the template is compiled in memory.
    assert Templates(config).env.get_template("en/note.md.j2").render(name="Ana") == "Hello Ana"


def test_a_set_up_that_cannot_write_still_compiles(tmp_path, compiled, monkeypatch):
    config = _one_template_folder(tmp_path, "Hello {{ name }}")
    compiled.mkdir()
    (compiled / "mailings").write_text("a file where the folder should be", encoding="utf-8")
    write_compiled(config)  # a read-only installation: nothing written, nothing raised
    _fresh_process(monkeypatch)
    assert Templates(config).env.get_template("en/note.md.j2").render(name="Ana") == "Hello Ana"
