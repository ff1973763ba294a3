//! `distill`: the command-line front end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use distill::config::{ExperimentConfig, Plan, SweepConfig};
use distill::data::DataSource;
use distill::knowledge::METHODS;
use distill::models::MODELS;
use distill::run::{merge_sweep, run_sweep_shard, sweep_dir, training_device, Shard};
use distill::run::{run_experiment, RunOptions};
use distill::train::checkpoint::load_model_dir;
use distill::train::{errln, evaluate, Progress};
use distill::DistillError;

/// `println!` that ignores a closed stdout (e.g. `distill methods | head`) instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// mimalloc (feature `mimalloc`, on by default): it keeps freed tensor buffers for reuse where the
/// system allocator hands large ones back and faults them in again on the next step.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The experiment `distill quickstart` runs.
const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

#[derive(Parser)]
#[command(
    name = "distill",
    version,
    about = "Knowledge distillation toolkit: teachers, students, taps, losses, schemes."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a teacher, a scratch student and a KD student (3 seeds) on the embedded data and
    /// print the results table.
    Quickstart {
        /// Run folder (default: runs/quickstart, or runs/quickstart-N if that exists).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the experiment described by a TOML file.
    Train {
        /// Experiment file (see configs/).
        config: PathBuf,
        /// Run folder (default: output_dir/name from the file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the resolved, validated config and exit.
        #[arg(long)]
        dump_config: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run a grid of recipes × teacher/student pairs × seeds from one file and write one results
    /// table (Markdown, CSV, JSON) and a bar chart.
    Sweep {
        /// Sweep file (see configs/sweeps/).
        config: PathBuf,
        /// Sweep folder (default: output_dir/name from the file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the expanded, validated experiments and exit.
        #[arg(long)]
        dump_config: bool,
        /// Run one slice of the grid, i/n (1 ≤ i ≤ n): the pairs k with k mod n = i − 1, in the
        /// same pairN/ folders; no table is written (see --merge). For cluster job arrays.
        #[arg(long, value_name = "I/N", conflicts_with = "merge")]
        shard: Option<String>,
        /// Train nothing: build the table from every pair's results, in the sweep folder or the
        /// --from folders (after a sharded run).
        #[arg(long)]
        merge: bool,
        /// With --merge: further folders holding pairN/ results (slices that did not share one).
        #[arg(long, value_name = "DIR", requires = "merge")]
        from: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Score a saved checkpoint folder (e.g. runs/quickstart/teachers/lenet/best) on a test set.
    Eval {
        /// Checkpoint folder holding model.bpk and model.json.
        checkpoint: PathBuf,
        /// Data set to score on.
        #[arg(long, value_enum, default_value_t = SourceArg::Embedded)]
        data: SourceArg,
        /// Folder of the data: the IDX files (--data idx, or a non-standard Fashion-MNIST
        /// location), CIFAR's binary files (--data cifar10 / cifar100), or the class folders
        /// (--data image-folder: test/<class>/ or val/<class>/ is scored, resized to the
        /// model's input size).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Sample text from a trained language model (a checkpoint folder of a `gpt` role).
    Generate {
        /// Checkpoint folder holding model.bpk and model.json.
        checkpoint: PathBuf,
        /// Text to continue.
        #[arg(long)]
        prompt: String,
        /// Softmax temperature (0: greedy).
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// Keep only the k most likely tokens at each step (0: all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Keep the most likely tokens up to this probability mass (1: all).
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Tokens to generate (prompt plus these must fit the model's context).
        #[arg(long, default_value_t = 32)]
        max_tokens: usize,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Turn a PyTorch state dict (.pth/.pt) or .safetensors file of a zoo architecture into a
    /// checkpoint folder (RepDistiller's names for the CIFAR ResNets; every tensor must fit).
    Import {
        /// The weights file.
        file: PathBuf,
        /// Zoo architecture of the file's network (see `distill models`), with its default
        /// options; --meta describes any other.
        #[arg(long, required_unless_present = "meta", conflicts_with = "meta")]
        model: Option<String>,
        /// Number of classes of its head.
        #[arg(long, required_unless_present = "meta", conflicts_with = "meta")]
        classes: Option<usize>,
        /// A model.json (as `export` writes beside the file) describing the architecture,
        /// classes, input and normalisation, instead of the flags.
        #[arg(long, conflicts_with_all = ["input", "mean", "std"])]
        meta: Option<PathBuf>,
        /// Input geometry CHANNELS,HEIGHT,WIDTH of the images it reads.
        #[arg(long, value_delimiter = ',', default_values_t = [3, 32, 32])]
        input: Vec<usize>,
        /// Per-channel mean the network's inputs were normalised with (default 0).
        #[arg(long, value_delimiter = ',')]
        mean: Vec<f32>,
        /// Per-channel standard deviation of that normalisation (default 1).
        #[arg(long, value_delimiter = ',')]
        std: Vec<f32>,
        /// Checkpoint folder to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a checkpoint folder's model as model.safetensors under PyTorch's names (what
    /// `import` reads; loadable with PyTorch's load_state_dict), beside its model.json.
    Export {
        /// Checkpoint folder holding model.bpk and model.json.
        checkpoint: PathBuf,
        /// Folder to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the distillation methods with their family, citation and required taps.
    Methods,
    /// List the models with their taps and citations.
    Models,
    /// List the schemes (`scheme = "..."`): how teachers and students are arranged in phases.
    Schemes,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Continue an interrupted run in its folder.
    #[arg(long)]
    resume: bool,
    /// One log line per epoch instead of progress bars.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    Embedded,
    FashionMnist,
    Idx,
    Cifar10,
    Cifar100,
    ImageFolder,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln(&format!("error: {e:#}"));
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<DistillError>(),
                    Some(DistillError::Interrupted { .. })
                )
            });
            ExitCode::from(if interrupted { 130 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Quickstart { out, common } => {
            let plan =
                ExperimentConfig::from_toml(QUICKSTART, "configs/quickstart.toml")?.validate()?;
            let out = out.unwrap_or_else(|| {
                let base = plan.output_dir.join(&plan.name);
                if common.resume {
                    return base;
                }
                (1..)
                    .map(|i| {
                        if i == 1 {
                            base.clone()
                        } else {
                            PathBuf::from(format!("{}-{i}", base.display()))
                        }
                    })
                    .find(|p| !p.exists())
                    .expect("some folder name is free")
            });
            execute(&plan, out, &common)
        }
        Command::Train {
            config,
            out,
            dump_config,
            common,
        } => {
            let plan = ExperimentConfig::from_file(&config)?.validate()?;
            if dump_config {
                print!("{}", plan.to_toml());
                return Ok(());
            }
            let out = out.unwrap_or_else(|| plan.output_dir.join(&plan.name));
            execute(&plan, out, &common)
        }
        Command::Sweep {
            config,
            out,
            dump_config,
            shard,
            merge,
            from,
            common,
        } => {
            let cfg = SweepConfig::from_file(&config)?;
            if dump_config {
                for (pair, e) in cfg.expand()? {
                    outln!("# pair: {pair}\n{}", e.validate()?.to_toml());
                }
                return Ok(());
            }
            let out = sweep_dir(&cfg, out);
            if merge {
                let report = merge_sweep(&cfg, &out, &from).with_context(|| {
                    format!("merging sweep '{}' in {}", cfg.name, out.display())
                })?;
                outln!("\n{}", report.markdown());
                outln!(
                    "merged; sweep folder {} (results.md/.csv/.json, bars.svg)",
                    out.display()
                );
                return Ok(());
            }
            let shard: Option<Shard> = shard.as_deref().map(str::parse).transpose()?;
            let opts = run_options(out.clone(), &common, interrupt_flag());
            let started = std::time::Instant::now();
            let report = run_sweep_shard(&cfg, &opts, shard)
                .with_context(|| format!("running sweep '{}' in {}", cfg.name, out.display()))?;
            if shard.is_some() {
                outln!(
                    "slice finished in {:.1} s; its pairs are in {}",
                    started.elapsed().as_secs_f64(),
                    out.display()
                );
                return Ok(());
            }
            outln!("\n{}", report.markdown());
            outln!(
                "finished in {:.1} s; sweep folder {} (sweep.toml, results.md/.csv/.json, bars.svg, pairN/ experiments)",
                started.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Command::Eval {
            checkpoint,
            data,
            data_dir,
        } => eval(&checkpoint, data, data_dir.as_deref()),
        Command::Generate {
            checkpoint,
            prompt,
            temperature,
            top_k,
            top_p,
            max_tokens,
            seed,
        } => generate(
            &checkpoint,
            &prompt,
            &distill::models::sample::Sampling {
                temperature,
                top_k,
                top_p,
                max_tokens,
                seed,
            },
        ),
        Command::Import {
            file,
            model,
            classes,
            meta,
            input,
            mean,
            std,
            out,
        } => {
            let meta = match (meta, model, classes) {
                (Some(path), _, _) => serde_json::from_slice(
                    &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{} is not a model.json", path.display()))?,
                (None, Some(model), Some(classes)) => {
                    import_meta(&model, classes, &input, mean, std)?
                }
                _ => anyhow::bail!("import needs --model and --classes, or --meta model.json"),
            };
            let device = training_device(distill::config::Backend::Flex)?.without_autodiff();
            distill::train::checkpoint::import_checkpoint(&file, &meta, &out, &device)
                .with_context(|| format!("importing {}", file.display()))?;
            outln!(
                "wrote checkpoint {} ({}, {} classes, input {:?}); `distill eval` scores it, and a [[teacher]] section reads it with checkpoint = \"{}\"",
                out.display(),
                meta.config.name(),
                meta.classes,
                meta.input,
                out.display()
            );
            Ok(())
        }
        Command::Export { checkpoint, out } => {
            let device = training_device(distill::config::Backend::Flex)?.without_autodiff();
            let files = distill::train::checkpoint::export_checkpoint(&checkpoint, &out, &device)
                .with_context(|| format!("exporting {}", checkpoint.display()))?;
            for f in files {
                outln!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Methods => {
            outln!("| method | family | description | required taps | citation |\n|---|---|---|---|---|");
            for m in METHODS {
                outln!(
                    "| `{}` | {} | {} | {} | {} |",
                    m.name,
                    m.family,
                    m.description,
                    m.taps,
                    m.citation
                );
            }
            Ok(())
        }
        Command::Models => {
            outln!("| model | description | settings | citation |\n|---|---|---|---|");
            for m in MODELS {
                outln!(
                    "| `{}` | {} | {} | {} |",
                    m.name,
                    m.description,
                    if m.settings.is_empty() {
                        "—"
                    } else {
                        m.settings
                    },
                    m.citation
                );
            }
            Ok(())
        }
        Command::Schemes => {
            outln!("| scheme | description | citation |\n|---|---|---|");
            for s in distill::schemes::SCHEMES {
                outln!("| `{}` | {} | {} |", s.name, s.description, s.citation);
            }
            Ok(())
        }
    }
}

/// A flag set by Ctrl-C; a second Ctrl-C exits at once (the last complete checkpoint is on disk).
fn interrupt_flag() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        errln("\nstopping after the current step; the last complete checkpoint is kept (Ctrl-C again to quit now)");
    });
    interrupt
}

fn run_options(out: PathBuf, common: &Common, interrupt: Arc<AtomicBool>) -> RunOptions {
    RunOptions {
        run_dir: Some(out),
        resume: common.resume,
        progress: if common.no_progress {
            Progress::Lines
        } else {
            Progress::Bar
        },
        interrupt: Some(interrupt),
        keep_going: false,
    }
}

fn execute(plan: &Plan, out: PathBuf, common: &Common) -> Result<()> {
    let opts = run_options(out.clone(), common, interrupt_flag());
    let started = std::time::Instant::now();
    let report = run_experiment(plan, &opts)
        .with_context(|| format!("running experiment '{}' in {}", plan.name, out.display()))?;
    outln!("\n{}", report.markdown());
    outln!(
        "finished in {:.1} s; run folder {} (resolved.toml, results.md/.csv/.json, curves.svg, per-run metrics.jsonl and checkpoints)",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn generate(
    checkpoint: &Path,
    prompt: &str,
    sampling: &distill::models::sample::Sampling,
) -> Result<()> {
    let device = training_device(distill::config::Backend::Flex)?.without_autodiff();
    let (net, meta) = load_model_dir(checkpoint, &device)
        .with_context(|| format!("loading checkpoint {}", checkpoint.display()))?;
    let (distill::models::Net::Gpt(gpt), Some(tokenizer)) = (&net, meta.tokenizer) else {
        anyhow::bail!(
            "{} holds a {} model, not a language model; generate reads the checkpoint of a `gpt` role trained on a text (data.source = \"text\")",
            checkpoint.display(),
            meta.config.name()
        );
    };
    let ids = tokenizer.encode(prompt);
    let out =
        distill::models::sample::generate(gpt, &ids, sampling, &device).context("sampling")?;
    outln!("{prompt}{}", tokenizer.decode(&out));
    Ok(())
}

/// The model.json of an imported file from the command line's description.
fn import_meta(
    model: &str,
    classes: usize,
    input: &[usize],
    mean: Vec<f32>,
    std: Vec<f32>,
) -> Result<distill::train::checkpoint::ModelMeta> {
    let config =
        distill::models::ModelConfig::named(model).with_context(|| format!("--model {model}"))?;
    let &[c, h, w] = input else {
        anyhow::bail!("--input takes CHANNELS,HEIGHT,WIDTH, got {input:?}");
    };
    let per_channel = |v: Vec<f32>, default: f32, flag: &str| -> Result<Vec<f32>> {
        match v.len() {
            0 => Ok(vec![default; c]),
            n if n == c => Ok(v),
            n => anyhow::bail!("--{flag} needs one value per input channel ({c}), got {n}"),
        }
    };
    Ok(distill::train::checkpoint::ModelMeta {
        config,
        input: [c, h, w],
        view: distill::data::View::source(),
        classes,
        normalization: distill::data::Normalization {
            mean: per_channel(mean, 0.0, "mean")?,
            std: per_channel(std, 1.0, "std")?,
            target_mean: vec![],
            target_std: vec![],
        },
        tokenizer: None,
    })
}

fn eval(checkpoint: &Path, data: SourceArg, dir: Option<&Path>) -> Result<()> {
    let device = training_device(distill::config::Backend::Flex)?.without_autodiff();
    let (net, meta) = load_model_dir(checkpoint, &device)
        .with_context(|| format!("loading checkpoint {}", checkpoint.display()))?;
    let source = match data {
        SourceArg::Embedded => DataSource::Embedded,
        SourceArg::FashionMnist => DataSource::FashionMnist,
        SourceArg::Idx => DataSource::Idx,
        SourceArg::Cifar10 => DataSource::Cifar10,
        SourceArg::Cifar100 => DataSource::Cifar100,
        SourceArg::ImageFolder => DataSource::ImageFolder,
    };
    if source.needs_dir() && dir.is_none() {
        anyhow::bail!(
            "--data {} needs --data-dir DIR, the folder holding {}",
            source.name(),
            match source {
                DataSource::Idx => "the t10k-*-ubyte[.gz] IDX files",
                DataSource::ImageFolder =>
                    "train/<class>/ and test/<class>/ (or val/<class>/) image folders",
                _ => "the binary files (test_batch.bin or test.bin)",
            }
        );
    }
    // Only the test split is read: eval never uses the training images. An image folder's
    // images are resized to the model's input.
    let test = source
        .load_test(dir, meta.input)
        .context("loading the evaluation data")?;
    let geometry = test.geometry();
    if geometry != meta.input || test.num_classes > meta.classes {
        return Err(DistillError::Shape {
            context: "evaluation data (channels, height, width, classes) vs checkpoint".into(),
            expected: [meta.input.as_slice(), &[meta.classes]].concat(),
            got: [geometry.as_slice(), &[test.num_classes]].concat(),
            fix: "; evaluate on the kind of data the model was trained on".into(),
        }
        .into());
    }
    let n = test.len();
    if test.num_classes != meta.classes {
        outln!(
            "note: the model has {} outputs and the data {} classes; a prediction counts as right when its output index equals the label",
            meta.classes,
            test.num_classes
        );
    }
    let e = evaluate(
        &net,
        &meta.view,
        &Arc::new(test),
        &meta.normalization,
        500,
        &device,
    );
    outln!(
        "{}: {} ({} params) test accuracy {:.2}% on {n} images",
        checkpoint.display(),
        meta.config.name(),
        distill::models::net::trainable_params(&net),
        100.0 * e.accuracy.unwrap_or(f64::NAN)
    );
    Ok(())
}
