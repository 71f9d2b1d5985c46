# Fixtures every end-to-end test shares.
import pytest
from simdevice import require_micropython


@pytest.fixture
def work(tmp_path):
    """A scratch folder for the device's config and WAV files; skips without the unix port."""
    require_micropython()
    return str(tmp_path)
