"""Simulation, network architectures, training, iterative phase retrieval and metrics."""
