"""Data that ships with Atelier (model configs, tokenizer files, built-in models, icons).

A wheel installs this folder as the package `atelier_resources` so that `engine.paths` finds it
without a source checkout; nothing here is code.
"""
