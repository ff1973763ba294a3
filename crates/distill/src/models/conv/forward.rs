//! The forward of distill's 2-D convolution on `flex` at f32 (groups 1, dilation 1): im2col
//! written for the channels-last padded input, whose window rows are contiguous, and one
//! matrix product per tile of output positions written straight into the NCHW output.
//!
//! `flex`'s own forward (Burn 0.22.1) is the same decomposition, but converts the input to
//! channels last on one thread, scatters each product into the output element by element, and
//! takes inputs of 3 channels through a scalar accumulation; on the CNN pair's layers that made
//! it 2–9× PyTorch (README, *CPU convolutions*). Here each of those steps is parallel or a
//! `memcpy`, and the product (`gemm`, the crate `flex` multiplies with) accumulates onto the
//! bias in the output's own layout.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::ops::ConvOptions;
use burn::tensor::DType;
use rayon::prelude::*;

/// Bytes of one work item's columns (positions × `k_h·k_w·C`): a tile stays in the core's L2
/// while its product reads it.
const TILE_BYTES: usize = 1 << 19;

/// Channels that [`Geometry::channels_last`] moves together: 16 f32, one cache line.
const CHANNEL_BLOCK: usize = 16;

/// Fewest output positions in a tile: thinner products waste the micro-kernel.
const MIN_TILE: usize = 64;

/// Whether [`forward`] takes the convolution of `x` by `weight` (the caller has checked groups
/// and dilation): f32, and a kernel no larger than the padded input.
pub(super) fn supported(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    options: &ConvOptions<2>,
) -> bool {
    let [_, _, kh, kw] = weight.shape().dims();
    x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && fits(x.shape().dims(), [kh, kw], options)
}

/// Whether a `kernel` fits inside an `input` (NCHW) with the padding of `options`, so that
/// [`Geometry::new`] has at least one output position per axis.
pub(super) fn fits(input: [usize; 4], kernel: [usize; 2], options: &ConvOptions<2>) -> bool {
    let [_, _, h, w] = input;
    let [(pt, pb), (pl, pr)] = options.padding;
    h + pt + pb >= kernel[0] && w + pl + pr >= kernel[1]
}

/// The shape of one convolution on the padded grid (groups 1, dilation 1).
pub(super) struct Geometry {
    /// Input channels.
    pub c: usize,
    /// Padded height.
    pub hp: usize,
    /// Padded width.
    pub wp: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
    /// Top padding.
    pub pt: usize,
    /// Left padding.
    pub pl: usize,
}

impl Geometry {
    /// The convolution of an `[n, c, h, w]` input by a `[_, c, k_h, k_w]` kernel.
    pub fn new(input: [usize; 4], kernel: [usize; 2], options: &ConvOptions<2>) -> Self {
        let [_, c, h, w] = input;
        let [kh, kw] = kernel;
        let [(pt, pb), (pl, pr)] = options.padding;
        let [sh, sw] = options.stride;
        let (hp, wp) = (h + pt + pb, w + pl + pr);
        let (ho, wo) = ((hp - kh) / sh + 1, (wp - kw) / sw + 1);
        Self {
            c,
            hp,
            wp,
            kh,
            kw,
            sh,
            sw,
            ho,
            wo,
            pt,
            pl,
        }
    }

    /// Values in one row of columns: `k_h·k_w·C`.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output positions of one image.
    pub fn positions(&self) -> usize {
        self.ho * self.wo
    }

    /// Output positions of one work item's columns.
    pub fn tile(&self) -> usize {
        (TILE_BYTES / (4 * self.k().max(1)))
            .max(MIN_TILE)
            .min(self.positions().max(1))
    }

    /// Tiles of one image.
    pub fn tiles(&self) -> usize {
        self.positions().div_ceil(self.tile())
    }

    /// The output positions `p0..p1` of tile `t` of an image.
    pub fn tile_span(&self, t: usize) -> (usize, usize) {
        let tile = self.tile();
        (t * tile, ((t + 1) * tile).min(self.positions()))
    }

    /// Values of one padded channels-last image.
    pub fn image(&self) -> usize {
        self.hp * self.wp * self.c
    }

    /// The f32 NCHW input `x` channels last on the padded grid: row `(b, y, x)` holds its C
    /// channels, zero in the padding.
    pub fn channels_last(&self, x: &FloatTensor<Flex>) -> Vec<f32> {
        let [n, c, h, w] = x.shape().dims();
        let x = x.clone().to_contiguous();
        let xs = super::flex_f32s(&x);
        let mut xp = vec![0f32; n * self.image()];
        if !xp.is_empty() {
            xp.par_chunks_mut(self.image())
                .zip(xs.par_chunks(c * h * w))
                .for_each(|(dst, src)| {
                    // a block of channels at a time: each position's write is one cache line
                    // (16 f32), read from as many rows advancing together
                    for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                        let cb = CHANNEL_BLOCK.min(c - c0);
                        for y in 0..h {
                            let mut rows: [&[f32]; CHANNEL_BLOCK] = [&[]; CHANNEL_BLOCK];
                            for (k, row) in rows[..cb].iter_mut().enumerate() {
                                *row = &src[((c0 + k) * h + y) * w..][..w];
                            }
                            let base = ((y + self.pt) * self.wp + self.pl) * c + c0;
                            for xi in 0..w {
                                let d = &mut dst[base + xi * c..][..cb];
                                for (k, v) in d.iter_mut().enumerate() {
                                    *v = rows[k][xi];
                                }
                            }
                        }
                    }
                });
        }
        xp
    }

    /// The f32 `[C_out, C, k_h, k_w]` weight as `[C_out, k_h·k_w·C]`, taps outer and channels
    /// inner (the columns' order).
    pub fn tap_major(&self, weight: FloatTensor<Flex>) -> Vec<f32> {
        let (c, taps, k) = (self.c, self.kh * self.kw, self.k());
        let weight = weight.to_contiguous();
        let ws = super::flex_f32s(&weight);
        let mut wk = vec![0f32; ws.len()];
        for (o, row) in wk.chunks_mut(k.max(1)).enumerate() {
            for ci in 0..c {
                for tap in 0..taps {
                    row[tap * c + ci] = ws[(o * c + ci) * taps + tap];
                }
            }
        }
        wk
    }

    /// Appends to `cols` the columns `[p1 − p0, k]` of output positions `p0..p1` of `image`
    /// (one channels-last padded image): each tap row of a window is `k_w·C` contiguous values.
    pub fn columns(&self, cols: &mut Vec<f32>, image: &[f32], p0: usize, p1: usize) {
        let c = self.c;
        for p in p0..p1 {
            let (y, xo) = (p / self.wo * self.sh, p % self.wo * self.sw);
            for i in 0..self.kh {
                let src = ((y + i) * self.wp + xo) * c;
                cols.extend_from_slice(&image[src..src + self.kw * c]);
            }
        }
    }
}

/// `conv2d(x, weight, bias, options)` for f32 `flex` tensors, groups 1 and dilation 1.
pub(super) fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: Option<FloatTensor<Flex>>,
    options: &ConvOptions<2>,
) -> FloatTensor<Flex> {
    let n = x.shape().dims::<4>()[0];
    let [co, _, kh, kw] = weight.shape().dims();
    let geo = Geometry::new(x.shape().dims(), [kh, kw], options);
    let (k, positions) = (geo.k(), geo.positions());

    let xp = geo.channels_last(&x);
    let wk = geo.tap_major(weight);
    // the output, NCHW, holding the bias (the products accumulate onto it)
    let mut out = vec![0f32; n * co * positions];
    let has_bias = bias.is_some();
    if let Some(bias) = bias {
        let bias = bias.to_contiguous();
        let bs = super::flex_f32s(&bias);
        for (i, plane) in out.chunks_mut(positions.max(1)).enumerate() {
            plane.fill(bs[i % co]);
        }
    }

    let tiles = geo.tiles();
    let out_ptr = SendPtr(out.as_mut_ptr());
    let (xp, wk, geo) = (&xp, &wk, &geo);
    (0..n * tiles).into_par_iter().for_each(|item| {
        let b = item / tiles;
        let (p0, p1) = geo.tile_span(item % tiles);
        // (appended in order: no zeroing of the buffer first)
        let mut cols = Vec::with_capacity((p1 - p0) * k);
        geo.columns(&mut cols, &xp[b * geo.image()..][..geo.image()], p0, p1);
        // out[b, :, p0..p1] (+)= wk · colsᵀ
        let dst = out_ptr.at(b * co * positions + p0);
        // SAFETY: every item writes its own image's positions p0..p1 of each output channel
        // (rows `positions` apart within the image), so no two items touch the same element;
        // `out` outlives the parallel loop, and the operands are live slices of the sizes given.
        unsafe {
            product(
                [p1 - p0, co, k],
                (dst, col_major(positions)),
                (cols.as_ptr(), row_major(k)),
                (wk.as_ptr(), col_major(k)),
                has_bias,
            );
        }
    });
    super::flex_f32_tensor(out, [n, co, geo.ho, geo.wo])
}

/// How an f32 matrix operand lies in memory: elements from one row to the next and from one
/// column to the next.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    row: isize,
    col: isize,
}

/// Rows `stride` elements apart, each row contiguous.
pub(super) fn row_major(stride: usize) -> Layout {
    Layout {
        row: stride as isize,
        col: 1,
    }
}

/// Columns `stride` elements apart, each column contiguous.
pub(super) fn col_major(stride: usize) -> Layout {
    Layout {
        row: 1,
        col: stride as isize,
    }
}

/// `dst (+)= lhs · rhs` for `[m, n, k] = dims`: `dst` `[m, n]`, `lhs` `[m, k]`, `rhs` `[k, n]`,
/// each an address and its [`Layout`], on the calling thread through `gemm` (the crate `flex`
/// multiplies with). With `accumulate` the product is added to `dst`, else `dst` is
/// overwritten (and not read).
///
/// # Safety
/// Every element each layout reaches for its shape must be inside a live allocation, `dst`'s
/// writable and touched by no other thread meanwhile.
pub(super) unsafe fn product(
    [m, n, k]: [usize; 3],
    (dst, dst_at): (*mut f32, Layout),
    (lhs, lhs_at): (*const f32, Layout),
    (rhs, rhs_at): (*const f32, Layout),
    accumulate: bool,
) {
    // SAFETY: the caller's contract, which is gemm's
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_at.col,
            dst_at.row,
            accumulate,
            lhs,
            lhs_at.col,
            lhs_at.row,
            rhs,
            rhs_at.col,
            rhs_at.row,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The output's address, shared with the parallel loop (each item writes its own elements).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: the pointer is only offset and handed to `gemm` for disjoint regions (see `forward`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The address `offset` elements on.
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's offsets stay inside the output buffer
        unsafe { self.0.add(offset) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::conv::tests::{assert_close, prim};
    use burn::backend::ops::ModuleOps;
    use burn::tensor::{Device, Distribution, Tensor};

    /// Against `flex`'s own forward: strides, paddings, oblong kernels, with and without bias,
    /// an image of several tiles (16×16 positions at 64·9 columns: two tiles), and channels
    /// in whole and partial blocks of 16.
    #[test]
    fn matches_flexs_forward() {
        let device = Device::flex();
        let dist = Distribution::Uniform(-1.0, 1.0);
        // (input, weight, stride, padding, bias)
        let cases = [
            (
                [2, 64, 16, 16],
                [8, 64, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                true,
            ),
            ([3, 3, 9, 7], [5, 3, 3, 3], [2, 2], [(1, 1), (1, 1)], true),
            ([2, 4, 7, 9], [3, 4, 5, 3], [1, 2], [(2, 0), (1, 2)], false),
            (
                [1, 20, 5, 4],
                [2, 20, 1, 1],
                [1, 1],
                [(0, 0), (0, 0)],
                false,
            ),
        ];
        for (input, kernel, stride, padding, with_bias) in cases {
            let x = Tensor::<4>::random(input, dist, &device);
            let w = Tensor::<4>::random(kernel, dist, &device);
            let b = with_bias.then(|| prim(Tensor::<1>::random([kernel[0]], dist, &device)));
            let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
            let want = Flex::conv2d(prim(x.clone()), prim(w.clone()), b.clone(), options.clone());
            let got = forward(prim(x), prim(w), b, &options);
            let what = format!("{input:?} * {kernel:?}");
            assert_eq!(got.shape(), want.shape(), "{what}: shape");
            assert_close(got.into_data(), want.into_data(), 1e-5, &what);
        }
    }
}
