//! Shared test support: a scripted mock upstream, OpenAI wire fixtures and a
//! builder for an in-process gateway. Each integration test file includes it with
//! `mod support;` and uses what it needs, so unused items are expected here.
#![allow(dead_code, unused_imports)]
// Test support may fail loudly: a panic here is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod dialect_mocks;
pub mod gateway;
pub mod mock_upstream;
pub mod openai_wire;

pub use gateway::{client, mock_config, TestGateway};
pub use mock_upstream::{MockUpstream, RecordedRequest, Reply, StreamEnd};

/// JSON helpers for reqwest: the crate's reqwest is built without its `json`
/// feature, so tests serialize and parse bodies themselves.
pub trait JsonBody {
    /// Sets a JSON body and `content-type: application/json`.
    fn json_body(self, body: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("serialize JSON body"))
    }
}

/// Reads a response body as JSON; panics with the body text if it is not JSON.
pub async fn read_json(response: reqwest::Response) -> serde_json::Value {
    let status = response.status();
    let bytes = response.bytes().await.expect("read response body");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "response ({status}) is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}
