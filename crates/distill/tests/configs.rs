//! Every sample config under `configs/` parses, validates, and runs at a tiny size.

mod common;

use common::serial;
use std::path::Path;

use distill::config::ExperimentConfig;
use distill::data::DataSource;
use distill::run::{run_experiment, RunOptions};
use distill::train::Progress;

/// A table with the diamonds data's columns (an index, numbers and three text columns) whose
/// price follows the carat, plus noise.
fn diamonds_like(rows: usize) -> String {
    let mut out = String::from("\"\",carat,cut,color,clarity,depth,table,price,x,y,z\n");
    let cuts = ["Fair", "Good", "Ideal"];
    let colors = ["D", "E", "F", "G"];
    let clarity = ["SI1", "VS2", "IF"];
    for i in 0..rows {
        let carat = 0.2 + (i % 37) as f64 * 0.07;
        let price = 300.0 + 4000.0 * carat + ((i * 7919) % 500) as f64;
        out += &format!(
            "{},{carat:.2},{},{},{},{:.1},{},{price:.0},{:.2},{:.2},{:.2}\n",
            i + 1,
            cuts[i % 3],
            colors[i % 4],
            clarity[(i / 3) % 3],
            58.0 + (i % 9) as f64 * 0.5,
            54 + i % 5,
            3.8 + carat,
            3.8 + carat,
            2.4 + carat * 0.6
        );
    }
    out
}

/// A text of `chapters` chapters under Moby-Dick's headings (`CHAPTER n. Title.`).
fn book(chapters: usize) -> String {
    let words = [
        "whale", "sea", "ship", "Ahab", "harpoon", "white", "deep", "sail",
    ];
    let mut out = String::new();
    for c in 1..=chapters {
        out += &format!("CHAPTER {c}. The {}.\n\n", words[c % words.len()]);
        for s in 0..12 {
            out += &format!(
                "Call me {} — the {} and the {} of the {}.\n",
                words[(c + s) % 8],
                words[(c * s) % 8],
                words[(s + 3) % 8],
                words[(c + 2 * s) % 8]
            );
        }
        out.push('\n');
    }
    out
}

/// A `.ts` file like Japanese Vowels': `n` series of 7 to 29 frames of 12 values, 9 classes whose
/// frames differ in level.
fn vowels(n: usize, seed: usize) -> String {
    let mut out = String::from("@problemName JapaneseVowels\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 12\n@equalLength false\n@classLabel true 1 2 3 4 5 6 7 8 9\n@data\n");
    for i in 0..n {
        let class = i % 9;
        let frames = 7 + (i * 7 + seed) % 23;
        let dims: Vec<String> = (0..12)
            .map(|d| {
                (0..frames)
                    .map(|t| {
                        let noise = ((i * 31 + d * 7 + t * 13 + seed) % 17) as f64 / 17.0;
                        format!("{:.4}", class as f64 * 0.3 + d as f64 * 0.05 + 0.2 * noise)
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        out += &format!("{}:{}\n", dims.join(":"), class + 1);
    }
    out
}

#[test]
fn every_sample_config_runs_at_a_tiny_size() {
    let _serial = serial();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let mut cfg = ExperimentConfig::from_file(&path).unwrap();
        cfg.seeds.truncate(1);
        cfg.data.train_limit = Some(200);
        cfg.data.test_limit = Some(100);
        cfg.train.epochs = Some(1);
        cfg.train.milestones = None;
        if cfg.train.schedule == Some(distill::config::ScheduleKind::Multistep) {
            cfg.train.schedule = None;
        }
        cfg.train.warmup_epochs = None;
        // One epoch on 200 images tests the plumbing, not learning: a chain of students taught
        // by barely trained teachers may stay at chance without anything being wrong.
        cfg.train.stop_on_collapse = Some(false);
        for t in &mut cfg.teacher {
            t.train = Default::default();
        }
        for s in &mut cfg.student {
            s.train = Default::default();
        }
        if let Some(f) = &mut cfg.federated {
            f.rounds = 2;
            f.server_samples = f.server_samples.min(50);
            f.local = Default::default();
        }
        let tmp = tempfile::tempdir().unwrap();
        if cfg.data.source == DataSource::Csv {
            // The real table is installed by scripts/fetch-data.sh; the test runs the config on
            // a generated table of the same columns, so that it needs no download.
            let csv = tmp.path().join("table.csv");
            std::fs::write(&csv, diamonds_like(300)).unwrap();
            cfg.data.path = Some(csv);
        }
        if cfg.data.source == DataSource::Text {
            // The real text is installed by scripts/fetch-data.sh; the test reads a generated
            // book with the same chapter headings.
            let text = tmp.path().join("book.txt");
            std::fs::write(&text, book(20)).unwrap();
            cfg.data.path = Some(text);
        }
        if cfg.data.source == DataSource::Retrieval {
            // The real text, tokenizer and MiniLM are installed by scripts/fetch-data.sh; the
            // test reads a generated book with MiniLM's tokenizer (a fixture) and a tiny BERT
            // teacher of random weights (the parity fixture) in MiniLM's place.
            let text = tmp.path().join("book.txt");
            std::fs::write(&text, book(40)).unwrap();
            cfg.data.path = Some(text);
            let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bert");
            cfg.data.tokenizer_file = Some(fixtures.join("tokenizer.json"));
            cfg.data.list_size = Some(4);
            cfg.data.context = Some(32);
            for t in &mut cfg.teacher {
                t.checkpoint = Some(fixtures.join("model.safetensors"));
                (t.dim, t.layers, t.heads, t.positions) = (Some(8), Some(2), Some(2), Some(64));
            }
        }
        if cfg.data.source == DataSource::FashionMnist {
            // The full Fashion-MNIST is installed by scripts/fetch-data.sh; the embedded subset
            // is the same kind of image.
            cfg.data.source = DataSource::Embedded;
        }
        for t in &mut cfg.teacher {
            if t.model == "mobilenetv2" && t.checkpoint.is_some() {
                // torchvision's ImageNet weights are installed by scripts/fetch-data.sh; the
                // test imports the parity fixture (MobileNetV2 at width 0.25, 10 classes, random
                // weights, saved in the same legacy format) in their place.
                let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import");
                t.model = "mobilenetv2_x0_25".into();
                t.checkpoint = Some(fixtures.join("mobilenetv2_x0_25.pth"));
                cfg.data.classes = Some(10);
            }
        }
        if cfg.data.source == DataSource::Ts {
            // The real files are installed by scripts/fetch-data.sh; the test reads generated
            // ones in the same format (12 values per frame, 7 to 29 frames, 9 speakers).
            let (train, test) = (tmp.path().join("TRAIN.ts"), tmp.path().join("TEST.ts"));
            std::fs::write(&train, vowels(90, 1)).unwrap();
            std::fs::write(&test, vowels(45, 2)).unwrap();
            cfg.data.path = Some(train);
            cfg.data.test_path = Some(test);
        }
        let plan = cfg
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let opts = RunOptions {
            run_dir: Some(tmp.path().join("run")),
            progress: Progress::Quiet,
            ..Default::default()
        };
        let report =
            run_experiment(&plan, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // a row per teacher trained or loaded here (one that is a recipe's student is that
        // recipe's row, unless it reads another view), per trainable role of every recipe, and
        // per ensemble
        assert_eq!(
            report.rows.len(),
            plan.teachers
                .iter()
                .filter(|t| t.from.as_ref().is_none_or(|r| plan
                    .students
                    .iter()
                    .any(|s| &s.name == r && s.view != t.view)))
                .count()
                + plan
                    .students
                    .iter()
                    .map(|s| 1 + s.peers.len())
                    .sum::<usize>()
                + plan.ensembles.len()
        );
        for f in [
            "resolved.toml",
            "results.md",
            "results.csv",
            "results.json",
            "curves.svg",
        ] {
            assert!(
                tmp.path().join("run").join(f).is_file(),
                "{}: missing {f}",
                path.display()
            );
        }
    }
    assert!(seen >= 1);
}

#[test]
fn every_sample_sweep_runs_at_a_tiny_size_on_the_embedded_data() {
    let _serial = serial();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/sweeps");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let mut cfg = distill::config::SweepConfig::from_file(&path).unwrap();
        cfg.seeds = vec![1];
        cfg.data.source = distill::data::DataSource::Embedded;
        cfg.data.dir = None;
        cfg.data.train_limit = Some(200);
        cfg.data.test_limit = Some(100);
        cfg.train.epochs = Some(1);
        for p in &mut cfg.pair {
            p.teacher.train = Default::default();
        }
        let tmp = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            run_dir: Some(tmp.path().join("sweep")),
            progress: Progress::Quiet,
            ..Default::default()
        };
        let report = distill::run::run_sweep(&cfg, &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(report.rows.len(), cfg.pair.len() * (cfg.recipe.len() + 1));
        for f in [
            "sweep.toml",
            "results.md",
            "results.csv",
            "results.json",
            "bars.svg",
        ] {
            assert!(
                tmp.path().join("sweep").join(f).is_file(),
                "{}: missing {f}",
                path.display()
            );
        }
        // a second run without --resume refuses to touch the folder
        let err = distill::run::run_sweep(&cfg, &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--resume"), "{err}");
    }
    assert!(seen >= 1);
}

/// `[distributed]` reaches the plan on a backend with collectives, and is refused with a clear
/// error (not Burn's panic) on the CPU backends (flex and JIT cpu), on wgpu, and for batches that do not split.
/// An experiment training an MLP on CE on `backend`, with `train` in its `[train]` and `sections`
/// after it.
fn mlp_ce(backend: &str, train: &str, sections: &str) -> String {
    format!(
        "name = \"t\"\nbackend = \"{backend}\"\n[train]\n{train}\n{sections}[[student]]\nmodel = \"mlp\"\n[[student.loss]]\nmethod = \"ce\"\n"
    )
}

/// The experiment `text` parsed (which must succeed) and validated.
fn parse(text: String) -> Result<distill::config::Plan, distill::DistillError> {
    ExperimentConfig::from_toml(&text, "test.toml")
        .unwrap()
        .validate()
}

#[test]
fn distributed_config_path_and_its_errors() {
    let base = |backend: &str, batch: usize, devices: &str| {
        mlp_ce(
            backend,
            &format!("batch_size = {batch}"),
            &format!("[distributed]\ndevices = {devices}\n"),
        )
    };

    let plan = parse(base("cuda", 64, "[0, 1, 2, 3]")).unwrap();
    assert_eq!(plan.devices, vec![0, 1, 2, 3]);
    assert!(plan.to_toml().contains("devices"));

    let err = parse(base("flex", 64, "[0, 1]")).unwrap_err().to_string();
    assert!(
        err.contains("flex") && err.contains("collective") && err.contains("--features cuda"),
        "{err}"
    );
    let err = parse(base("wgpu", 64, "[0, 1]")).unwrap_err().to_string();
    assert!(err.contains("wgpu") && err.contains("NCCL"), "{err}");
    let err = parse(base("cpu", 64, "[0, 1]")).unwrap_err().to_string();
    assert!(err.contains("JIT cpu") && err.contains("NCCL"), "{err}");
    let err = parse(base("cuda", 30, "[0, 1, 2, 3]"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_size 30") && err.contains("multiple of 4"),
        "{err}"
    );
    let err = parse(base("cuda", 64, "[1, 1]")).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    let err = ExperimentConfig::from_toml(
        &base("cuda", 64, "[0]").replace("devices", "gpus"),
        "ddp.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("devices"), "{err}");

    // Without the cuda feature, a valid distributed plan stops at the device with the feature named.
    #[cfg(not(feature = "cuda"))]
    {
        let tmp = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            run_dir: Some(tmp.path().join("run")),
            progress: Progress::Quiet,
            ..Default::default()
        };
        let err = run_experiment(&plan, &opts).unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}

#[test]
fn half_precision_is_refused_where_the_backend_has_no_kernels_for_it() {
    let text = |backend: &str, precision: &str| {
        mlp_ce(backend, &format!("precision = \"{precision}\""), "")
    };
    for backend in ["wgpu", "cpu"] {
        let err = parse(text(backend, "bf16")).unwrap_err().to_string();
        assert!(
            err.contains(backend) && err.contains("precision = \"bf16\"") && err.contains("cuda"),
            "{err}"
        );
        assert!(parse(text(backend, "f32")).is_ok());
    }
    for backend in ["flex", "cuda"] {
        for precision in ["bf16", "f16"] {
            let plan = parse(text(backend, precision)).unwrap();
            assert!(plan
                .to_toml()
                .contains(&format!("precision = \"{precision}\"")));
        }
    }
}
