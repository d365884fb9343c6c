//! Sets `--cfg ghost_runtime_opt0` when this crate is built without optimization
//! (`opt-level = 0`, the `dev` and `test` profiles unless overridden).
//!
//! The kernels mark their tile functions `#[inline(always)]` so that optimized builds keep the
//! accumulator tiles in registers. LLVM honours that at `opt-level = 0` too, but there it
//! neither promotes locals to registers nor lets locals of different inlined copies share
//! stack slots, so every inlined tile instance adds its own locals to the caller's frame. In a
//! debug build the general depthwise kernel's entry had a 1.8 MiB frame (the scalar paths)
//! and its per-ISA bodies up to 1.1 MiB more: more than a test thread's 2 MiB. Under this cfg
//! the tile functions are `#[inline(never)]` instead, so a debug kernel call holds one tile's
//! frame at a time (each kernel's debug tests pass on 48 KiB thread stacks). `debug_assertions` is not used for this
//! because it is independent of the optimization level (a profile may optimize with debug
//! assertions on, and must then keep the release code).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(ghost_runtime_opt0)");
    // Cargo passes the profile's opt-level ("0".."3", "s", "z") to build scripts.
    if std::env::var("OPT_LEVEL").is_ok_and(|o| o == "0") {
        println!("cargo:rustc-cfg=ghost_runtime_opt0");
    }
}
