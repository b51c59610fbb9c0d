//! A test guest that reaches for the network: it imports `wasi:sockets`,
//! which the host must refuse unless the `network` capability is granted.

use weir_plugin_sdk::{Config, Event, Outcome, Transformer};

pub struct NetClient;

impl Transformer for NetClient {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(NetClient)
    }

    fn transform(&mut self, _event: &mut Event<'_>) -> Outcome {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Outcome::Keep,
            Err(e) => Outcome::Fail(format!("connect failed: {e}")),
        }
    }
}

weir_plugin_sdk::export_transformer!(NetClient);
