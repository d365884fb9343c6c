//! The interface every ghostc-generated model implements, and (with `std`) a wrapper that owns
//! its scratch buffer for callers who do not manage memory themselves.

use crate::{Error, Fork};

/// Implemented by each generated `Model`. `run` checks every length before writing anything.
pub trait CompiledModel {
    /// Floats in one call's input at the compiled batch.
    const INPUT_LEN: usize;
    /// Floats in one call's output at the compiled batch.
    const OUTPUT_LEN: usize;
    /// Floats of scratch `run` needs, whatever the batch.
    const SCRATCH_LEN: usize;
    /// Whether `run` accepts any multiple of one image's input.
    const DYNAMIC_BATCH: bool;
    /// Runs the model; see the generated `Model::run`.
    fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), Error>;
    /// Runs the model over `fork`'s parts; see the generated `Model::run_with`.
    fn run_with(
        &self,
        fork: &dyn Fork,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error>;
}

/// A model plus its scratch, allocated once in [`WithScratch::new`], and optionally a
/// [`crate::Team`] of threads ([`WithScratch::with_threads`]); `run` then allocates nothing.
///
/// ```ignore
/// let mut m = ghost_runtime::WithScratch::new(Model::new());
/// let mut logits = vec![0.0; Model::OUTPUT_LEN];
/// m.run(&image, &mut logits)?;
/// // Two threads: each layer is split in two; a batch is split by images.
/// let mut m2 = ghost_runtime::WithScratch::with_threads(Model::new(), 2)?;
/// ```
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct WithScratch<M> {
    model: M,
    scratch: AlignedScratch,
    team: Option<crate::Team>,
}

/// A zeroed `f32` buffer whose first element sits on a 64-byte boundary. A plain large
/// `Vec<f32>` starts 16 bytes past one (the allocator's header), so every other 32-byte vector
/// access would straddle two cache lines (measured: 6-11 % slower depthwise layers).
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct AlignedScratch {
    buf: std::vec::Vec<f32>,
    offset: usize,
    len: usize,
}

#[cfg(feature = "std")]
impl AlignedScratch {
    /// `len` zeroed floats, 64-byte aligned. From 2 MiB on (Linux x86_64/aarch64), the
    /// buffer starts on a 2 MiB boundary and is advised to transparent huge pages
    /// (`madvise(MADV_HUGEPAGE)`, before anything touches it): the first run then takes a
    /// handful of huge-page faults instead of one fault per 4 KiB page (GhostNet-1.0: 931 of
    /// its 1,254 first-run faults), and the layers use fewer TLB entries.
    /// `GHOST_HUGE_SCRATCH=off` keeps 4 KiB pages.
    pub fn new(len: usize) -> Self {
        const HUGE: usize = crate::prefault::HUGE_PAGE;
        if len * 4 >= HUGE {
            // Two huge pages of slack: up to one to reach a boundary, one to round the end up.
            // The slack is never touched, so it costs address space, not memory. A large
            // zeroed Vec is a fresh mapping (calloc skips the memset), so nothing has faulted
            // yet when the advice is given; if the allocator reused memory the advice is
            // merely late.
            let pad = 2 * HUGE / 4;
            let buf = std::vec![0.0f32; len + pad];
            let offset = buf.as_ptr().align_offset(HUGE);
            if offset <= HUGE / 4 {
                let ptr = buf[offset..].as_ptr();
                crate::prefault::advise_huge(ptr, (len * 4).div_ceil(HUGE) * HUGE);
                return AlignedScratch { buf, offset, len };
            }
        }
        let buf = std::vec![0.0f32; len + 16];
        let offset = buf.as_ptr().align_offset(64).min(16);
        AlignedScratch { buf, offset, len }
    }

    /// The buffer.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.offset..self.offset + self.len]
    }

    /// The buffer, read-only.
    pub fn as_slice(&self) -> &[f32] {
        &self.buf[self.offset..self.offset + self.len]
    }
}

#[cfg(feature = "std")]
impl<M: CompiledModel> WithScratch<M> {
    /// Wraps `model` with a scratch buffer of `M::SCRATCH_LEN` floats.
    pub fn new(model: M) -> Self {
        WithScratch {
            model,
            scratch: AlignedScratch::new(M::SCRATCH_LEN),
            team: None,
        }
    }

    /// Wraps `model` with a [`crate::Team`] of `threads` threads (the caller included) and
    /// `threads * M::SCRATCH_LEN` floats of scratch, enough to run the images of a batch on
    /// separate threads.
    pub fn with_threads(model: M, threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        Ok(WithScratch {
            model,
            scratch: AlignedScratch::new(threads * M::SCRATCH_LEN),
            team: if threads > 1 {
                Some(crate::Team::new(threads)?)
            } else {
                None
            },
        })
    }

    /// Runs the model with the owned scratch (and team).
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        match &self.team {
            Some(team) => self
                .model
                .run_with(team, input, output, self.scratch.as_mut_slice()),
            None => self.model.run(input, output, self.scratch.as_mut_slice()),
        }
    }

    /// Threads `run` uses.
    pub fn threads(&self) -> usize {
        self.team.as_ref().map_or(1, |t| t.threads())
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    struct Doubler;
    impl CompiledModel for Doubler {
        const INPUT_LEN: usize = 2;
        const OUTPUT_LEN: usize = 2;
        const SCRATCH_LEN: usize = 4;
        const DYNAMIC_BATCH: bool = false;
        fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> Result<(), Error> {
            if scratch.len() < Self::SCRATCH_LEN {
                return Err(Error::Length {
                    arg: "scratch",
                    expected: 4,
                    actual: scratch.len(),
                });
            }
            for (o, i) in output.iter_mut().zip(input) {
                *o = 2.0 * i;
            }
            Ok(())
        }
        fn run_with(
            &self,
            _fork: &dyn Fork,
            input: &[f32],
            output: &mut [f32],
            scratch: &mut [f32],
        ) -> Result<(), Error> {
            self.run(input, output, scratch)
        }
    }

    #[test]
    fn owns_a_scratch_of_the_declared_length() {
        let mut m = WithScratch::new(Doubler);
        let mut out = [0.0; 2];
        m.run(&[1.0, 2.0], &mut out).unwrap();
        assert_eq!(out, [2.0, 4.0]);
        let mut m = WithScratch::with_threads(Doubler, 3).unwrap();
        assert_eq!(m.threads(), 3);
        assert_eq!(m.scratch.as_mut_slice().len(), 12);
        assert_eq!(m.scratch.as_mut_slice().as_ptr() as usize % 64, 0);
        m.run(&[1.0, 2.0], &mut out).unwrap();
        assert_eq!(out, [2.0, 4.0]);
    }

    #[test]
    fn a_large_scratch_is_zeroed_and_starts_on_a_huge_page() {
        for len in [(2 << 20) / 4, 600_001, 3 << 20] {
            let mut s = AlignedScratch::new(len);
            let buf = s.as_mut_slice();
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&v| v == 0.0));
            assert_eq!(buf.as_ptr() as usize % (2 << 20), 0, "len {len}");
            buf[len - 1] = 1.0;
        }
    }
}
