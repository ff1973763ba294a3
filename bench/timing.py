"""What the PyTorch bench scripts share: the median wall time of repeated calls, and the layer benches' command line."""
import time


def median_ms(run, reps):
    """Median milliseconds of `reps` calls of `run` after one warm-up call."""
    run()
    times = []
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


def bench_args(*extra):
    """The layer benches' command line (--batch, --reps, --threads, plus `extra` as
    (flag, default) pairs of ints), parsed; torch is set to that many threads and seed 0."""
    import argparse

    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    for flag, default in extra:
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a
