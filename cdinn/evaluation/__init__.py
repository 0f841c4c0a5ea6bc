"""Evaluation above the API: ``cdinn evaluate`` (:mod:`cdinn.evaluation.evaluate`) and the studies
(:mod:`cdinn.evaluation.studies`) score the networks through :func:`cdinn.reconstruct`, the path users call;
the physics, metrics and training they measure live in :mod:`cdinn.model`, a floor below, which never imports
them."""
