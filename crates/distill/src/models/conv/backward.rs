//! The input, weight and bias gradients of distill's 2-D convolution on `flex` at f32 (groups
//! 1, dilation 1), on the channels-last columns of [`super::forward`]. The weight gradient
//! builds each tile of output positions' columns as the forward builds them and multiplies
//! that tile's output gradient into them, one accumulator per run of tiles: no unfolded copy
//! of the whole input (im2col's), and a product as wide as `k_h·k_w·C` where the shifted rule
//! of `conv.rs` has `C`. The input gradient is the mirror: each tile's columns' gradient is one
//! product, added back window row by window row into the image's padded channels-last gradient
//! (col2im; `flex`'s transposed convolution is a product and a col2im too, in NCHW, one
//! channel and kernel tap at a time). The bias gradient sums each channel in place (README,
//! *CPU convolutions*).

use super::forward::{self, col_major, row_major, Geometry};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::ops::ConvOptions;
use burn::tensor::DType;
use rayon::prelude::*;

/// Whether [`weight_grad`] takes the weight gradient of a convolution of `x` by a kernel of
/// `weight_shape` (groups and dilation checked by the caller): an f32 input and output
/// gradient, and a kernel that fits the padded input.
pub(super) fn weight_grad_supported(
    x: &FloatTensor<Flex>,
    grad: &FloatTensor<Flex>,
    weight_shape: [usize; 4],
    options: &ConvOptions<2>,
) -> bool {
    let [_, _, kh, kw] = weight_shape;
    x.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && forward::fits(x.shape().dims(), [kh, kw], options)
}

/// `∂L/∂W` of `y = conv2d(x, W)` (any stride and padding) from `g = ∂L/∂y`:
/// `Σ_tiles g[b, :, tile] · cols(b, tile)`, where `cols` are the forward's columns
/// (`[positions, k_h·k_w·C]`) of one tile of output positions of image `b`. The tiles are cut
/// into [`super::PARTIAL_SUMS`] contiguous runs, run in parallel, each summed into its own
/// `[C_out, k_h·k_w·C]`, and the runs' sums added in order: the same rounding on any number of
/// threads.
pub(super) fn weight_grad(
    x: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    kernel: [usize; 4],
    options: &ConvOptions<2>,
) -> FloatTensor<Flex> {
    let [co, c, kh, kw] = kernel;
    let n = x.shape().dims::<4>()[0];
    let geo = Geometry::new(x.shape().dims(), [kh, kw], options);
    let (k, positions, tile, tiles) = (geo.k(), geo.positions(), geo.tile(), geo.tiles());
    let xp = geo.channels_last(&x);
    let grad = grad.to_contiguous();
    let gs = super::flex_f32s(&grad);
    let items = n * tiles;
    let runs = super::PARTIAL_SUMS.min(items.max(1));
    let per_run = items.div_ceil(runs);
    let (xp, geo) = (&xp, &geo);
    let sums: Vec<Vec<f32>> = (0..runs)
        .into_par_iter()
        .map(|run| {
            let mut acc = vec![0f32; co * k];
            let mut cols = Vec::with_capacity(tile * k);
            for item in run * per_run..((run + 1) * per_run).min(items) {
                let b = item / tiles;
                let (p0, p1) = geo.tile_span(item % tiles);
                cols.clear();
                geo.columns(&mut cols, &xp[b * geo.image()..][..geo.image()], p0, p1);
                let g = &gs[b * co * positions + p0..];
                // acc[C_out, k] += g[b, :, p0..p1] · cols
                // SAFETY: `acc` is [co, k] (row stride k); `g` holds co rows `positions` apart
                // of p1 − p0 values from p0, inside image b's gradient; `cols` is [p1 − p0, k].
                unsafe {
                    forward::product(
                        [co, k, p1 - p0],
                        (acc.as_mut_ptr(), row_major(k)),
                        (g.as_ptr(), row_major(positions)),
                        (cols.as_ptr(), row_major(k)),
                        true,
                    );
                }
            }
            acc
        })
        .collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0f32; co * k]);
    for s in sums {
        total.iter_mut().zip(&s).for_each(|(t, v)| *t += v);
    }
    // [C_out, k_h·k_w·C] (taps outer, channels inner) as [C_out, C, k_h, k_w]
    let mut out = vec![0f32; co * c * kh * kw];
    for o in 0..co {
        for ci in 0..c {
            for tap in 0..kh * kw {
                out[(o * c + ci) * kh * kw + tap] = total[o * k + tap * c + ci];
            }
        }
    }
    super::flex_f32_tensor(out, kernel)
}

/// Whether [`input_grad`] takes the input gradient of a convolution of an `input`-shaped
/// tensor by `weight` (groups and dilation checked by the caller): an f32 weight and output
/// gradient, and a kernel that fits the padded input.
pub(super) fn input_grad_supported(
    input: [usize; 4],
    weight: &FloatTensor<Flex>,
    grad: &FloatTensor<Flex>,
    options: &ConvOptions<2>,
) -> bool {
    let [_, _, kh, kw] = weight.shape().dims();
    weight.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && forward::fits(input, [kh, kw], options)
}

/// `∂L/∂x` of `y = conv2d(x, W)` (any stride and padding) for an input of `input` shape, from
/// `g = ∂L/∂y`: per image, for each tile of output positions, the columns' gradient
/// `g[b, :, tile]ᵀ · W` (`[positions, k_h·k_w·C]`, the forward's column layout) and its
/// col2im, each window row's `k_w·C` values added into the image's padded channels-last
/// gradient, which is then cropped into NCHW. The images run in parallel, each tile in order.
pub(super) fn input_grad(
    weight: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    input: [usize; 4],
    options: &ConvOptions<2>,
) -> FloatTensor<Flex> {
    let [n, c, h, w] = input;
    let [co, _, kh, kw] = weight.shape().dims();
    let geo = Geometry::new(input, [kh, kw], options);
    let (k, positions, tile) = (geo.k(), geo.positions(), geo.tile());
    let wk = geo.tap_major(weight);
    let grad = grad.to_contiguous();
    let gs = super::flex_f32s(&grad);
    let mut out = vec![0f32; n * c * h * w];
    let (wk, geo) = (&wk, &geo);
    if !out.is_empty() {
        out.par_chunks_mut(c * h * w)
            .enumerate()
            .for_each(|(b, image)| {
                let mut dxp = vec![0f32; geo.image()];
                let mut cols = vec![0f32; tile * k];
                let row = geo.kw * c;
                for t in 0..geo.tiles() {
                    let (p0, p1) = geo.tile_span(t);
                    let g = &gs[b * co * positions + p0..];
                    // cols[p1 − p0, k] = g[b, :, p0..p1]ᵀ · wk
                    // SAFETY: `cols` holds (p1 − p0)·k values (row stride k); `g` holds co
                    // rows `positions` apart of p1 − p0 values from p0, inside image b's
                    // gradient; `wk` is [co, k].
                    unsafe {
                        forward::product(
                            [p1 - p0, k, co],
                            (cols.as_mut_ptr(), row_major(k)),
                            (g.as_ptr(), col_major(positions)),
                            (wk.as_ptr(), row_major(k)),
                            false,
                        );
                    }
                    for (p, window) in (p0..p1).zip(cols.chunks(k)) {
                        let (y, xo) = (p / geo.wo * geo.sh, p % geo.wo * geo.sw);
                        for (i, values) in window.chunks(row).enumerate() {
                            let dst = ((y + i) * geo.wp + xo) * c;
                            let dst = &mut dxp[dst..dst + row];
                            dst.iter_mut().zip(values).for_each(|(d, v)| *d += v);
                        }
                    }
                }
                // the padded channels-last gradient, cropped, as NCHW
                for (ci, plane) in image.chunks_mut(h * w).enumerate() {
                    for (y, out_row) in plane.chunks_mut(w).enumerate() {
                        let base = ((y + geo.pt) * geo.wp + geo.pl) * c + ci;
                        for (xi, v) in out_row.iter_mut().enumerate() {
                            *v = dxp[base + xi * c];
                        }
                    }
                }
            });
    }
    super::flex_f32_tensor(out, input)
}

/// Lanes of [`bias_grad`]'s partial sums: one AVX-512 register, two AVX ones.
const LANES: usize = 16;

/// `∂L/∂b` of `y = conv2d(x, W) + b` from the f32 `g = ∂L/∂y`: each output channel's sum
/// over images and positions, summed in [`LANES`] partial sums per channel, the channels in
/// parallel. Burn's rule sums a copy of `g` with its batch and channel axes swapped.
pub(super) fn bias_grad(grad: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [n, co, ho, wo] = grad.shape().dims();
    let plane = ho * wo;
    let grad = grad.to_contiguous();
    let gs = super::flex_f32s(&grad);
    let sums = (0..co)
        .into_par_iter()
        .map(|o| {
            let mut lanes = [0f32; LANES];
            let mut rest = 0f32;
            for b in 0..n {
                let values = &gs[(b * co + o) * plane..][..plane];
                let mut blocks = values.chunks_exact(LANES);
                for block in &mut blocks {
                    lanes.iter_mut().zip(block).for_each(|(l, v)| *l += v);
                }
                rest += blocks.remainder().iter().sum::<f32>();
            }
            lanes.iter().sum::<f32>() + rest
        })
        .collect();
    super::flex_f32_tensor(sums, [co])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::conv::tests::{assert_close, prim, random_case, Case};
    use burn::backend::ops::ModuleOps;
    use burn::tensor::{Device, Distribution, Tensor};

    /// Against `flex`'s own `conv2d_x_backward`, `conv2d_weight_backward` and
    /// `conv2d_bias_backward`: square, oblong and 1×1 kernels, asymmetric padding, strides 1
    /// and 2, 3 channels, and images of several tiles (64 channels at 16×16: two tiles each)
    /// over more runs than cores; and a kernel too large for its input, left to `flex`.
    #[test]
    fn matches_flexs_gradients() {
        let device = Device::flex();
        let dist = Distribution::Uniform(-1.0, 1.0);
        // (input, weight, stride, padding)
        let cases = [
            ([3, 64, 16, 16], [8, 64, 3, 3], [1, 1], [(1, 1), (1, 1)]),
            ([5, 3, 9, 7], [6, 3, 3, 3], [1, 1], [(1, 1), (1, 1)]),
            ([2, 3, 9, 7], [5, 3, 3, 3], [2, 2], [(1, 1), (1, 1)]),
            ([2, 4, 7, 9], [3, 4, 5, 3], [1, 1], [(2, 0), (1, 2)]),
            ([2, 4, 7, 9], [3, 4, 5, 3], [1, 2], [(2, 0), (1, 2)]),
            ([1, 6, 5, 4], [2, 6, 1, 1], [1, 1], [(0, 0), (0, 0)]),
            ([2, 3, 4, 4], [2, 3, 4, 4], [1, 1], [(0, 0), (0, 0)]),
        ];
        for (input, kernel, stride, padding) in cases {
            let Case { x, w, g, options } = random_case(input, kernel, stride, padding);
            let what = format!("{input:?} * {kernel:?} at stride {stride:?}");
            let bias = prim(Tensor::<1>::random([kernel[0]], dist, &device));
            let want = Flex::conv2d_bias_backward(x.clone(), bias, g.clone());
            let got = bias_grad(g.clone());
            assert_close(
                got.into_data(),
                want.into_data(),
                1e-5,
                &format!("{what}: bias"),
            );
            let want = Flex::conv2d_x_backward(x.clone(), w.clone(), g.clone(), options.clone());
            assert!(input_grad_supported(input, &w, &g, &options));
            let got = input_grad(w.clone(), g.clone(), input, &options);
            assert_eq!(got.shape(), want.shape(), "{what}: input grad shape");
            assert_close(
                got.into_data(),
                want.into_data(),
                1e-4,
                &format!("{what}: input"),
            );
            let want = Flex::conv2d_weight_backward(x.clone(), w, g.clone(), options.clone());
            assert!(weight_grad_supported(&x, &g, kernel, &options));
            let got = weight_grad(x, g, kernel, &options);
            assert_eq!(got.shape(), want.shape(), "{what}: shape");
            assert_close(got.into_data(), want.into_data(), 1e-4, &what);
        }
        // a kernel larger than the padded input is left to flex (which rejects it)
        let x = prim(Tensor::<4>::random([1, 3, 2, 2], dist, &device));
        let w = prim(Tensor::<4>::random([2, 3, 5, 5], dist, &device));
        let g = prim(Tensor::<4>::random([1, 2, 1, 1], dist, &device));
        let options = ConvOptions::new_with_padding([1, 1], [(1, 1), (1, 1)], [1, 1], 1);
        assert!(!forward::supported(&x, &w, &options));
        assert!(!weight_grad_supported(&x, &g, [2, 3, 5, 5], &options));
        assert!(!input_grad_supported([1, 3, 2, 2], &w, &g, &options));
    }

    /// The weight gradient's rounding does not depend on the number of threads: the tiled
    /// rule here, and the shifted rule of `conv.rs` through the backend entry point (16
    /// channels at 32×32), on 1 and 3 threads, bit for bit.
    #[test]
    fn weight_gradient_is_the_same_on_any_number_of_threads() {
        use crate::models::conv::Im2colConvBackward;
        let on = |threads: usize, f: &(dyn Fn() -> FloatTensor<Flex> + Sync)| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            let values: Vec<f32> = pool.install(f).into_data().iter().collect();
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        // (input, kernel): 12 images of one tile each (more than PARTIAL_SUMS), and the shifted
        for (input, kernel) in [
            ([12, 4, 8, 8], [5, 4, 3, 3]),
            ([3, 16, 32, 32], [4, 16, 3, 3]),
        ] {
            let Case { x, w, g, options } = random_case(input, kernel, [1, 1], [(1, 1), (1, 1)]);
            let grad = || {
                Flex::conv2d_im2col_weight_backward(
                    x.clone(),
                    g.clone(),
                    w.shape(),
                    options.clone(),
                )
            };
            assert_eq!(on(1, &grad), on(3, &grad), "{input:?} * {kernel:?}");
        }
    }
}
