import pytest

from models.training import train_model


@pytest.fixture(scope="session")
def small_model():
    """A quickly trained model on the bundled corpus (fewer controls and posterior draws, no validation)."""
    return train_model(controls=1500, draws=20, seed=7, validate=False)


@pytest.fixture(scope="session")
def retrained():
    """The bundled model trained again from the bundled data, both validation schemes recomputed from the
    data on every population draw (not read from the stored artifact)."""
    document, _, data = train_model()
    return document, data
