//! tract peer for bench/compare.py.
//! Usage: tract-bench MODEL.onnx IN.f32 OUT.f32 N0,N1,N2,N3 [--bench RUNS] [--warmup W]
//! IN.f32 / OUT.f32 are raw little-endian f32 (no header). Prints
//! `median X ms p10 Y ms` when --bench is given; always writes the output of one run.
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: tract-bench MODEL.onnx IN.f32 OUT.f32 N,C,H,W [--bench RUNS] [--warmup W]");
        std::process::exit(2);
    }
    let shape: Vec<usize> = args[4].split(',').map(|s| s.parse().unwrap()).collect();
    let mut runs = 0usize;
    let mut warmup = 10usize;
    let mut i = 5;
    while i < args.len() {
        match args[i].as_str() {
            "--bench" => { runs = args[i + 1].parse().unwrap(); i += 2; }
            "--warmup" => { warmup = args[i + 1].parse().unwrap(); i += 2; }
            a => panic!("unknown arg {a}"),
        }
    }
    let bytes = std::fs::read(&args[2])?;
    let data: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let input: Tensor = tract_ndarray::ArrayD::from_shape_vec(shape.clone(), data)?.into();
    let model = tract_onnx::onnx()
        .model_for_path(&args[1])?
        .with_input_fact(0, f32::fact(&shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let out = model.run(tvec!(input.clone().into()))?;
    let y = out[0].to_plain_array_view::<f32>()?;
    let mut ob = Vec::with_capacity(y.len() * 4);
    for v in y.iter() { ob.extend_from_slice(&v.to_le_bytes()); }
    std::fs::write(&args[3], ob)?;
    if runs > 0 {
        for _ in 0..warmup { model.run(tvec!(input.clone().into()))?; }
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let inp = tvec!(input.clone().into());
            let s = Instant::now();
            let o = model.run(inp)?;
            t.push(s.elapsed().as_secs_f64() * 1e3);
            drop(o);
        }
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("median {:.3} ms p10 {:.3} ms runs {}", t[t.len() / 2], t[t.len() / 10], runs);
    }
    Ok(())
}
