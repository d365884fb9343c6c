//! Runtime values as the Rust tokens that construct them in generated code: one
//! [`RuntimeTokens`] impl per ghost-runtime type a [`crate::plan::program::Kernel`] holds.
//!
//! Structs are destructured exhaustively, so a field added to a runtime type fails to compile
//! here instead of being left out of the generated code.
//!
//! Deliberately not done here: plan-only values (arena locations, weight ranges), which need the
//! step's bindings (`emit`).

use ghost_runtime::glue::Unary;
use ghost_runtime::{
    Activation, BinaryOp, ConvShape, CoordMode, DepthwiseGeneralShape, DepthwiseShape, DfcShape,
    Gate, GeneralConvShape, GhostShape, InputLayout, NearestMode, PointwiseShape, PoolKind,
    PoolShape, ResizeMode, ResizeShape, SeShape,
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

impl<const N: usize> RuntimeTokens for [usize; N] {
    fn tokens(&self) -> TokenStream {
        let items = self.iter().map(RuntimeTokens::tokens);
        quote!([#(#items),*])
    }
}

impl RuntimeTokens for Activation {
    fn tokens(&self) -> TokenStream {
        match *self {
            Activation::None => quote!(::ghost_runtime::Activation::None),
            Activation::Relu => quote!(::ghost_runtime::Activation::Relu),
            Activation::Clamp { lo, hi } => {
                let (lo, hi) = (lo.tokens(), hi.tokens());
                quote!(::ghost_runtime::Activation::Clamp { lo: #lo, hi: #hi })
            }
            Activation::HardSigmoid { alpha, beta } => {
                let (alpha, beta) = (alpha.tokens(), beta.tokens());
                quote!(::ghost_runtime::Activation::HardSigmoid { alpha: #alpha, beta: #beta })
            }
            Activation::HardSwish => quote!(::ghost_runtime::Activation::HardSwish),
        }
    }
}

impl RuntimeTokens for Gate {
    fn tokens(&self) -> TokenStream {
        match self {
            Gate::Sigmoid => quote!(::ghost_runtime::Gate::Sigmoid),
            Gate::Act(a) => {
                let a = a.tokens();
                quote!(::ghost_runtime::Gate::Act(#a))
            }
        }
    }
}

impl RuntimeTokens for Unary {
    fn tokens(&self) -> TokenStream {
        match self {
            Unary::Sigmoid => quote!(::ghost_runtime::glue::Unary::Sigmoid),
            Unary::Tanh => quote!(::ghost_runtime::glue::Unary::Tanh),
            Unary::LeakyRelu { alpha } => {
                let a = alpha.tokens();
                quote!(::ghost_runtime::glue::Unary::LeakyRelu { alpha: #a })
            }
        }
    }
}

impl RuntimeTokens for BinaryOp {
    fn tokens(&self) -> TokenStream {
        match self {
            BinaryOp::Add => quote!(::ghost_runtime::BinaryOp::Add),
            BinaryOp::Mul => quote!(::ghost_runtime::BinaryOp::Mul),
        }
    }
}

impl RuntimeTokens for PointwiseShape {
    fn tokens(&self) -> TokenStream {
        let PointwiseShape {
            k_blocks,
            n_blocks,
            pixels,
        } = self;
        let (kb, nb, px) = (k_blocks.tokens(), n_blocks.tokens(), pixels.tokens());
        quote!(::ghost_runtime::PointwiseShape { k_blocks: #kb, n_blocks: #nb, pixels: #px })
    }
}

impl RuntimeTokens for DepthwiseShape {
    fn tokens(&self) -> TokenStream {
        let DepthwiseShape {
            blocks,
            in_h,
            in_w,
            k,
            stride,
            pad_top,
            pad_left,
            pad_bottom,
            pad_right,
        } = self;
        let (bl, ih, iw, kk, st) = (
            blocks.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            k.tokens(),
            stride.tokens(),
        );
        let (pt, pl, pb, pr) = (
            pad_top.tokens(),
            pad_left.tokens(),
            pad_bottom.tokens(),
            pad_right.tokens(),
        );
        quote! {
            ::ghost_runtime::DepthwiseShape {
                blocks: #bl, in_h: #ih, in_w: #iw, k: #kk, stride: #st,
                pad_top: #pt, pad_left: #pl, pad_bottom: #pb, pad_right: #pr,
            }
        }
    }
}

impl RuntimeTokens for DepthwiseGeneralShape {
    fn tokens(&self) -> TokenStream {
        let DepthwiseGeneralShape {
            blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride,
            dilation,
            pads,
        } = self;
        let (bl, ih, iw, h, ww) = (
            blocks.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            kh.tokens(),
            kw.tokens(),
        );
        let (st, di, p) = (stride.tokens(), dilation.tokens(), pads.tokens());
        quote! {
            ::ghost_runtime::DepthwiseGeneralShape {
                blocks: #bl, in_h: #ih, in_w: #iw, kh: #h, kw: #ww,
                stride: #st, dilation: #di, pads: #p,
            }
        }
    }
}

impl RuntimeTokens for DfcShape {
    fn tokens(&self) -> TokenStream {
        let DfcShape {
            blocks,
            gate_h,
            gate_w,
            h,
            w,
            coord,
            nearest,
        } = self;
        let (bl, gh, gw, hh, ww) = (
            blocks.tokens(),
            gate_h.tokens(),
            gate_w.tokens(),
            h.tokens(),
            w.tokens(),
        );
        let (c, n) = (coord.tokens(), nearest.tokens());
        quote! {
            ::ghost_runtime::DfcShape {
                blocks: #bl, gate_h: #gh, gate_w: #gw, h: #hh, w: #ww, coord: #c, nearest: #n,
            }
        }
    }
}

impl RuntimeTokens for GhostShape {
    fn tokens(&self) -> TokenStream {
        let GhostShape {
            k_blocks,
            half_blocks,
            h,
            w,
        } = self;
        let (kb, hb, hh, ww) = (
            k_blocks.tokens(),
            half_blocks.tokens(),
            h.tokens(),
            w.tokens(),
        );
        quote!(::ghost_runtime::GhostShape { k_blocks: #kb, half_blocks: #hb, h: #hh, w: #ww })
    }
}

impl RuntimeTokens for InputLayout {
    fn tokens(&self) -> TokenStream {
        match self {
            InputLayout::Nchw => quote!(::ghost_runtime::InputLayout::Nchw),
            InputLayout::Nchw8c => quote!(::ghost_runtime::InputLayout::Nchw8c),
        }
    }
}

impl RuntimeTokens for ConvShape {
    fn tokens(&self) -> TokenStream {
        let ConvShape {
            cin,
            layout,
            in_h,
            in_w,
            out_blocks,
            kh,
            kw,
            stride_h,
            stride_w,
            pads,
        } = self;
        let (ci, layout, ih, iw, ob, h, ww) = (
            cin.tokens(),
            layout.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            out_blocks.tokens(),
            kh.tokens(),
            kw.tokens(),
        );
        let (sh, sw, p) = (stride_h.tokens(), stride_w.tokens(), pads.tokens());
        quote! {
            ::ghost_runtime::ConvShape {
                cin: #ci, layout: #layout, in_h: #ih, in_w: #iw,
                out_blocks: #ob, kh: #h, kw: #ww, stride_h: #sh, stride_w: #sw, pads: #p,
            }
        }
    }
}

impl RuntimeTokens for GeneralConvShape {
    fn tokens(&self) -> TokenStream {
        let GeneralConvShape {
            cin,
            cout,
            groups,
            in_h,
            in_w,
            kh,
            kw,
            stride,
            dilation,
            pads,
        } = self;
        let (ci, co, g, ih, iw, h, ww) = (
            cin.tokens(),
            cout.tokens(),
            groups.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            kh.tokens(),
            kw.tokens(),
        );
        let (st, di, p) = (stride.tokens(), dilation.tokens(), pads.tokens());
        quote! {
            ::ghost_runtime::GeneralConvShape {
                cin: #ci, cout: #co, groups: #g, in_h: #ih, in_w: #iw, kh: #h, kw: #ww,
                stride: #st, dilation: #di, pads: #p,
            }
        }
    }
}

impl RuntimeTokens for SeShape {
    fn tokens(&self) -> TokenStream {
        let SeShape { c_blocks, r_blocks } = self;
        let (cb, rb) = (c_blocks.tokens(), r_blocks.tokens());
        quote!(::ghost_runtime::SeShape { c_blocks: #cb, r_blocks: #rb })
    }
}

impl RuntimeTokens for PoolKind {
    fn tokens(&self) -> TokenStream {
        match self {
            PoolKind::Max => quote!(::ghost_runtime::PoolKind::Max),
            PoolKind::Avg { count_include_pad } => {
                quote!(::ghost_runtime::PoolKind::Avg { count_include_pad: #count_include_pad })
            }
        }
    }
}

impl RuntimeTokens for PoolShape {
    fn tokens(&self) -> TokenStream {
        let PoolShape {
            blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride,
            pads,
        } = self;
        let (bl, ih, iw, h, ww) = (
            blocks.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            kh.tokens(),
            kw.tokens(),
        );
        let (st, p) = (stride.tokens(), pads.tokens());
        quote!(::ghost_runtime::PoolShape { blocks: #bl, in_h: #ih, in_w: #iw, kh: #h, kw: #ww, stride: #st, pads: #p })
    }
}

impl RuntimeTokens for NearestMode {
    fn tokens(&self) -> TokenStream {
        match self {
            NearestMode::RoundPreferFloor => quote!(::ghost_runtime::NearestMode::RoundPreferFloor),
            NearestMode::RoundPreferCeil => quote!(::ghost_runtime::NearestMode::RoundPreferCeil),
            NearestMode::Floor => quote!(::ghost_runtime::NearestMode::Floor),
            NearestMode::Ceil => quote!(::ghost_runtime::NearestMode::Ceil),
        }
    }
}

impl RuntimeTokens for ResizeMode {
    fn tokens(&self) -> TokenStream {
        match self {
            ResizeMode::Nearest(m) => {
                let m = m.tokens();
                quote!(::ghost_runtime::ResizeMode::Nearest(#m))
            }
            ResizeMode::Linear => quote!(::ghost_runtime::ResizeMode::Linear),
        }
    }
}

impl RuntimeTokens for CoordMode {
    fn tokens(&self) -> TokenStream {
        match self {
            CoordMode::HalfPixel => quote!(::ghost_runtime::CoordMode::HalfPixel),
            CoordMode::PytorchHalfPixel => quote!(::ghost_runtime::CoordMode::PytorchHalfPixel),
            CoordMode::Asymmetric => quote!(::ghost_runtime::CoordMode::Asymmetric),
            CoordMode::AlignCorners => quote!(::ghost_runtime::CoordMode::AlignCorners),
        }
    }
}

impl RuntimeTokens for ResizeShape {
    fn tokens(&self) -> TokenStream {
        let ResizeShape {
            blocks,
            in_h,
            in_w,
            out_h,
            out_w,
        } = self;
        let (bl, ih, iw, oh, ow) = (
            blocks.tokens(),
            in_h.tokens(),
            in_w.tokens(),
            out_h.tokens(),
            out_w.tokens(),
        );
        quote!(::ghost_runtime::ResizeShape { blocks: #bl, in_h: #ih, in_w: #iw, out_h: #oh, out_w: #ow })
    }
}
