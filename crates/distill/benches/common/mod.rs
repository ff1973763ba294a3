//! What the bench binaries share.

use distill::config::Backend;

/// The CLI's allocator (feature `mimalloc`, on by default), so that the benches time what a run does.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// `--backend NAME` (default `flex`), one of `allowed`, named as in the config (`backend = ...`).
#[allow(dead_code)] // not every bench binary picks a backend
pub fn backend_arg(allowed: &[Backend]) -> Backend {
    let name = arg("--backend", "flex");
    allowed
        .iter()
        .copied()
        .find(|b| b.name() == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
            panic!("unknown --backend {name}: one of {}", names.join(", "))
        })
}

/// The median wall time of `reps` calls of `run` after one warm-up call, in milliseconds.
#[allow(dead_code)] // not every bench binary times this way
pub fn median_ms(reps: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
