//! Prints a lowered [`Program`] as a Rust module: a `Model` type with its shapes and arena size
//! as constants, and a flat `run` that calls ghost-runtime once per step, each call preceded by
//! a comment naming the ONNX nodes it covers. Identifiers are positional; ONNX names appear only
//! inside comments (escaped with `{:?}`, so they cannot close the comment or the line) and as
//! escaped string literals.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::tokens::RuntimeTokens;
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

fn usize_lit(v: usize) -> Literal {
    Literal::usize_unsuffixed(v)
}

/// A weight range as a slice expression over `w`.
fn wslice(r: WRange) -> TokenStream {
    let (a, b) = (usize_lit(r.offset), usize_lit(r.offset + r.len));
    quote!(&w[#a..#b])
}

/// Packed int8 weights: the bytes of a weight range (see `WeightBlob::push_bytes`), the packed
/// length rounded up to whole floats. The kernels read by their shape (the formats are whole
/// floats anyway) and check that the slice is long enough.
fn byte_wslice(r: WRange) -> TokenStream {
    let w = wslice(r);
    quote!(::ghost_runtime::glue::as_bytes(#w))
}

fn requant_tokens(r: &QRequant) -> TokenStream {
    let QRequant {
        zero_point,
        min,
        max,
        offset,
    } = r;
    let (z, lo, hi, off) = (
        zero_point.tokens(),
        min.tokens(),
        max.tokens(),
        offset.tokens(),
    );
    quote!(::ghost_runtime::Requant { zero_point: #z, min: #lo, max: #hi, offset: #off, residual: None })
}

/// The identifier of arena buffer `i` in generated code: the same name in every step that
/// uses it, and the name the program's text form uses.
fn buf_ident(i: usize) -> proc_macro2::Ident {
    format_ident!("buf{}", i)
}

/// How a step's call names the locations it touches (arena buffers are bound by name at the
/// start of the step, see [`step_tokens`]).
struct Binds;

impl Binds {
    fn name(&self, l: Loc) -> TokenStream {
        match l {
            Loc::Input(i) => {
                let id = format_ident!("input{}", i);
                quote!(#id)
            }
            Loc::Output(i) => {
                let id = format_ident!("output{}", i);
                quote!(#id)
            }
            Loc::Buf(i) => {
                let id = buf_ident(i);
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
    /// Packed weights: the blob range, or the arena copy an SE gate scaled.
    fn weights(&self, w: WRange, scaled: Option<Loc>) -> TokenStream {
        match scaled {
            Some(l) => self.r(l),
            None => wslice(w),
        }
    }
    fn epilogue(&self, e: &Epilogue) -> TokenStream {
        let (a, r, s) = (
            e.activation.tokens(),
            self.residual(e.residual),
            self.sums(e.channel_sums),
        );
        quote!(::ghost_runtime::Epilogue { activation: #a, residual: #r, channel_sums: #s })
    }
}

/// Lane lists (`gather_channels`, `remap_channels`) as `u32` literals.
fn lane(x: usize) -> Literal {
    Literal::u32_unsuffixed(x as u32)
}

/// `&[(from, to), ..]`: the lane pairs of a remap or a depth-to-space, as `u32` literals.
fn lane_pairs(pairs: &[(usize, usize)]) -> TokenStream {
    let lanes = pairs.iter().map(|&(a, c)| {
        let (a, c) = (lane(a), lane(c));
        quote!((#a, #c))
    });
    quote!(&[#(#lanes),*])
}

/// `p.<method>(w, shape, src, dst, epilogue)?;`: the call of every conv-like kernel.
fn conv_call(
    b: &Binds,
    method: TokenStream,
    w: TokenStream,
    shape: TokenStream,
    (src, dst): (View, View),
    epilogue: &Epilogue,
) -> TokenStream {
    let (s, d, e) = (b.src(src), b.dst(dst), b.epilogue(epilogue));
    quote!(p.#method(#w, #shape, #s, #d, #e)?;)
}

fn step_call(b: &Binds, k: &Kernel) -> TokenStream {
    match k {
        Kernel::ToBlocked {
            channels,
            pixels,
            src,
            dst,
        } => {
            let (c, p, s, d) = (channels.tokens(), pixels.tokens(), b.r(*src), b.m(*dst));
            quote!(::ghost_runtime::nchw_to_nchw8c(#s, #c, #p, #d)?;)
        }
        Kernel::FromBlocked {
            phys,
            pixels,
            src,
            dst,
        } => {
            let (p, s, d) = (pixels.tokens(), b.r(*src), b.m(*dst));
            let lanes = phys.iter().map(|&x| lane(x));
            quote!(::ghost_runtime::glue::gather_channels(#s, &[#(#lanes),*], #p, #d)?;)
        }
        Kernel::Pointwise {
            w,
            w_scaled,
            shape,
            src,
            dst,
            epilogue,
        } => conv_call(
            b,
            quote!(pointwise),
            b.weights(*w, *w_scaled),
            shape.tokens(),
            (*src, *dst),
            epilogue,
        ),
        Kernel::Depthwise {
            w,
            shape,
            src,
            dst,
            epilogue,
        } => conv_call(
            b,
            quote!(depthwise),
            wslice(*w),
            shape.tokens(),
            (*src, *dst),
            epilogue,
        ),
        Kernel::DepthwiseGeneral {
            w,
            shape,
            src,
            dst,
            epilogue,
        } => conv_call(
            b,
            quote!(depthwise_general),
            wslice(*w),
            shape.tokens(),
            (*src, *dst),
            epilogue,
        ),
        Kernel::DfcGate { shape, gate, y } => {
            let (sh, g, d) = (shape.tokens(), b.m(*gate), b.dst(*y));
            quote!(p.dfc_gate(#g, #sh, #d)?;)
        }
        Kernel::Ghost {
            pw,
            pw_scaled,
            dw,
            shape,
            src,
            dst,
            primary,
            cheap,
            residual,
            channel_sums,
            scratch,
            gate,
        } => {
            let (pwt, dwt, sh, s, d) = (
                b.weights(*pw, *pw_scaled),
                wslice(*dw),
                shape.tokens(),
                b.src(*src),
                b.dst(*dst),
            );
            let (pa, ca, r, su, sc) = (
                primary.tokens(),
                cheap.tokens(),
                b.residual(*residual),
                b.sums(*channel_sums),
                b.m(*scratch),
            );
            let ep = quote!(::ghost_runtime::GhostEpilogue { primary: #pa, cheap: #ca, residual: #r, channel_sums: #su });
            match gate {
                None => quote! {
                    p.ghost(#pwt, #dwt, #sh, #s, #d, #ep, #sc)?;
                },
                Some((g, gs, activated)) => {
                    let (g, gs) = (b.m(*g), gs.tokens());
                    quote! {
                        p.ghost_gated(
                            #pwt, #dwt, #sh, #s, #d, #ep,
                            ::ghost_runtime::GhostGate {
                                gate: #g,
                                shape: #gs,
                                activated: #activated,
                            },
                            #sc,
                        )?;
                    }
                }
            }
        }
        Kernel::Conv {
            w,
            shape,
            src,
            dst,
            epilogue,
        } => conv_call(
            b,
            quote!(conv),
            wslice(*w),
            shape.tokens(),
            (*src, *dst),
            epilogue,
        ),
        Kernel::ConvGrouped {
            w,
            shape,
            src,
            dst,
            epilogue,
        } => conv_call(
            b,
            quote!(conv_grouped),
            wslice(*w),
            shape.tokens(),
            (*src, *dst),
            epilogue,
        ),
        Kernel::ConvWinograd {
            w,
            shape,
            src,
            dst,
            epilogue,
            scratch,
        } => {
            let (wt, sh, s, d, e, sc) = (
                wslice(*w),
                shape.tokens(),
                b.src(*src),
                b.dst(*dst),
                b.epilogue(epilogue),
                b.m(*scratch),
            );
            quote!(p.conv_winograd(#wt, #sh, #s, #d, #e, #sc)?;)
        }
        Kernel::Fc {
            w,
            k_blocks,
            n_blocks,
            src,
            dst,
            act,
        } => {
            let (wt, kb, nb, s, d, a) = (
                wslice(*w),
                k_blocks.tokens(),
                n_blocks.tokens(),
                b.r(*src),
                b.m(*dst),
                act.tokens(),
            );
            quote!(p.fc(#wt, #kb, #nb, #s, #d, #a)?;)
        }
        Kernel::GlobalAvgPool {
            blocks,
            pixels,
            src,
            dst,
        } => {
            let (s, bl, px, d) = (b.src(*src), blocks.tokens(), pixels.tokens(), b.m(*dst));
            quote!(k.global_avg_pool(#s, #bl, #px, #d)?;)
        }
        Kernel::SeGate {
            reduce,
            expand,
            shape,
            inv_pixels,
            acts,
            sums,
            scratch,
            gate,
        } => {
            let (rw, ew, sh, ip, a) = (
                wslice(*reduce),
                wslice(*expand),
                shape.tokens(),
                inv_pixels.tokens(),
                acts.tokens(),
            );
            let (su, sc, ga) = (b.r(*sums), b.m(*scratch), b.m(*gate));
            quote!(p.se_gate(#su, #ip, #rw, #ew, #sh, #a, #sc, #ga)?;)
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
                k_pad.tokens(),
                n_pad.tokens(),
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
            act,
        } => {
            let (o, l) = (op.tokens(), len.tokens());
            let (x, y, d, ac) = (b.name(*a), b.name(*rhs), b.name(*dst), act.tokens());
            quote!(k.binary(#o, &#x[..#l], &#y[..#l], &mut #d[..#l], #ac)?;)
        }
        Kernel::BinaryConst {
            op,
            x,
            c,
            const_first,
            dst,
            len,
        } => {
            let (o, l) = (op.tokens(), len.tokens());
            let (xx, cc, d) = (b.name(*x), wslice(*c), b.name(*dst));
            let none = ghost_runtime::Activation::None.tokens();
            if *const_first {
                quote!(k.binary(#o, #cc, &#xx[..#l], &mut #d[..#l], #none)?;)
            } else {
                quote!(k.binary(#o, &#xx[..#l], #cc, &mut #d[..#l], #none)?;)
            }
        }
        Kernel::ChannelAssign {
            op,
            x,
            blocks,
            pixels,
            v,
            act,
        } => {
            let (o, xx, bl, px, ac) = (
                op.tokens(),
                b.m(*x),
                blocks.tokens(),
                pixels.tokens(),
                act.tokens(),
            );
            let vv = match v {
                VecSrc::Blob(r) => wslice(*r),
                VecSrc::Arena(l) => b.r(*l),
            };
            quote!(k.channel_assign(#o, #xx, #bl, #px, #vv, #ac)?;)
        }
        Kernel::Unary { f, x, len } => {
            let (f, x, l) = (f.tokens(), b.name(*x), len.tokens());
            quote!(::ghost_runtime::glue::unary(k, #f, &mut #x[..#l]);)
        }
        Kernel::Zero { dst, len } => {
            let (d, l) = (b.name(*dst), len.tokens());
            quote!(#d[..#l].fill(0.0);)
        }
        Kernel::Copy { src, dst, len } => {
            let (s, d, l) = (b.name(*src), b.name(*dst), len.tokens());
            quote!(#d[..#l].copy_from_slice(&#s[..#l]);)
        }
        Kernel::Dfl { shape, w, src, dst } => {
            let (sh, ww, s, d) = (shape.tokens(), wslice(*w), b.r(*src), b.m(*dst));
            quote!(k.dfl(#sh, #ww, #s, #d)?;)
        }
        Kernel::ChannelNorm {
            shape,
            gamma,
            beta,
            src,
            dst,
        } => {
            let (sh, ga, be) = (shape.tokens(), wslice(*gamma), wslice(*beta));
            let (s, d) = (b.r(*src), b.m(*dst));
            quote!(k.channel_norm(#sh, #ga, #be, #s, #d)?;)
        }
        Kernel::CopyPixels {
            src,
            dst,
            blocks,
            src_pixels,
            dst_pixels,
            offset,
        } => {
            let (s, d) = (b.r(*src), b.m(*dst));
            let (bl, sp, dp, off) = (
                blocks.tokens(),
                src_pixels.tokens(),
                dst_pixels.tokens(),
                offset.tokens(),
            );
            quote!(::ghost_runtime::glue::copy_pixels(#s, #sp, #d, #dp, #off, #bl)?;)
        }
        Kernel::Remap {
            pairs,
            pixels,
            src,
            dst,
            dst_len,
            clear,
        } => {
            let lanes = lane_pairs(pairs);
            let (px, s, d, dl) = (pixels.tokens(), b.r(*src), b.m(*dst), dst_len.tokens());
            quote!(::ghost_runtime::glue::remap_channels(#s, #lanes, #px, #d, #dl, #clear)?;)
        }
        Kernel::DepthToSpace {
            pairs,
            h,
            w,
            b: block,
            src,
            dst,
            dst_len,
        } => {
            let lanes = lane_pairs(pairs);
            let (s, d) = (b.r(*src), b.m(*dst));
            let (h, w, block, dl) = (h.tokens(), w.tokens(), block.tokens(), dst_len.tokens());
            quote!(::ghost_runtime::glue::depth_to_space(#s, #lanes, #h, #w, #block, #d, #dl)?;)
        }
        Kernel::Col2Im {
            shape,
            cols,
            dst,
            bias,
            act,
            post,
        } => {
            let (sh, s, d) = (shape.tokens(), b.r(*cols), b.m(*dst));
            let (bv, ac) = (wslice(*bias), act.tokens());
            let post = match post {
                Some(f) => {
                    let f = f.tokens();
                    quote!(Some(#f))
                }
                None => quote!(None),
            };
            quote!(::ghost_runtime::col2im_fused(k, #s, &#sh, #d, #bv, #ac, #post)?;)
        }
        Kernel::Pool {
            kind,
            shape,
            src,
            dst,
        } => {
            let (kd, sh, s, d) = (kind.tokens(), shape.tokens(), b.src(*src), b.dst(*dst));
            quote!(k.pool(#kd, #sh, #s, #d)?;)
        }
        Kernel::Resize {
            mode,
            coord,
            shape,
            src,
            dst,
        } => {
            let (m, c, sh) = (mode.tokens(), coord.tokens(), shape.tokens());
            let (s, d) = (b.src(*src), b.dst(*dst));
            quote!(k.resize(#m, #c, #sh, #s, #d)?;)
        }
        Kernel::Softmax { src, dst, len } => {
            let (s, d, l) = (b.name(*src), b.name(*dst), len.tokens());
            quote!(k.softmax(&#s[..#l], &mut #d[..#l])?;)
        }
        Kernel::Quantize {
            blocks,
            pixels,
            scale,
            zero_point,
            src,
            dst,
        }
        | Kernel::Dequantize {
            blocks,
            pixels,
            scale,
            zero_point,
            src,
            dst,
        } => {
            let method = if matches!(k, Kernel::Quantize { .. }) {
                quote!(quantize_u8)
            } else {
                quote!(dequantize_u8)
            };
            let (bl, px, sc, z) = (
                blocks.tokens(),
                pixels.tokens(),
                scale.tokens(),
                zero_point.tokens(),
            );
            let (s, d) = (b.src(View::at(*src, 0)), b.dst(View::at(*dst, 0)));
            quote!(p.#method(#bl, #px, #sc, #z, #s, #d)?;)
        }
        Kernel::FakeQuantize {
            scale,
            zero_point,
            len,
            src,
            dst,
        } => {
            let (sc, z, l) = (scale.tokens(), zero_point.tokens(), len.tokens());
            let (s, d) = (b.name(*src), b.name(*dst));
            quote!(k.fake_quantize_u8(#sc, #z, #l, &#s[..#l], &mut #d[..#l])?;)
        }
        Kernel::GlobalAvgPoolU8 {
            params,
            blocks,
            pixels,
            src,
            dst,
        } => {
            let (pr, bl, px) = (params.tokens(), blocks.tokens(), pixels.tokens());
            let (xs, d) = (b.r(*src), b.m(*dst));
            quote!(k.global_avgpool_u8(#pr, #bl, #px, #xs, #d)?;)
        }
        Kernel::ScaleChannelsU8 {
            params,
            blocks,
            pixels,
            x,
            gate,
            dst,
        } => {
            let (pr, bl, px) = (params.tokens(), blocks.tokens(), pixels.tokens());
            let (xs, gs, d) = (b.r(*x), b.r(*gate), b.m(*dst));
            quote!(k.scale_channels_u8(#pr, #bl, #px, #xs, #gs, #d)?;)
        }
        Kernel::AddU8 {
            params,
            len,
            a,
            b: x,
            dst,
        } => {
            let (pr, l) = (params.tokens(), len.tokens());
            let (sa, sb, d) = (b.name(*a), b.name(*x), b.name(*dst));
            quote!(k.add_u8(#pr, #l, &#sa[..#l], &#sb[..#l], &mut #d[..#l])?;)
        }
        Kernel::TableU8 {
            table,
            len,
            src,
            dst,
        } => {
            let (t, l) = (byte_wslice(*table), len.tokens());
            let (s, d) = (b.name(*src), b.name(*dst));
            quote!(k.table_u8(#t, #l, &#s[..#l], &mut #d[..#l])?;)
        }
        Kernel::ConcatU8 {
            shape,
            requant,
            src,
            dst,
        } => {
            let (sh, r) = (shape.tokens(), requant.tokens());
            let (s, d) = (b.src(View::at(*src, 0)), b.dst(View::at(*dst, 0)));
            quote!(k.concat_u8(#sh, #r, #s, #d)?;)
        }
        Kernel::PointwiseU8 {
            w,
            shape,
            src,
            dst,
            requant,
        } => {
            let (wb, sh, s, d, r) = (
                byte_wslice(*w),
                shape.tokens(),
                b.src(*src),
                b.dst(*dst),
                requant_tokens(requant),
            );
            quote!(p.pointwise_u8(#wb, #sh, #s, #d, #r)?;)
        }
        Kernel::QuantizePadded {
            scale,
            zero_point,
            chw,
            hp,
            wp,
            top,
            left,
            src,
            dst,
        } => {
            let (sc, z) = (scale.tokens(), zero_point.tokens());
            let (c, h, w) = (usize_lit(chw.0), usize_lit(chw.1), usize_lit(chw.2));
            let (hp_, wp_, t, l) = (
                usize_lit(*hp),
                usize_lit(*wp),
                usize_lit(*top),
                usize_lit(*left),
            );
            let (n_in, n_out) = (usize_lit(chw.0 * chw.1 * chw.2), usize_lit(chw.0 * hp * wp));
            let (s, d) = (b.name(*src), b.name(*dst));
            quote!(k.quantize_padded_u8(#sc, #z, (#c, #h, #w), (#hp_, #wp_), (#t, #l), &#s[..#n_in], &mut #d[..#n_out])?;)
        }
        Kernel::StemU8 {
            w,
            shape,
            src,
            dst,
            requant,
        } => {
            let n_in = usize_lit(shape.c_in * shape.hp * shape.wp);
            let (wb, sh, d, r) = (
                byte_wslice(*w),
                shape.tokens(),
                b.dst(*dst),
                requant_tokens(requant),
            );
            let s = b.name(*src);
            quote!(k.stem_u8(#wb, #sh, &#s[..#n_in], #d, #r)?;)
        }
        Kernel::DepthwiseU8 {
            w,
            shape,
            input_zero_point,
            src,
            dst,
            requant,
            concat,
            lines,
        } => {
            let (wb, sh, z) = (byte_wslice(*w), shape.tokens(), input_zero_point.tokens());
            let (s, d, r) = (b.src(*src), b.dst(*dst), requant_tokens(requant));
            match concat {
                None => quote!(p.depthwise_u8(#wb, #sh, #z, #s, #d, #r)?;),
                Some(c) => {
                    let c = c.tokens();
                    let l = match lines {
                        Some(l) => b.m(*l),
                        None => quote!(&mut []),
                    };
                    quote!(p.depthwise_u8_concat(#wb, #sh, #z, #s, #d, #r, #c, #l)?;)
                }
            }
        }
    }
}

/// One step: bind its arena regions, then call the kernel. The comment names the nodes.
fn step_tokens(p: &Program, step: &Step, index: usize) -> (String, TokenStream) {
    let arena: Vec<usize> = step
        .kernel
        .locs()
        .into_iter()
        .filter_map(|l| match l {
            Loc::Buf(i) => Some(i),
            Loc::Input(_) | Loc::Output(_) => None,
        })
        .collect();
    let call = step_call(&Binds, &step.kernel);
    let names = arena.iter().map(|&i| buf_ident(i));
    let ranges = arena.iter().map(|&i| {
        let b = p.buffers[i];
        let (o, n) = (usize_lit(b.offset), usize_lit(b.len));
        quote!((#o, #n))
    });
    // u8 buffers (int8 tensors) are used as the bytes of their region.
    let bytes = arena.iter().filter(|&&i| p.buffers[i].u8).map(|&i| {
        let id = buf_ident(i);
        quote!(let #id = ::ghost_runtime::glue::as_bytes_mut(#id);)
    });
    let body = if arena.is_empty() {
        quote!({ #call })
    } else {
        quote!({
            let [#(#names),*] = ::ghost_runtime::glue::regions(&mut *scratch, [#(#ranges),*])?;
            #(#bytes)*
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

/// The generated items that depend on the model's inputs and outputs.
struct IoTokens {
    /// `ModelInputs` / `ModelOutputs`: one slice field per tensor.
    io_structs: TokenStream,
    /// `INPUTi_NAME/SHAPE/LEN` per tensor, the `INPUT_NAMES/SHAPES/LENS` arrays, and for a
    /// single input (output) the unnumbered `INPUT_NAME/SHAPE/LEN`.
    io_consts: TokenStream,
    /// One input and one output: `run`/`run_with` over plain slices (as before several
    /// tensors were supported); otherwise `run`/`run_with` taking the structs.
    single_run: TokenStream,
    /// `ghost_runtime::CompiledModel`, for one input and one output only.
    compiled_model_impl: TokenStream,
    n_in_lit: Literal,
    n_out_lit: Literal,
    image_in: Vec<Literal>,
    image_out: Vec<Literal>,
    in_fields: Vec<proc_macro2::Ident>,
    out_fields: Vec<proc_macro2::Ident>,
    in_locals: Vec<proc_macro2::Ident>,
    out_locals: Vec<proc_macro2::Ident>,
    /// What a length error names: `input`/`output` for a single tensor, else the field path.
    in_args: Vec<Literal>,
    out_args: Vec<Literal>,
}

/// `text` as inline code in a doc comment: rustdoc reads no link or markup inside, and a
/// backtick in an ONNX name cannot close it early (it becomes `\u{60}`).
fn doc_code(text: &str) -> String {
    format!("`{}`", text.replace('`', "\\u{60}"))
}

/// Builds [`IoTokens`]. Field and constant names are positional (`input0`, `OUTPUT1_LEN`):
/// ONNX names only appear in doc comments and string literals.
fn io_tokens(p: &Program) -> IoTokens {
    let (n_in, n_out) = (p.inputs.len(), p.outputs.len());
    let single = n_in == 1 && n_out == 1;
    let lens = |ios: &[Io]| -> Vec<Literal> {
        ios.iter()
            .map(|io| usize_lit(io.image_len() * p.batch))
            .collect()
    };
    let image =
        |ios: &[Io]| -> Vec<Literal> { ios.iter().map(|io| usize_lit(io.image_len())).collect() };
    let consts = |word: &str, upper: &str, ios: &[Io]| -> TokenStream {
        let mut out = TokenStream::new();
        let mut shape_refs = Vec::new();
        for (i, io) in ios.iter().enumerate() {
            let name = format_ident!("{}{}_NAME", upper, i);
            let shape = format_ident!("{}{}_SHAPE", upper, i);
            let len = format_ident!("{}{}_LEN", upper, i);
            let (n, r) = (Literal::string(&io.name), usize_lit(io.shape.len()));
            let dims = io.shape.iter().map(|&d| usize_lit(d));
            let l = usize_lit(io.len());
            let doc_name = format!(" ONNX name of {word} {i}.");
            let doc_shape = format!(
                " Shape of {word} {i} ({}) as compiled (batch 1 when the batch is dynamic).",
                doc_code(&format!("{:?}", io.name))
            );
            let doc_len = format!(" Floats of {word} {i} at the compiled batch.");
            out.extend(quote! {
                #[doc = #doc_name]
                pub const #name: &'static str = #n;
                #[doc = #doc_shape]
                pub const #shape: [usize; #r] = [#(#dims),*];
                #[doc = #doc_len]
                pub const #len: usize = #l;
            });
            shape_refs.push(shape);
        }
        let (names, lens_id, shapes_id) = (
            format_ident!("{}_NAMES", upper),
            format_ident!("{}_LENS", upper),
            format_ident!("{}_SHAPES", upper),
        );
        let count = usize_lit(ios.len());
        let name_lits = ios.iter().map(|io| Literal::string(&io.name));
        let len_lits = lens(ios);
        let (doc_names, doc_lens, doc_shapes) = (
            format!(" ONNX names of the {word}s, in graph order."),
            format!(" Floats of each {word} at the compiled batch."),
            format!(" Shape of each {word} as compiled."),
        );
        out.extend(quote! {
            #[doc = #doc_names]
            pub const #names: [&'static str; #count] = [#(#name_lits),*];
            #[doc = #doc_lens]
            pub const #lens_id: [usize; #count] = [#(#len_lits),*];
            #[doc = #doc_shapes]
            pub const #shapes_id: [&'static [usize]; #count] = [#(&Self::#shape_refs),*];
        });
        if let [io] = ios {
            let (name, shape, len) = (
                format_ident!("{}_NAME", upper),
                format_ident!("{}_SHAPE", upper),
                format_ident!("{}_LEN", upper),
            );
            let (n0, s0, l0) = (
                format_ident!("{}0_NAME", upper),
                format_ident!("{}0_SHAPE", upper),
                format_ident!("{}0_LEN", upper),
            );
            let r = usize_lit(io.shape.len());
            let (d1, d2, d3) = (
                format!(" ONNX name of the {word} (for messages)."),
                format!(" Shape of the {word} as compiled (batch 1 when the batch is dynamic)."),
                format!(" Floats in one call's {word} at the compiled batch."),
            );
            out.extend(quote! {
                #[doc = #d1]
                pub const #name: &'static str = Self::#n0;
                #[doc = #d2]
                pub const #shape: [usize; #r] = Self::#s0;
                #[doc = #d3]
                pub const #len: usize = Self::#l0;
            });
        }
        out
    };
    let mut io_consts = consts("input", "INPUT", &p.inputs);
    io_consts.extend(consts("output", "OUTPUT", &p.outputs));
    let in_fields: Vec<_> = (0..n_in).map(|i| format_ident!("input{}", i)).collect();
    let out_fields: Vec<_> = (0..n_out).map(|i| format_ident!("output{}", i)).collect();
    let field_docs = |word: &str, ios: &[Io]| -> Vec<String> {
        ios.iter()
            .map(|io| {
                format!(
                    " ONNX {word} {}, {} per call at the compiled batch, NCHW f32.",
                    doc_code(&format!("{:?}", io.name)),
                    doc_code(&format!("[{}]", crate::ir::fmt_shape(&io.shape)))
                )
            })
            .collect()
    };
    let (in_docs, out_docs) = (
        field_docs("input", &p.inputs),
        field_docs("output", &p.outputs),
    );
    let io_structs = quote! {
        /// The model's inputs for one call, one field per ONNX input in graph order (see
        /// `Model::INPUT_NAMES`).
        #[derive(Clone, Copy, Debug)]
        pub struct ModelInputs<'a> {
            #(#[doc = #in_docs] pub #in_fields: &'a [f32],)*
        }

        /// Where the model writes its outputs, one field per ONNX output in graph order (see
        /// `Model::OUTPUT_NAMES`).
        #[derive(Debug)]
        pub struct ModelOutputs<'a> {
            #(#[doc = #out_docs] pub #out_fields: &'a mut [f32],)*
        }
    };
    let args = |word: &str, ios: &[Io]| -> Vec<Literal> {
        (0..ios.len())
            .map(|i| {
                if single {
                    Literal::string(word)
                } else {
                    Literal::string(&format!("{word}s.{word}{i}"))
                }
            })
            .collect()
    };
    let (single_run, compiled_model_impl) = if single {
        (
            quote! {
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
                    self.run_arrays(fork, [input], [output], scratch)
                }
            },
            quote! {
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
            },
        )
    } else {
        (
            quote! {
                /// Runs the model on the calling thread; the same as [`Model::run_io`].
                pub fn run(&self, inputs: ModelInputs<'_>, outputs: ModelOutputs<'_>, scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                    self.run_io(inputs, outputs, scratch)
                }

                /// Runs the model over the parts of `fork`; the same as [`Model::run_io_with`].
                pub fn run_with(&self, fork: &dyn ::ghost_runtime::Fork, inputs: ModelInputs<'_>, outputs: ModelOutputs<'_>, scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                    self.run_io_with(fork, inputs, outputs, scratch)
                }
            },
            TokenStream::new(),
        )
    };
    IoTokens {
        io_structs,
        io_consts,
        single_run,
        compiled_model_impl,
        n_in_lit: usize_lit(n_in),
        n_out_lit: usize_lit(n_out),
        image_in: image(&p.inputs),
        image_out: image(&p.outputs),
        in_locals: in_fields.clone(),
        out_locals: out_fields.clone(),
        in_fields,
        out_fields,
        in_args: args("input", &p.inputs),
        out_args: args("output", &p.outputs),
    }
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
    let batch = usize_lit(p.batch);
    let scratch_len = usize_lit(p.arena_len);
    let weights_bytes = usize_lit(p.weights.len() * 4);
    let dynamic = p.dynamic_batch;
    let IoTokens {
        io_structs,
        io_consts,
        single_run,
        compiled_model_impl,
        n_in_lit,
        n_out_lit,
        image_in,
        image_out,
        in_fields,
        out_fields,
        in_locals,
        out_locals,
        in_args,
        out_args,
    } = io_tokens(p);
    let in_args0 = in_args[0].clone();
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
        let int8 = p.steps.iter().map(|s| s.kernel.int8_macs());
        quote! {
            /// Nanoseconds spent in each step since start (profiling builds only).
            pub static PROFILE_NANOS: [::core::sync::atomic::AtomicU64; #n] = [const { ::core::sync::atomic::AtomicU64::new(0) }; #n];
            /// What each step computes and its MACs per image (profiling builds only).
            pub static PROFILE_STEPS: [(&str, u64); #n] = [#((#labels, #macs)),*];
            /// Whether each step's MACs are int8 ones (measured against the int8 peak).
            pub static PROFILE_INT8: [bool; #n] = [#(#int8),*];
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

        #io_structs

        #[allow(clippy::all, clippy::pedantic, unused_braces)]
        impl Model {
            #io_consts
            /// Floats of scratch a call needs, whatever the batch.
            pub const SCRATCH_LEN: usize = #scratch_len;
            /// Whether a call accepts any number of images (every tensor holding the same
            /// number of images).
            pub const DYNAMIC_BATCH: bool = #dynamic;
            /// Multiply-accumulates per image.
            pub const MACS: u64 = #macs_lit;
            /// Bytes of embedded weights.
            pub const WEIGHT_BYTES: usize = #weights_bytes;
            const IMAGE_IN: [usize; #n_in_lit] = [#(#image_in),*];
            const IMAGE_OUT: [usize; #n_out_lit] = [#(#image_out),*];

            /// Picks the fastest kernels this CPU supports. The first model made in a
            /// process starts paging its weights in (`ghost_runtime::prefault_weights`).
            pub fn new() -> Self {
                Self::with_kernels(::ghost_runtime::Kernels::new())
            }

            /// Uses the given kernels (e.g. a forced ISA).
            pub fn with_kernels(kernels: ::ghost_runtime::Kernels) -> Self {
                static PREFAULTED: ::core::sync::atomic::AtomicBool = ::core::sync::atomic::AtomicBool::new(false);
                if !PREFAULTED.load(::core::sync::atomic::Ordering::Relaxed) {
                    PREFAULTED.store(true, ::core::sync::atomic::Ordering::Relaxed);
                    ::ghost_runtime::prefault_weights(&WEIGHTS.0);
                }
                Model { kernels }
            }

            #single_run

            /// Runs the model on the calling thread: every input is NCHW f32 (`INPUTi_LEN`
            /// floats, or any number of images when `DYNAMIC_BATCH`, the same for every
            /// tensor), every output receives as many images, `scratch` holds at least
            /// `SCRATCH_LEN` floats. Lengths are checked before anything is written; errors
            /// name the tensor.
            pub fn run_io(&self, inputs: ModelInputs<'_>, outputs: ModelOutputs<'_>, scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                self.run_io_with(&::ghost_runtime::Serial, inputs, outputs, scratch)
            }

            /// [`Model::run_io`] over the parts of `fork` (e.g. a `ghost_runtime::Team`): with
            /// several images and `parts * SCRATCH_LEN` floats of scratch, each part runs whole
            /// images with its own scratch; otherwise every layer is split across the parts
            /// (the split of each layer is fixed by its shape). Outputs are bit-identical for
            /// any number of parts.
            pub fn run_io_with(&self, fork: &dyn ::ghost_runtime::Fork, inputs: ModelInputs<'_>, outputs: ModelOutputs<'_>, scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                self.run_arrays(fork, [#(inputs.#in_fields),*], [#(outputs.#out_fields),*], scratch)
            }

            /// [`Model::run_io_with`] with the tensors as slices in graph order (`INPUT_NAMES`,
            /// `OUTPUT_NAMES`), for generic drivers; the counts are checked too.
            pub fn run_slices_with(&self, fork: &dyn ::ghost_runtime::Fork, inputs: &[&[f32]], outputs: &mut [&mut [f32]], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                if inputs.len() != #n_in_lit {
                    return Err(::ghost_runtime::Error::ExactLength { arg: "inputs", expected: #n_in_lit, actual: inputs.len() });
                }
                if outputs.len() != #n_out_lit {
                    return Err(::ghost_runtime::Error::ExactLength { arg: "outputs", expected: #n_out_lit, actual: outputs.len() });
                }
                let x: [&[f32]; #n_in_lit] = ::core::array::from_fn(|t| inputs[t]);
                let mut rest = outputs.iter_mut();
                let y: [&mut [f32]; #n_out_lit] = ::core::array::from_fn(|_| match rest.next() {
                    Some(o) => &mut **o,
                    None => &mut [],
                });
                self.run_arrays(fork, x, y, scratch)
            }

            fn run_arrays(&self, fork: &dyn ::ghost_runtime::Fork, inputs: [&[f32]; #n_in_lit], outputs: [&mut [f32]; #n_out_lit], scratch: &mut [f32]) -> Result<(), ::ghost_runtime::Error> {
                let images = if Self::DYNAMIC_BATCH {
                    if inputs[0].is_empty() || inputs[0].len() % Self::IMAGE_IN[0] != 0 {
                        return Err(::ghost_runtime::Error::LengthMultiple { arg: #in_args0, of: Self::IMAGE_IN[0], actual: inputs[0].len() });
                    }
                    inputs[0].len() / Self::IMAGE_IN[0]
                } else {
                    #batch
                };
                const IN_ARGS: [&str; #n_in_lit] = [#(#in_args),*];
                const OUT_ARGS: [&str; #n_out_lit] = [#(#out_args),*];
                for t in 0..#n_in_lit {
                    if inputs[t].len() != images * Self::IMAGE_IN[t] {
                        return Err(::ghost_runtime::Error::ExactLength { arg: IN_ARGS[t], expected: images * Self::IMAGE_IN[t], actual: inputs[t].len() });
                    }
                }
                for t in 0..#n_out_lit {
                    if outputs[t].len() != images * Self::IMAGE_OUT[t] {
                        return Err(::ghost_runtime::Error::ExactLength { arg: OUT_ARGS[t], expected: images * Self::IMAGE_OUT[t], actual: outputs[t].len() });
                    }
                }
                if scratch.len() < Self::SCRATCH_LEN {
                    return Err(::ghost_runtime::Error::Length { arg: "scratch", expected: Self::SCRATCH_LEN, actual: scratch.len() });
                }
                let w = ::ghost_runtime::glue::f32_view(&WEIGHTS.0)
                    .ok_or(::ghost_runtime::Error::Shape { arg: "weights", detail: "embedded weights are misaligned or the target is big-endian" })?;
                let parts = fork.parts();
                if images > 1 && parts > 1 && scratch.len() >= parts * Self::SCRATCH_LEN {
                    return ::ghost_runtime::par_images_io(fork, inputs, Self::IMAGE_IN, outputs, Self::IMAGE_OUT, scratch, Self::SCRATCH_LEN, &|x, y, s| {
                        self.run_image(&::ghost_runtime::Serial, x, y, s, w)
                    });
                }
                let mut outputs = outputs;
                for img in 0..images {
                    let x: [&[f32]; #n_in_lit] = ::core::array::from_fn(|t| &inputs[t][img * Self::IMAGE_IN[t]..(img + 1) * Self::IMAGE_IN[t]]);
                    let mut t = 0;
                    let mut y = outputs.each_mut().map(|o| {
                        let n = Self::IMAGE_OUT[t];
                        t += 1;
                        &mut o[img * n..(img + 1) * n]
                    });
                    self.run_image(fork, &x, &mut y, scratch, w)?;
                }
                Ok(())
            }

            #[allow(unused_variables)]
            fn run_image(&self, fork: &dyn ::ghost_runtime::Fork, inputs: &[&[f32]; #n_in_lit], outputs: &mut [&mut [f32]; #n_out_lit], scratch: &mut [f32], w: &[f32]) -> Result<(), ::ghost_runtime::Error> {
                let [#(#in_locals),*] = *inputs;
                let [#(#out_locals),*] = outputs;
                #(let #out_locals: &mut [f32] = &mut **#out_locals;)*
                let k = self.kernels;
                let p = ::ghost_runtime::Par::new(k, fork);
                #timer_start
                #body
                Ok(())
            }
        }

        #compiled_model_impl

        #[repr(C, align(64))]
        struct Aligned<T: ?Sized>(T);

        /// Weights: BatchNorm folded, permuted to the blocked channel layout and packed for the
        /// kernels at compile time; little-endian f32, used in place.
        static WEIGHTS: &Aligned<[u8; #weights_bytes]> = &Aligned(*#include);

        #profile_items
    };
    let text = super::output::format_file(tokens, model_sha256)?;
    Ok(step_comments(&text, &comments))
}

/// Replaces each step's marker line by its comment, after a blank line (unless the step opens
/// a block): one paragraph per step.
fn step_comments(text: &str, comments: &[String]) -> String {
    let mut out =
        String::with_capacity(text.len() + comments.iter().map(String::len).sum::<usize>());
    let mut next = 0;
    let mut prev = "";
    for line in text.lines() {
        let body = line.trim_start();
        let marker = body
            .strip_prefix("__ghostc_step_")
            .and_then(|rest| rest.strip_suffix("!();"))
            .and_then(|i| i.parse::<usize>().ok());
        match marker {
            Some(i) if i == next => {
                if !prev.ends_with('{') {
                    out.push('\n');
                }
                let indent = &line[..line.len() - body.len()];
                let safe = comments[i].replace(['\n', '\r'], " ");
                out.push_str(&format!("{indent}// {safe}\n"));
                next += 1;
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
        prev = line;
    }
    out
}
