//! Helpers around the fuzz targets (stable Rust is enough):
//!
//! * `fuzz_tool seeds DIR N`: writes N small valid models from the generator into DIR (seeds
//!   for `decode_import`).
//! * `fuzz_tool structured INPUT OUT.onnx` / `fuzz_tool codegen INPUT OUT.onnx`: turns a
//!   `structured` / `codegen` fuzzer input (e.g. a crash artifact) into the .onnx bytes it
//!   stands for, for a regression test; prints the fusion switches and the pipeline result.
//! * `fuzz_tool run FILE.onnx`: runs the fuzz pipeline on a model.

use arbitrary::{Arbitrary, Unstructured};
use ghostc::passes::FuseOptions;
use ghostc_fuzz::gen::{self, CodegenInput, ModelDesc};
use ghostc_fuzz::structured::{self, fuse_options, StructuredInput};
use ghostc_testkit::Rng;
use prost::Message;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["seeds", dir, n] => {
            let n: usize = n.parse().expect("N");
            std::fs::create_dir_all(dir).unwrap();
            let mut rng = Rng::new(0x1234_5678_9abc_def0);
            let mut written = 0;
            let mut attempt = 0;
            while written < n && attempt < 100 * n {
                attempt += 1;
                let bytes = rng.bytes(512);
                let Ok(desc) = ModelDesc::arbitrary(&mut Unstructured::new(&bytes)) else {
                    continue;
                };
                let model = gen::build(&desc).encode_to_vec();
                let reached = ghostc_fuzz::run(&model, FuseOptions::all(), true);
                if reached == ghostc_fuzz::Reached::Emitted {
                    std::fs::write(format!("{dir}/gen{written:03}.onnx"), &model).unwrap();
                    written += 1;
                }
            }
            println!("wrote {written} models in {attempt} attempts");
        }
        ["structured", input, out] => {
            let data = std::fs::read(input).unwrap();
            let s = StructuredInput::arbitrary_take_rest(Unstructured::new(&data)).unwrap();
            let (bytes, fuse) = structured::build(&s);
            std::fs::write(out, &bytes).unwrap();
            println!("fuse: {fuse:?}");
            println!("{:?}", ghostc_fuzz::run(&bytes, fuse, true));
        }
        ["codegen", input, out] => {
            let data = std::fs::read(input).unwrap();
            let c = CodegenInput::arbitrary_take_rest(Unstructured::new(&data)).unwrap();
            let bytes = gen::build(&c.model).encode_to_vec();
            std::fs::write(out, &bytes).unwrap();
            println!("fuse: {:?}", fuse_options(c.fuse));
            println!("{:?}", ghostc_fuzz::run(&bytes, fuse_options(c.fuse), true));
        }
        ["run", file] => {
            let bytes = std::fs::read(file).unwrap();
            println!("{:?}", ghostc_fuzz::run(&bytes, FuseOptions::all(), true));
        }
        _ => eprintln!(
            "usage: fuzz_tool seeds DIR N | structured IN OUT | codegen IN OUT | run FILE"
        ),
    }
}
