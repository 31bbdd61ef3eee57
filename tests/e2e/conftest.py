from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """One fresh cache for the end-to-end tests: the first to need the demo model trains it, as on a fresh
    machine, and the others reuse it as a user's second command would."""
    return tmp_path_factory.mktemp("crosscam-cache")
