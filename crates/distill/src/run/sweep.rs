//! Sweeps: every recipe × every teacher/student pair × every seed, one results table.

use std::path::PathBuf;

use super::device::training_device;
use super::experiment::{check_plan, check_run_dir, load_data, run_experiment, RunOptions};
use crate::config::{Plan, SweepConfig};
use crate::error::{DistillError, Result};
use crate::report::{plot_bars, Bar, Report};
use crate::train::checkpoint::write_atomic;

/// Runs a sweep: checks every pair's experiment first, then runs them one after another (each
/// in `ROOT/pairN/`, resumable), and writes the combined `results.md`, `results.csv`,
/// `results.json` and `bars.svg` into the sweep folder.
pub fn run_sweep(cfg: &SweepConfig, opts: &RunOptions) -> Result<Report> {
    let root = opts
        .run_dir
        .clone()
        .unwrap_or_else(|| cfg.output_dir.join(&cfg.name));
    if opts.resume && !root.join("sweep.toml").exists() {
        return Err(DistillError::Config(format!(
            "--resume: {} holds no sweep to continue (no sweep.toml there); check the folder name, or drop --resume to start a new sweep",
            root.display()
        )));
    }
    if root.join("sweep.toml").exists() && !opts.resume {
        return Err(DistillError::Config(format!(
            "sweep folder {} already holds a sweep; pass --resume to continue it, or change `name` / --out (nothing was overwritten)",
            root.display()
        )));
    }
    let plans: Vec<(String, Plan)> = cfg
        .expand()?
        .into_iter()
        .map(|(name, e)| e.validate().map(|p| (name, p)))
        .collect::<Result<_>>()?;
    let device = training_device(cfg.backend)?;
    let pair_dir = |i: usize| root.join(format!("pair{}", i + 1));
    // Every pair is checked (settings, and with --resume its folder) before anything is written.
    for (i, (_, plan)) in plans.iter().enumerate() {
        let dir = pair_dir(i);
        check_run_dir(
            &dir,
            opts.resume && dir.join("resolved.toml").exists(),
            plan,
        )?;
        check_plan(plan, &load_data(plan)?, &device, opts)?;
    }
    std::fs::create_dir_all(&root)
        .map_err(|e| DistillError::io("creating sweep folder", &root, e))?;
    write_atomic(
        &root.join("sweep.toml"),
        toml::to_string_pretty(cfg)
            .expect("sweep serialises")
            .as_bytes(),
    )?;

    let mut rows = Vec::new();
    let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
    for (i, (pair, plan)) in plans.iter().enumerate() {
        opts.progress
            .line(&format!("sweep: pair {}/{}: {pair}", i + 1, plans.len()));
        // A recipe that diverges is recorded in the table; the sweep goes on.
        let dir = pair_dir(i);
        let sub = RunOptions {
            // A pair added to the sweep file since the last run starts fresh.
            resume: opts.resume && dir.join("resolved.toml").exists(),
            run_dir: Some(dir),
            keep_going: true,
            ..opts.clone()
        };
        let report = run_experiment(plan, &sub)?;
        groups.push((
            pair.clone(),
            report
                .rows
                .iter()
                .filter(|r| r.best.0.is_finite())
                .map(|r| (r.name.clone(), 100.0 * r.best.0, 100.0 * r.best.1))
                .collect(),
        ));
        rows.extend(report.rows.into_iter().map(|mut r| {
            r.name = format!("{pair} · {}", r.name);
            r
        }));
    }
    let report = Report {
        title: cfg.name.clone(),
        metric: Default::default(),
        rows,
    };
    report.write(&root)?;
    plot_bars(&root.join("bars.svg"), &cfg.name, &groups)?;
    Ok(report)
}

/// The folder a sweep writes to.
pub fn sweep_dir(cfg: &SweepConfig, out: Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| cfg.output_dir.join(&cfg.name))
}
