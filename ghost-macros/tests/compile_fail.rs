//! Compile-fail tests of `model!` (bad-inputs matrix, issue #7): each file in
//! `tests/compile_fail/` invokes the macro on a malformed model of `tests/bad_models/` and must
//! fail with exactly the `compile_error!` in its `.stderr` snapshot: the ghostc error naming
//! the tensor / node / limit, spanned at the macro's path literal (or at the bad option), and
//! no follow-on errors (the macro emits a stub `Model`).
//!
//! One trybuild run compiles all cases. After an intended change to a message:
//! `TRYBUILD=overwrite cargo test -p ghost-macros --test compile_fail` and review the diff.

#[test]
fn compile_fail() {
    // trybuild compiles the cases in a generated crate under target/tests/trybuild, so
    // CARGO_MANIFEST_DIR would point there; the macro takes relative model paths against
    // GHOST_MACROS_MANIFEST_DIR instead when it is set (see the crate docs).
    std::env::set_var("GHOST_MACROS_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"));
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
