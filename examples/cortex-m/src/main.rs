//! The digits GhostNet on a Cortex-M4F: `no_std`, no allocator, run under
//! `qemu-system-arm -M mps2-an386` (see README.md).
//!
//! `build.rs` compiles `examples/digits/data/digits.onnx` with `ghostc::Builder` (batch 1, a
//! flash/RAM budget) and writes the first test images with PyTorch's predictions for them. This
//! program runs the model on each image, prints the prediction next to PyTorch's and the label,
//! then the accuracy, the agreement with PyTorch, the arena size and the stack high-water mark,
//! and exits through semihosting with status 0 only if every prediction equals PyTorch's.
//!
//! Memory: the weights are the generated `static` (in `.rodata`, i.e. flash, read in place by
//! the kernels); the arena is a static buffer of `Model::SCRATCH_LEN` floats in `.bss`; test
//! images stay in flash and are decoded one at a time into a static input buffer. The stack is
//! painted by cortex-m-rt's reset handler (`paint-stack`) and scanned at the end.
//!
//! Kernels: the target has no SIMD unit ghost-runtime uses, so every layer runs ghost-runtime's
//! portable scalar path (8-lane blocks as `[f32; 8]`), compiled to single-precision FPU code
//! (`thumbv7em-none-eabihf`: FPv4-SP, hard-float ABI). No DSP-extension kernels.
//!
//! Deliberately not done here: timing. QEMU does not model the M4's pipeline or memory wait
//! states, so its instruction counts are not a latency.
#![no_std]
#![no_main]

use core::fmt::Write;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

include!(concat!(env!("OUT_DIR"), "/model.rs"));

const IMAGE_BYTES: usize = Model::INPUT_LEN * 4;
const IMAGES_LEN: usize = include_bytes!(concat!(env!("OUT_DIR"), "/images.bin")).len();
/// Test images, 1x32x32 little-endian f32 each, in flash.
static IMAGES: [u8; IMAGES_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/images.bin"));
/// Labels of [`IMAGES`].
static LABELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));
/// PyTorch's predicted class for each of [`IMAGES`] (argmax of its logits, computed at build
/// time from `torch_logits.npy`).
static TORCH_PRED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/torch_pred.bin"));

#[repr(C, align(64))]
struct Arena([f32; Model::SCRATCH_LEN]);

#[entry]
fn main() -> ! {
    // cortex-m-rt turns these into `&'static mut` references: `main` runs once.
    static mut ARENA: Arena = Arena([0.0; Model::SCRATCH_LEN]);
    static mut INPUT: [f32; Model::INPUT_LEN] = [0.0; Model::INPUT_LEN];

    let mut out = match hio::hstdout() {
        Ok(o) => o,
        Err(()) => exit(false),
    };
    let ok = run(&mut out, &mut ARENA.0, INPUT).unwrap_or(false);
    exit(ok)
}

/// Runs every test image and prints the report; `Ok(true)` when all predictions equal
/// PyTorch's.
fn run(
    out: &mut impl Write,
    arena: &mut [f32],
    input: &mut [f32],
) -> Result<bool, core::fmt::Error> {
    let model = Model::new();
    let n = IMAGES_LEN / IMAGE_BYTES;
    let (mut correct, mut torch_correct, mut agree) = (0, 0, 0);
    writeln!(
        out,
        "digits GhostNet on Cortex-M4F: {} weight bytes in flash, arena {} floats ({} bytes), kernels {}",
        Model::WEIGHT_BYTES,
        Model::SCRATCH_LEN,
        Model::SCRATCH_LEN * 4,
        ghost_runtime::Kernels::new().isa().name()
    )?;
    for i in 0..n {
        let image = &IMAGES[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES];
        for (x, b) in input.iter_mut().zip(image.chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut logits = [0.0f32; Model::OUTPUT_LEN];
        if let Err(e) = model.run(input, &mut logits, arena) {
            writeln!(out, "image {i}: error: {e}")?;
            return Ok(false);
        }
        let pred = argmax(&logits);
        let (label, torch) = (usize::from(LABELS[i]), usize::from(TORCH_PRED[i]));
        correct += usize::from(pred == label);
        torch_correct += usize::from(torch == label);
        agree += usize::from(pred == torch);
        writeln!(
            out,
            "image {i:3}: predicted {pred} pytorch {torch} label {label}"
        )?;
    }
    writeln!(out, "accuracy {correct}/{n} (PyTorch {torch_correct}/{n})")?;
    writeln!(out, "agreement with PyTorch {agree}/{n}")?;
    writeln!(out, "stack high-water mark {} bytes", stack_high_water())?;
    Ok(agree == n)
}

/// Index of the largest logit (the first on ties, like numpy's argmax).
fn argmax(xs: &[f32]) -> usize {
    (0..xs.len()).fold(0, |b, i| if xs[i] > xs[b] { i } else { b })
}

extern "C" {
    /// Lowest stack address (end of `.bss`/`.uninit`), from cortex-m-rt's link.x.
    static _stack_end: u32;
    /// Initial stack pointer (top of RAM).
    static _stack_start: u32;
}

/// Bytes of stack ever touched: the reset handler painted `[_stack_end, _stack_start)` with
/// `STACK_PAINT_VALUE`; the lowest word that no longer holds it marks the deepest use.
fn stack_high_water() -> usize {
    let lo = core::ptr::addr_of!(_stack_end) as usize;
    let hi = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = lo;
    // SAFETY: [lo, hi) is this program's stack region (RAM, word aligned per link.x's asserts);
    // the words below the live stack pointer are not in use, and reading them is harmless.
    while p < hi
        && unsafe { core::ptr::read_volatile(p as *const u32) } == cortex_m_rt::STACK_PAINT_VALUE
    {
        p += 4;
    }
    hi - p
}

fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached when no debugger/QEMU honours the semihosting exit.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = writeln!(out, "panic: {info}");
    }
    exit(false)
}
