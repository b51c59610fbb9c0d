//! A hostile test guest. Each event's `action` column (after image) says
//! how to misbehave: `loop` spins forever, `bomb` allocates without end,
//! `panic` panics, `fail` reports a failure, `bad-patch` patches a column
//! that does not exist; anything else passes the event on. With config
//! `{"refuse": true}` it refuses to start.

use weir_plugin_sdk::{Config, Event, Image, Outcome, Transformer, Value};

pub struct Misbehave;

impl Transformer for Misbehave {
    fn new(config: Config) -> Result<Self, String> {
        if config.value().get("refuse").and_then(|v| v.as_bool()) == Some(true) {
            return Err("refusing to start: `refuse` is set".into());
        }
        Ok(Misbehave)
    }

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
        match event.after_text("action") {
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("bomb") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("panic") => panic!("poison event in table {}", event.table()),
            Some("fail") => Outcome::Fail("this event asked to fail".into()),
            Some("bad-patch") => {
                event.set(Image::After, 999, Value::Null);
                Outcome::Keep
            }
            _ => Outcome::Keep,
        }
    }
}

weir_plugin_sdk::export_transformer!(Misbehave);
