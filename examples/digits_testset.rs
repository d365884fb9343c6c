// Build-script helper shared by `cortex-m/build.rs` and `web/build.rs` (pulled in with
// `include!`): writes the first `images` held-out digits test images into `out` as raw
// little-endian bytes for the crate to `include_bytes!`: `images.bin` (1x32x32 f32 each),
// `labels.bin` (u8) and `torch_pred.bin` (u8: the argmax of PyTorch's logits for each image,
// the golden the compiled model must match).

/// Writes the test set files; `data` is `examples/digits/data`.
fn write_digits_testset(
    data: &std::path::Path,
    out: &std::path::Path,
    images: usize,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let x = ghostc::npy::read_f32(&data.join("test_images.npy")).map_err(|x| e(&x))?;
    let labels = ghostc::npy::read_i64(&data.join("test_labels.npy")).map_err(|x| e(&x))?;
    let logits = ghostc::npy::read_f32(&data.join("torch_logits.npy")).map_err(|x| e(&x))?;
    let per_image = 32 * 32;
    if x.shape[1..].iter().product::<usize>() != per_image
        || x.shape[0] < images
        || labels.data.len() < images
        || logits.shape[1..] != [10]
    {
        return Err(format!(
            "test set shapes {:?} {:?} {:?} do not fit 1x32x32 -> 10 with {images} images",
            x.shape, labels.shape, logits.shape
        ));
    }
    let bytes: Vec<u8> = x.data[..images * per_image]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let labels: Vec<u8> = labels.data[..images].iter().map(|&l| l as u8).collect();
    let torch: Vec<u8> = logits.data[..images * 10]
        .chunks_exact(10)
        .map(|l| (0..10).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u8)
        .collect();
    for (name, b) in [
        ("images.bin", &bytes),
        ("labels.bin", &labels),
        ("torch_pred.bin", &torch),
    ] {
        std::fs::write(out.join(name), b).map_err(|x| format!("{name}: {x}"))?;
    }
    for f in ["test_images.npy", "test_labels.npy", "torch_logits.npy"] {
        println!("cargo:rerun-if-changed={}", data.join(f).display());
    }
    Ok(())
}
