//! The one error type of the safe API.

use core::fmt;

/// Why a kernel refused its arguments. Every check happens once, at the public boundary,
/// before any memory is touched; a returned error means nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A slice is shorter than the shape requires (`actual < expected`).
    Length {
        /// Name of the offending argument, as spelled in the function signature.
        arg: &'static str,
        /// Minimum number of `f32` the shape requires.
        expected: usize,
        /// Number of `f32` the caller passed.
        actual: usize,
    },
    /// A slice whose length the shape fixes has another length (a model's inputs and
    /// outputs, the number of tensors passed).
    ExactLength {
        /// Name of the offending argument.
        arg: &'static str,
        /// The number of elements the shape fixes.
        expected: usize,
        /// Number of elements the caller passed.
        actual: usize,
    },
    /// A slice must hold a positive whole number of items of `of` elements (a dynamic
    /// batch's input).
    LengthMultiple {
        /// Name of the offending argument.
        arg: &'static str,
        /// Elements per item (one image).
        of: usize,
        /// Number of elements the caller passed.
        actual: usize,
    },
    /// A shape parameter is zero, inconsistent or not supported by this kernel.
    Shape {
        /// Name of the offending argument.
        arg: &'static str,
        /// What is wrong with it.
        detail: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                arg,
                expected,
                actual,
            } => write!(
                f,
                "argument `{arg}` has {actual} elements, expected at least {expected}"
            ),
            Error::ExactLength {
                arg,
                expected,
                actual,
            } => write!(
                f,
                "argument `{arg}` has {actual} elements, expected exactly {expected}"
            ),
            Error::LengthMultiple { arg, of, actual } => write!(
                f,
                "argument `{arg}` has {actual} elements, expected a positive multiple of {of}"
            ),
            Error::Shape { arg, detail } => write!(f, "argument `{arg}`: {detail}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// `Ok` when `actual >= expected`.
#[inline]
pub(crate) fn check_len(arg: &'static str, actual: usize, expected: usize) -> Result<(), Error> {
    if actual < expected {
        Err(Error::Length {
            arg,
            expected,
            actual,
        })
    } else {
        Ok(())
    }
}

/// `Ok` when `actual == expected` (a slice whose length the shape fixes).
#[inline]
pub(crate) fn check_exact_len(
    arg: &'static str,
    actual: usize,
    expected: usize,
) -> Result<(), Error> {
    if actual != expected {
        Err(Error::ExactLength {
            arg,
            expected,
            actual,
        })
    } else {
        Ok(())
    }
}

/// Product of `factors`, saturating at `usize::MAX`. Every length a check requires is computed
/// this way (and sums with `saturating_add`), so a shape whose size overflows `usize` needs
/// `usize::MAX` elements and fails its [`check_len`], instead of wrapping around to a small
/// length that a short slice would pass.
#[inline]
pub(crate) fn size(factors: &[usize]) -> usize {
    factors.iter().fold(1usize, |a, &f| a.saturating_mul(f))
}

/// `Ok` when `cond` holds.
#[inline]
pub(crate) fn check(cond: bool, arg: &'static str, detail: &'static str) -> Result<(), Error> {
    if cond {
        Ok(())
    } else {
        Err(Error::Shape { arg, detail })
    }
}
