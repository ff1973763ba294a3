//! 2-D convolution whose weight gradient on the `flex` backend is matrix products, as PyTorch
//! takes it, instead of Burn 0.22.1's backend-generic rule (a convolution over swapped batch and
//! channel dimensions whose output is the kernel: thin products, 2–3× slower on `flex`; README,
//! *CPU convolutions*): at stride 1 from 16 input channels and 32×32 positions, one product per
//! kernel tap over shifted views of the channels-last input ([`weight_grad_shifted`]); else, at
//! f32, one product per tile of output positions into the forward's columns
//! ([`backward::weight_grad`]), and at other dtypes one product per chunk of images over
//! unfolded columns (im2col, [`weight_grad_im2col`]; the shifted products from 16 channels at
//! stride 1). At f32 the forward is distill's im2col ([`forward`]) and the input and bias
//! gradients are distill's ([`backward`]); at other dtypes they are the backend's. Other
//! backends, and convolutions with groups or dilation, run Burn's `conv2d` unchanged.
//!
//! Built as a Burn backend extension (`#[backend_extension]`): [`Im2colConv`] is implemented
//! for `Flex` (the plain forward) and for `Autodiff<B>` (the forward recorded with its own
//! backward step). Every model reaches it through [`ConvForward::run`] on Burn's `Conv2d`.

mod backward;
mod forward;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, DispatchTensorKind, Flex};
use burn::backend::{FloatDType, TensorMetadata};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Shape, Slice, Tensor, TensorData};

/// Bytes of one chunk's columns: chunks of images keep the unfolded input near the caches
/// (64 channels at 32×32 unfold to 2.4 MB an image).
const CHUNK_BYTES: usize = 16 << 20;

/// Input channels from which the stride-1 weight gradient takes shifted products: below, its
/// products are too thin (a first layer's 3 channels: 3× slower than im2col on the CNN pair).
const SHIFTED_MIN_CHANNELS: usize = 16;

/// Partial sums of a weight gradient (the shifted rule's tiles, the tiled rule's runs), summed
/// in order at the end: a fixed count, so that the result does not depend on the number of
/// threads (eight keep up to eight cores busy).
const PARTIAL_SUMS: usize = 8;

/// Input positions per image from which the f32 weight gradient on `flex` takes the shifted
/// products (at stride 1, from [`SHIFTED_MIN_CHANNELS`] channels) rather than the tiles of
/// `backward.rs`: on the CNN pair, 64 channels at 32×32 took 53 ms shifted and 75 ms in tiles,
/// while at 16×16 and 8×8 the tiles took half the time (README, *CPU convolutions*).
const SHIFTED_MIN_POSITIONS: usize = 32 * 32;

/// The convolution of this module as a backend operation (two methods, with and without a
/// bias: the extension macro does not convert optional tensors).
#[backend_extension(Flex, Autodiff)]
pub trait Im2colConv: Backend {
    /// `conv2d(x, weight, bias, options)`; under autodiff, its weight gradient by im2col.
    fn conv2d_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `conv2d(x, weight, None, options)`; under autodiff, its weight gradient by im2col.
    fn conv2d_im2col_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl Im2colConv for Flex {
    fn conv2d_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        if forward::supported(&x, &weight, &options) {
            return forward::forward(x, weight, Some(bias), &options);
        }
        Self::conv2d(x, weight, Some(bias), options)
    }

    fn conv2d_im2col_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        if forward::supported(&x, &weight, &options) {
            return forward::forward(x, weight, None, &options);
        }
        Self::conv2d(x, weight, None, options)
    }
}

/// The input, weight and bias gradients of [`Im2colConv`]'s convolution on the backend the
/// autodiff step runs on.
pub trait Im2colConvBackward: Backend {
    /// `∂L/∂x` of `y = conv2d(x, weight)` from `grad = ∂L/∂y`.
    fn conv2d_im2col_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `∂L/∂b` of `y = conv2d(x, W) + b` from `grad = ∂L/∂y`.
    fn conv2d_im2col_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `∂L/∂W` of `y = conv2d(x, W)` from `grad = ∂L/∂y`, `W` of `weight_shape`.
    fn conv2d_im2col_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: Shape,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl Im2colConvBackward for Flex {
    fn conv2d_im2col_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let input = x.shape().dims();
        if backward::input_grad_supported(input, &weight, &grad, &options) {
            return backward::input_grad(weight, grad, input, &options);
        }
        Self::conv2d_x_backward(x, weight, grad, options)
    }

    fn conv2d_im2col_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if grad.dtype() == FloatDType::F32.into() && bias.dtype() == grad.dtype() {
            return backward::bias_grad(grad);
        }
        Self::conv2d_bias_backward(x, bias, grad)
    }

    fn conv2d_im2col_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: Shape,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let [_, c, h, w] = x.shape().dims();
        let shifted =
            options.stride == [1, 1] && c >= SHIFTED_MIN_CHANNELS && h * w >= SHIFTED_MIN_POSITIONS;
        if !shifted && backward::weight_grad_supported(&x, &grad, weight_shape.dims(), &options) {
            return backward::weight_grad(x, grad, weight_shape.dims(), &options);
        }
        weight_grad::<Self>(x, grad, weight_shape, &options)
    }
}

/// The backward step: the input, weight and bias gradients by [`Im2colConvBackward`].
/// Parents: x, weight and (N = 3) the bias.
#[derive(Debug)]
struct Conv2dIm2colBackward;

impl<B: Backend + Im2colConvBackward, const N: usize> Backward<B, N> for Conv2dIm2colBackward {
    type State = (NodeId, NodeId, Option<NodeId>, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = &ops.parents[0] {
            let g = B::conv2d_im2col_x_backward(
                x.clone(),
                weight.clone(),
                grad.clone(),
                options.clone(),
            );
            grads.register::<B>(node.id, g);
        }
        // retrieved whether or not it is tracked, as Burn's own step does
        let bias = bias_state.map(|s| checkpointer.retrieve_node_output::<FloatTensor<B>>(s));
        if let (Some(Some(node)), Some(bias)) = (ops.parents.get(2), bias) {
            let g = B::conv2d_im2col_bias_backward(x.clone(), bias, grad.clone());
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = &ops.parents[1] {
            let g = B::conv2d_im2col_weight_backward(x, grad, weight.shape(), options);
            grads.register::<B>(node.id, g);
        }
    }
}

/// The forward, recorded with [`Conv2dIm2colBackward`] when any input is tracked.
fn record<B: Backend + Im2colConv + Im2colConvBackward, C: CheckpointStrategy, const N: usize>(
    parents: [NodeGuard; N],
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>> {
    match Conv2dIm2colBackward
        .prepare::<C>(parents)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&weight),
                bias.as_ref().map(|b| prep.checkpoint(b)),
                options.clone(),
            );
            let out = inner::<B, C>(x, weight, bias, options);
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(inner::<B, C>(x, weight, bias, options)),
    }
}

/// The inner backend's forward of this module.
fn inner<B: Backend + Im2colConv, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<B> {
    let (x, weight) = (x.into_primitive(), weight.into_primitive());
    match bias {
        Some(b) => B::conv2d_im2col(x, weight, b.into_primitive(), options),
        None => B::conv2d_im2col_unbiased(x, weight, options),
    }
}

impl<B: Backend + Im2colConv + Im2colConvBackward, C: CheckpointStrategy> Im2colConv
    for Autodiff<B, C>
{
    fn conv2d_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let parents = [x.node(), weight.node(), bias.node()];
        record::<B, C, 3>(parents, x, weight, Some(bias), options)
    }

    fn conv2d_im2col_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let parents = [x.node(), weight.node()];
        record::<B, C, 2>(parents, x, weight, None, options)
    }
}

/// `∂L/∂W` of `y = conv2d(x, W)` from `g = ∂L/∂y` (groups 1, dilation 1), in the input's dtype:
/// [`weight_grad_shifted`] at stride 1 from [`SHIFTED_MIN_CHANNELS`] input channels, else
/// [`weight_grad_im2col`].
fn weight_grad<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
    weight_shape: Shape,
    options: &ConvOptions<2>,
) -> FloatTensor<B> {
    let [n, c, _, _] = x.shape().dims();
    if n == 0 {
        let dtype = x.dtype();
        return B::float_zeros(weight_shape, &x.device(), dtype.into());
    }
    if options.stride == [1, 1] && c >= SHIFTED_MIN_CHANNELS {
        weight_grad_shifted::<B>(x, grad, weight_shape, options.padding)
    } else {
        let x = padded::<B>(x, options);
        weight_grad_im2col::<B>(x, grad, weight_shape, options.stride, CHUNK_BYTES)
    }
}

/// `x` with the convolution's zero padding.
fn padded<B: Backend>(x: FloatTensor<B>, options: &ConvOptions<2>) -> FloatTensor<B> {
    let [(pt, pb), (pl, pr)] = options.padding;
    if pt + pb + pl + pr == 0 {
        return x;
    }
    let pads = [(0, 0), (0, 0), (pt, pb), (pl, pr)];
    B::float_pad(x, &pads, PadMode::Constant(0.0))
}

/// The stride-1 weight gradient without unfolded columns: on the padded grid of `P = H_p·W_p`
/// positions per image, channels last, the input is a matrix `X` of `n·P` rows and the output
/// gradient `G` (zero where no output lies) one of `n·P` rows too; kernel tap `(i, j)` pairs row
/// `r` of `G` with row `r + i·W_p + j` of `X`, so `∂L/∂W[:, :, i, j] = Σ_r G[r]ᵀ X[r + i·W_p + j]`.
/// The rows are cut into [`PARTIAL_SUMS`] tiles (the batched product runs its batches in
/// parallel, each on one core: `k_h·k_w` batches alone leave a core idle); each tile's
/// `k_h·k_w` shifted blocks of `X` are views (three `unfold`s), all tiles and taps one batched
/// product summed over tiles. Zero images appended to both keep the last tile's shifted rows inside `X`.
/// `P/(H_o·W_o)`× the products of im2col (1.13× at 32×32, 1.56× at 8×8, padding 1), and no
/// copy of the windows. Products in f32, the result in `x`'s dtype.
fn weight_grad_shifted<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
    weight_shape: Shape,
    padding: [(usize, usize); 2],
) -> FloatTensor<B> {
    let dtype = x.dtype();
    let [n, c, h, w] = x.shape().dims();
    let [_, cout, ho, wo] = grad.shape().dims();
    let [_, _, kh, kw] = weight_shape.dims();
    let [(pt, pb), (pl, pr)] = padding;
    let (hp, wp) = (h + pt + pb, w + pl + pr);
    let p = hp * wp;
    let reach = (kh - 1) * wp + (kw - 1);
    let tile = (n * p).div_ceil(PARTIAL_SUMS);
    let tiles = (n * p).div_ceil(tile);
    let extra = (tiles * tile + reach - n * p).div_ceil(p);
    let rows = (n + extra) * p;
    // channels last, padded, with `extra` zero images: one copy each
    let nhwc = |t: FloatTensor<B>, pads: [(usize, usize); 2], width: usize| {
        let t = B::float_permute(t, &[0, 2, 3, 1]);
        let t = B::float_pad(
            t,
            &[(0, extra), pads[0], pads[1], (0, 0)],
            PadMode::Constant(0.0),
        );
        B::float_reshape(B::float_cast(t, FloatDType::F32), Shape::new([rows, width]))
    };
    let x = nhwc(x, padding, c);
    let g = nhwc(grad, [(0, hp - ho), (0, wp - wo)], cout);
    let g = B::float_slice(g, &[Slice::from(0..tiles * tile), Slice::from(..)]);
    let g = B::float_reshape(g, Shape::new([tiles, 1, 1, tile, cout]));
    let g = B::float_swap_dims(g, 3, 4);
    // [T, C, tile + reach] at rows t·L_t, then [T, C, k_h, tile + k_w − 1] at + i·W_p, then
    // [T, C, k_h, k_w, tile] at + j
    let x = B::float_unfold(x, 0, tile + reach, tile);
    let x = B::float_unfold(x, 2, tile + kw - 1, wp);
    let x = B::float_unfold(x, 3, tile, 1);
    let x = B::float_slice(
        x,
        &[
            Slice::from(0..tiles),
            Slice::from(..),
            Slice::from(..),
            Slice::from(..),
            Slice::from(..),
        ],
    );
    let product = B::float_matmul(g, B::float_permute(x, &[0, 2, 3, 4, 1]));
    let product = B::float_sum_dim(product, 0);
    let product = B::float_reshape(product, Shape::new([kh, kw, cout, c]));
    let product = B::float_permute(product, &[2, 3, 0, 1]);
    B::float_cast(B::float_reshape(product, weight_shape), dtype.into())
}

/// The weight gradient by im2col (any stride): for each chunk of images, `g` as
/// `[C_out, n·H_out·W_out]` times the padded input's unfolded windows as
/// `[n·H_out·W_out, C·k_h·k_w]`, summed in f32 over chunks of about `chunk_bytes` of columns
/// (at bf16/f16 each chunk's product is rounded once, as the backend's own product is), shaped
/// as `W` in the input's dtype. `x` is padded and holds at least one image.
fn weight_grad_im2col<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
    weight_shape: Shape,
    stride: [usize; 2],
    chunk_bytes: usize,
) -> FloatTensor<B> {
    let [n, c, _, _] = x.shape().dims();
    let [_, cout, ho, wo] = grad.shape().dims();
    let [_, _, kh, kw] = weight_shape.dims();
    let dtype = x.dtype();
    let per_image = ho * wo * c * kh * kw * dtype.size();
    let chunk = (chunk_bytes / per_image.max(1)).clamp(1, n);
    let mut sum: Option<FloatTensor<B>> = None;
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let images = |t: &FloatTensor<B>| {
            let mut s = vec![Slice::from(start..end)];
            s.extend((1..4).map(|_| Slice::from(..)));
            B::float_slice(t.clone(), &s)
        };
        let windows = B::float_unfold(images(&x), 2, kh, stride[0]);
        let windows = B::float_unfold(windows, 3, kw, stride[1]);
        let rows = (end - start) * ho * wo;
        let cols = B::float_reshape(
            B::float_permute(windows, &[0, 2, 3, 1, 4, 5]),
            Shape::new([rows, c * kh * kw]),
        );
        let g = B::float_reshape(
            B::float_permute(images(&grad), &[1, 0, 2, 3]),
            Shape::new([cout, rows]),
        );
        let product = B::float_cast(B::float_matmul(g, cols), FloatDType::F32);
        sum = Some(match sum {
            None => product,
            Some(s) => B::float_add(s, product),
        });
    }
    let sum = sum.expect("at least one image (n > 0)");
    B::float_reshape(B::float_cast(sum, dtype.into()), weight_shape)
}

/// The values of a contiguous f32 `flex` tensor, in order (what `to_contiguous` returns).
pub(super) fn flex_f32s(t: &FloatTensor<Flex>) -> &[f32] {
    &t.storage::<f32>()[t.layout().start_offset()..][..t.shape().num_elements()]
}

/// An f32 `flex` tensor of `shape` holding `values`.
pub(super) fn flex_f32_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
) -> FloatTensor<Flex> {
    <Flex as FloatTensorOps<Flex>>::float_from_data(
        TensorData::new(values, shape),
        &Default::default(),
    )
}

/// Whether `x` lives on `flex` (with or without autodiff): where the extension is implemented.
pub(super) fn on_flex(x: &Tensor<4>) -> bool {
    match &x.clone().into_dispatch().kind {
        DispatchTensorKind::Flex(_) => true,
        DispatchTensorKind::Autodiff(inner) => matches!(**inner, DispatchTensorKind::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// `burn::tensor::module::conv2d(x, weight, bias, options)`; on `flex`, with groups 1 and
/// dilation 1, through [`Im2colConv`] (its weight gradient by im2col).
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if options.groups != 1 || options.dilation != [1, 1] || !on_flex(&x) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(b) => <Dispatch as Im2colConv>::conv2d_im2col(x, weight, b.into_dispatch(), options),
        None => <Dispatch as Im2colConv>::conv2d_im2col_unbiased(x, weight, options),
    })
}

/// `Conv2d`'s forward through this module's [`conv2d`].
pub trait ConvForward {
    /// What `Conv2d::forward` computes.
    fn run(&self, x: Tensor<4>) -> Tensor<4>;
}

impl ConvForward for Conv2d {
    fn run(&self, x: Tensor<4>) -> Tensor<4> {
        // explicit or no padding (what the zoo uses); `Same` stays with Burn's rule
        let padding = match self.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            PaddingConfig2d::Same => return self.forward(x),
        };
        let options =
            ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups);
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{DType, Device, Distribution, TensorData};

    /// Equal within `rel` of the largest reference magnitude (other summation orders round
    /// differently).
    pub(super) fn assert_close(got: TensorData, want: TensorData, rel: f32, what: &str) {
        let (got, want): (Vec<f32>, Vec<f32>) = (got.iter().collect(), want.iter().collect());
        assert_eq!(got.len(), want.len(), "{what}: size");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= rel * scale, "{what}[{i}]: {g} vs {w}");
        }
    }

    /// The `flex` primitive of a float tensor on `flex`.
    pub(super) fn prim<const D: usize>(t: Tensor<D>) -> FloatTensor<Flex> {
        match t.into_dispatch().kind {
            DispatchTensorKind::Flex(b) => b.float(),
            #[allow(unreachable_patterns)]
            _ => unreachable!("a flex tensor"),
        }
    }

    /// A random convolution on flex: input, kernel, an output gradient of the shape the
    /// convolution gives, and its options (dilation 1, groups 1).
    pub(super) struct Case {
        pub x: FloatTensor<Flex>,
        pub w: FloatTensor<Flex>,
        pub g: FloatTensor<Flex>,
        pub options: ConvOptions<2>,
    }

    /// A [`Case`] of `input` by `kernel` at `stride` with `padding` [(top, bottom), (left,
    /// right)], its values uniform in [−1, 1].
    pub(super) fn random_case(
        input: [usize; 4],
        kernel: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Case {
        let device = Device::flex();
        let dist = Distribution::Uniform(-1.0, 1.0);
        let x = prim(Tensor::<4>::random(input, dist, &device));
        let w = prim(Tensor::<4>::random(kernel, dist, &device));
        let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
        let y = Flex::conv2d(x.clone(), w.clone(), None, options.clone());
        let g = prim(Tensor::<4>::random(y.shape().dims::<4>(), dist, &device));
        Case { x, w, g, options }
    }

    /// `run` against Burn's `Conv2d::forward` on flex under autodiff: the same output and the
    /// same gradients for the weight, the bias and (when it is tracked) the input.
    fn same_as_burn(config: Conv2dConfig, input: [usize; 4], x_tracked: bool) {
        let device = Device::flex().autodiff();
        let conv = config.init(&device);
        let x = Tensor::<4>::random(input, Distribution::Uniform(-1.0, 1.0), &device);
        let x = if x_tracked { x.require_grad() } else { x };
        assert!(on_flex(&x), "the im2col path is what is tested");
        let mine = conv.run(x.clone());
        let burn = conv.forward(x.clone());
        assert_close(mine.to_data(), burn.to_data(), 1e-4, "output");
        // a weighted sum, so that every output element has its own gradient
        let upstream = Tensor::<4>::random(burn.dims(), Distribution::Uniform(-1.0, 1.0), &device);
        let g_mine = (mine * upstream.clone()).sum().backward();
        let g_burn = (burn * upstream).sum().backward();
        let grad = |t: &Tensor<4>, g| t.grad(g).expect("a gradient").to_data();
        if x_tracked {
            assert_close(grad(&x, &g_mine), grad(&x, &g_burn), 1e-4, "input grad");
        } else {
            assert!(
                x.grad(&g_mine).is_none(),
                "an untracked input has no gradient"
            );
        }
        let w = conv.weight.val();
        assert_close(grad(&w, &g_mine), grad(&w, &g_burn), 1e-4, "weight grad");
        if let Some(b) = &conv.bias {
            let (m, r) = (b.val().grad(&g_mine), b.val().grad(&g_burn));
            let (m, r) = (m.expect("bias grad"), r.expect("bias grad"));
            assert_close(m.to_data(), r.to_data(), 1e-4, "bias grad");
        }
    }

    #[test]
    fn matches_burns_convolution_and_its_gradients() {
        let pad1 = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let conv = Conv2dConfig::new([3, 8], [3, 3]).with_padding(pad1.clone());
        same_as_burn(conv.clone(), [2, 3, 9, 7], true);
        // a first layer: the input (data) is not tracked
        same_as_burn(conv, [2, 3, 9, 7], false);
        same_as_burn(
            Conv2dConfig::new([4, 6], [3, 3])
                .with_padding(pad1)
                .with_stride([2, 2])
                .with_bias(false),
            [3, 4, 11, 8],
            true,
        );
        same_as_burn(Conv2dConfig::new([2, 5], [5, 3]), [2, 2, 9, 9], true);
        same_as_burn(
            Conv2dConfig::new([3, 4], [1, 1]).with_padding(PaddingConfig2d::Explicit(0, 1, 2, 0)),
            [2, 3, 5, 6],
            true,
        );
    }

    /// At bf16 (mixed precision casts the weights, the input arrives cast), the weight gradient
    /// reaching the f32 master matches Burn's within bf16's rounding.
    #[test]
    fn half_precision_weight_gradients_match_burns() {
        let device = Device::flex().autodiff();
        let dist = Distribution::Uniform(-1.0, 1.0);
        let x = Tensor::<4>::random([4, 8, 10, 10], dist, &device).cast(DType::BF16);
        let master = Tensor::<4>::random([6, 8, 3, 3], dist, &device).require_grad();
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        // one cast each: a backward consumes its graph
        let cast = || master.clone().cast(DType::BF16);
        let mine = conv2d(x.clone(), cast(), None, options.clone());
        let burn = burn::tensor::module::conv2d(x, cast(), None, options);
        let g_mine = mine.cast(DType::F32).sum().backward();
        let g_burn = burn.cast(DType::F32).sum().backward();
        let (m, r) = (master.grad(&g_mine), master.grad(&g_burn));
        let (m, r) = (m.expect("grad"), r.expect("grad"));
        assert_eq!(m.dtype(), DType::F32);
        assert_close(m.to_data(), r.to_data(), 2e-2, "bf16 weight grad");
    }

    /// Both weight-gradient rules against Burn's `conv2d_weight_backward` on flex: im2col in
    /// chunks of one image, two and all, at strides 1 and 2; the shifted products at stride 1,
    /// with square, oblong and 1×1 kernels and asymmetric padding.
    #[test]
    fn both_weight_gradient_rules_match_burns() {
        let flex = |t: FloatTensor<Flex>| {
            Tensor::<4>::from_dispatch(burn::backend::DispatchTensor {
                kind: DispatchTensorKind::Flex(burn::backend::BackendTensor::Float(t)),
                autodiff: Default::default(),
            })
            .to_data()
        };
        // (input, weight, stride, padding [(top, bottom), (left, right)])
        let cases = [
            ([5, 3, 6, 6], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)]),
            ([5, 3, 6, 6], [4, 3, 3, 3], [2, 2], [(1, 1), (1, 1)]),
            ([2, 4, 7, 9], [3, 4, 5, 3], [1, 1], [(2, 0), (1, 2)]),
            ([3, 2, 5, 4], [6, 2, 1, 1], [1, 1], [(0, 0), (0, 0)]),
            ([1, 3, 4, 4], [2, 3, 4, 4], [1, 1], [(0, 0), (0, 0)]),
        ];
        for (input, kernel, stride, padding) in cases {
            let Case { x, w, g, options } = random_case(input, kernel, stride, padding);
            let burn =
                Flex::conv2d_weight_backward(x.clone(), w.clone(), g.clone(), options.clone());
            let want = flex(burn);
            let xp = || padded::<Flex>(x.clone(), &options);
            let [_, _, ho, wo] = g.shape().dims();
            let image_bytes = ho * wo * kernel[1..].iter().product::<usize>() * 4;
            for bytes in [1, 2 * image_bytes, usize::MAX] {
                let mine = weight_grad_im2col::<Flex>(xp(), g.clone(), w.shape(), stride, bytes);
                let what = format!("{input:?} * {kernel:?}, im2col in chunks of {bytes} bytes");
                assert_close(flex(mine), want.clone(), 1e-4, &what);
            }
            if stride == [1, 1] {
                let mine = weight_grad_shifted::<Flex>(x.clone(), g.clone(), w.shape(), padding);
                let what = format!("{input:?} * {kernel:?}, shifted");
                assert_close(flex(mine), want.clone(), 1e-4, &what);
            }
            let mine = weight_grad::<Flex>(x, g, w.shape(), &options);
            assert_close(flex(mine), want, 1e-4, &format!("{input:?} * {kernel:?}"));
        }
    }
}
