"""Studio fixtures: the engine's tiny models are shared with the GUI tests."""

from tests.engine.conftest import tiny_models, tiny_resources  # noqa: F401 (pytest fixtures)
