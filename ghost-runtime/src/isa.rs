//! Instruction-set selection.
//!
//! [`Isa`] names a code path. [`Kernels`] is the handle every kernel hangs off: it can only be
//! built for an ISA the running CPU supports, which is what makes the `unsafe` calls into
//! `#[target_feature]` code sound. Detection runs once and is cached in an atomic.
//!
//! * With `std` on x86_64: `is_x86_feature_detected!` picks AVX-512VL (32 ymm registers),
//!   else AVX2+FMA, else scalar. `GHOST_FORCE_ISA=scalar|avx2|avx512|neon|simd128` overrides the choice
//!   when the CPU supports the requested path (an unsupported request is ignored).
//! * Without `std`: `cfg!(target_feature = ...)`, i.e. whatever the build enables.
//! * aarch64: NEON is part of the baseline of every aarch64 Rust target we build for.
//! * wasm32: SIMD128 when the module is built with `-C target-feature=+simd128` (wasm has no
//!   runtime detection: an engine without SIMD128 rejects such a module when loading it).
//! * Under Miri: scalar only, unless the build sets `--cfg ghost_miri_simd`: then the x86 paths
//!   that the build's target features enable (`-C target-feature=+avx2,+fma`, `+avx512f,...`)
//!   run too, so Miri checks the unsafe SIMD code's memory accesses, not only the scalar path
//!   (Miri implements the x86 intrinsics we use but `vpmovdb`, for which the VNNI int8 store
//!   packs with AVX2 under Miri; run without `std`, so detection is `cfg!`).
//!
//! `RUSTFLAGS="--cfg ghost_runtime_simd_only -C target-feature=+simd128"` builds a wasm module
//! without the scalar instantiation of any kernel (`Isa::Scalar` is then unsupported): about a
//! third less code for deployments; tests need the scalar path and do not use it.

use core::sync::atomic::{AtomicU8, Ordering};

/// A code path. Which ones exist depends on the target architecture; which ones may run depends
/// on the CPU (see [`Isa::is_supported`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, the reference for all tests. Always available.
    Scalar,
    /// x86_64 AVX2 + FMA on ymm registers (16 architectural registers).
    Avx2,
    /// x86_64 AVX-512F + AVX-512VL on ymm registers (32 registers, embedded broadcasts).
    Avx512,
    /// aarch64 Advanced SIMD.
    Neon,
    /// wasm32 SIMD128 (a channel block is two `v128`).
    Simd128,
}

impl Isa {
    /// All code paths, fastest first.
    pub const ALL: [Isa; 5] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Simd128, Isa::Scalar];

    /// Lower-case name as accepted by `GHOST_FORCE_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::Simd128 => "simd128",
        }
    }

    /// Parses a name as printed by [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this build has code for the path and the running CPU can execute it.
    pub fn is_supported(self) -> bool {
        if cfg!(all(miri, not(ghost_miri_simd))) {
            return self == Isa::Scalar;
        }
        match self {
            // Dropped from wasm SIMD128 builds with `--cfg ghost_runtime_simd_only` (code size).
            Isa::Scalar => !cfg!(all(
                ghost_runtime_simd_only,
                target_arch = "wasm32",
                target_feature = "simd128",
                not(miri)
            )),
            Isa::Avx2 => x86_avx2(),
            Isa::Avx512 => x86_avx512(),
            Isa::Neon => cfg!(all(target_arch = "aarch64", target_feature = "neon")),
            Isa::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
        }
    }

    /// The fastest supported path, ignoring `GHOST_FORCE_ISA`.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// The path [`Kernels::new`] uses: `GHOST_FORCE_ISA` if set and supported, else
    /// [`Isa::best`]. Computed once.
    pub fn selected() -> Isa {
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            1 => return Isa::Scalar,
            2 => return Isa::Avx2,
            3 => return Isa::Avx512,
            4 => return Isa::Neon,
            5 => return Isa::Simd128,
            _ => {}
        }
        let isa = forced().unwrap_or_else(Isa::best);
        let code = match isa {
            Isa::Scalar => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
            Isa::Neon => 4,
            Isa::Simd128 => 5,
        };
        CACHE.store(code, Ordering::Relaxed);
        isa
    }
}

#[cfg(all(feature = "std", not(miri)))]
fn forced() -> Option<Isa> {
    let name = std::env::var("GHOST_FORCE_ISA").ok()?;
    Isa::from_name(name.trim()).filter(|isa| isa.is_supported())
}

#[cfg(not(all(feature = "std", not(miri))))]
fn forced() -> Option<Isa> {
    None
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn x86_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn x86_avx512() -> bool {
    x86_avx2()
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
}
/// AVX-512 VNNI and BW on top of [`x86_avx512`]: the int8 kernels' `vpdpbusd` path.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub(crate) fn x86_vnni() -> bool {
    x86_avx512()
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
}
#[cfg(not(all(target_arch = "x86_64", feature = "std")))]
pub(crate) fn x86_vnni() -> bool {
    x86_avx512()
        && cfg!(all(
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        ))
}
/// AVX-512 VBMI (`vpermi2b`, `vpermb`), for byte table lookups and the dot-product depthwise
/// on the `Vnni` token's path (neither runs under Miri).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[cfg_attr(miri, allow(dead_code))]
pub(crate) fn x86_vbmi() -> bool {
    x86_vnni() && std::is_x86_feature_detected!("avx512vbmi")
}
#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
#[cfg_attr(miri, allow(dead_code))]
pub(crate) fn x86_vbmi() -> bool {
    x86_vnni() && cfg!(target_feature = "avx512vbmi")
}
/// AVX-VNNI (the VEX-encoded ymm `vpdpbusd` of Alder Lake and later Intel cores, Zen 5) on top
/// of AVX2 + FMA: the int8 kernels' dot products in one instruction without AVX-512.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub(crate) fn x86_avx_vnni() -> bool {
    x86_avx2() && std::is_x86_feature_detected!("avxvnni")
}
#[cfg(not(all(target_arch = "x86_64", feature = "std")))]
pub(crate) fn x86_avx_vnni() -> bool {
    x86_avx2() && cfg!(target_feature = "avxvnni")
}
#[cfg(not(all(target_arch = "x86_64", feature = "std")))]
fn x86_avx2() -> bool {
    cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))
}
#[cfg(not(all(target_arch = "x86_64", feature = "std")))]
fn x86_avx512() -> bool {
    x86_avx2() && cfg!(all(target_feature = "avx512f", target_feature = "avx512vl"))
}

/// Handle through which all kernels are called. Copy it freely; it is two bytes.
///
/// Holding a `Kernels` proves that its ISA runs on this CPU, so the kernels it dispatches to
/// are sound to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
    /// The int8 kernels' AVX2 path keeps the `vpmaddubsw` split even where the CPU has
    /// AVX-VNNI ([`Kernels::without_avx_vnni`]).
    no_avx_vnni: bool,
}

impl Default for Kernels {
    fn default() -> Self {
        Kernels::new()
    }
}

impl Kernels {
    /// Kernels for [`Isa::selected`].
    pub fn new() -> Kernels {
        Kernels {
            isa: Isa::selected(),
            no_avx_vnni: false,
        }
    }

    /// Kernels for a specific path, or `None` if this CPU/build cannot run it.
    pub fn with_isa(isa: Isa) -> Option<Kernels> {
        if isa.is_supported() {
            Some(Kernels {
                isa,
                no_avx_vnni: false,
            })
        } else {
            None
        }
    }

    /// The path these kernels run.
    pub fn isa(self) -> Isa {
        self.isa
    }

    /// The code path of the int8 kernels (`pointwise_u8`, `depthwise_u8`, ...): `"vnni"`
    /// (AVX-512 VNNI `vpdpbusd`) for [`Isa::Avx512`] on a CPU with AVX-512 VNNI and BW, else
    /// on x86 `"avx-vnni"` (ymm `vpdpbusd`, VEX-encoded) where the CPU has AVX-VNNI, else
    /// `"avx2"` (the exact `vpmaddubsw` split); the ISA's name elsewhere.
    pub fn int8_path(self) -> &'static str {
        match self.isa {
            Isa::Avx512 if !cfg!(all(miri, not(ghost_miri_simd))) && x86_vnni() => "vnni",
            Isa::Avx512 | Isa::Avx2 if self.avx_vnni() => "avx-vnni",
            Isa::Avx512 => "avx2",
            isa => isa.name(),
        }
    }

    /// These kernels with the int8 AVX2 path's `vpmaddubsw` split even on a CPU with AVX-VNNI
    /// (the same bytes; for tests and benchmarks of that path). Other kernels are unchanged.
    #[doc(hidden)]
    pub fn without_avx_vnni(self) -> Kernels {
        Kernels {
            no_avx_vnni: true,
            ..self
        }
    }

    /// Whether the int8 kernels' AVX2 path uses AVX-VNNI (never under Miri, which implements
    /// no `vpdpbusd`).
    pub(crate) fn avx_vnni(self) -> bool {
        !self.no_avx_vnni
            && !cfg!(miri)
            && matches!(self.isa, Isa::Avx512 | Isa::Avx2)
            && x86_avx_vnni()
    }
}

/// [`dispatch`] for the int8 kernels (tokens implementing `QSimd`): `Isa::Avx512` runs the
/// VNNI token when the CPU has AVX-512 VNNI (else the AVX2 body, exact on any AVX-512 CPU).
/// NEON and SIMD128 use the scalar body's constants.
macro_rules! qdispatch {
    ($k:expr, $body:ident, $args:expr, $ty:ty;
     vnni [$($c5:tt),*]; avx2 [$($c2:tt),*]; scalar [$($cs:tt),*]) => {{
        let args: &$ty = $args;
        match $k.isa() {
            #[cfg(all(target_arch = "x86_64", any(not(miri), ghost_miri_simd)))]
            $crate::isa::Isa::Avx512 if $crate::isa::x86_vnni() => {
                #[target_feature(enable = "avx,avx2,fma,avx512f,avx512vl,avx512bw,avx512vnni")]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the token is only used inside this context; args are validated
                    // by the caller (forwarded obligation of this fn).
                    unsafe { $body::<$crate::arch::x86_64::Vnni, $($c5),*>($crate::arch::x86_64::Vnni::new_unchecked(), a) }
                }
                // SAFETY: `x86_vnni()` just confirmed the features.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            $crate::isa::Isa::Avx512 | $crate::isa::Isa::Avx2 if $k.avx_vnni() => {
                #[target_feature(enable = "avx,avx2,fma,avxvnni")]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: as above, for avx2+fma+avxvnni. The AVX2 tiles: without
                    // AVX-512 there are 16 ymm registers.
                    unsafe { $body::<$crate::arch::x86_64::AvxVnni, $($c2),*>($crate::arch::x86_64::AvxVnni::new_unchecked(), a) }
                }
                // SAFETY: `avx_vnni()` just confirmed the features.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "x86_64", any(not(miri), ghost_miri_simd)))]
            $crate::isa::Isa::Avx512 | $crate::isa::Isa::Avx2 => {
                #[target_feature(enable = "avx,avx2,fma")]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: as above, for avx2+fma.
                    unsafe { $body::<$crate::arch::x86_64::Avx2, $($c2),*>($crate::arch::x86_64::Avx2::new_unchecked(), a) }
                }
                // SAFETY: `Kernels` with `Isa::Avx2` or `Isa::Avx512` exists only if the CPU
                // supports AVX2 and FMA.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
            $crate::isa::Isa::Neon => {
                // SAFETY: NEON is baseline on this target; args validated by the caller.
                unsafe { $body::<$crate::arch::aarch64::Neon, $($cs),*>($crate::arch::aarch64::Neon::new_unchecked(), args) }
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(miri)))]
            $crate::isa::Isa::Simd128 => {
                // Never inlined, as in `dispatch`.
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the whole module is built with simd128; args validated by the
                    // caller (forwarded obligation of this fn).
                    unsafe { $body::<$crate::arch::wasm32::Simd128, $($cs),*>($crate::arch::wasm32::Simd128::new_unchecked(), a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
            _ => {
                // A function of its own, never inlined: unoptimized builds keep every inlined
                // instance's locals in one frame (ghost-runtime/build.rs), and optimized ones
                // took minutes on one giant dispatcher (wasm32, thumbv7em).
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the scalar token needs no CPU feature; args validated by the caller.
                    unsafe { $body::<$crate::arch::generic::Scalar, $($cs),*>($crate::arch::generic::Scalar, a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
        }
    }};
}
pub(crate) use qdispatch;

/// Calls `$body::<Token, consts...>(token, args)` for the ISA of `$k: Kernels`, each
/// instantiation inside its own `#[target_feature]` wrapper so the whole loop nest is compiled
/// for that ISA.
///
/// `$body` must be an `unsafe fn(S, &Args)` that is sound to call when `args` was validated by
/// the safe wrapper (the caller's obligation) and the token is genuine (ours, via `Kernels`).
///
/// Without a `wasm [...]` list, SIMD128 uses the scalar path's constants.
macro_rules! dispatch {
    ($k:expr, $body:ident, $args:expr, $ty:ty;
     avx512 [$($c5:tt),*]; avx2 [$($c2:tt),*]; neon [$($cn:tt),*]; scalar [$($cs:tt),*]) => {
        $crate::isa::dispatch!($k, $body, $args, $ty;
            avx512 [$($c5),*]; avx2 [$($c2),*]; neon [$($cn),*]; scalar [$($cs),*]; wasm [$($cs),*])
    };
    ($k:expr, $body:ident, $args:expr, $ty:ty;
     avx512 [$($c5:tt),*]; avx2 [$($c2:tt),*]; neon [$($cn:tt),*]; scalar [$($cs:tt),*];
     wasm [$($cw:tt),*]) => {{
        let args: &$ty = $args;
        match $k.isa() {
            #[cfg(all(target_arch = "x86_64", any(not(miri), ghost_miri_simd)))]
            $crate::isa::Isa::Avx512 => {
                #[target_feature(enable = "avx,avx2,fma,avx512f,avx512vl")]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the token is only used inside this avx512 context; args are
                    // validated by the caller (forwarded obligation of this fn).
                    unsafe { $body::<$crate::arch::x86_64::Avx512, $($c5),*>($crate::arch::x86_64::Avx512::new_unchecked(), a) }
                }
                // SAFETY: `Kernels` with `Isa::Avx512` exists only if the CPU supports it.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "x86_64", any(not(miri), ghost_miri_simd)))]
            $crate::isa::Isa::Avx2 => {
                #[target_feature(enable = "avx,avx2,fma")]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: as above, for avx2+fma.
                    unsafe { $body::<$crate::arch::x86_64::Avx2, $($c2),*>($crate::arch::x86_64::Avx2::new_unchecked(), a) }
                }
                // SAFETY: `Kernels` with `Isa::Avx2` exists only if the CPU supports it.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
            $crate::isa::Isa::Neon => {
                // A function of its own, never inlined: unoptimized builds keep every inlined
                // instance's locals in one frame (ghost-runtime/build.rs), and optimized ones
                // took minutes on one giant dispatcher (wasm32, thumbv7em).
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: NEON is baseline on this target; args validated by the caller.
                    unsafe { $body::<$crate::arch::aarch64::Neon, $($cn),*>($crate::arch::aarch64::Neon::new_unchecked(), a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(miri)))]
            $crate::isa::Isa::Simd128 => {
                // Never inlined: with every instantiation in the caller, LLVM's wasm build of
                // ghost-runtime took minutes (one dispatcher grew to 116k IR lines).
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the whole module is built with simd128; args validated by the
                    // caller (forwarded obligation of this fn).
                    unsafe { $body::<$crate::arch::wasm32::Simd128, $($cw),*>($crate::arch::wasm32::Simd128::new_unchecked(), a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
            #[cfg(not(all(ghost_runtime_simd_only, target_arch = "wasm32", target_feature = "simd128", not(miri))))]
            _ => {
                // A function of its own, never inlined: unoptimized builds keep every inlined
                // instance's locals in one frame (ghost-runtime/build.rs), and optimized ones
                // took minutes on one giant dispatcher (wasm32, thumbv7em).
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: the scalar token needs no CPU feature; args validated by the caller.
                    unsafe { $body::<$crate::arch::generic::Scalar, $($cs),*>($crate::arch::generic::Scalar, a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
            // `--cfg ghost_runtime_simd_only`: no scalar instantiation; every `Kernels` is SIMD128.
            #[cfg(all(ghost_runtime_simd_only, target_arch = "wasm32", target_feature = "simd128", not(miri)))]
            _ => {
                #[inline(never)]
                unsafe fn wrapper(a: &$ty) {
                    // SAFETY: in this build only `Isa::Simd128` is supported, so `Kernels` holds
                    // it; the module is built with simd128; args validated by the caller.
                    unsafe { $body::<$crate::arch::wasm32::Simd128, $($cw),*>($crate::arch::wasm32::Simd128::new_unchecked(), a) }
                }
                // SAFETY: forwarded.
                unsafe { wrapper(args) }
            }
        }
    }};
}
pub(crate) use dispatch;
