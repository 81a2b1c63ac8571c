//! The reference for `bench/kafka.sh`: a bare librdkafka producer (the same
//! bundled library and settings sluice uses: acks=all, idempotent) sending
//! the lines of a JSON-lines file to a topic, keyed as sluice keys them,
//! then waiting for every acknowledgement. Prints rows/s.
//!
//! cargo run --release --features kafka --example kafka_baseline -- BOOTSTRAP TOPIC FILE

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, topic, file] = args.as_slice() else {
        return Err("usage: kafka_baseline BOOTSTRAP TOPIC FILE".into());
    };
    // Loaded first: the clock measures producing only.
    let text = std::fs::read_to_string(file)?;
    let lines: Vec<&str> = text.lines().collect();
    let keys: Vec<String> = lines
        .iter()
        .map(|l| {
            let id = l
                .split("\"id\":")
                .nth(1)
                .and_then(|r| r.split([',', '}']).next())
                .unwrap_or("0");
            format!("{{\"database\":\"bench\",\"table\":\"t\",\"pk.id\":{id}}}")
        })
        .collect();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()?;
    let start = Instant::now();
    for (line, key) in lines.iter().zip(&keys) {
        let mut record = BaseRecord::to(topic)
            .payload(*line)
            .key(key.as_str())
            .partition(0);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(1));
                    record = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300))?;
    let secs = start.elapsed().as_secs_f64();
    println!("{} {:.3}", lines.len(), secs);
    Ok(())
}
