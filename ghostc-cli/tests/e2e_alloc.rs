//! Inference allocates nothing: the generated crate of the smallest fixture, built as a real
//! release binary (`ghostc::build_crate`, the crate's own LTO/panic=abort profile), with a
//! harness binary whose counting `#[global_allocator]` sees every alloc/alloc_zeroed/realloc.
//! Input, output and scratch are allocated first; then `Model::new()` plus 5 `run` calls and one
//! `run` that returns a length error must make zero allocations. A positive control proves the
//! counter is installed. The harness lives in `e2e_common` (shared with `e2e_errors`).

mod e2e_common;

#[test]
fn run_does_not_allocate() {
    let h = e2e_common::harness();
    let (ok, out) = e2e_common::run_bin(&h.harness, &["alloc"]);
    println!("{out}");
    assert!(
        ok,
        "the generated model allocated during inference (or the harness failed):\n{out}"
    );
    assert!(out.contains("run allocations: 0 (0 bytes)"), "{out}");
}
