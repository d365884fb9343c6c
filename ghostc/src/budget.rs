//! Memory budget of a compiled model, known before anything is built: the bytes a deployment
//! needs for the embedded weights (flash on a microcontroller: they are a `static` the kernels
//! read in place) and for the arena plus one call's input and output (RAM), and the check
//! [`crate::Builder::flash_budget`] / [`crate::Builder::ram_budget`] run so that a model over
//! budget fails the build with the numbers.
//!
//! Deliberately not done here: machine code and stack. Both depend on the target, the optimizer
//! settings and the caller's program, so they are measured on the linked binary instead
//! (`examples/cortex-m/memory_report.py` and its stack high-water mark).

use crate::plan::program::Program;

/// Bytes a compiled model needs, from its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The weight blob (f32, BatchNorm folded, packed): read-only, embedded in the binary.
    pub weight_bytes: usize,
    /// The arena, `Model::SCRATCH_LEN` floats.
    pub arena_bytes: usize,
    /// One call's inputs at the compiled batch (`Model::INPUT_LENS` summed).
    pub input_bytes: usize,
    /// One call's outputs at the compiled batch (`Model::OUTPUT_LENS` summed).
    pub output_bytes: usize,
}

impl Budget {
    /// The budget of a lowered model.
    pub fn of(program: &Program) -> Budget {
        let f = std::mem::size_of::<f32>();
        Budget {
            weight_bytes: program.weights.len() * f,
            arena_bytes: program.arena_len * f,
            input_bytes: program.inputs.iter().map(|io| io.len()).sum::<usize>() * f,
            output_bytes: program.outputs.iter().map(|io| io.len()).sum::<usize>() * f,
        }
    }

    /// Read-only bytes the model adds to the image: its weights (code not included).
    pub fn flash_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Writable bytes one inference needs: arena + input + output (stack not included).
    pub fn ram_bytes(&self) -> usize {
        self.arena_bytes + self.input_bytes + self.output_bytes
    }

    /// Checks the budget against limits in bytes (`None`: no limit).
    pub fn check(&self, flash: Option<usize>, ram: Option<usize>) -> Result<(), BudgetError> {
        let over = |kind, detail, need: usize, limit: Option<usize>| match limit {
            Some(limit) if need > limit => Err(BudgetError {
                kind,
                detail,
                need,
                limit,
            }),
            _ => Ok(()),
        };
        over(
            "flash",
            format!("weights {}", self.weight_bytes),
            self.flash_bytes(),
            flash,
        )?;
        over(
            "RAM",
            format!(
                "arena {} + input {} + output {}",
                self.arena_bytes, self.input_bytes, self.output_bytes
            ),
            self.ram_bytes(),
            ram,
        )
    }

    /// One line for `ghostc inspect`.
    pub fn to_line(&self) -> String {
        format!(
            "memory: flash {} bytes (weights; code not included), RAM {} bytes (arena {} + input {} + output {}; stack not included)",
            self.flash_bytes(),
            self.ram_bytes(),
            self.arena_bytes,
            self.input_bytes,
            self.output_bytes
        )
    }
}

/// User error: the model needs more memory than the budget given to the builder.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("model needs {need} bytes of {kind} ({detail}), {} bytes over the budget of {limit}", need - limit)]
pub struct BudgetError {
    /// `"flash"` or `"RAM"`.
    pub kind: &'static str,
    /// What the need is made of.
    pub detail: String,
    pub need: usize,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            weight_bytes: 1000,
            arena_bytes: 400,
            input_bytes: 40,
            output_bytes: 8,
        }
    }

    #[test]
    fn within_budget_passes_and_exact_fit_passes() {
        assert_eq!(budget().check(Some(1000), Some(448)), Ok(()));
        assert_eq!(budget().check(None, None), Ok(()));
    }

    #[test]
    fn over_budget_names_the_excess() {
        let e = budget().check(Some(999), None).unwrap_err();
        assert_eq!((e.kind, e.need, e.limit), ("flash", 1000, 999));
        assert_eq!(
            e.to_string(),
            "model needs 1000 bytes of flash (weights 1000), 1 bytes over the budget of 999"
        );
        let e = budget().check(None, Some(400)).unwrap_err();
        assert_eq!((e.kind, e.need, e.limit), ("RAM", 448, 400));
        assert!(e.to_string().contains("48 bytes over"), "{e}");
        assert!(
            e.to_string().contains("arena 400 + input 40 + output 8"),
            "{e}"
        );
    }
}
