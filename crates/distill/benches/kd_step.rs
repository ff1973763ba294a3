//! One offline KD training step (frozen teacher forward + student forward/backward + SGD update),
//! timed over repeated steps on random data. Run through `bench/run.sh`, which also runs the
//! PyTorch reference (`bench/pytorch_reference.py`) and prints the ratio.
//!
//! cargo bench -p distill --bench kd_step -- --pair mlp|cnn|resnet|lm [--steps 30] [--warmup 3]
//! (`lm`: a 4-block GPT teacher and a 2-block student on 64-byte windows, CE 0.1 + GKD 0.9.)
//! Prints one JSON line: pair, batch, median/mean step milliseconds, peak resident memory (MB).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{arg, backend_arg};
use distill::burn::prelude::*;
use distill::burn::tensor::{Distribution, TensorData};
use distill::config::{Backend, Precision, TrainConfig};
use distill::data::{Augment, Dataset, Inputs, Normalization, Targets};
use distill::knowledge::ce::CeConfig;
use distill::knowledge::gkd::GkdConfig;
use distill::knowledge::kd::KdConfig;
use distill::knowledge::{MethodConfig, Stage};
use distill::models::ModelConfig;
use distill::run::training_device;
use distill::train::{
    build_optimizer, build_trainable, train_step, Batch, DataBundle, StepAt, Teacher,
};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let pair = arg("--pair", "mlp");
    let steps: usize = arg("--steps", "30").parse().expect("--steps N");
    let warmup: usize = arg("--warmup", "3").parse().expect("--warmup N");
    let (teacher_cfg, student_cfg, geometry, batch, classes) = match pair.as_str() {
        "mlp" => (
            ModelConfig::Mlp {
                hidden: Some(vec![1200, 1200]),
                dropout: None,
            },
            ModelConfig::Mlp {
                hidden: Some(vec![256]),
                dropout: None,
            },
            [1, 28, 28],
            128,
            10,
        ),
        "resnet" => (
            ModelConfig::Resnet32x4 {},
            ModelConfig::Resnet8x4 {},
            [3, 32, 32],
            64,
            100,
        ),
        "cnn" => (
            ModelConfig::Cnn {
                hidden: Some(vec![64, 64, 128, 128, 256, 256]),
            },
            ModelConfig::Cnn {
                hidden: Some(vec![32, 64, 128]),
            },
            [3, 32, 32],
            64,
            10,
        ),
        "lm" => (
            ModelConfig::Gpt {
                dim: Some(128),
                layers: Some(4),
                heads: Some(4),
                dropout: None,
            },
            ModelConfig::Gpt {
                dim: Some(64),
                layers: Some(2),
                heads: Some(2),
                dropout: None,
            },
            [1, 1, 64],
            32,
            256,
        ),
        other => panic!("unknown --pair {other}: mlp, cnn, resnet or lm"),
    };
    let lm = pair == "lm";
    let backend = backend_arg(&[Backend::Flex, Backend::Cuda, Backend::Wgpu, Backend::Cpu]);
    let device = training_device(backend).unwrap_or_else(|e| panic!("{e}"));
    device.seed(1);
    let plain = device.clone().without_autodiff();
    let tnet = teacher_cfg
        .build(geometry, classes, &plain)
        .unwrap()
        .valid();
    let teachers = [Teacher {
        name: teacher_cfg.name().to_string(),
        shapes: tnet.tap_shapes(geometry, &plain),
        net: tnet,
        view: distill::data::View::source(),
        test_predictions: vec![],
        test_scores: vec![],
        // `--cached`: the teacher's outputs come from distill's cache after the first step
        // (the batch repeats), so the step is the student's work alone.
        cache: (arg("--cached", "no") == "yes").then(|| {
            Arc::new(std::sync::Mutex::new(distill::train::TeacherCache::new(
                256,
            )))
        }),
        unready: None,
    }];
    let losses = [
        MethodConfig::Ce(CeConfig {
            weight: 0.1,
            label_smoothing: 0.0,
            student: None,
        }),
        if lm {
            MethodConfig::Gkd(GkdConfig {
                weight: 0.9,
                beta: 0.5,
                temperature: 1.0,
                lmbda: 0.0,
                prompt: None,
                sampling_temperature: 0.9,
                student: None,
                teacher: None,
            })
        } else {
            MethodConfig::Kd(KdConfig {
                weight: 0.9,
                temperature: 4.0,
                student: None,
                teacher: None,
            })
        },
    ];
    // The step itself reads random images; the bundle only gives the builder its geometry.
    let [c, h, w] = geometry;
    let synthetic = Arc::new(if lm {
        Dataset {
            inputs: Inputs::Tokens {
                ids: vec![0; batch * w],
                context: w,
                tokenizer: distill::data::text::Tokenizer::Byte,
            },
            targets: Targets::Tokens {
                ids: vec![0; batch * w],
                context: w,
            },
            num_classes: classes,
            groups: None,
        }
    } else {
        Dataset {
            inputs: Inputs::Image {
                pixels: vec![0; batch * c * h * w],
                channels: c,
                height: h,
                width: w,
            },
            targets: Targets::Class((0..batch).map(|i| (i % classes) as u8).collect()),
            num_classes: classes,
            groups: None,
        }
    });
    let data = DataBundle {
        graph: None,
        norm: Normalization {
            mean: vec![0.0; c],
            std: vec![1.0; c],
            target_mean: vec![],
            target_std: vec![],
        },
        train: synthetic.clone(),
        test: synthetic,
        augment: Augment::default(),
        eval_batch: batch,
        views: vec![distill::data::View::source()],
        class_pairs: false,
    };
    let (mut trainable, objective) = build_trainable(
        &[distill::models::RoleModel {
            name: distill::knowledge::STUDENT.into(),
            model: student_cfg.clone(),
            view: distill::data::SOURCE_VIEW.into(),
        }],
        &data,
        &losses,
        &teachers,
        &device,
    )
    .unwrap();
    // `--precision bf16|f16`: the students compute in half precision over f32 master weights
    // (f16 at a fixed loss scale of 2^16 here: the bench times the step, not the scaler)
    let precision = match arg("--precision", "f32").as_str() {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        "f16" => Precision::F16,
        other => panic!("unknown --precision {other}: f32, bf16 or f16"),
    };
    let plan = TrainConfig {
        lr: Some(0.05),
        precision: Some(precision),
        ..Default::default()
    }
    .resolve("bench")
    .unwrap();
    let mut optim = build_optimizer(&plan);
    // Images: standard normal pixels and one label each. Token windows: random byte ids and a
    // random next byte at every position.
    let (x, y) = if lm {
        let ids = Tensor::<4>::random(
            [batch, c, h, w],
            Distribution::Uniform(0.0, classes as f64),
            &device,
        )
        .floor();
        let next = Tensor::<1>::random(
            [batch * w],
            Distribution::Uniform(0.0, classes as f64),
            &device,
        )
        .floor()
        .int();
        (ids, distill::tasks::Target::Tokens(next))
    } else {
        let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
        (
            Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device),
            distill::tasks::Target::Class(Tensor::<1, Int>::from_data(
                TensorData::new(labels, [batch]),
                &device,
            )),
        )
    };
    let indices: Vec<usize> = (0..batch).collect();
    let keys: Vec<(u32, u32)> = (0..batch as u32).map(|i| (i, 0)).collect();
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let started = Instant::now();
        let out = train_step(
            trainable,
            &mut optim,
            &objective,
            &teachers,
            Batch {
                x: x.clone(),
                y: y.clone(),
                indices: indices.clone(),
                keys: keys.clone(),
                lists: None,
            },
            StepAt {
                stage: Stage::Main,
                epoch: 1,
                progress: 1.0,
                lr: plan.lr,
                grad_clip: None,
                precision: plan.precision,
                loss_scale: (plan.precision == Precision::F16)
                    .then_some(distill::train::scaler::INIT_SCALE),
            },
        );
        trainable = out.trainable;
        assert!(out.non_finite.is_none());
        if i >= warmup {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"impl\":\"distill\",\"cached\":{},\"pair\":\"{pair}\",\"batch\":{batch},\"steps\":{steps},\"median_ms\":{median:.3},\"mean_ms\":{mean:.3},\"peak_mb\":{:.1},\"precision\":\"{}\"}}",
        teachers[0].cache.is_some(),
        peak_rss_mb(),
        arg("--precision", "f32"),
    );
}
