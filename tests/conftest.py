import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_config  # noqa: E402
from packet.workers import pool  # noqa: E402


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
