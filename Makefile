# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
TEST_ENV = QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: run test setup setup-test clean train-builtin dist bundle install-desktop uninstall-desktop

setup:
	$(PYTHON) packaging/setup_env.py --venv $(VENV)

setup-test:
	$(PYTHON) packaging/setup_env.py --venv $(VENV) --extras test

run: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/atelier

test: setup-test
	$(TEST_ENV) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Retrain the built-in model from scratch (fixed seeds) into resources/models/atelier-shapes.
train-builtin: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m engine.train vqgan
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m engine.train flow
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m engine.train detector
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m engine.train controlnet
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m engine.train sr

# The wheel and sdist (resources/ inside, as the package atelier_resources) into dist/.
dist: setup-test
	$(VENV)/bin/python -m build --outdir dist .
	rm -rf atelier.egg-info  # setuptools' build leftover

# The one-folder bundle dist/atelier/ (runs with no Python installed), built in its own venv so
# that nothing from the test tools ends up in it, then started headless by packaging/smoke.py.
BUNDLE_VENV ?= build/bundle-venv
bundle:
	$(PYTHON) packaging/setup_env.py --venv $(BUNDLE_VENV) --extras bundle
	$(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/atelier.spec
	$(BUNDLE_VENV)/bin/python packaging/smoke.py dist/atelier/atelier

# Applications menu entry, "Open with" for projects and PNGs, and the icon, for the current user
# (under $$XDG_DATA_HOME, else ~/.local/share). For the bundle: make install-desktop ATELIER=dist/atelier/atelier
ATELIER ?= $(VENV)/bin/atelier
install-desktop: $(if $(filter $(VENV)/bin/atelier,$(ATELIER)),setup)
	$(ATELIER) install-desktop

uninstall-desktop:
	$(ATELIER) uninstall-desktop

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
