//! The digits GhostNet as a WebAssembly module for `index.html`: `no_std`, no allocator, no
//! bindings generator. `build.rs` compiles the model with `ghostc::Builder`; this file exports a
//! handful of plain functions over static buffers (input, output, arena, message) that
//! `main.js` reads and writes through the module's memory.
//!
//! Errors never trap: `run` returns 1 and leaves the runtime's error (for example
//! `ghost_runtime::Error::ExactLength` for a wrong-length input) as UTF-8 text at `message_ptr`.
//! Built twice by `build.sh`: with `+simd128` (ghost-runtime's SIMD128 kernels) and without
//! (its scalar kernels).
//!
//! Deliberately not done here: preprocessing of the drawn digit (canvas pixels to the 8x8
//! counts of the UCI digits, then the training's resize and normalization) lives in `main.js`
//! next to the canvas it reads.
#![no_std]

use core::fmt::Write;

include!(concat!(env!("OUT_DIR"), "/model.rs"));

const IMAGE_BYTES: usize = Model::INPUT_LEN * 4;
/// Test images (1x32x32 little-endian f32 each); empty for a benchmark build.
static IMAGES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/images.bin"));
static LABELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));
/// PyTorch's predicted class for each test image.
static TORCH_PRED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/torch_pred.bin"));

/// Room for twice the model's input, so that a caller can hand `run` a wrong length.
const INPUT_CAPACITY: usize = 2 * Model::INPUT_LEN;

struct State {
    input: [f32; INPUT_CAPACITY],
    output: [f32; Model::OUTPUT_LEN],
    arena: Arena,
    message: Message,
}

#[repr(C, align(64))]
struct Arena([f32; Model::SCRATCH_LEN]);

/// The last error or description, as UTF-8 (truncated at 512 bytes).
struct Message {
    bytes: [u8; 512],
    len: usize,
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.bytes.len() {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

static mut STATE: State = State {
    input: [0.0; INPUT_CAPACITY],
    output: [0.0; Model::OUTPUT_LEN],
    arena: Arena([0.0; Model::SCRATCH_LEN]),
    message: Message {
        bytes: [0; 512],
        len: 0,
    },
};

/// The module's one state.
fn state() -> &'static mut State {
    // SAFETY: a wasm32-unknown-unknown instance without threads runs one call at a time, and no
    // export holds this reference across a call into JavaScript or into another export, so no
    // two `&mut` to STATE are ever live together.
    unsafe { &mut *core::ptr::addr_of_mut!(STATE) }
}

/// Where JavaScript writes the input (`input_capacity()` floats of room).
#[no_mangle]
pub extern "C" fn input_ptr() -> *mut f32 {
    state().input.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn input_capacity() -> usize {
    INPUT_CAPACITY
}

/// Floats the model expects (`Model::INPUT_LEN`).
#[no_mangle]
pub extern "C" fn input_len() -> usize {
    Model::INPUT_LEN
}

#[no_mangle]
pub extern "C" fn output_ptr() -> *const f32 {
    state().output.as_ptr()
}

#[no_mangle]
pub extern "C" fn output_len() -> usize {
    Model::OUTPUT_LEN
}

#[no_mangle]
pub extern "C" fn message_ptr() -> *const u8 {
    state().message.bytes.as_ptr()
}

#[no_mangle]
pub extern "C" fn message_len() -> usize {
    state().message.len
}

/// Runs the model on the first `len` floats of the input buffer (`len` may be wrong: the
/// runtime then reports `ExactLength`). Returns 0, or 1 with the error text in the message.
#[no_mangle]
pub extern "C" fn run(len: usize) -> i32 {
    let st = state();
    st.message.len = 0;
    let result = if len > INPUT_CAPACITY {
        Err(ghost_runtime::Error::ExactLength {
            arg: "input",
            expected: Model::INPUT_LEN,
            actual: len,
        })
    } else {
        Model::new().run(&st.input[..len], &mut st.output, &mut st.arena.0)
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = write!(st.message, "{e}");
            1
        }
    }
}

/// Writes a one-line description (kernels, sizes) into the message; returns its length.
#[no_mangle]
pub extern "C" fn describe() -> usize {
    let st = state();
    st.message.len = 0;
    let _ = write!(
        st.message,
        "kernels {}, {} weight bytes, arena {} floats, {} MACs per image",
        ghost_runtime::Kernels::new().isa().name(),
        Model::WEIGHT_BYTES,
        Model::SCRATCH_LEN,
        Model::MACS
    );
    st.message.len
}

/// Images in the embedded test set.
#[no_mangle]
pub extern "C" fn test_count() -> usize {
    LABELS
        .len()
        .min(TORCH_PRED.len())
        .min(IMAGES.len() / IMAGE_BYTES)
}

/// Copies test image `i` into the input buffer; returns 0, or 1 when `i` is out of range.
#[no_mangle]
pub extern "C" fn load_test_image(i: usize) -> i32 {
    if i >= test_count() {
        return 1;
    }
    let image = &IMAGES[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES];
    for (x, b) in state().input.iter_mut().zip(image.chunks_exact(4)) {
        *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    0
}

/// Label of test image `i` (255 when out of range).
#[no_mangle]
pub extern "C" fn test_label(i: usize) -> u32 {
    LABELS.get(i).map_or(255, |&l| u32::from(l))
}

/// PyTorch's prediction for test image `i` (255 when out of range).
#[no_mangle]
pub extern "C" fn test_torch_pred(i: usize) -> u32 {
    TORCH_PRED.get(i).map_or(255, |&l| u32::from(l))
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Unreachable in practice: every export validates its arguments and the runtime returns
    // errors instead of panicking.
    core::arch::wasm32::unreachable()
}
