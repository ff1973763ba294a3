"""What the PyTorch bench scripts share: the median wall time of repeated calls."""
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
