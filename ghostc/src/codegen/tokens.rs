//! Runtime values as the Rust tokens that construct them in generated code: one
//! [`RuntimeTokens`] impl per ghost-runtime type a [`crate::plan::program::Kernel`] holds.
//!
//! Structs are destructured exhaustively and enums matched exhaustively (by
//! `runtime_tokens!`), so a field or variant added to a runtime type fails to compile here
//! instead of being left out of the generated code.
//!
//! Deliberately not done here: plan-only values (arena locations, weight ranges), which need the
//! step's bindings (`emit`).

use ghost_runtime::glue::Unary;
use ghost_runtime::{
    Activation, BinaryOp, ChannelNormShape, ConcatU8Shape, ConvShape, ConvTransposeShape,
    CoordMode, DepthwiseGeneralShape, DepthwiseShape, DfcShape, DflShape, GhostConcatU8,
    GhostShape, GroupedConvShape, InputLayout, NearestMode, PointwiseShape, PoolKind, PoolShape,
    PoolU8Params, ResizeMode, ResizeShape, SeActivations, SeShape, StemShape, U8BinaryParams,
    U8Requant, WinogradShape,
};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The expression that builds `self` in generated code (paths start at `::ghost_runtime`).
pub trait RuntimeTokens {
    fn tokens(&self) -> TokenStream;
}

impl RuntimeTokens for usize {
    fn tokens(&self) -> TokenStream {
        let lit = Literal::usize_unsuffixed(*self);
        quote!(#lit)
    }
}

impl RuntimeTokens for u8 {
    fn tokens(&self) -> TokenStream {
        let lit = Literal::u8_unsuffixed(*self);
        quote!(#lit)
    }
}

impl RuntimeTokens for f32 {
    fn tokens(&self) -> TokenStream {
        let v = *self;
        if v.is_nan() {
            quote!(f32::NAN)
        } else if v == f32::INFINITY {
            quote!(f32::INFINITY)
        } else if v == f32::NEG_INFINITY {
            quote!(f32::NEG_INFINITY)
        } else {
            let lit = Literal::f32_suffixed(v);
            quote!(#lit)
        }
    }
}

impl RuntimeTokens for bool {
    fn tokens(&self) -> TokenStream {
        quote!(#self)
    }
}

impl<A: RuntimeTokens, B: RuntimeTokens> RuntimeTokens for (A, B) {
    fn tokens(&self) -> TokenStream {
        let (a, b) = (self.0.tokens(), self.1.tokens());
        quote!((#a, #b))
    }
}

impl<const N: usize> RuntimeTokens for [usize; N] {
    fn tokens(&self) -> TokenStream {
        let items = self.iter().map(RuntimeTokens::tokens);
        quote!([#(#items),*])
    }
}

/// Implements [`RuntimeTokens`] for a ghost-runtime struct (every field listed, destructured
/// exhaustively) or enum (every variant listed, unit, one-field tuple or named fields), each
/// field built by its own `RuntimeTokens` impl. `in module` names the module below
/// `::ghost_runtime` for types not re-exported at its root.
macro_rules! runtime_tokens {
    (struct $ty:ident $(in $m:ident)? { $($f:ident),* $(,)? }) => {
        impl RuntimeTokens for $ty {
            fn tokens(&self) -> TokenStream {
                let $ty { $($f),* } = self;
                $(let $f = RuntimeTokens::tokens($f);)*
                quote!(::ghost_runtime:: $($m ::)? $ty { $($f: #$f),* })
            }
        }
    };
    (enum $ty:ident $(in $m:ident)? {
        $($v:ident $(($t:ident))? $({ $($sf:ident),* $(,)? })?),* $(,)?
    }) => {
        impl RuntimeTokens for $ty {
            fn tokens(&self) -> TokenStream {
                let ty = quote!(::ghost_runtime:: $($m ::)? $ty);
                match self {
                    $($ty::$v $(($t))? $({ $($sf),* })? => {
                        $(let $t = RuntimeTokens::tokens($t);)?
                        $($(let $sf = RuntimeTokens::tokens($sf);)*)?
                        quote!(#ty::$v $((#$t))? $({ $($sf: #$sf),* })?)
                    })*
                }
            }
        }
    };
}

runtime_tokens!(enum Activation {
    None,
    Relu,
    Clamp { lo, hi },
    HardSigmoid { alpha, beta },
    HardSwish,
    Sigmoid,
    Silu,
    Gelu,
    Mish,
});
runtime_tokens!(struct SeActivations { inner, gate });
runtime_tokens!(enum Unary in glue { Sigmoid, Tanh, LeakyRelu { alpha } });
runtime_tokens!(
    enum BinaryOp {
        Add,
        Mul,
        Sub,
        Div,
        PRelu,
    }
);
runtime_tokens!(struct PointwiseShape { k_blocks, n_blocks, pixels });
runtime_tokens!(struct DflShape { groups, bins, pixels });
runtime_tokens!(struct ChannelNormShape { channels, pixels, eps });
runtime_tokens!(struct DepthwiseShape {
    blocks, in_h, in_w, k, stride, pad_top, pad_left, pad_bottom, pad_right,
});
runtime_tokens!(struct DepthwiseGeneralShape {
    blocks, in_h, in_w, kh, kw, stride, dilation, pads,
});
runtime_tokens!(struct DfcShape { blocks, gate_h, gate_w, h, w, coord, nearest });
runtime_tokens!(struct GhostShape { k_blocks, half_blocks, h, w });
runtime_tokens!(
    enum InputLayout {
        Nchw,
        Nchw8c,
    }
);
runtime_tokens!(struct ConvShape {
    cin, layout, in_h, in_w, out_blocks, kh, kw, stride_h, stride_w, pads,
});
runtime_tokens!(struct GroupedConvShape {
    cin, cout, groups, out_blocks, in_h, in_w, kh, kw, stride, dilation, pads,
});
runtime_tokens!(struct WinogradShape { cin, cout, out_blocks, in_h, in_w, pads });
runtime_tokens!(struct SeShape { c_blocks, r_blocks });
runtime_tokens!(struct ConcatU8Shape { pixels, channels, channel_offset, out_channels });
runtime_tokens!(struct U8BinaryParams { a, b, y });
runtime_tokens!(struct PoolU8Params { scale, in_zero_point, out_zero_point });
runtime_tokens!(struct StemShape { c_in, hp, wp, k, stride, c_out, oh, ow });
runtime_tokens!(struct U8Requant { in_scale, in_zero_point, out_scale, out_zero_point });
runtime_tokens!(struct GhostConcatU8 { channels, primary, cheap });
runtime_tokens!(enum PoolKind { Max, Avg { count_include_pad } });
runtime_tokens!(struct PoolShape { blocks, in_h, in_w, kh, kw, stride, pads });
runtime_tokens!(
    enum NearestMode {
        RoundPreferFloor,
        RoundPreferCeil,
        Floor,
        Ceil,
    }
);
runtime_tokens!(
    enum ResizeMode {
        Nearest(m),
        Linear,
        Cubic { a, exclude_outside },
    }
);
runtime_tokens!(
    enum CoordMode {
        HalfPixel,
        PytorchHalfPixel,
        Asymmetric,
        AlignCorners,
    }
);
runtime_tokens!(struct ResizeShape { blocks, in_h, in_w, out_h, out_w });
runtime_tokens!(struct ConvTransposeShape {
    blocks, in_h, in_w, out_h, out_w, kh, kw, stride_h, stride_w, dilation_h, dilation_w,
    pad_top, pad_left,
});
