"""Studies of the networks, kept apart from the library they measure: the training-recipe ablation, the
refinement curve (quality against ER/HIO iterations) and the noise sweep. Each is a ``cdinn`` command that
writes a report, a table (:mod:`cdinn.model.scoring`) and a figure; the one-off probes behind the design
choices live in ``experiments/`` at the top level."""
