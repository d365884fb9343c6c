//! Graph rewrites between import and planning: BatchNorm folding and the fusion ladder.
//!
//! Every pass is a [`Pass`]: a name and a `run` that rewrites the graph in place and says
//! whether it changed anything. Passes are pattern rewrites with their side conditions spelled
//! out in code; when a condition fails the subgraph is left exactly as it was, so an unfused
//! graph is always a correct (slower) graph. Fusions are individually switchable through
//! [`FuseOptions`], which is how each step of the fusion ladder is measured on its own.
//!
//! [`optimize`] is the one ordered pipeline; its doc says why the order is what it is. In debug
//! builds (and so in tests) the verifier runs after every pass, so a pass that breaks a graph
//! invariant is caught at the pass, not three stages later.

mod channel_shuffle;
mod channels_first;
mod fold_batch_norm;
mod fold_pad;
mod fold_quantize;
mod fuse_activation;
mod fuse_dfc;
mod fuse_dfl;
mod fuse_ghost_module;
mod fuse_residual;
mod fuse_squeeze_excite;
mod merge_parallel_convs;
mod pattern;
mod remove_identity;

use std::fmt;
use std::str::FromStr;

use crate::ir::{Graph, NodeId};
use crate::verify::{verify, VerifyError};

pub use channel_shuffle::ChannelShuffle;
pub use channels_first::ChannelsFirst;
pub use fold_batch_norm::FoldBatchNorm;
pub use fold_pad::FoldPad;
pub use fold_quantize::FoldQuantize;
pub use fuse_activation::FuseActivation;
pub use fuse_dfc::FuseDfc;
pub use fuse_dfl::FuseDfl;
pub use fuse_ghost_module::FuseGhostModule;
pub use fuse_residual::FuseResidual;
pub use fuse_squeeze_excite::FuseSqueezeExcite;
pub use merge_parallel_convs::MergeParallelConvs;
pub use remove_identity::RemoveIdentity;

/// One graph rewrite.
pub trait Pass {
    /// Short snake_case name, as used by `--stop-after` and in reports.
    fn name(&self) -> &'static str;
    /// Rewrites `g` in place. Returns whether anything changed. A pass that finds nothing to do
    /// returns `Ok(false)` and leaves the graph untouched (not even renumbered).
    fn run(&self, g: &mut Graph) -> Result<bool, PassError>;
}

/// Why the pipeline stopped. Every variant is a ghostc bug, not a user error: passes only
/// rewrite what they fully understand and leave everything else alone.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The verifier rejected the graph after `pass` (`"input"`: before the first pass). A bug
    /// in that pass (or, for `"input"`, in the importer).
    #[error("IR verification failed after pass '{pass}'")]
    Verify {
        pass: &'static str,
        #[source]
        source: VerifyError,
    },
    /// The graph has a cycle, which no pass can create from an acyclic graph. A ghostc bug.
    #[error("pass '{pass}': graph has a cycle through node '{node}'")]
    Cycle { pass: &'static str, node: String },
}

/// One of the switchable fusions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fusion {
    /// BatchNorm folded into the preceding Conv / Gemm / MatMul(+Add) / Linear.
    Bn,
    /// Activations (including the decomposed hard-sigmoid / hard-swish forms) recognized and
    /// folded into the preceding conv (and Linear, when `linear` is on too).
    Act,
    /// `Slice?(Concat(p, cheap(p)))` into one `Ghost` op.
    Ghost,
    /// A residual `Add` folded into the producing Ghost / FusedConv.
    Residual,
    /// Squeeze-and-excitation subgraphs into one `SqueezeExcite` op.
    Se,
    /// Gemm and MatMul(+Add bias) with a constant weight into `Linear`.
    Linear,
    /// Summed parallel convs of one input (and a standalone BN of it) merged into one conv:
    /// GhostNetV3's training-form branches, re-parameterized at compile time.
    Branches,
    /// GhostNetV2's DFC attention (pool, conv chain, gate, nearest resize, Mul) into one
    /// `DfcGate` op.
    Dfc,
    /// QDQ chains `DequantizeLinear -> Conv -> act? -> QuantizeLinear` into one integer
    /// `QConv`.
    Quant,
    /// A zero `Pad` folded into the padding of the convs reading it.
    Pad,
    /// Dense 3x3 stride-1 convs by Winograd F(2x2, 3x3) (`conv_winograd`) instead of the
    /// direct kernel: a kernel choice made when lowering, switchable like the fusions.
    Winograd,
}

impl Fusion {
    pub const ALL: [Fusion; 11] = [
        Fusion::Bn,
        Fusion::Act,
        Fusion::Ghost,
        Fusion::Residual,
        Fusion::Se,
        Fusion::Linear,
        Fusion::Branches,
        Fusion::Dfc,
        Fusion::Quant,
        Fusion::Pad,
        Fusion::Winograd,
    ];

    /// The spelling `--no-fuse` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fusion::Bn => "bn",
            Fusion::Act => "act",
            Fusion::Ghost => "ghost",
            Fusion::Residual => "residual",
            Fusion::Se => "se",
            Fusion::Linear => "linear",
            Fusion::Branches => "branches",
            Fusion::Dfc => "dfc",
            Fusion::Quant => "quant",
            Fusion::Pad => "pad",
            Fusion::Winograd => "winograd",
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fusion name that is not one of [`Fusion::ALL`]. A user error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fusion '{0}' (expected a comma list of: bn, act, ghost, residual, se, linear, branches, dfc, quant, pad, winograd, or 'all')")]
pub struct ParseFusionError(pub String);

impl FromStr for Fusion {
    type Err = ParseFusionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fusion::ALL
            .into_iter()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| ParseFusionError(s.trim().to_string()))
    }
}

/// Which fusions run. All on by default.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FuseOptions {
    pub bn: bool,
    pub act: bool,
    pub ghost: bool,
    pub residual: bool,
    pub se: bool,
    pub linear: bool,
    pub branches: bool,
    pub dfc: bool,
    pub quant: bool,
    pub pad: bool,
    pub winograd: bool,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions::all()
    }
}

impl FuseOptions {
    pub fn all() -> Self {
        FuseOptions {
            bn: true,
            act: true,
            ghost: true,
            residual: true,
            se: true,
            linear: true,
            branches: true,
            dfc: true,
            quant: true,
            pad: true,
            winograd: true,
        }
    }

    pub fn none() -> Self {
        FuseOptions {
            bn: false,
            act: false,
            ghost: false,
            residual: false,
            se: false,
            linear: false,
            branches: false,
            dfc: false,
            quant: false,
            pad: false,
            winograd: false,
        }
    }

    pub fn is_enabled(&self, f: Fusion) -> bool {
        match f {
            Fusion::Bn => self.bn,
            Fusion::Act => self.act,
            Fusion::Ghost => self.ghost,
            Fusion::Residual => self.residual,
            Fusion::Se => self.se,
            Fusion::Linear => self.linear,
            Fusion::Branches => self.branches,
            Fusion::Dfc => self.dfc,
            Fusion::Quant => self.quant,
            Fusion::Pad => self.pad,
            Fusion::Winograd => self.winograd,
        }
    }

    pub fn set(&mut self, f: Fusion, on: bool) {
        let flag = match f {
            Fusion::Bn => &mut self.bn,
            Fusion::Act => &mut self.act,
            Fusion::Ghost => &mut self.ghost,
            Fusion::Residual => &mut self.residual,
            Fusion::Se => &mut self.se,
            Fusion::Linear => &mut self.linear,
            Fusion::Branches => &mut self.branches,
            Fusion::Dfc => &mut self.dfc,
            Fusion::Quant => &mut self.quant,
            Fusion::Pad => &mut self.pad,
            Fusion::Winograd => &mut self.winograd,
        };
        *flag = on;
    }

    /// All fusions except `f`.
    pub fn without(mut self, f: Fusion) -> Self {
        self.set(f, false);
        self
    }

    /// Only fusion `f`.
    pub fn only(f: Fusion) -> Self {
        let mut o = FuseOptions::none();
        o.set(f, true);
        o
    }
}

/// Parses the argument of `--no-fuse`: a comma list of fusions to turn OFF (`"ghost,se"`), or
/// `"all"`. The empty string turns nothing off.
impl FromStr for FuseOptions {
    type Err = ParseFusionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut opts = FuseOptions::all();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "all" {
                opts = FuseOptions::none();
            } else {
                opts.set(item.parse()?, false);
            }
        }
        Ok(opts)
    }
}

/// Options for [`optimize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassOptions {
    pub fuse: FuseOptions,
    /// Run [`crate::verify::verify`] before the first pass and after every pass. Defaults to
    /// on in debug builds (tests included), off in release.
    pub verify_each: bool,
    /// Stop after the pass with this name (see [`PASS_NAMES`]); `None` runs them all.
    pub stop_after: Option<String>,
}

// Not derivable: `verify_each` follows `debug_assertions` (clippy only sees a derivable impl
// in release builds, where that is `false`).
#[allow(clippy::derivable_impls)]
impl Default for PassOptions {
    fn default() -> Self {
        PassOptions {
            fuse: FuseOptions::all(),
            verify_each: cfg!(debug_assertions),
            stop_after: None,
        }
    }
}

impl PassOptions {
    pub fn with_fuse(fuse: FuseOptions) -> Self {
        PassOptions {
            fuse,
            ..PassOptions::default()
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassReport {
    pub pass: &'static str,
    pub changed: bool,
    pub nodes_before: usize,
    pub nodes_after: usize,
}

/// Pass names in pipeline order, for `--stop-after` and `--emit ir-after=PASS`.
pub const PASS_NAMES: [&str; 13] = [
    "remove_identity",
    "channel_shuffle",
    "channels_first",
    "fuse_dfl",
    "fold_pad",
    "fold_quantize",
    "fold_batch_norm",
    "merge_parallel_convs",
    "fuse_activation",
    "fuse_squeeze_excite",
    "fuse_ghost_module",
    "fuse_dfc",
    "fuse_residual",
];

/// The ordered pass list for `fuse`. Disabled fusions still appear (as passes that change
/// nothing) so reports always list the same passes in the same order.
pub fn pipeline(fuse: &FuseOptions) -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(RemoveIdentity),
        Box::new(ChannelShuffle),
        Box::new(ChannelsFirst),
        Box::new(FuseDfl),
        Box::new(FoldPad { enabled: fuse.pad }),
        Box::new(FoldQuantize {
            enabled: fuse.quant,
        }),
        Box::new(FoldBatchNorm { enabled: fuse.bn }),
        Box::new(MergeParallelConvs {
            enabled: fuse.branches,
        }),
        Box::new(FuseActivation {
            act: fuse.act,
            linear: fuse.linear,
        }),
        Box::new(FuseSqueezeExcite { enabled: fuse.se }),
        Box::new(FuseGhostModule {
            enabled: fuse.ghost,
        }),
        Box::new(FuseDfc { enabled: fuse.dfc }),
        Box::new(FuseResidual {
            enabled: fuse.residual,
        }),
    ]
}

/// Runs the pass pipeline on `g`, in this order:
///
/// 1. `remove_identity`: Identity, and Reshape/Slice/Transpose/Cast/Concat that do nothing, go
///    first so that every later matcher sees producers and consumers directly adjacent.
/// 2. `channel_shuffle`: ShuffleNet's `Reshape -> Transpose -> Reshape` into one op (a layout
///    permutation for the planner). Always on: the three nodes have no lowering of their own.
/// 3. `channels_first`: channels-last regions (`Transpose(0, 2, 3, 1)`, LayerNorm/MatMul/
///    elementwise ops on the last axis, `Transpose(0, 3, 1, 2)`) become ChannelNorm, 1x1 Convs
///    and the same elementwise ops on NCHW. Always on: the Transposes have no lowering. Before
///    `fold_batch_norm`, which then folds the bias Add and ConvNeXt's layer-scale Mul into the
///    new convs.
/// 4. `fuse_dfl`: a detection head's `Reshape -> Transpose -> Softmax -> Conv -> Reshape`
///    into one `Dfl` op. Always on, like steps 2 and 3; before `fuse_activation` turns the
///    conv into a FusedConv.
/// 5. `fold_pad`: a constant-zero `Pad` before convs (TF "SAME" exports) becomes their padding.
///    Early, so every later matcher sees each conv right after the Pad's producer.
/// 6. `fold_quantize`: QDQ chains into QConv before anything else looks at the convs, whose
///    weights are Dequantize outputs, not constants, so no f32 fusion would match them anyway.
/// 7. `fold_batch_norm`: needs the raw `Conv -> BatchNorm` / `Gemm -> BatchNorm` adjacency
///    (and `Conv -> Mul/Add` by a per-channel constant), i.e. must run before activations are
///    fused into the conv (a BN after an activation is not foldable, and after fusion the conv
///    would sit behind its activation).
/// 8. `merge_parallel_convs`: sums of convs over one input (GhostNetV3 exported in training
///    form) become one conv. After BN folding, so each `BN(Conv(x))` branch is one conv with
///    bias; before activation fusion, which would otherwise turn the branches into FusedConvs
///    and the ReLU after the sum into a separate node the Ghost matcher cannot see through.
/// 9. `fuse_activation`: canonicalizes first (decomposed hard-sigmoid / hard-swish become one
///    activation node), then turns every Conv into a FusedConv with its bias and following
///    activation, and Gemm/MatMul(+Add) into Linear. Every later matcher then sees one
///    spelling of "conv + bias + activation" and of "fully connected layer".
/// 10. `fuse_squeeze_excite`: matches pool -> FC+act -> FC+gate -> Mul, which only has a
///     single spelling once step 9 has run (hard-sigmoid decomposed into Add/Clip/Div
///     otherwise). It does not interact with the Ghost pattern (its FCs act on 1x1 maps).
/// 11. `fuse_ghost_module`: needs the primary and cheap convs with their activations absorbed
///     (step 9), so that `p` has exactly the two consumers the pattern requires.
/// 12. `fuse_dfc`: after the Ghost fusion, so the gated tensor is the whole Ghost op, and
///     after `fuse_activation`, so the gate's Sigmoid has one spelling (fused into the last
///     conv). Independent of the residual (GhostNetV2 gates the first Ghost module, the
///     residual joins the second).
/// 13. `fuse_residual`: last, so that the residual Add attaches to the whole Ghost module (its
///     real producer) rather than to the Slice/Concat the Ghost fusion removes.
///
/// Returns one report per pass that ran. With `opts.verify_each` the verifier runs on the
/// input graph and after every pass.
pub fn optimize(g: &mut Graph, opts: &PassOptions) -> Result<Vec<PassReport>, PassError> {
    if opts.verify_each {
        verify(g).map_err(|source| PassError::Verify {
            pass: "input",
            source,
        })?;
    }
    let mut reports = Vec::new();
    for pass in pipeline(&opts.fuse) {
        let nodes_before = g.nodes.node_count();
        let changed = pass.run(g)?;
        if opts.verify_each {
            verify(g).map_err(|source| PassError::Verify {
                pass: pass.name(),
                source,
            })?;
        }
        reports.push(PassReport {
            pass: pass.name(),
            changed,
            nodes_before,
            nodes_after: g.nodes.node_count(),
        });
        if opts.stop_after.as_deref() == Some(pass.name()) {
            break;
        }
    }
    Ok(reports)
}

/// Runs a single pass (for tests and `--emit ir-after`), verifying afterwards when
/// `verify_after` is set.
pub fn run_pass(pass: &dyn Pass, g: &mut Graph, verify_after: bool) -> Result<bool, PassError> {
    let changed = pass.run(g)?;
    if verify_after {
        verify(g).map_err(|source| PassError::Verify {
            pass: pass.name(),
            source,
        })?;
    }
    Ok(changed)
}

/// The loop of a rewrite pass: applies `rewrite` to every node still present, in a topological
/// order taken up front (a rewrite may remove nodes after the current one). Returns whether any
/// call changed the graph; a cycle is [`PassError::Cycle`] in `pass`'s name.
fn sweep(
    pass: &dyn Pass,
    g: &mut Graph,
    mut rewrite: impl FnMut(&mut Graph, NodeId) -> bool,
) -> Result<bool, PassError> {
    let order = g.topo_order().map_err(|n| PassError::Cycle {
        pass: pass.name(),
        node: g.node(n).name.clone(),
    })?;
    let mut changed = false;
    for n in order {
        if g.nodes.contains_node(n) {
            changed |= rewrite(g, n);
        }
    }
    Ok(changed)
}
