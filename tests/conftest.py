import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_config  # noqa: E402
from packet.workers import pool  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Files that hold slow tests (kill, corpus, fuzz, load) are collected first: `make test` runs
    two pytest-xdist workers with --dist loadfile, which hand out whole files in collection order,
    so a long file started last would leave one core idle at the end. Order inside a file is kept."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def _no_pooled_conversion_workers():
    """Each test starts without idle conversion workers kept by an earlier one (tests count the
    workers a run starts, and change PATH for fake converters)."""
    pool.shutdown()
    yield


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def corpus_dir():
    path = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    if not path.is_dir():
        pytest.skip("../shared/corpus is not beside the project")
    return path
