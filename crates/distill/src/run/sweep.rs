//! Sweeps: every recipe × every teacher/student pair × every seed, one results table.

use std::path::{Path, PathBuf};

use super::device::training_device;
use super::experiment::{check_plan, check_run_dir, load_data, run_experiment, RunOptions};
use crate::config::{Plan, SweepConfig};
use crate::error::{DistillError, Result};
use crate::report::{plot_bars, Bar, Report};
use crate::train::checkpoint::write_atomic;

/// One slice of a sweep's grid: `index` of `count` (1-based), for spreading a sweep over the
/// tasks of a cluster job array. Slice `i` runs the pairs `k` (0-based) with `k mod count = i - 1`,
/// so every pair is in exactly one slice whatever the machines, and the slices' folders merge
/// into one table ([`merge_sweep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = DistillError;

    /// Parses `i/n`, `1 ≤ i ≤ n`.
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || {
            DistillError::Config(format!(
                "--shard takes i/n with 1 ≤ i ≤ n (e.g. 2/8, or $SLURM_ARRAY_TASK_ID/8), got {s:?}"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether pair `k` (0-based) is in this slice.
    pub fn has(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }
}

/// Runs a sweep: checks every pair's experiment first, then runs them one after another (each
/// in `ROOT/pairN/`, resumable), and writes the combined `results.md`, `results.csv`,
/// `results.json` and `bars.svg` into the sweep folder. With `shard`, only that slice's pairs
/// run (in the same `pairN/` folders) and no combined table is written: [`merge_sweep`] makes it
/// once every slice is done.
pub fn run_sweep(cfg: &SweepConfig, opts: &RunOptions) -> Result<Report> {
    run_sweep_shard(cfg, opts, None)
}

/// [`run_sweep`] for one slice of the grid (`None`: all of it).
pub fn run_sweep_shard(
    cfg: &SweepConfig,
    opts: &RunOptions,
    shard: Option<Shard>,
) -> Result<Report> {
    let root = opts
        .run_dir
        .clone()
        .unwrap_or_else(|| cfg.output_dir.join(&cfg.name));
    let written = toml::to_string_pretty(cfg).expect("sweep serialises");
    let existing = std::fs::read_to_string(root.join("sweep.toml")).ok();
    // A slice may be the first of its sweep to start: --resume then starts it fresh, so one
    // job-array script (always with --resume) serves first runs and reruns.
    if opts.resume && existing.is_none() && shard.is_none() {
        return Err(DistillError::Config(format!(
            "--resume: {} holds no sweep to continue (no sweep.toml there); check the folder name, or drop --resume to start a new sweep",
            root.display()
        )));
    }
    match (&existing, shard) {
        // Slices of one sweep share its folder: another slice may have written the same file.
        (Some(text), Some(_)) if *text != written => {
            return Err(DistillError::Config(format!(
                "sweep folder {} holds another sweep file than this one; every slice of a sweep must run the same file (or use another --out)",
                root.display()
            )))
        }
        (Some(_), None) if !opts.resume => {
            return Err(DistillError::Config(format!(
                "sweep folder {} already holds a sweep; pass --resume to continue it, or change `name` / --out (nothing was overwritten)",
                root.display()
            )))
        }
        _ => {}
    }
    let plans: Vec<(String, Plan)> = cfg
        .expand()?
        .into_iter()
        .map(|(name, e)| e.validate().map(|p| (name, p)))
        .collect::<Result<_>>()?;
    let device = training_device(cfg.backend)?;
    let pair_dir = |i: usize| root.join(format!("pair{}", i + 1));
    let mine = |i: usize| shard.is_none_or(|s| s.has(i));
    // Every pair is checked (settings, and with --resume its folder) before anything is written.
    for (i, (_, plan)) in plans.iter().enumerate().filter(|(i, _)| mine(*i)) {
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
    write_atomic(&root.join("sweep.toml"), written.as_bytes())?;

    let mut reports = Vec::new();
    for (i, (pair, plan)) in plans.iter().enumerate() {
        if !mine(i) {
            continue;
        }
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
        reports.push((pair.clone(), run_experiment(plan, &sub)?));
    }
    let (report, groups) = combine(cfg, reports);
    match shard {
        None => {
            report.write(&root)?;
            plot_bars(&root.join("bars.svg"), &cfg.name, &groups)?;
        }
        Some(s) => opts.progress.line(&format!(
            "sweep slice {}/{} done; when every slice is, `distill sweep {{file}} --merge` writes the table",
            s.index, s.count
        )),
    }
    Ok(report)
}

/// The sweep's table from its pairs' reports (each row named `pair · recipe`), and the bar
/// chart's groups: per pair, each finite row's best accuracy (%).
fn combine(cfg: &SweepConfig, reports: Vec<(String, Report)>) -> (Report, Vec<(String, Vec<Bar>)>) {
    let groups = reports
        .iter()
        .map(|(pair, report)| {
            (
                pair.clone(),
                report
                    .rows
                    .iter()
                    .filter(|r| r.best.0.is_finite())
                    .map(|r| (r.name.clone(), 100.0 * r.best.0, 100.0 * r.best.1))
                    .collect(),
            )
        })
        .collect();
    let report = Report {
        title: cfg.name.clone(),
        metric: reports.first().map(|(_, r)| r.metric).unwrap_or_default(),
        rows: reports
            .into_iter()
            .flat_map(|(pair, report)| {
                report.rows.into_iter().map(move |mut r| {
                    r.name = format!("{pair} · {}", r.name);
                    r
                })
            })
            .collect(),
    };
    (report, groups)
}

/// Builds a sharded sweep's table without training: every pair's `results.json`, found in the
/// sweep folder `root` or in one of `more` (the slices' folders, when they did not share one),
/// combined as [`run_sweep`] would have. Refuses while a pair has no results.
pub fn merge_sweep(cfg: &SweepConfig, root: &Path, more: &[PathBuf]) -> Result<Report> {
    let written = toml::to_string_pretty(cfg).expect("sweep serialises");
    if std::fs::read_to_string(root.join("sweep.toml")).is_ok_and(|t| t != written) {
        return Err(DistillError::Config(format!(
            "--merge: {} holds another sweep file than this one; merge with the file the slices ran",
            root.display()
        )));
    }
    let pairs: Vec<(String, Plan)> = cfg
        .expand()?
        .into_iter()
        .map(|(name, e)| e.validate().map(|p| (name, p)))
        .collect::<Result<_>>()?;
    let mut reports = Vec::new();
    let mut missing = Vec::new();
    for (i, (pair, plan)) in pairs.iter().enumerate() {
        let name = format!("pair{}", i + 1);
        let found = std::iter::once(root)
            .chain(more.iter().map(PathBuf::as_path))
            .map(|d| d.join(&name).join("results.json"))
            .find(|p| p.is_file());
        match found {
            None => missing.push(name),
            Some(path) => {
                // The pair's folder must hold this pair's experiment as the file describes it.
                let dir = path.parent().expect("a pair folder");
                check_run_dir(dir, true, plan)
                    .map_err(|e| DistillError::Config(format!("--merge: {name} ({pair}): {e}")))?;
                let report: Report = std::fs::read(&path)
                    .map_err(|e| DistillError::io("reading", &path, e))
                    .and_then(|b| {
                        serde_json::from_slice(&b).map_err(|e| DistillError::Checkpoint {
                            path: path.clone(),
                            reason: format!("corrupt results.json: {e}"),
                        })
                    })?;
                reports.push((pair.clone(), report));
            }
        }
    }
    if !missing.is_empty() {
        return Err(DistillError::Config(format!(
            "--merge: {} of {} pairs have no results yet ({}) under {}{}; run their slices to the end first",
            missing.len(),
            pairs.len(),
            missing.join(", "),
            root.display(),
            if more.is_empty() { String::new() } else { " or the --from folders".into() }
        )));
    }
    std::fs::create_dir_all(root)
        .map_err(|e| DistillError::io("creating sweep folder", root, e))?;
    write_atomic(
        &root.join("sweep.toml"),
        toml::to_string_pretty(cfg)
            .expect("sweep serialises")
            .as_bytes(),
    )?;
    let (report, groups) = combine(cfg, reports);
    report.write(root)?;
    plot_bars(&root.join("bars.svg"), &cfg.name, &groups)?;
    Ok(report)
}

/// The folder a sweep writes to.
pub fn sweep_dir(cfg: &SweepConfig, out: Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| cfg.output_dir.join(&cfg.name))
}
