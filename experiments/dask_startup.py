"""Probe: what a one-worker LocalCluster costs before any frame is processed (cluster start, the first task
with the worker's imports and onnxruntime session, shutdown).

Usage: python experiments/dask_startup.py
"""

import time

from dask.distributed import Client, LocalCluster


def load() -> int:
    from cdinn.host.backends import cached_backend

    cached_backend("onnx", "default", (("threads", 1),))
    return 1


if __name__ == "__main__":
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    started = time.perf_counter()
    client.submit(load).result()
    loaded = time.perf_counter()
    client.close()
    cluster.close()
    print(
        f"cluster start {started - start:.2f} s, first task (imports + session) {loaded - started:.2f} s, "
        f"shutdown {time.perf_counter() - loaded:.2f} s"
    )
