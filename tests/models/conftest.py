import pytest

from models.training import train_model


@pytest.fixture(scope="session")
def small_model():
    """A quickly trained model on the bundled corpus (fewer controls and posterior draws, no validation)."""
    return train_model(controls=1500, draws=20, seed=7, validate=False)
