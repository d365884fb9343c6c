//! Prints a lowered [`Program`] as a Rust module: a `Model` type with its shapes and arena size
//! as constants, and a flat `run` that calls ghost-runtime once per step, each call preceded by
//! a comment naming the ONNX nodes it covers. Identifiers are positional; ONNX names appear only
//! inside comments (escaped with `{:?}`, so they cannot close the comment or the line) and as
//! escaped string literals.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::plan::lower::kernel_locs;
use crate::plan::program::*;

/// How the generated module finds its weight blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsPath {
    /// `include_bytes!("<path>")`, resolved relative to the generated file.
    Relative(String),
    /// `include_bytes!(concat!(env!("OUT_DIR"), "/<file>"))`, for build scripts.
    OutDir(String),
    /// An absolute path, for the proc-macro.
    Absolute(String),
}

fn float(v: f32) -> TokenStream {
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

fn usize_lit(v: usize) -> Literal {
    Literal::usize_unsuffixed(v)
}

fn act(a: Act) -> TokenStream {
    match a {
        Act::None => quote!(::ghost_runtime::Activation::None),
        Act::Relu => quote!(::ghost_runtime::Activation::Relu),
        Act::Clamp { lo, hi } => {
            let (lo, hi) = (float(lo), float(hi));
            quote!(::ghost_runtime::Activation::Clamp { lo: #lo, hi: #hi })
        }
        Act::HardSigmoid { alpha, beta } => {
            let (alpha, beta) = (float(alpha), float(beta));
            quote!(::ghost_runtime::Activation::HardSigmoid { alpha: #alpha, beta: #beta })
        }
        Act::HardSwish => quote!(::ghost_runtime::Activation::HardSwish),
    }
}

fn bin_op(op: BinOp) -> TokenStream {
    match op {
        BinOp::Add => quote!(::ghost_runtime::BinaryOp::Add),
        BinOp::Mul => quote!(::ghost_runtime::BinaryOp::Mul),
    }
}

fn arr4(p: [usize; 4]) -> TokenStream {
    let p = p.map(usize_lit);
    quote!([#(#p),*])
}

fn arr2(p: [usize; 2]) -> TokenStream {
    let p = p.map(usize_lit);
    quote!([#(#p),*])
}

/// A weight range as a slice expression over `w`.
fn wslice(r: WRange) -> TokenStream {
    let (a, b) = (usize_lit(r.offset), usize_lit(r.offset + r.len));
    quote!(&w[#a..#b])
}

/// Names of the locations a step touches, bound once per step.
struct Binds {
    locs: Vec<Loc>,
}

impl Binds {
    fn name(&self, l: Loc) -> TokenStream {
        match l {
            Loc::Input => quote!(input),
            Loc::Output => quote!(output),
            Loc::Buf(_) => {
                let i = self
                    .locs
                    .iter()
                    .position(|&x| x == l)
                    .expect("every location of a step is bound");
                let id = format_ident!("b{}", i);
                quote!(#id)
            }
        }
    }
    fn r(&self, l: Loc) -> TokenStream {
        let n = self.name(l);
        quote!(&*#n)
    }
    fn m(&self, l: Loc) -> TokenStream {
        let n = self.name(l);
        quote!(&mut *#n)
    }
    fn src(&self, v: View) -> TokenStream {
        let (d, b) = (self.r(v.loc), usize_lit(v.block));
        quote!(::ghost_runtime::Src::at(#d, #b))
    }
    fn dst(&self, v: View) -> TokenStream {
        let (d, b) = (self.m(v.loc), usize_lit(v.block));
        quote!(::ghost_runtime::Dst::at(#d, #b))
    }
    fn residual(&self, v: Option<View>) -> TokenStream {
        match v {
            Some(v) => {
                let s = self.src(v);
                quote!(Some(#s))
            }
            None => quote!(None),
        }
    }
    fn sums(&self, l: Option<Loc>) -> TokenStream {
        match l {
            Some(l) => {
                let m = self.m(l);
                quote!(Some(#m))
            }
            None => quote!(None),
        }
    }
}

fn step_call(b: &Binds, k: &Kernel) -> TokenStream {
    match k {
        Kernel::ToBlocked {
            channels,
            pixels,
            src,
            dst,
        } => {
            let (c, p, s, d) = (
                usize_lit(*channels),
                usize_lit(*pixels),
                b.r(*src),
                b.m(*dst),
            );
            quote!(::ghost_runtime::nchw_to_nchw8c(#s, #c, #p, #d)?;)
        }
        Kernel::FromBlocked {
            phys,
            pixels,
            src,
            dst,
            ..
        } => {
            let (p, s, d) = (usize_lit(*pixels), b.r(*src), b.m(*dst));
            let lanes: Vec<Literal> = phys
                .iter()
                .map(|&x| Literal::u32_unsuffixed(x as u32))
                .collect();
            quote!(::ghost_runtime::glue::gather_channels(#s, &[#(#lanes),*], #p, #d)?;)
        }
        Kernel::Pointwise {
            w,
            w_scaled,
            k_blocks,
            n_blocks,
            pixels,
            src,
            dst,
            act: a,
            residual,
            sums,
        } => {
            let wt = match w_scaled {
                Some(l) => b.r(*l),
                None => wslice(*w),
            };
            let (kb, nb, px) = (
                usize_lit(*k_blocks),
                usize_lit(*n_blocks),
                usize_lit(*pixels),
            );
            let (s, d, a, r, su) = (
                b.src(*src),
                b.dst(*dst),
                act(*a),
                b.residual(*residual),
                b.sums(*sums),
            );
            quote! {
                p.pointwise(
                    #wt,
                    ::ghost_runtime::PointwiseShape { k_blocks: #kb, n_blocks: #nb, pixels: #px },
                    #s, #d,
                    ::ghost_runtime::Epilogue { activation: #a, residual: #r, channel_sums: #su },
                )?;
            }
        }
        Kernel::Depthwise {
            w,
            blocks,
            in_h,
            in_w,
            k: ks,
            stride,
            pads,
            src,
            dst,
            act: a,
            residual,
            sums,
        } => {
            let (bl, ih, iw, kk, st) = (
                usize_lit(*blocks),
                usize_lit(*in_h),
                usize_lit(*in_w),
                usize_lit(*ks),
                usize_lit(*stride),
            );
            let [pt, pl, pb, pr] = pads.map(usize_lit);
            let (wt, s, d, a, r, su) = (
                wslice(*w),
                b.src(*src),
                b.dst(*dst),
                act(*a),
                b.residual(*residual),
                b.sums(*sums),
            );
            quote! {
                p.depthwise(
                    #wt,
                    ::ghost_runtime::DepthwiseShape {
                        blocks: #bl, in_h: #ih, in_w: #iw, k: #kk, stride: #st,
                        pad_top: #pt, pad_left: #pl, pad_bottom: #pb, pad_right: #pr,
                    },
                    #s, #d,
                    ::ghost_runtime::Epilogue { activation: #a, residual: #r, channel_sums: #su },
                )?;
            }
        }
        Kernel::Ghost {
            pw,
            pw_scaled,
            dw,
            k_blocks,
            half_blocks,
            h,
            w: wd,
            src,
            dst,
            primary,
            cheap,
            residual,
            sums,
            scratch,
        } => {
            let pwt = match pw_scaled {
                Some(l) => b.r(*l),
                None => wslice(*pw),
            };
            let (kb, hb, hh, ww) = (
                usize_lit(*k_blocks),
                usize_lit(*half_blocks),
                usize_lit(*h),
                usize_lit(*wd),
            );
            let (dwt, s, d, pa, ca) = (
                wslice(*dw),
                b.src(*src),
                b.dst(*dst),
                act(*primary),
                act(*cheap),
            );
            let (r, su, sc) = (b.residual(*residual), b.sums(*sums), b.m(*scratch));
            quote! {
                p.ghost(
                    #pwt, #dwt,
                    ::ghost_runtime::GhostShape { k_blocks: #kb, half_blocks: #hb, h: #hh, w: #ww },
                    #s, #d,
                    ::ghost_runtime::GhostEpilogue { primary: #pa, cheap: #ca, residual: #r, channel_sums: #su },
                    #sc,
                )?;
            }
        }
        Kernel::Conv {
            w,
            nchw,
            cin,
            in_h,
            in_w,
            out_blocks,
            kh,
            kw,
            stride,
            pads,
            src,
            dst,
            act: a,
            residual,
        } => {
            let layout = if *nchw {
                quote!(::ghost_runtime::InputLayout::Nchw)
            } else {
                quote!(::ghost_runtime::InputLayout::Nchw8c)
            };
            let (ci, ih, iw, ob, h, ww) = (
                usize_lit(*cin),
                usize_lit(*in_h),
                usize_lit(*in_w),
                usize_lit(*out_blocks),
                usize_lit(*kh),
                usize_lit(*kw),
            );
            let (sh, sw, p) = (usize_lit(stride[0]), usize_lit(stride[1]), arr4(*pads));
            let (wt, s, d, a, r) = (
                wslice(*w),
                b.src(*src),
                b.dst(*dst),
                act(*a),
                b.residual(*residual),
            );
            quote! {
                p.conv(
                    #wt,
                    ::ghost_runtime::ConvShape {
                        cin: #ci, layout: #layout, in_h: #ih, in_w: #iw,
                        out_blocks: #ob, kh: #h, kw: #ww, stride_h: #sh, stride_w: #sw, pads: #p,
                    },
                    #s, #d,
                    ::ghost_runtime::Epilogue { activation: #a, residual: #r, channel_sums: None },
                )?;
            }
        }
        Kernel::ConvGeneral {
            w,
            b: bias,
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
            src,
            dst,
            act: a,
            residual,
        } => {
            let (ci, co, g, ih, iw, h, ww) = (
                usize_lit(*cin),
                usize_lit(*cout),
                usize_lit(*groups),
                usize_lit(*in_h),
                usize_lit(*in_w),
                usize_lit(*kh),
                usize_lit(*kw),
            );
            let (st, di, p) = (arr2(*stride), arr2(*dilation), arr4(*pads));
            let (wt, bt, s, d, a, r) = (
                wslice(*w),
                wslice(*bias),
                b.src(*src),
                b.dst(*dst),
                act(*a),
                b.residual(*residual),
            );
            quote! {
                k.conv_general(
                    #wt, #bt,
                    ::ghost_runtime::GeneralConvShape {
                        cin: #ci, cout: #co, groups: #g, in_h: #ih, in_w: #iw, kh: #h, kw: #ww,
                        stride: #st, dilation: #di, pads: #p,
                    },
                    #s, #d,
                    ::ghost_runtime::Epilogue { activation: #a, residual: #r, channel_sums: None },
                )?;
            }
        }
        Kernel::Fc {
            w,
            k_blocks,
            n_blocks,
            src,
            dst,
            act: a,
        } => {
            let (wt, kb, nb, s, d, a) = (
                wslice(*w),
                usize_lit(*k_blocks),
                usize_lit(*n_blocks),
                b.r(*src),
                b.m(*dst),
                act(*a),
            );
            quote!(p.fc(#wt, #kb, #nb, #s, #d, #a)?;)
        }
        Kernel::GlobalAvgPool {
            blocks,
            pixels,
            src,
            dst,
        } => {
            let (s, bl, px, d) = (
                b.src(*src),
                usize_lit(*blocks),
                usize_lit(*pixels),
                b.m(*dst),
            );
            quote!(k.global_avg_pool(#s, #bl, #px, #d)?;)
        }
        Kernel::SeGate {
            reduce,
            expand,
            c_blocks,
            r_blocks,
            inv_pixels,
            gate_fn,
            sums,
            scratch,
            gate,
        } => {
            let (rw, ew, cb, rb, ip) = (
                wslice(*reduce),
                wslice(*expand),
                usize_lit(*c_blocks),
                usize_lit(*r_blocks),
                float(*inv_pixels),
            );
            let g = match gate_fn {
                GateFn::Sigmoid => quote!(::ghost_runtime::Gate::Sigmoid),
                GateFn::Act(a) => {
                    let a = act(*a);
                    quote!(::ghost_runtime::Gate::Act(#a))
                }
            };
            let (su, sc, ga) = (b.r(*sums), b.m(*scratch), b.m(*gate));
            quote!(p.se_gate(#su, #ip, #rw, #ew, ::ghost_runtime::SeShape { c_blocks: #cb, r_blocks: #rb }, #g, #sc, #ga)?;)
        }
        Kernel::ScalePacked {
            w,
            k_pad,
            n_pad,
            scale,
            dst,
        } => {
            let (wt, kp, np, s, d) = (
                wslice(*w),
                usize_lit(*k_pad),
                usize_lit(*n_pad),
                b.r(*scale),
                b.m(*dst),
            );
            quote!(p.scale_packed_pointwise(#wt, #kp, #np, #s, #d)?;)
        }
        Kernel::Binary {
            op,
            a,
            b: rhs,
            dst,
            len,
            act: ac,
        } => {
            let (o, l) = (bin_op(*op), usize_lit(*len));
            let (x, y, d, ac) = (b.name(*a), b.name(*rhs), b.name(*dst), act(*ac));
            quote!(k.binary(#o, &#x[..#l], &#y[..#l], &mut #d[..#l], #ac)?;)
        }
        Kernel::ChannelAssign {
            op,
            x,
            blocks,
            pixels,
            v,
            act: ac,
        } => {
            let (o, xx, bl, px, ac) = (
                bin_op(*op),
                b.m(*x),
                usize_lit(*blocks),
                usize_lit(*pixels),
                act(*ac),
            );
            let vv = match v {
                VecSrc::Blob(r) => wslice(*r),
                VecSrc::Arena(l) => b.r(*l),
            };
            quote!(k.channel_assign(#o, #xx, #bl, #px, #vv, #ac)?;)
        }
        Kernel::Unary { f, x, len } => {
            let f = match f {
                UnaryFn::Sigmoid => quote!(::ghost_runtime::glue::Unary::Sigmoid),
                UnaryFn::Tanh => quote!(::ghost_runtime::glue::Unary::Tanh),
                UnaryFn::LeakyRelu { alpha } => {
                    let a = float(*alpha);
                    quote!(::ghost_runtime::glue::Unary::LeakyRelu { alpha: #a })
                }
            };
            let (x, l) = (b.name(*x), usize_lit(*len));
            quote!(::ghost_runtime::glue::unary(#f, &mut #x[..#l]);)
        }
        Kernel::Zero { dst, len } => {
            let (d, l) = (b.name(*dst), usize_lit(*len));
            quote!(#d[..#l].fill(0.0);)
        }
        Kernel::Copy { src, dst, len } => {
            let (s, d, l) = (b.name(*src), b.name(*dst), usize_lit(*len));
            quote!(#d[..#l].copy_from_slice(&#s[..#l]);)
        }
        Kernel::Remap {
            pairs,
            pixels,
            src,
            dst,
            dst_len,
            clear,
        } => {
            let lanes: Vec<TokenStream> = pairs
                .iter()
                .map(|&(a, c)| {
                    let (a, c) = (
                        Literal::u32_unsuffixed(a as u32),
                        Literal::u32_unsuffixed(c as u32),
                    );
                    quote!((#a, #c))
                })
                .collect();
            let (px, s, d, dl) = (
                usize_lit(*pixels),
                b.r(*src),
                b.m(*dst),
                usize_lit(*dst_len),
            );
            quote!(::ghost_runtime::glue::remap_channels(#s, &[#(#lanes),*], #px, #d, #dl, #clear)?;)
        }
        Kernel::Pool {
            max,
            count_include_pad,
            blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride,
            pads,
            src,
            dst,
        } => {
            let kind = if *max {
                quote!(::ghost_runtime::PoolKind::Max)
            } else {
                quote!(::ghost_runtime::PoolKind::Avg { count_include_pad: #count_include_pad })
            };
            let (bl, ih, iw, h, ww) = (
                usize_lit(*blocks),
                usize_lit(*in_h),
                usize_lit(*in_w),
                usize_lit(*kh),
                usize_lit(*kw),
            );
            let (st, p, s, d) = (arr2(*stride), arr4(*pads), b.src(*src), b.dst(*dst));
            quote! {
                k.pool(#kind, ::ghost_runtime::PoolShape { blocks: #bl, in_h: #ih, in_w: #iw, kh: #h, kw: #ww, stride: #st, pads: #p }, #s, #d)?;
            }
        }
        Kernel::Resize {
            linear,
            coord,
            blocks,
            in_h,
            in_w,
            out_h,
            out_w,
            src,
            dst,
        } => {
            let mode = if *linear {
                quote!(::ghost_runtime::ResizeMode::Linear)
            } else {
                quote!(::ghost_runtime::ResizeMode::Nearest(
                    ::ghost_runtime::NearestMode::Floor
                ))
            };
            let coord = match coord {
                0 | 4 => quote!(::ghost_runtime::CoordMode::Asymmetric),
                1 => quote!(::ghost_runtime::CoordMode::HalfPixel),
                2 => quote!(::ghost_runtime::CoordMode::PytorchHalfPixel),
                _ => quote!(::ghost_runtime::CoordMode::AlignCorners),
            };
            let (bl, ih, iw, oh, ow) = (
                usize_lit(*blocks),
                usize_lit(*in_h),
                usize_lit(*in_w),
                usize_lit(*out_h),
                usize_lit(*out_w),
            );
            let (s, d) = (b.src(*src), b.dst(*dst));
            quote! {
                k.resize(#mode, #coord, ::ghost_runtime::ResizeShape { blocks: #bl, in_h: #ih, in_w: #iw, out_h: #oh, out_w: #ow }, #s, #d)?;
            }
        }
        Kernel::Softmax { src, dst, len } => {
            let (s, d, l) = (b.name(*src), b.name(*dst), usize_lit(*len));
            quote!(k.softmax(&#s[..#l], &mut #d[..#l])?;)
        }
    }
}

/// One step: bind its arena regions, then call the kernel. The comment names the nodes.
fn step_tokens(p: &Program, step: &Step, index: usize) -> (String, TokenStream) {
    let arena: Vec<Loc> = kernel_locs(&step.kernel)
        .into_iter()
        .filter(|l| matches!(l, Loc::Buf(_)))
        .collect();
    let binds = Binds {
        locs: arena.clone(),
    };
    let call = step_call(&binds, &step.kernel);
    let names: Vec<_> = (0..arena.len()).map(|i| format_ident!("b{}", i)).collect();
    let ranges: Vec<TokenStream> = arena
        .iter()
        .map(|&l| {
            let (o, n) = p.range(l).expect("arena location");
            let (o, n) = (usize_lit(o), usize_lit(n));
            quote!((#o, #n))
        })
        .collect();
    let body = if arena.is_empty() {
        quote!({ #call })
    } else {
        quote!({
            let [#(#names),*] = ::ghost_runtime::glue::regions(&mut *scratch, [#(#ranges),*])?;
            #call
        })
    };
    let nodes: Vec<String> = step.nodes.iter().map(|n| format!("{n:?}")).collect();
    let comment = format!(
        "step {index}: {}{}{}{}",
        step.what,
        if step.out_shape.is_empty() {
            String::new()
        } else {
            format!(" -> [{}]", crate::ir::fmt_shape(&step.out_shape))
        },
        if step.macs > 0 {
            format!(", {} MACs", step.macs)
        } else {
            String::new()
        },
        if nodes.is_empty() {
            String::new()
        } else {
            format!(" (ONNX {})", nodes.join(", "))
        }
    );
    (comment, body)
}

/// Marker placed before each step's block, replaced by the comment after formatting (comments
/// do not survive token streams).
fn marker(i: usize) -> TokenStream {
    let id = format_ident!("__ghostc_step_{}", i);
    quote!(#id!();)
}

/// Code generation switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmitOptions {
    /// Time every step into `Model::PROFILE` (needs std: `std::time::Instant`). For
    /// `ghostc bench --profile`; never on in normal builds.
    pub profile: bool,
}

/// The module source for `p`, formatted, with step comments.
pub fn emit(
    p: &Program,
    weights: &WeightsPath,
    model_sha256: &str,
) -> Result<String, super::output::OutputError> {
    emit_with(p, weights, model_sha256, EmitOptions::default())
}

/// [`emit`] with options.
pub fn emit_with(
    p: &Program,
    weights: &WeightsPath,
    model_sha256: &str,
    opts: EmitOptions,
) -> Result<String, super::output::OutputError> {
    let in_shape: Vec<Literal> = p.input.shape.iter().map(|&d| usize_lit(d)).collect();
    let out_shape: Vec<Literal> = p.output.shape.iter().map(|&d| usize_lit(d)).collect();
    let (in_rank, out_rank) = (usize_lit(in_shape.len()), usize_lit(out_shape.len()));
    let image_in = usize_lit(p.image_input.iter().product());
    let image_out = usize_lit(p.image_output.iter().product());
    let batch = usize_lit(p.batch);
    let scratch_len = usize_lit(p.arena_len);
    let weights_bytes = usize_lit(p.weights.len() * 4);
    let dynamic = p.dynamic_batch;
    let in_name = Literal::string(&p.input.name);
    let out_name = Literal::string(&p.output.name);
    let include = match weights {
        WeightsPath::Relative(f) => quote!(include_bytes!(#f)),
        WeightsPath::OutDir(f) => {
            let f = format!("/{f}");
            quote!(include_bytes!(concat!(env!("OUT_DIR"), #f)))
        }
        WeightsPath::Absolute(f) => quote!(include_bytes!(#f)),
    };
    let mut comments = Vec::new();
    let mut body = TokenStream::new();
    for (i, step) in p.steps.iter().enumerate() {
        let (comment, tokens) = step_tokens(p, step, i);
        comments.push(comment);
        body.extend(marker(i));
        body.extend(tokens);
        if opts.profile {
            let idx = usize_lit(i);
            body.extend(quote! {
                let now = ::std::time::Instant::now();
                PROFILE_NANOS[#idx].fetch_add((now - t).as_nanos() as u64, ::core::sync::atomic::Ordering::Relaxed);
                #[allow(unused_assignments)]
                {
                    t = now;
                }
            });
        }
    }
    let profile_items = if opts.profile {
        let n = usize_lit(p.steps.len());
        let labels: Vec<Literal> = p.steps.iter().map(|s| Literal::string(&s.what)).collect();
        let macs: Vec<Literal> = p
            .steps
            .iter()
            .map(|s| Literal::u64_unsuffixed(s.macs))
            .collect();
        quote! {
            /// Nanoseconds spent in each step since start (profiling builds only).
            pub static PROFILE_NANOS: [::core::sync::atomic::AtomicU64; #n] = [const { ::core::sync::atomic::AtomicU64::new(0) }; #n];
            /// What each step computes and its MACs per image (profiling builds only).
            pub static PROFILE_STEPS: [(&str, u64); #n] = [#((#labels, #macs)),*];
        }
    } else {
        TokenStream::new()
    };
    let timer_start = if opts.profile {
        quote!(let mut t = ::std::time::Instant::now();)
    } else {
        TokenStream::new()
    };
    let macs: u64 = p.steps.iter().map(|s| s.macs).sum();
    let macs_lit = Literal::u64_unsuffixed(macs);
    let tokens = quote! {
        /// The compiled model. Shapes, lengths and the scratch size are constants; `run` does
        /// not allocate.
        #[derive(Clone, Copy, Debug)]
        pub struct Model {
            kernels: ::ghost_runtime::Kernels,
        }

        impl Default for Model {
            fn default() -> Self {
                Self::new()
            }
        }

        #[allow(clippy::all, clippy::pedantic, unused_braces)]
        impl Model {
            /// ONNX name of the input (for messages).
            pub const INPUT_NAME: &'static str = #in_name;
            /// ONNX name of the output (for messages).
            pub const OUTPUT_NAME: &'static str = #out_name;
            /// Input shape, NCHW, as compiled (batch 1 when the batch is dynamic).
            pub const INPUT_SHAPE: [usize; #in_rank] = [#(#in_shape),*];
            /// Output shape as compiled.
            pub const OUTPUT_SHAPE: [usize; #out_rank] = [#(#out_shape),*];
            /// Floats in one `run` input at the compiled batch.
            pub const INPUT_LEN: usize = #image_in * #batch;
            /// Floats in one `run` output at the compiled batch.
            pub const OUTPUT_LEN: usize = #image_out * #batch;
            /// Floats of scratch `run` needs, whatever the batch.
            pub const SCRATCH_LEN: usize = #scratch_len;
            /// Whether `run` accepts any number of images (a multiple of the per-image length).
            pub const DYNAMIC_BATCH: bool = #dynamic;
            /// Multiply-accumulates per image.
            pub const MACS: u64 = #macs_lit;
            /// Bytes of embedded weights.
            pub const WEIGHT_BYTES: usize = #weights_bytes;
            const IMAGE_IN: usize = #image_in;
            const IMAGE_OUT: usize = #image_out;

            /// Picks the fastest kernels this CPU supports.
            pub fn new() -> Self {
                Model { kernels: ::ghost_runtime::Kernels::new() }
            }

            /// Uses the given kernels (e.g. a forced ISA).
            pub fn with_kernels(kernels: ::ghost_runtime::Kernels) -> Self {
                Model { kernels }
            }

            /// Runs the model on the calling thread: `input` is NCHW f32 (`INPUT_LEN` floats, or
            /// any multiple of one image's length when `DYNAMIC_BATCH`), `output` receives the
            /// matching number of images, `scratch` holds at least `SCRATCH_LEN` floats. Lengths
            /// are checked before anything is written; errors name the argument.
            pub fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                self.run_with(&::ghost_runtime::Serial, input, output, scratch)
            }

            /// [`Model::run`] over the parts of `fork` (e.g. a `ghost_runtime::Team`): with
            /// several images and `parts * SCRATCH_LEN` floats of scratch, each part runs whole
            /// images with its own scratch; otherwise every layer is split across the parts
            /// (the split of each layer is fixed by its shape). Outputs are bit-identical for
            /// any number of parts.
            pub fn run_with(&self, fork: &dyn ::ghost_runtime::Fork, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                let images = if Self::DYNAMIC_BATCH {
                    if input.is_empty() || input.len() % Self::IMAGE_IN != 0 {
                        return Err(::ghost_runtime::Error::Length { arg: "input", expected: Self::IMAGE_IN, actual: input.len() });
                    }
                    input.len() / Self::IMAGE_IN
                } else {
                    if input.len() != Self::INPUT_LEN {
                        return Err(::ghost_runtime::Error::Length { arg: "input", expected: Self::INPUT_LEN, actual: input.len() });
                    }
                    #batch
                };
                if output.len() != images * Self::IMAGE_OUT {
                    return Err(::ghost_runtime::Error::Length { arg: "output", expected: images * Self::IMAGE_OUT, actual: output.len() });
                }
                if scratch.len() < Self::SCRATCH_LEN {
                    return Err(::ghost_runtime::Error::Length { arg: "scratch", expected: Self::SCRATCH_LEN, actual: scratch.len() });
                }
                let w = ::ghost_runtime::glue::f32_view(&WEIGHTS.0)
                    .ok_or(::ghost_runtime::Error::Shape { arg: "weights", detail: "embedded weights are misaligned or the target is big-endian" })?;
                let parts = fork.parts();
                if images > 1 && parts > 1 && scratch.len() >= parts * Self::SCRATCH_LEN {
                    return ::ghost_runtime::par_images(fork, input, Self::IMAGE_IN, output, Self::IMAGE_OUT, scratch, Self::SCRATCH_LEN, &|x, y, s| {
                        self.run_image(&::ghost_runtime::Serial, x, y, s, w)
                    });
                }
                for (x, y) in input.chunks_exact(Self::IMAGE_IN).zip(output.chunks_exact_mut(Self::IMAGE_OUT)) {
                    self.run_image(fork, x, y, scratch, w)?;
                }
                Ok(())
            }

            #[allow(unused_variables)]
            fn run_image(&self, fork: &dyn ::ghost_runtime::Fork, input: &[f32], output: &mut [f32], scratch: &mut [f32], w: &[f32]) -> Result<(), ::ghost_runtime::Error> {
                let k = self.kernels;
                let p = ::ghost_runtime::Par::new(k, fork);
                #timer_start
                #body
                Ok(())
            }
        }

        impl ::ghost_runtime::CompiledModel for Model {
            const INPUT_LEN: usize = Model::INPUT_LEN;
            const OUTPUT_LEN: usize = Model::OUTPUT_LEN;
            const SCRATCH_LEN: usize = Model::SCRATCH_LEN;
            const DYNAMIC_BATCH: bool = Model::DYNAMIC_BATCH;
            fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                Model::run(self, input, output, scratch)
            }
            fn run_with(&self, fork: &dyn ::ghost_runtime::Fork, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                Model::run_with(self, fork, input, output, scratch)
            }
        }

        #[repr(C, align(64))]
        struct Aligned<T: ?Sized>(T);

        /// Weights: BatchNorm folded, permuted to the blocked channel layout and packed for the
        /// kernels at compile time; little-endian f32, used in place.
        static WEIGHTS: &Aligned<[u8; #weights_bytes]> = &Aligned(*#include);

        #profile_items
    };
    let mut text = super::output::format_file(tokens, model_sha256)?;
    for (i, comment) in comments.iter().enumerate() {
        let m = format!("__ghostc_step_{i}!();");
        let safe = comment.replace(['\n', '\r'], " ");
        text = text.replacen(&m, &format!("// {safe}"), 1);
    }
    Ok(text)
}
