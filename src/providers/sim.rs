//! `sim`: the built-in simulator, so the gateway can be tried, demonstrated and
//! load-tested with no network and no keys.
//!
//! It behaves like an upstream in the ways routing cares about: a time to first token,
//! a token rate, failures at a configured rate and of a configured kind (5xx, 429 with
//! `retry-after`, a reset connection, a stall), and usage figures that agree with what
//! it streamed. Its answers say plainly that they are simulated.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use rand::{Rng, SeedableRng};

use super::*;
use crate::canonical::*;
use crate::config::{SimFailure, SimSettings};

pub struct Sim {
    name: String,
    settings: SimSettings,
    /// Seeded dice when the config asks for reproducible failures.
    dice: Option<Mutex<rand::rngs::StdRng>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("name", &self.name).field("settings", &self.settings).finish()
    }
}

impl Sim {
    pub fn new(name: String, settings: SimSettings) -> Self {
        let dice = settings.seed.map(|seed| Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)));
        Sim { name, settings, dice }
    }

    fn roll(&self) -> f64 {
        match &self.dice {
            Some(dice) => match dice.lock() {
                Ok(mut rng) => rng.random::<f64>(),
                Err(poisoned) => poisoned.into_inner().random::<f64>(),
            },
            None => rand::rng().random::<f64>(),
        }
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        // One answer per request, like most vendors' APIs: refusing `n > 1` as they do
        // lets the route fail over to a target that can, instead of silently answering
        // one choice where the client asked for several.
        if attempt.request.n.is_some_and(|n| n > 1) {
            return Err(UpstreamError::new(ErrorKind::Unsupported, format!("{} (simulated) cannot take n > 1 (several alternative answers in one request)", self.name)));
        }
        if self.settings.failure_rate > 0.0 && self.roll() < self.settings.failure_rate {
            return Err(self.fail().await);
        }
        let script = Script::for_request(&self.name, attempt.request, attempt.model, self.settings.output_tokens);
        if !attempt.request.stream {
            let total = self.settings.time_to_first_token + self.token_time(script.output_tokens());
            tokio::time::sleep(total).await;
            return Ok(Answer::Complete(Box::new(Completion { response: script.response(), status: 200, rate_limit: None, passthrough: None })));
        }
        Ok(Answer::Stream(EventStream { passthrough: false, status: 200, rate_limit: None, items: self.stream(script) }))
    }

    async fn fail(&self) -> UpstreamError {
        let label = format!("{} (simulated)", self.name);
        match self.settings.failure_kind {
            SimFailure::ServerError => {
                UpstreamError::new(ErrorKind::ServerError, format!("{label}: simulated internal server error")).with_status(500)
            }
            SimFailure::RateLimited => UpstreamError::new(ErrorKind::RateLimited, format!("{label}: simulated rate limit"))
                .with_status(429)
                .with_retry_after(Some(self.settings.retry_after)),
            SimFailure::ConnectionReset => UpstreamError::new(ErrorKind::Connect, format!("{label}: simulated connection reset")),
            SimFailure::Stall => {
                // A stall answers nothing, ever: only the caller's timeout ends it.
                std::future::pending::<()>().await;
                UpstreamError::new(ErrorKind::Timeout, format!("{label}: simulated stall"))
            }
        }
    }

    fn token_time(&self, tokens: u64) -> Duration {
        Duration::from_secs_f64(tokens as f64 / self.settings.tokens_per_second)
    }

    fn stream(&self, script: Script) -> ItemStream {
        let ttft = self.settings.time_to_first_token;
        // Tokens are released in ticks of at least 5 ms so fast simulated models do not
        // turn into a timer storm.
        let per_token = 1.0 / self.settings.tokens_per_second;
        let per_tick = ((0.005 / per_token).ceil() as usize).max(1);
        let tick = Duration::from_secs_f64(per_token * per_tick as f64);
        let mut batches: Vec<Vec<StreamEvent>> = vec![script.opening()];
        for chunk in script.pieces().chunks(per_tick) {
            batches.push(chunk.to_vec());
        }
        batches.push(script.closing());
        let count = batches.len();
        futures_util::stream::iter(batches.into_iter().enumerate())
            .then(move |(i, events)| async move {
                let wait = match i {
                    0 => ttft,
                    i if i + 1 == count => Duration::ZERO,
                    _ => tick,
                };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(StreamItem { events, raw: None, usage: None })
            })
            .boxed()
    }
}

/// The answer the simulator gives a request: deterministic text, or a tool call when
/// the request offers tools and the last turn is not already a tool result.
struct Script {
    id: String,
    model: String,
    input_tokens: u64,
    words: Vec<String>,
    tool_call: Option<(String, String, serde_json::Value)>,
    stop: StopReason,
}

impl Script {
    fn for_request(provider: &str, request: &ChatRequest, model: &str, output_tokens: u32) -> Script {
        let input_tokens = (request.text_len() as u64).div_ceil(4) + 3 * request.messages.len() as u64;
        let limit = request.max_tokens.unwrap_or(u32::MAX).min(output_tokens) as usize;
        let last_is_tool_result = request.messages.last().is_some_and(|m| m.content.iter().any(|p| matches!(p, ContentPart::ToolResult { .. })));
        let tool = match &request.tool_choice {
            Some(ToolChoice::None) => None,
            Some(ToolChoice::Tool { name }) => request.tools.iter().find(|t| &t.name == name),
            _ if last_is_tool_result => None,
            _ => request.tools.first(),
        };
        let id = format!("sim-{}", uuid::Uuid::now_v7().simple());
        if let Some(tool) = tool {
            let arguments = example_arguments(&tool.parameters);
            return Script {
                id: id.clone(),
                model: model.to_owned(),
                input_tokens,
                words: Vec::new(),
                tool_call: Some((format!("call_{}", &id[4..16]), tool.name.clone(), arguments)),
                stop: StopReason::ToolUse,
            };
        }
        let text = format!(
            "[simulated answer from {provider}/{model}] This text is generated by the Switchyard simulator, \
             not a language model; it streams at a configured rate so routing, failover and the ledger can be \
             seen working without any provider account. The quick brown fox jumps over the lazy dog again and again"
        );
        let mut words: Vec<String> = Vec::new();
        let all: Vec<&str> = text.split(' ').collect();
        let mut i = 0;
        while words.len() < output_tokens as usize {
            let word = all[i % all.len()];
            words.push(if words.is_empty() { word.to_owned() } else { format!(" {word}") });
            i += 1;
        }
        let stop = if words.len() > limit { StopReason::MaxTokens } else { StopReason::EndTurn };
        words.truncate(limit);
        Script { id, model: model.to_owned(), input_tokens, words, tool_call: None, stop }
    }

    fn output_tokens(&self) -> u64 {
        match &self.tool_call {
            Some((_, name, args)) => (name.len() + args.to_string().len()).div_ceil(4) as u64,
            None => self.words.len() as u64,
        }
    }

    fn usage(&self) -> Usage {
        Usage { input_tokens: self.input_tokens, output_tokens: self.output_tokens(), ..Usage::default() }
    }

    fn response(&self) -> ChatResponse {
        let content = match &self.tool_call {
            Some((id, name, input)) => vec![ContentPart::ToolUse { id: id.clone(), name: name.clone(), input: input.clone() }],
            None => vec![ContentPart::text(self.words.concat())],
        };
        ChatResponse {
            id: self.id.clone(),
            model: self.model.clone(),
            content,
            stop_reason: Some(self.stop),
            stop_sequence: None,
            usage: self.usage(),
            created: chrono::Utc::now().timestamp(),
        }
    }

    fn opening(&self) -> Vec<StreamEvent> {
        let usage = Usage { input_tokens: self.input_tokens, ..Usage::default() };
        let block = match &self.tool_call {
            Some((id, name, _)) => BlockStart::ToolUse { id: id.clone(), name: name.clone() },
            None => BlockStart::Text,
        };
        vec![StreamEvent::MessageStart { id: self.id.clone(), model: self.model.clone(), usage }, StreamEvent::BlockStart { index: 0, block }]
    }

    fn pieces(&self) -> Vec<StreamEvent> {
        match &self.tool_call {
            Some((_, _, args)) => {
                let json = args.to_string();
                let chars: Vec<char> = json.chars().collect();
                chars
                    .chunks(8)
                    .map(|c| StreamEvent::BlockDelta { index: 0, delta: BlockDelta::ToolInputJson { partial_json: c.iter().collect() } })
                    .collect()
            }
            None => self.words.iter().map(|w| StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text { text: w.clone() } }).collect(),
        }
    }

    fn closing(&self) -> Vec<StreamEvent> {
        vec![
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::MessageDelta { stop_reason: Some(self.stop), stop_sequence: None, usage: self.usage() },
            StreamEvent::MessageStop,
        ]
    }
}

/// Plausible arguments for a tool: each required property gets a value of its type.
fn example_arguments(schema: &serde_json::Value) -> serde_json::Value {
    let mut args = serde_json::Map::new();
    let properties = schema.get("properties").and_then(|p| p.as_object());
    let required = schema.get("required").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    for name in required.iter().filter_map(|n| n.as_str()) {
        let kind = properties.and_then(|p| p.get(name)).and_then(|p| p.get("type")).and_then(|t| t.as_str()).unwrap_or("string");
        let value = match kind {
            "integer" | "number" => serde_json::json!(1),
            "boolean" => serde_json::json!(true),
            "array" => serde_json::json!([]),
            "object" => serde_json::json!({}),
            _ => serde_json::json!("simulated"),
        };
        args.insert(name.to_owned(), value);
    }
    serde_json::Value::Object(args)
}
