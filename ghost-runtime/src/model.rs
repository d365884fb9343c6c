//! The interface every ghostc-generated model implements, and (with `std`) a wrapper that owns
//! its scratch buffer for callers who do not manage memory themselves.

use crate::Error;

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
}

/// A model plus its scratch, allocated once in [`WithScratch::new`]; `run` then allocates
/// nothing.
///
/// ```ignore
/// let mut m = ghost_runtime::WithScratch::new(Model::new());
/// let mut logits = vec![0.0; Model::OUTPUT_LEN];
/// m.run(&image, &mut logits)?;
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct WithScratch<M> {
    model: M,
    scratch: std::vec::Vec<f32>,
}

#[cfg(feature = "std")]
impl<M: CompiledModel> WithScratch<M> {
    /// Wraps `model` with a scratch buffer of `M::SCRATCH_LEN` floats.
    pub fn new(model: M) -> Self {
        WithScratch {
            model,
            scratch: std::vec![0.0; M::SCRATCH_LEN],
        }
    }

    /// Runs the model with the owned scratch.
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        self.model.run(input, output, &mut self.scratch)
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
    }

    #[test]
    fn owns_a_scratch_of_the_declared_length() {
        let mut m = WithScratch::new(Doubler);
        let mut out = [0.0; 2];
        m.run(&[1.0, 2.0], &mut out).unwrap();
        assert_eq!(out, [2.0, 4.0]);
    }
}
