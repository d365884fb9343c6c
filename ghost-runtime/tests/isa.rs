//! The ISA set the tests run on: with `GHOST_REQUIRE_ISA`, a missing SIMD path is a failure
//! rather than a silent scalar-only run.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn required_isas_are_exercised() {
    // CI sets GHOST_REQUIRE_ISA=avx512 (or avx2, neon) so a missing path fails instead of
    // silently testing only the scalar code.
    if let Ok(req) = std::env::var("GHOST_REQUIRE_ISA") {
        for name in req.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown ISA {name}"));
            let mut need = vec![isa];
            if isa == Isa::Avx512 {
                need.push(Isa::Avx2);
            }
            for isa in need {
                assert!(
                    simd_isas().iter().any(|k| k.isa() == isa),
                    "GHOST_REQUIRE_ISA asks for {isa:?}, which this machine/build cannot run"
                );
            }
        }
    }
}
