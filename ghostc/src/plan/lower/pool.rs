//! Pooling: global average pooling (and ReduceMean over H and W, the same thing) and windowed
//! max/average pooling, all per channel in the input's layout.
//!
//! Deliberately not done here: the squeeze of a squeeze-excite, which usually needs no pooling
//! step at all (`se` moves it into the producer's epilogue).

use ghost_runtime::{PoolKind, PoolShape};

use super::Lowerer;
use crate::ir::{self, NodeId, Op};
use crate::plan::program::*;

impl Lowerer<'_> {
    /// GlobalAveragePool, or a Reduce that is a mean over H and W of a rank-4 tensor.
    pub(super) fn lower_global_pool(&mut self, n: NodeId) {
        let node = self.g.node(n);
        if let Op::Reduce(r) = &node.op {
            if r.kind != ir::ReduceKind::Mean
                || r.axes != [2, 3]
                || self.shape(node.inputs[0]).len() != 4
            {
                self.unsupported_as(
                    n,
                    &format!(
                        "{:?} over axes {:?} of [{}]",
                        r.kind,
                        r.axes,
                        ir::fmt_shape(self.shape(node.inputs[0]))
                    ),
                    "a mean over axes [2, 3] of a rank-4 tensor",
                );
                return;
            }
        }
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let (h, w) = self.hw(x);
        let blocks = self.layout(x).blocks;
        let src = View::at(self.loc[&x], 0);
        let dst = self.out_buf(y);
        self.push(
            n,
            "global average pool".into(),
            Kernel::GlobalAvgPool {
                blocks,
                pixels: h * w,
                src,
                dst,
            },
        );
    }

    /// Max or average pooling of a rank-4 tensor (no dilation). `ceil_mode` arrives as extra
    /// bottom/right padding (import resolves it); average pooling with `count_include_pad`
    /// and `ceil_mode` is refused before this (the original pads are not recorded).
    pub(super) fn lower_pool(&mut self, n: NodeId, p: &ir::Pool) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let (in_h, in_w) = self.hw(x);
        let blocks = self.layout(x).blocks;
        let src = View::at(self.loc[&x], 0);
        let dst = View::at(self.out_buf(y), 0);
        let kind = match p.kind {
            ir::PoolKind::Max => PoolKind::Max,
            ir::PoolKind::Avg => PoolKind::Avg {
                count_include_pad: p.count_include_pad,
            },
        };
        self.push(
            n,
            format!("{} {}x{}", node.op.name(), p.kernel[0], p.kernel[1]),
            Kernel::Pool {
                kind,
                shape: PoolShape {
                    blocks,
                    in_h,
                    in_w,
                    kh: p.kernel[0],
                    kw: p.kernel[1],
                    stride: p.strides,
                    pads: p.pads,
                },
                src,
                dst,
            },
        );
    }
}
