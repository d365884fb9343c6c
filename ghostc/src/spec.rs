//! The text a user types to configure a compile, checked in one place for every entry point:
//! input shapes (`NAME=DIMS`, `1x3x224x224`) as `ghostc --shape` and `model!(shape = ...)`
//! take them, and the crate names `ghostc compile --name` / `ghostc bench --name` and
//! [`write_crate`](crate::write_crate) accept.
//!
//! Deliberately not done here: deciding which input an unnamed shape belongs to (that needs
//! the imported model; the CLI does it) and reporting errors at a span (the macro wraps these
//! errors in its own `syn::Error`s).

use std::num::ParseIntError;

/// Why a shape or a crate name given by the user is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A dimension of a shape is not a non-negative integer.
    #[error("bad dimension '{dim}' in shape '{shape}'")]
    Dim {
        dim: String,
        shape: String,
        source: ParseIntError,
    },
    /// The crate name cannot be a Cargo package and binary name (it also ends up inside the
    /// generated `Cargo.toml`, so nothing beyond these characters may pass).
    #[error(
        "crate name {0:?} must be ASCII letters, digits, '_' or '-', not starting with a digit"
    )]
    CrateName(String),
}

/// Parses dimensions such as `1x3x224x224` (`x`, `X` or `,` between them, spaces around each
/// allowed).
pub fn parse_dims(text: &str) -> Result<Vec<usize>, SpecError> {
    text.split(['x', 'X', ','])
        .map(|d| {
            d.trim().parse::<usize>().map_err(|source| SpecError::Dim {
                dim: d.trim().to_string(),
                shape: text.to_string(),
                source,
            })
        })
        .collect()
}

/// Parses `NAME=DIMS`, or `DIMS` alone (name `None`). The name is trimmed; it is not checked
/// against the model here.
pub fn parse_shape(spec: &str) -> Result<(Option<&str>, Vec<usize>), SpecError> {
    match spec.split_once('=') {
        Some((name, dims)) => Ok((Some(name.trim()), parse_dims(dims)?)),
        None => Ok((None, parse_dims(spec)?)),
    }
}

/// Checks that `name` can name a generated crate and its binary: ASCII letters, digits, `_`
/// and `-`, not empty, not starting with a digit.
pub fn check_crate_name(name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(SpecError::CrateName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims() {
        assert_eq!(parse_dims("1x3X224x224"), Ok(vec![1, 3, 224, 224]));
        assert_eq!(parse_dims("1, 3 ,8"), Ok(vec![1, 3, 8]));
        for bad in ["", "1x", "-1x3", "1xQ"] {
            assert!(parse_dims(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_dims("1x Q").unwrap_err().to_string(),
            "bad dimension 'Q' in shape '1x Q'"
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(parse_shape("1x3"), Ok((None, vec![1, 3])));
        assert_eq!(parse_shape(" in =1x3"), Ok((Some("in"), vec![1, 3])));
        assert!(parse_shape("in=").is_err());
    }

    #[test]
    fn crate_names() {
        for good in ["a", "ghostnet_rs", "no-se", "_x9"] {
            assert_eq!(check_crate_name(good), Ok(()), "{good}");
        }
        for bad in ["", "9a", "a b", "a\"b", "é", "a.b", "a/b"] {
            assert!(check_crate_name(bad).is_err(), "{bad}");
        }
    }
}
