//! 2-D max pooling over non-overlapping windows (kernel = stride, no padding, dilation 1,
//! floor), optionally of the ReLU of its input, with distill's own kernels on `flex` at f32.
//!
//! `flex`'s max pool (Burn 0.22.1) goes through its general 3-D pool: per output element a
//! window-range computation and an `i64` index written, and a backward that zeroes the input
//! gradient and scatters into it from those indices; before it, ReLU's forward and backward are
//! two more passes over the full-size tensor. On the CNN pair that made ReLU + pool 1.4–2× of
//! PyTorch's (README, *CPU convolutions*). Here one pass reads each window and writes the
//! pooled value, and the backward recomputes each window's maximum from the saved input (no
//! index tensor) and writes every input gradient element once.
//!
//! Results are those of Burn's `max_pool2d(relu(x))` (or `max_pool2d(x)`) on `flex`, bit for
//! bit: the window's first largest value (a NaN replaces it; the last NaN wins), ReLU keeping
//! NaN, and the gradient reaching that element when the ReLU passes it (a positive or NaN
//! maximum). Other backends, dtypes and pool settings run Burn's ops unchanged.
//!
//! Built as a Burn backend extension like [`super::conv`]: [`WindowMaxPool`] for `Flex` and
//! `Autodiff<B>` (the forward recorded with [`WindowMaxPoolBackward`]'s step). Models reach it
//! through [`PoolForward`] on Burn's `MaxPool2d`.

use super::conv::{flex_f32_tensor, flex_f32s, on_flex};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu as relu_op;
use burn::tensor::{DType, IntDType, Tensor};
use rayon::prelude::*;

/// Max pooling of `x` (NCHW) over `kernel`-sized windows at stride `kernel`, of `relu(x)` when
/// `relu` is set.
#[backend_extension(Flex, Autodiff)]
pub trait WindowMaxPool: Backend {
    /// `max_pool2d(relu ? relu(x) : x, kernel, stride = kernel)`.
    fn window_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], relu: bool)
        -> FloatTensor<Self>;
}

/// The input gradient of [`WindowMaxPool::window_max_pool2d`] from the saved input and the
/// output gradient (the backend the autodiff step runs on).
pub trait WindowMaxPoolBackward: Backend {
    /// `∂L/∂x` from `x` and `grad = ∂L/∂y`.
    fn window_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kernel: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self>;
}

impl WindowMaxPool for Flex {
    fn window_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 {
            let x = if relu { Self::relu(x) } else { x };
            return Self::max_pool2d(x, kernel, kernel, [0, 0], [1, 1], false);
        }
        let [n, c, h, w] = x.shape().dims();
        let (ho, wo) = (h / kernel[0], w / kernel[1]);
        let x = x.to_contiguous();
        let xs = flex_f32s(&x);
        let mut out = vec![0f32; n * c * ho * wo];
        if !out.is_empty() {
            out.par_chunks_mut(ho * wo)
                .zip(xs.par_chunks(h * w))
                .for_each(|(dst, plane)| match (kernel, relu) {
                    // the CNNs' pools, unrolled
                    ([2, 2], true) => pool_plane(dst, plane, w, [2, 2], true),
                    ([2, 2], false) => pool_plane(dst, plane, w, [2, 2], false),
                    _ => pool_plane(dst, plane, w, kernel, relu),
                });
        }
        flex_f32_tensor(out, [n, c, ho, wo])
    }
}

impl WindowMaxPoolBackward for Flex {
    fn window_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kernel: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 {
            // Burn's composition: the pool's backward from its indices, then ReLU's
            let input = if relu { Self::relu(x) } else { x };
            let pooled = Self::max_pool2d_with_indices(
                input.clone(),
                kernel,
                kernel,
                [0, 0],
                [1, 1],
                false,
                IntDType::I64,
            );
            let g = Self::max_pool2d_with_indices_backward(
                input.clone(),
                kernel,
                kernel,
                [0, 0],
                [1, 1],
                false,
                grad,
                pooled.indices,
            )
            .x_grad;
            return if relu {
                Self::relu_backward(input, g)
            } else {
                g
            };
        }
        let [n, c, h, w] = x.shape().dims();
        let [_, _, ho, wo] = grad.shape().dims();
        let x = x.to_contiguous();
        let xs = flex_f32s(&x);
        let grad = grad.to_contiguous();
        let gs = flex_f32s(&grad);
        let mut gx = vec![0f32; n * c * h * w];
        if ho * wo > 0 {
            gx.par_chunks_mut(h * w)
                .zip(xs.par_chunks(h * w).zip(gs.par_chunks(ho * wo)))
                .for_each(|(dst, (plane, g))| match (kernel, relu) {
                    ([2, 2], true) => unpool_plane(dst, plane, g, w, [2, 2], true),
                    ([2, 2], false) => unpool_plane(dst, plane, g, w, [2, 2], false),
                    _ => unpool_plane(dst, plane, g, w, kernel, relu),
                });
        }
        flex_f32_tensor(gx, [n, c, h, w])
    }
}

/// One plane's pooled values (`dst`, `w / k_w` wide) from the `w`-wide `plane`.
#[inline(always)]
fn pool_plane(dst: &mut [f32], plane: &[f32], w: usize, kernel: [usize; 2], relu: bool) {
    let wo = w / kernel[1];
    for (oy, row) in dst.chunks_mut(wo).enumerate() {
        for (ox, v) in row.iter_mut().enumerate() {
            *v = window_max(plane, w, kernel, oy, ox, relu).0;
        }
    }
}

/// One plane's input gradient (`dst`, zeroed, `w` wide) from its output gradient `g`: each
/// window's value to the element its maximum was read at, when the ReLU passes it.
#[inline(always)]
fn unpool_plane(
    dst: &mut [f32],
    plane: &[f32],
    g: &[f32],
    w: usize,
    kernel: [usize; 2],
    relu: bool,
) {
    let wo = w / kernel[1];
    for (oy, row) in g.chunks(wo).enumerate() {
        for (ox, &v) in row.iter().enumerate() {
            let (m, at) = window_max(plane, w, kernel, oy, ox, relu);
            if !relu || m.is_nan() || m > 0.0 {
                dst[at] = v;
            }
        }
    }
}

/// The maximum of window `(oy, ox)` of a `w`-wide plane (of its ReLU when `relu`), and the
/// plane index it was read at, folded as `flex` folds a window: rows then columns, the first
/// largest value kept, a NaN replacing whatever was kept.
#[inline(always)]
fn window_max(
    plane: &[f32],
    w: usize,
    kernel: [usize; 2],
    oy: usize,
    ox: usize,
    relu: bool,
) -> (f32, usize) {
    let [kh, kw] = kernel;
    let origin = oy * kh * w + ox * kw;
    let (mut best, mut at) = (f32::NAN, usize::MAX);
    for i in 0..kh {
        let start = origin + i * w;
        for (j, &v) in plane[start..start + kw].iter().enumerate() {
            // flex's ReLU: NaN kept, everything not above zero to zero
            let v = if relu && !(v.is_nan() || v > 0.0) {
                0.0
            } else {
                v
            };
            if at == usize::MAX || v > best || v.is_nan() {
                (best, at) = (v, start + j);
            }
        }
    }
    (best, at)
}

/// The backward step: the input gradient from the saved input. Parent: x.
#[derive(Debug)]
struct WindowMaxPoolStep;

impl<B: Backend + WindowMaxPoolBackward> Backward<B, 1> for WindowMaxPoolStep {
    type State = (NodeId, [usize; 2], bool);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, kernel, relu) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        if let Some(node) = &ops.parents[0] {
            let g = B::window_max_pool2d_backward(x, grad, kernel, relu);
            grads.register::<B>(node.id, g);
        }
    }
}

impl<B, C> WindowMaxPool for Autodiff<B, C>
where
    B: Backend + WindowMaxPool + WindowMaxPoolBackward,
    C: CheckpointStrategy,
{
    fn window_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self> {
        match WindowMaxPoolStep
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), kernel, relu);
                let out = B::window_max_pool2d(x.into_primitive(), kernel, relu);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::window_max_pool2d(x.into_primitive(), kernel, relu))
            }
        }
    }
}

/// `max_pool2d(relu ? relu(x) : x)` with `pool`'s settings; through [`WindowMaxPool`] on `flex`
/// when the windows do not overlap (kernel = stride, no padding, dilation 1, floor).
pub fn max_pool2d(x: Tensor<4>, pool: &MaxPool2d, relu: bool) -> Tensor<4> {
    let windows = pool.kernel_size == pool.stride
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid);
    if !windows || !on_flex(&x) {
        return pool.forward(if relu { relu_op(x) } else { x });
    }
    let out =
        <Dispatch as WindowMaxPool>::window_max_pool2d(x.into_dispatch(), pool.kernel_size, relu);
    Tensor::from_dispatch(out)
}

/// `MaxPool2d`'s forward through this module's [`max_pool2d`].
pub trait PoolForward {
    /// What `MaxPool2d::forward` computes.
    fn run(&self, x: Tensor<4>) -> Tensor<4>;

    /// What `MaxPool2d::forward(relu(x))` computes.
    fn run_relu(&self, x: Tensor<4>) -> Tensor<4>;
}

impl PoolForward for MaxPool2d {
    fn run(&self, x: Tensor<4>) -> Tensor<4> {
        max_pool2d(x, self, false)
    }

    fn run_relu(&self, x: Tensor<4>) -> Tensor<4> {
        max_pool2d(x, self, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, Distribution};

    /// Random values with ties (many exact zeros after rounding to a coarse grid), negative
    /// windows and, when `nan`, NaNs: what decides which element a window picks.
    fn input(shape: [usize; 4], nan: bool, device: &Device) -> Tensor<4> {
        let x = Tensor::<4>::random(shape, Distribution::Uniform(-2.0, 2.0), device);
        let x = x.mul_scalar(2.0).round().div_scalar(2.0);
        if !nan {
            return x;
        }
        let holes = Tensor::<4>::random(shape, Distribution::Uniform(0.0, 1.0), device);
        x.mask_fill(holes.lower_elem(0.05), f32::NAN)
    }

    /// Bitwise equality of two tensors' values (NaN equal to NaN).
    fn same_bits(got: Tensor<4>, want: Tensor<4>, what: &str) {
        assert_eq!(got.dims(), want.dims(), "{what}: shape");
        let bits =
            |t: Tensor<4>| -> Vec<u32> { t.to_data().iter::<f32>().map(f32::to_bits).collect() };
        let (got, want) = (bits(got), bits(want));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{what}[{i}]: {} vs {}",
                f32::from_bits(*g),
                f32::from_bits(*w)
            );
        }
    }

    /// Against Burn's `MaxPool2d::forward` (after `relu` or not) on flex under autodiff: the
    /// same output and input gradient bit for bit, with ties, NaNs, odd sides (a row and
    /// column no window covers), 2×2 and 3×2 windows, and at f64 (Burn's ops).
    #[test]
    fn matches_burns_pool_and_its_gradient() {
        let device = Device::flex().autodiff();
        let cases = [
            ([2, 3, 8, 8], [2, 2], false),
            ([2, 3, 8, 8], [2, 2], true),
            ([1, 4, 7, 9], [2, 2], true),
            ([3, 2, 9, 8], [3, 2], true),
        ];
        for (shape, kernel, nan) in cases {
            let pool = MaxPool2dConfig::new(kernel).with_strides(kernel).init();
            for relu in [false, true] {
                for dtype in [DType::F32, DType::F64] {
                    let x = input(shape, nan, &device).cast(dtype).require_grad();
                    let mine = max_pool2d(x.clone(), &pool, relu);
                    let burn = pool.forward(if relu { relu_op(x.clone()) } else { x.clone() });
                    let what = format!("{shape:?} / {kernel:?}, relu {relu}, {dtype:?}");
                    let f32s = |t: Tensor<4>| t.cast(DType::F32);
                    same_bits(
                        f32s(mine.clone()),
                        f32s(burn.clone()),
                        &format!("{what}: output"),
                    );
                    let upstream =
                        Tensor::<4>::random(burn.dims(), Distribution::Uniform(-1.0, 1.0), &device)
                            .cast(dtype);
                    let g_mine = (mine * upstream.clone()).sum().backward();
                    let g_burn = (burn * upstream).sum().backward();
                    let grad = |g| f32s(x.grad(g).expect("an input gradient"));
                    same_bits(grad(&g_mine), grad(&g_burn), &format!("{what}: gradient"));
                }
            }
        }
    }

    /// Pool settings the kernels do not take (overlapping windows, padding) go to Burn's op.
    #[test]
    fn other_pools_are_burns() {
        let device = Device::flex();
        let x = input([2, 2, 7, 7], false, &device);
        let pool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        same_bits(
            pool.run_relu(x.clone()),
            pool.forward(relu_op(x)),
            "3x3 / 2, padded",
        );
    }
}
