//! A test guest that reaches for files: it imports `wasi:filesystem`,
//! which the host must refuse unless the `filesystem` capability is granted.

use weir_plugin_sdk::{Config, Event, Outcome, Transformer};

pub struct FsReader;

impl Transformer for FsReader {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(FsReader)
    }

    fn transform(&mut self, _event: &mut Event<'_>) -> Outcome {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(_) => Outcome::Fail("read a host file".into()),
            Err(_) => Outcome::Keep,
        }
    }
}

weir_plugin_sdk::export_transformer!(FsReader);
