//! Trains a model without the CLI (which has more options and progress
//! output): `cargo run --release -p loket-intent --example train -- OUT C BUCKET_BITS TRAIN.csv[,MORE.csv] [VAL.csv[,MORE.csv]]`.

use loket_intent::{FeatureConfig, TrainConfig, train};

fn read(list: &str) -> Result<Vec<train::Example>, Box<dyn std::error::Error>> {
    let mut all = Vec::new();
    for path in list.split(',') {
        all.extend(train::read_csv(path)?);
    }
    Ok(all)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: train OUT C BUCKET_BITS TRAIN.csv[,..] [VAL.csv[,..]]".into());
    }
    let config = TrainConfig {
        c: args[1].parse()?,
        features: FeatureConfig { bucket_bits: args[2].parse()?, ..FeatureConfig::default() },
        ..TrainConfig::default()
    };
    let data = read(&args[3])?;
    let val = args.get(4).map(|v| read(v)).transpose()?;
    let start = std::time::Instant::now();
    let model = train::train(&data, val.as_deref(), &config, &|p| eprintln!("{p:?}"))?;
    std::fs::write(&args[0], model.to_bytes()?)?;
    eprintln!("trained in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
