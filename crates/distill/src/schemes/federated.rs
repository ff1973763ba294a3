//! Federated learning, simulated in one process (the survey's §4.8): FedAvg (McMahan et al.,
//! *Communication-Efficient Learning of Deep Networks from Decentralized Data*, AISTATS 2017)
//! and ensemble distillation for robust model fusion, FedDF (Lin et al., NeurIPS 2020).
//!
//! Each `[[student]]` recipe is one federation whose global model is the recipe's student:
//! 1. the training split is divided among `clients` (after setting `server_samples` aside as the
//!    server's unlabeled set): IID, or per class by a Dirichlet(α) draw (Hsu et al. 2019), as in
//!    FedDF's experiments; every client gets at least one sample;
//! 2. each round, `round(participation × clients)` clients, drawn per round, start from the global
//!    model and fit their own share with the task's supervised loss (`[federated.local]`);
//! 3. the server averages the clients' weights by sample count (FedAvg);
//! 4. a recipe with terms then fits the average on the server's unlabeled samples under those
//!    terms, the round's clients being its frozen teachers (FedDF: `mt-kd`, the KL divergence to
//!    the clients' averaged logits), and the result is the next global model. A recipe
//!    without terms is plain FedAvg.
//!
//! Every fit is a generic [`Job`] (same step, loop, checkpoints and interrupts as any phase).
//! Each round's global model is written to `round<r>/global/` with its evaluation; a resumed run
//! skips the finished rounds and resumes the unfinished round's fits from their `last/`. The
//! clients' and the server's folders are removed once the round's global model is written.
//!
//! Simplifications, stated: the clients normalise with the whole training split's statistics;
//! the local fits run their loop's per-epoch test evaluation (unused here); the collapse check
//! is off for local fits, whose non-IID shares make a local model predict few classes by design.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};

use super::offline::sanitize;
use super::{Phase, PhaseOutput, SchemeInfo};
use crate::config::{FederatedPlan, Plan};
use crate::data::loader::mix;
use crate::data::{Dataset, Targets};
use crate::error::{DistillError, Result};
use crate::knowledge::STUDENT;
use crate::models::{average, Net, RoleModel};
use crate::tasks::Task;
use crate::train::checkpoint::{
    load_model_dir, model_files, resolve_dir, write_atomic, write_dir, ModelMeta,
};
use crate::train::{evaluate, DataBundle, EpochRecord, Job, JobOutcome, Progress, Teacher};

/// Catalogue entry.
pub const INFO: SchemeInfo = SchemeInfo {
    name: "federated",
    description: "[federated] clients (IID or Dirichlet-α non-IID) fit the global model locally each round; the server averages them (FedAvg) and, for a recipe with terms, distils the clients' ensemble into the average on its unlabeled samples (FedDF)",
    citation: "McMahan et al., AISTATS 2017 (FedAvg); Lin et al., Ensemble Distillation for Robust Model Fusion in Federated Learning, NeurIPS 2020 (FedDF); Hu et al. 2023, §4.8",
};

/// One phase per recipe, each a federation (see the module documentation).
pub fn phases(plan: &Plan) -> Vec<Phase> {
    plan.students
        .iter()
        .map(|s| Phase {
            name: s.name.clone(),
            dir: PathBuf::from("students").join(sanitize(&s.name)),
            roles: vec![RoleModel {
                name: STUDENT.into(),
                model: s.model.clone(),
                view: s.view.clone(),
            }],
            losses: s.losses.clone(),
            train: s.train.clone(),
            train_limit: None,
            labels: true,
            class_pairs: false,
            seeds: plan.seeds.clone(),
            reads_teachers: false,
            output: PhaseOutput::Rows { teacher: None },
            federation: plan.federated.clone(),
        })
        .collect()
}

/// How the training split is shared: the server's unlabeled samples and each client's.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The server's samples (indices into the training split).
    pub server: Vec<usize>,
    /// Each client's samples.
    pub clients: Vec<Vec<usize>>,
}

/// Splits `train` for a federation at `seed`: `server_samples` random samples for the server,
/// then the rest over the clients, IID (a shuffled, near-equal division) or, with `alpha`, each
/// class's samples by proportions drawn from Dirichlet(α, …, α). A draw that leaves a client
/// fewer than [`MIN_SHARE`] samples is redrawn (up to 100 times).
pub fn split(train: &Dataset, f: &FederatedPlan, seed: u64) -> Result<Split> {
    let n = train.len();
    if f.server_samples + MIN_SHARE * f.clients > n {
        return Err(DistillError::Config(format!(
            "federated: {} training samples cannot give the server {} and each of {} clients at least {MIN_SHARE}; lower server_samples or clients",
            n, f.server_samples, f.clients
        )));
    }
    let mut rng = SmallRng::seed_from_u64(mix(seed, 0xFED, 0));
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let server = order[..f.server_samples].to_vec();
    let rest = &order[f.server_samples..];
    let k = f.clients;
    let clients = match f.alpha {
        None => (0..k)
            .map(|c| rest[c * rest.len() / k..(c + 1) * rest.len() / k].to_vec())
            .collect(),
        Some(alpha) => {
            let Targets::Class(labels) = &train.targets else {
                return Err(DistillError::Config(
                    "federated.alpha splits the classes over the clients, so it needs class labels; remove alpha for an IID split".into(),
                ));
            };
            let classes = train.num_classes;
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
            for &i in rest {
                by_class[labels[i] as usize].push(i);
            }
            let gamma = Gamma::new(alpha, 1.0)
                .map_err(|e| DistillError::Config(format!("federated.alpha = {alpha}: {e}")))?;
            let mut tries = 0;
            loop {
                let mut shares: Vec<Vec<usize>> = vec![Vec::new(); k];
                for members in &by_class {
                    let draws: Vec<f64> = (0..k).map(|_| gamma.sample(&mut rng)).collect();
                    let total: f64 = draws.iter().sum();
                    // Cut points at the cumulative proportions (all to the first client when
                    // every draw underflowed to zero).
                    let mut cum = 0.0;
                    let mut start = 0;
                    for (c, d) in draws.iter().enumerate() {
                        cum += if total > 0.0 {
                            d / total
                        } else {
                            f64::from(u8::from(c == 0))
                        };
                        let end = if c + 1 == k {
                            members.len()
                        } else {
                            ((cum * members.len() as f64).round() as usize).min(members.len())
                        };
                        shares[c].extend_from_slice(&members[start..end.max(start)]);
                        start = end.max(start);
                    }
                }
                if shares.iter().all(|s| s.len() >= MIN_SHARE) {
                    for s in &mut shares {
                        s.shuffle(&mut rng);
                    }
                    break shares;
                }
                tries += 1;
                if tries == 100 {
                    return Err(DistillError::Config(format!(
                        "federated: 100 Dirichlet draws with alpha = {alpha} each left a client fewer than {MIN_SHARE} samples; raise alpha, lower clients, or use more data"
                    )));
                }
            }
        }
    };
    Ok(Split { server, clients })
}

/// The fewest samples a client holds (and the server, when it distils): one sample would make
/// no batch, and a fit of no steps.
pub const MIN_SHARE: usize = 2;

/// The clients that train in round `round` (1-based) at `seed`, in increasing order.
pub fn participants(f: &FederatedPlan, seed: u64, round: usize) -> Vec<usize> {
    let mut rng = SmallRng::seed_from_u64(mix(seed, 0xFED, round as u64));
    let mut all: Vec<usize> = (0..f.clients).collect();
    all.shuffle(&mut rng);
    let mut chosen = all[..f.per_round()].to_vec();
    chosen.sort_unstable();
    chosen
}

/// The data each party trains on.
struct Shares {
    clients: Vec<DataBundle>,
    server: DataBundle,
}

fn shares(data: &DataBundle, f: &FederatedPlan, seed: u64) -> Result<Shares> {
    let s = split(&data.train, f, seed)?;
    let bundle = |train: Dataset| DataBundle {
        train: Arc::new(train),
        class_pairs: false,
        ..data.clone()
    };
    Ok(Shares {
        clients: s
            .clients
            .iter()
            .map(|idx| bundle(data.train.select(idx)))
            .collect(),
        server: bundle(data.train.select(&s.server).without_targets()),
    })
}

/// A client's model as a frozen teacher of the server's fit, named `client<c>` (1-based).
fn client_teacher(c: usize, net: Net, job: &Job<'_>) -> Result<Teacher> {
    let view = job.data.view(&job.roles[0].view)?.clone();
    let plain = job.device.clone().without_autodiff();
    Ok(Teacher {
        name: format!("client{}", c + 1),
        shapes: net.tap_shapes(view.geometry(job.data.geometry()), &plain),
        net,
        view,
        test_predictions: Vec::new(),
        test_scores: Vec::new(),
        cache: None,
        unready: None,
    })
}

/// A fit's plan with the collapse check off: a non-IID share makes a local model predict few
/// classes by design, and an early global model may sit near chance while the server distils.
fn without_collapse_check(plan: &crate::config::TrainPlan) -> crate::config::TrainPlan {
    let mut plan = plan.clone();
    plan.stop_on_collapse = false;
    plan
}

/// A fit derived from the federation's job.
#[allow(clippy::too_many_arguments)]
fn sub_job<'a>(
    job: &Job<'a>,
    label: String,
    dir: PathBuf,
    seed: u64,
    losses: &'a [crate::knowledge::MethodConfig],
    train: &'a crate::config::TrainPlan,
    teachers: &'a [Teacher],
    data: &'a DataBundle,
    start: Option<PathBuf>,
) -> Job<'a> {
    Job {
        label,
        dir,
        seed,
        roles: job.roles.clone(),
        losses,
        train,
        teachers,
        data,
        device: job.device.clone(),
        replicas: Vec::new(),
        resume: job.resume,
        interrupt: job.interrupt.clone(),
        stop_after: None,
        progress: Progress::Quiet,
        start,
    }
}

/// Checks a federation before anything is trained: the split at every seed, a client's fit, and
/// the server's fit against stand-in clients (untrained models of the recipe's architecture).
pub fn check(f: &FederatedPlan, seeds: &[u64], job: Job<'_>) -> Result<()> {
    for &seed in seeds {
        split(&job.data.train, f, seed)?;
    }
    let parts = shares(job.data, f, job.seed)?;
    let supervised = Task::of(&job.data.train).supervised(STUDENT);
    let local = without_collapse_check(&f.local);
    sub_job(
        &job,
        format!("{} client", job.label),
        PathBuf::new(),
        job.seed,
        &supervised,
        &local,
        &[],
        &parts.clients[0],
        None,
    )
    .prepare()?;
    if job.losses.is_empty() {
        return Ok(());
    }
    if f.server_samples < MIN_SHARE {
        return Err(DistillError::Config(format!(
            "{}: the server distils on federated.server_samples = {} samples; give it at least {MIN_SHARE} (e.g. 1000)",
            job.label, f.server_samples
        )));
    }
    let server_plan = without_collapse_check(job.train);
    let view = job.data.view(&job.roles[0].view)?;
    let plain = job.device.clone().without_autodiff();
    let stand_ins = (0..f.per_round())
        .map(|c| {
            let net = job.roles[0].model.build(
                view.geometry(job.data.geometry()),
                job.data.train.num_classes,
                &plain,
            )?;
            client_teacher(c, net, &job)
        })
        .collect::<Result<Vec<_>>>()?;
    sub_job(
        &job,
        format!("{} server", job.label),
        PathBuf::new(),
        job.seed,
        job.losses,
        &server_plan,
        &stand_ins,
        &parts.server,
        None,
    )
    .prepare()
    .map(|_| ())
}

/// Writes `net` with its metadata (and the round's evaluation, if any) to `dir`, atomically.
fn save_model(dir: &Path, net: &Net, meta: &ModelMeta, record: Option<&EpochRecord>) -> Result<()> {
    let mut files = model_files(net, meta, dir)?;
    if let Some(r) = record {
        files.push((
            "round.json",
            serde_json::to_vec_pretty(r).expect("a record serialises"),
        ));
    }
    write_dir(dir, &files)
}

/// Runs one federation (one recipe at one seed) from `job`, the phase's job: its roles, its
/// server objective (`losses`, `train`), the whole data and the seed's folder.
pub fn run(f: &FederatedPlan, job: Job<'_>) -> Result<JobOutcome> {
    let data = job.data;
    let plain = job.device.clone().without_autodiff();
    let parts = shares(data, f, job.seed)?;
    let supervised = Task::of(&data.train).supervised(STUDENT);
    let local = without_collapse_check(&f.local);
    let server_plan = without_collapse_check(job.train);
    let role = &job.roles[0];
    let view = data.view(&role.view)?.clone();
    let meta = ModelMeta {
        config: role.model.clone(),
        input: data.geometry(),
        view: view.clone(),
        classes: data.train.num_classes,
        normalization: data.norm.clone(),
        tokenizer: data.train.tokenizer(),
    };
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| DistillError::io("creating run folder", &job.dir, e))?;
    let mut global_dir = job.dir.join("round0").join("global");
    if resolve_dir(&global_dir).is_none() {
        plain.seed(job.seed);
        let net = role.model.build(
            view.geometry(data.geometry()),
            data.train.num_classes,
            &plain,
        )?;
        save_model(&global_dir, &net, &meta, None)?;
    }
    let bar = job.progress.bar(&job.label, f.rounds as u64, 0);
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best_score = f64::NEG_INFINITY;
    for round in 1..=f.rounds {
        let round_dir = job.dir.join(format!("round{round}"));
        let done_dir = round_dir.join("global");
        if let Some(done) = resolve_dir(&done_dir) {
            // A finished round (resumed run): its record and model stand.
            let path = done.join("round.json");
            let record: EpochRecord = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| DistillError::Checkpoint {
                    path: path.clone(),
                    reason: "missing or corrupt round record".into(),
                })?;
            best_score = best_score.max(record.score());
            history.push(record);
            remove_work(&round_dir)?;
            global_dir = done_dir;
            bar.inc(1);
            continue;
        }
        let started = Instant::now();
        let chosen = participants(f, job.seed, round);
        let mut nets = Vec::with_capacity(chosen.len());
        let mut weights = Vec::with_capacity(chosen.len());
        let mut client_loss = 0.0;
        for &c in &chosen {
            let dir = round_dir.join(format!("client{}", c + 1));
            let outcome = sub_job(
                &job,
                format!("{} round {round} client {}", job.label, c + 1),
                dir.clone(),
                mix(job.seed, round as u64, c as u64 + 1),
                &supervised,
                &local,
                &[],
                &parts.clients[c],
                Some(global_dir.clone()),
            )
            .prepare()?
            .run()?;
            client_loss += outcome.history.last().map_or(f64::NAN, |r| r.train_loss);
            nets.push(load_model_dir(&dir.join("last"), &plain)?.0);
            weights.push(parts.clients[c].train.len() as f64);
        }
        let mut net = average(&nets, &weights)?;
        let mut terms = std::collections::BTreeMap::new();
        terms.insert("clients".to_string(), client_loss / chosen.len() as f64);
        if !job.losses.is_empty() {
            let average_dir = round_dir.join("average");
            save_model(&average_dir, &net, &meta, None)?;
            let teachers = chosen
                .iter()
                .zip(nets)
                .map(|(&c, n)| client_teacher(c, n, &job))
                .collect::<Result<Vec<_>>>()?;
            let dir = round_dir.join("server");
            let outcome = sub_job(
                &job,
                format!("{} round {round} server", job.label),
                dir.clone(),
                mix(job.seed, round as u64, 0),
                job.losses,
                &server_plan,
                &teachers,
                &parts.server,
                Some(average_dir),
            )
            .prepare()?
            .run()?;
            if let Some(r) = outcome.history.last() {
                terms.extend(r.terms.iter().map(|(k, v)| (format!("server {k}"), *v)));
            }
            net = load_model_dir(&dir.join("last"), &plain)?.0;
        }
        let eval = evaluate(&net, &view, &data.test, &data.norm, data.eval_batch, &plain);
        let record = EpochRecord {
            epoch: round,
            init: false,
            lr: local.lr,
            train_loss: terms.values().sum(),
            terms,
            train_acc: None,
            test_acc: eval.accuracy,
            train_rmse: None,
            test_rmse: eval.rmse,
            test_mae: eval.mae,
            test_ndcg: eval.ndcg,
            test_mrr: eval.mrr,
            test_ppl: eval.perplexity,
            test_token_acc: eval.token_accuracy,
            agreement: None,
            teacher_mrr: None,
            peers: Default::default(),
            seconds: started.elapsed().as_secs_f64(),
        };
        save_model(&done_dir, &net, &meta, Some(&record))?;
        if record.score() > best_score {
            best_score = record.score();
            save_model(&job.dir.join("best"), &net, &meta, Some(&record))?;
        }
        remove_work(&round_dir)?;
        let line = format!(
            "{} round {round}/{}: clients {} ({} samples) test {} [{:.1}s]",
            job.label,
            f.rounds,
            chosen
                .iter()
                .map(|c| (c + 1).to_string())
                .collect::<Vec<_>>()
                .join(","),
            weights.iter().sum::<f64>(),
            crate::train::progress::headline(&record),
            record.seconds
        );
        history.push(record);
        write_metrics(&job.dir, &history)?;
        if bar.is_hidden() {
            job.progress.line(&line);
        } else {
            bar.println(line);
        }
        bar.inc(1);
        global_dir = done_dir;
    }
    bar.finish();
    // Again at the end: a run resumed after its last round was written but before its metrics
    // line was lists every round.
    write_metrics(&job.dir, &history)?;
    // The final global model (this run's last round, or the finished one a resume found).
    let (global, _) = load_model_dir(&global_dir, &plain)?;
    let (best_epoch, best) = history
        .iter()
        .filter(|r| r.score() == best_score)
        .map(|r| (r.epoch, r.primary()))
        .next()
        .unwrap_or((0, f64::NAN));
    // A run stopped between a round's global model and best/ left best/ behind: make it the
    // best finished round's model.
    let best_dir = job.dir.join("best");
    let best_round = resolve_dir(&best_dir)
        .and_then(|d| std::fs::read(d.join("round.json")).ok())
        .and_then(|b| serde_json::from_slice::<EpochRecord>(&b).ok())
        .map(|r| r.epoch);
    if best_epoch > 0 && best_round != Some(best_epoch) {
        let (net, _) = load_model_dir(&job.dir.join(format!("round{best_epoch}/global")), &plain)?;
        let record = &history[best_epoch - 1];
        save_model(&best_dir, &net, &meta, Some(record))?;
    }
    let last = history.last().cloned();
    Ok(JobOutcome {
        best,
        best_epoch,
        last: last.as_ref().map_or(f64::NAN, EpochRecord::primary),
        last_secondary: last
            .as_ref()
            .and_then(|r| r.test_mae.or(r.test_mrr).or(r.test_token_acc)),
        agreement: None,
        teacher_mrr: None,
        params: crate::models::net::trainable_params(&global),
        peers: Vec::new(),
        seconds: history.iter().map(|r| r.seconds).sum(),
        partial: false,
        history,
    })
}

/// Writes `metrics.jsonl`: one JSON line per finished round.
fn write_metrics(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let lines: Vec<String> = history
        .iter()
        .map(|r| serde_json::to_string(r).expect("a record serialises"))
        .collect();
    write_atomic(
        &dir.join("metrics.jsonl"),
        (lines.join("\n") + "\n").as_bytes(),
    )
}

/// Removes a round's working folders (clients, average, server), keeping its global model.
fn remove_work(round_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(round_dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("global") {
            continue;
        }
        std::fs::remove_dir_all(e.path())
            .map_err(|err| DistillError::io("removing a finished round's folder", e.path(), err))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Inputs;

    fn data(labels: Vec<u8>) -> Dataset {
        let n = labels.len();
        Dataset {
            inputs: Inputs::Image {
                pixels: vec![0; n],
                channels: 1,
                height: 1,
                width: 1,
            },
            targets: Targets::Class(labels),
            num_classes: 4,
            groups: None,
        }
    }

    fn plan(clients: usize, alpha: Option<f64>, server: usize) -> FederatedPlan {
        FederatedPlan {
            clients,
            rounds: 1,
            participation: 0.5,
            alpha,
            server_samples: server,
            local: crate::config::TrainConfig::default().resolve("t").unwrap(),
        }
    }

    #[test]
    fn splits_cover_every_sample_once_and_repeat_per_seed() {
        let train = data((0..400).map(|i| (i % 4) as u8).collect());
        for alpha in [None, Some(0.1), Some(1.0)] {
            let f = plan(5, alpha, 40);
            let s = split(&train, &f, 7).unwrap();
            assert_eq!(s.server.len(), 40);
            assert_eq!(s.clients.len(), 5);
            let mut all: Vec<usize> = s
                .server
                .iter()
                .chain(s.clients.iter().flatten())
                .copied()
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..400).collect::<Vec<_>>(), "alpha {alpha:?}");
            assert!(s.clients.iter().all(|c| !c.is_empty()));
            assert_eq!(split(&train, &f, 7).unwrap(), s);
            assert_ne!(split(&train, &f, 8).unwrap(), s);
        }
    }

    #[test]
    fn a_small_alpha_gives_each_client_few_classes() {
        let train = data((0..2000).map(|i| (i % 4) as u8).collect());
        let Targets::Class(labels) = &train.targets else {
            unreachable!()
        };
        // Mean over clients of the share of the client's most common class.
        let dominance = |alpha| {
            let s = split(&train, &plan(10, alpha, 0), 3).unwrap();
            s.clients
                .iter()
                .map(|c| {
                    let mut counts = [0usize; 4];
                    for &i in c {
                        counts[labels[i] as usize] += 1;
                    }
                    *counts.iter().max().unwrap() as f64 / c.len() as f64
                })
                .sum::<f64>()
                / 10.0
        };
        let (iid, one, tenth) = (dominance(None), dominance(Some(1.0)), dominance(Some(0.1)));
        assert!(iid < 0.35, "IID shares are balanced: {iid}");
        assert!(
            tenth > 0.75 && tenth > one && one > iid,
            "{tenth} {one} {iid}"
        );
    }

    #[test]
    fn participants_are_a_seeded_subset_per_round() {
        let f = plan(10, None, 0);
        let a = participants(&f, 1, 1);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|&c| c < 10));
        assert_eq!(participants(&f, 1, 1), a);
        assert!((2..6).any(|r| participants(&f, 1, r) != a));
    }

    #[test]
    fn too_little_data_is_refused() {
        let train = data(vec![0, 1, 2, 3, 0, 1]);
        let e = split(&train, &plan(5, None, 3), 1).unwrap_err().to_string();
        assert!(e.contains("lower server_samples or clients"), "{e}");
    }
}
