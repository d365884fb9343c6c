//! An int8 elementwise function through a 256-entry table: each `u8`-stored byte of the
//! input replaced by its entry (`QActivation` of a QDQ graph, `Q(act(DQ(x)))`, whose output
//! byte depends on the input byte alone; ghostc computes the table at compile time with the
//! reference interpreter). Any layout: the bytes are mapped one by one, padding lanes too.
//!
//! Paths: `QSimd::lut_u8` (two `vpermi2b` per 64 bytes with AVX-512 VBMI, a byte at a time
//! elsewhere).
//!
//! Deliberately not done here: folding the table into the producer's store (the tensors it
//! serves, an SE gate's `C x 1 x 1` values, are a few hundred bytes).

use crate::arch::QSimd;
use crate::error::{check_len, Error};
use crate::isa::{qdispatch, Kernels};

/// A validated call.
struct TableArgs<'a> {
    table: &'a [u8; 256],
    src: *const u8,
    dst: *mut u8,
    n: usize,
}

/// # Safety
/// `src` valid for reading and `dst` for writing `n` bytes, not overlapping.
#[inline(always)]
unsafe fn run<S: QSimd>(s: S, a: &TableArgs<'_>) {
    // SAFETY: forwarded.
    unsafe { s.lut_u8(a.table, a.src, a.dst, a.n) }
}

impl Kernels {
    /// `output[i] = table[input[i]]` over `len` bytes (`table` holds exactly 256 entries;
    /// see [`crate::kernels::qtable`]).
    pub fn table_u8(
        self,
        table: &[u8],
        len: usize,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(), Error> {
        let table: &[u8; 256] = table.try_into().map_err(|_| Error::ExactLength {
            arg: "table",
            expected: 256,
            actual: table.len(),
        })?;
        check_len("input", input.len(), len)?;
        check_len("output", output.len(), len)?;
        let a = TableArgs {
            table,
            src: input.as_ptr(),
            dst: output.as_mut_ptr(),
            n: len,
        };
        // SAFETY: both extents checked; `output` is a unique borrow, so no overlap.
        qdispatch!(self, run, &a, TableArgs<'_>; vnni []; avx2 []; scalar []);
        Ok(())
    }
}
