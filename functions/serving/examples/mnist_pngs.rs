//! Writes the 10 real MNIST test digits of `mnist10.bin` (raw 28x28 bytes each) as PNG files, for
//! trying image uploads: `cargo run -p litehouse-serving --example mnist_pngs -- BIN OUT_DIR`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bin), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: mnist_pngs MNIST10_BIN OUT_DIR".into());
    };
    let raw = std::fs::read(&bin)?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    for (digit, pixels) in raw.chunks_exact(784).enumerate() {
        let img = image::GrayImage::from_raw(28, 28, pixels.to_vec()).ok_or("bad digit size")?;
        let path = out.join(format!("digit-{digit}.png"));
        img.save(&path)?;
        println!("{}", path.display());
    }
    Ok(())
}
