//! Training curves as SVG (plotters): test accuracy and training loss per epoch, mean over seeds.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{DistillError, Result};
use crate::train::checkpoint::write_atomic;
use crate::train::EpochRecord;

/// Per epoch: (epoch, test accuracy %, training objective).
type Curve = Vec<(f64, f64, f64)>;

/// Draws one line per series (each a set of seeds' histories, averaged per epoch).
pub fn plot_curves(
    path: &Path,
    title: &str,
    series: &[(String, Vec<Vec<EpochRecord>>)],
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 450)).into_drawing_area();
        let err = |e: String| DistillError::Io {
            action: "plotting",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        };
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| err(e.to_string()))?;
        let (left, right) = root.split_horizontally(550);
        // Accuracy (or, on an unlabeled transfer set, agreement with the teacher) in %, or the
        // task's headline metric (RMSE in target units, NDCG@10, perplexity).
        let firsts = || {
            series
                .iter()
                .flat_map(|(_, runs)| runs.iter().flat_map(|r| r.first()))
        };
        let accuracy = firsts().all(|r| r.test_acc.is_some());
        let agreement = !accuracy
            && firsts().all(|r| {
                r.agreement.is_some()
                    && r.test_rmse.is_none()
                    && r.test_ndcg.is_none()
                    && r.test_ppl.is_none()
            });
        let other = match firsts().next() {
            Some(r) if r.test_ndcg.is_some() => "test NDCG@10",
            Some(r) if r.test_ppl.is_some() => "test perplexity",
            _ => "test RMSE",
        };
        let means: Vec<(String, Curve)> = series
            .iter()
            .map(|(name, runs)| {
                let epochs = runs.iter().map(Vec::len).min().unwrap_or(0);
                let pts = (0..epochs)
                    .map(|e| {
                        let n = runs.len() as f64;
                        let v = runs.iter().map(|r| r[e].primary()).sum::<f64>() / n;
                        let loss = runs.iter().map(|r| r[e].train_loss).sum::<f64>() / n;
                        let v = if accuracy || agreement { 100.0 * v } else { v };
                        (runs[0][e].epoch as f64, v, loss)
                    })
                    .collect();
                (name.clone(), pts)
            })
            .collect();
        let max_epoch = means
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.0))
            .fold(1.0, f64::max);
        let (lo, hi) = means
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let (caption, y_range) = if accuracy || agreement {
            (
                if accuracy {
                    "test accuracy (%)"
                } else {
                    "test agreement with the teacher (%)"
                },
                (lo - 1.0).max(0.0)..(hi + 1.0).min(100.0),
            )
        } else {
            let pad = ((hi - lo) * 0.05).max(1e-6);
            (other, (lo - pad).max(0.0)..hi + pad)
        };
        let max_loss = means
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.2))
            .filter(|v| v.is_finite())
            .fold(1e-6, f64::max);
        for (area, caption, y_range, pick) in [
            (&left, caption, y_range, 1usize),
            (&right, "training objective", 0.0..max_loss * 1.05, 2usize),
        ] {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(1.0..max_epoch.max(2.0), y_range)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .draw()
                .map_err(|e| err(e.to_string()))?;
            for (i, (name, pts)) in means.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let line = pts.iter().map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }));
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(if pick == 1 {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    write_atomic(path, svg.as_bytes())
}

/// One bar: label, mean and standard deviation (percent).
pub type Bar = (String, f64, f64);

/// Horizontal bar chart with ±std whiskers, one panel per group (e.g. per teacher/student pair).
pub fn plot_bars(path: &Path, title: &str, groups: &[(String, Vec<Bar>)]) -> Result<()> {
    let err = |e: String| DistillError::Io {
        action: "plotting",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let rows: usize = groups
        .iter()
        .map(|(_, b)| b.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let height = 80 + groups.len().max(1) as u32 * (60 + 26 * rows as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| err(e.to_string()))?;
        for ((name, bars), area) in groups
            .iter()
            .zip(root.split_evenly((groups.len().max(1), 1)))
        {
            let lo = bars.iter().map(|b| b.1 - b.2).fold(f64::INFINITY, f64::min);
            let hi = bars
                .iter()
                .map(|b| b.1 + b.2)
                .fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.15).max(0.5);
            let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
            let mut chart = ChartBuilder::on(&area)
                .caption(name, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(220)
                .build_cartesian_2d(
                    (lo - pad).max(0.0)..(hi + pad).min(100.0),
                    (0..bars.len()).into_segmented(),
                )
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("test accuracy % (best epoch, mean ± std over seeds)")
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        labels.get(*i).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                })
                .disable_y_mesh()
                .draw()
                .map_err(|e| err(e.to_string()))?;
            let x0 = (lo - pad).max(0.0);
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let color = Palette99::pick(i).to_rgba();
                    Rectangle::new(
                        [
                            (x0, SegmentValue::Exact(i)),
                            (b.1, SegmentValue::Exact(i + 1)),
                        ],
                        color.filled(),
                    )
                }))
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    PathElement::new(
                        vec![
                            (b.1 - b.2, SegmentValue::CenterOf(i)),
                            (b.1 + b.2, SegmentValue::CenterOf(i)),
                        ],
                        BLACK.stroke_width(2),
                    )
                }))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    write_atomic(path, svg.as_bytes())
}
