//! Proc-macro shell over ghostc (see issue 4).
