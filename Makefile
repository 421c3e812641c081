# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
TEST_ENV = QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: run test setup setup-test clean train-builtin

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

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
