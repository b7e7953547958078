//! The CPU cost of reading a passed-through OpenAI answer, for counting instructions
//! under callgrind: the gateway's reading (its scanner, serde when the scanner is unsure)
//! against serde's reading alone, over the answer `bench_upstream` serves.
//!
//! ```text
//! cargo build --release --example summary_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/summary-fast.out \
//!     target/release/examples/summary_cost fast [iterations]
//! ```
//!
//! `fast` or `serde`; iterations default to 100,000. Run with 0 iterations to measure
//! the program's fixed cost, and subtract it.

use std::hint::black_box;
use std::process::ExitCode;

use switchyard::dialects::openai_chat::{decode_passthrough_response, decode_passthrough_response_serde_only};

/// The answer `examples/bench_upstream.rs` serves.
const COMPLETION: &str = include_str!("bench_answer.json");

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let decode: fn(&[u8]) -> Result<_, String> = match args.next().as_deref() {
        Some("fast") => decode_passthrough_response,
        Some("serde") => decode_passthrough_response_serde_only,
        _ => {
            eprintln!("usage: summary_cost fast|serde [iterations]");
            return ExitCode::from(2);
        }
    };
    let iterations: u64 = match args.next().map(|n| n.parse()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("summary_cost: iterations: {e}");
            return ExitCode::from(2);
        }
    };
    for _ in 0..iterations {
        if let Err(e) = black_box(decode(black_box(COMPLETION.as_bytes()))) {
            eprintln!("summary_cost: the answer was refused: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
