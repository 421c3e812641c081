"""Training of the models that ship with Atelier, on the procedural shapes world.

`python -m engine.train MODEL` reproduces one from scratch with fixed seeds (a progress bar, a
loss-curve PNG and a training.json record land in the model's folder under resources/models/).
"""
