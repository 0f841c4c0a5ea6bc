from cdinn.model.simulate import simulate

N = 5000


def test_simulator_throughput(benchmark):
    """Target: >= 5,000 patterns/s on 2 cores (read patterns_per_s from the saved run)."""
    benchmark.extra_info["patterns_per_call"] = N
    batch = benchmark.pedantic(simulate, args=(N, 1), rounds=5, warmup_rounds=1)
    assert batch.diffraction.shape == (N, 32, 32)
    if benchmark.stats:
        benchmark.extra_info["patterns_per_s"] = N / benchmark.stats.stats.median
