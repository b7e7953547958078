//! The scenarios of the matrix: what each one asks, in both client dialects, and the
//! answer every upstream gives for it, in dialect-neutral terms. The upstream fixtures
//! (`upstreams.rs`) render the answer in each provider's wire format; the client
//! observers (`clients.rs`) read it back from each front door's.

use serde_json::{json, Value};

/// A front door: the dialect the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

/// An upstream dialect, one provider kind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Up {
    /// `kind = "openai"`: openai-chat.
    OpenAi,
    /// `kind = "anthropic"`: anthropic-messages.
    Anthropic,
    /// `kind = "bedrock"`: bedrock-converse.
    Bedrock,
    /// `kind = "gemini"`: gemini.
    Gemini,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A system prompt and one user turn; a plain text answer.
    TextSystem,
    /// user / assistant / user; the answer depends on the history.
    MultiTurn,
    /// A user turn with text and an inline base64 PNG.
    Image,
    /// One tool, the tool choice forcing it by name; the answer is one call.
    ToolChoice,
    /// One tool, the tool choice forcing some call (OpenAI `required`, Anthropic `any`).
    ToolChoiceAny,
    /// One tool, the tool choice forbidding calls; the answer is text.
    ToolChoiceNone,
    /// One tool; the answer is a sentence and two calls of it.
    ParallelTools,
    /// A call and its result in the history; the answer uses the result.
    ToolResult,
    /// A JSON schema for the output; the answer is JSON text.
    JsonOutput,
    /// `max_tokens: 5`; the answer stops at the limit.
    MaxTokens,
    /// A stop sequence; the answer ends on it (a stop reason only Anthropic and
    /// Converse can tell from a natural end).
    StopSequence,
    /// A plain question; the upstream reports cache reads, cache writes and
    /// reasoning tokens, each where its dialect can.
    UsageDetails,
}

/// Why the answer ended, in dialect-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // `StopSequence` is the dialects' own name for it
pub enum Stop {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
}

/// Token usage in the gateway's canonical terms: `input` excludes cached tokens,
/// `reasoning` is part of `output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Usage {
    pub const fn plain(input: u64, output: u64) -> Usage {
        Usage { input, output, cache_read: 0, cache_write: 0, reasoning: 0 }
    }
}

/// One tool call of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: &'static str,
    pub args: Value,
}

/// What the model answers, whatever the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: &'static str,
    pub calls: Vec<Call>,
    pub stop: Stop,
}

pub const SYSTEM: &str = "You are terse.";
pub const TOOL: &str = "get_weather";
pub const TOOL_DESCRIPTION: &str = "Current weather in a city.";
/// The id of the tool call in the `ToolResult` history, for both client dialects.
pub const HISTORY_CALL_ID: &str = "toolu_01HistoryParis";
pub const TOOL_RESULT: &str = "18C and sunny";
pub const STOP_SEQUENCE: &str = "END";
/// A 1×1 red PNG.
pub const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

pub fn tool_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false})
}

pub fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
        "required": ["city", "temp_c"],
        "additionalProperties": false,
    })
}

fn weather(city: &str) -> Call {
    Call { name: TOOL, args: json!({"city": city}) }
}

impl Scenario {
    /// `up`'s answer. Only the stop reason of `StopSequence` depends on the upstream:
    /// OpenAI and Gemini end on a stop sequence as on a natural end.
    pub fn answer(self, up: Up) -> Answer {
        let text = |text| Answer { text, calls: Vec::new(), stop: Stop::EndTurn };
        match self {
            Scenario::TextSystem => text("Hello there!"),
            Scenario::MultiTurn => text("Your name is Ada."),
            Scenario::Image => text("A single red pixel."),
            Scenario::ToolChoice | Scenario::ToolChoiceAny => Answer { text: "", calls: vec![weather("Paris")], stop: Stop::ToolUse },
            Scenario::ToolChoiceNone => text("I would need to look that up."),
            Scenario::ParallelTools => {
                Answer { text: "Checking both cities.", calls: vec![weather("Paris"), weather("Tokyo")], stop: Stop::ToolUse }
            }
            Scenario::ToolResult => text("It is 18C and sunny in Paris."),
            Scenario::JsonOutput => text(r#"{"city":"Paris","temp_c":18}"#),
            Scenario::MaxTokens => Answer { text: "The quick brown", calls: Vec::new(), stop: Stop::MaxTokens },
            Scenario::UsageDetails => text("Cached hello."),
            Scenario::StopSequence => Answer {
                text: "One, two, three",
                calls: Vec::new(),
                stop: match up {
                    Up::Anthropic | Up::Bedrock => Stop::StopSequence,
                    Up::OpenAi | Up::Gemini => Stop::EndTurn,
                },
            },
        }
    }

    /// The usage `up` reports for this scenario, in canonical terms: every figure its
    /// dialect can express, nothing it cannot (OpenAI and Gemini report no cache
    /// writes; Anthropic and Converse no reasoning split).
    pub fn usage(self, up: Up) -> Usage {
        match self {
            Scenario::TextSystem => Usage::plain(21, 4),
            Scenario::MultiTurn => Usage::plain(35, 6),
            Scenario::Image => Usage::plain(95, 5),
            Scenario::ToolChoice => Usage::plain(80, 18),
            Scenario::ToolChoiceAny => Usage::plain(81, 17),
            Scenario::ToolChoiceNone => Usage::plain(79, 9),
            Scenario::ParallelTools => Usage::plain(82, 40),
            Scenario::ToolResult => Usage::plain(120, 11),
            Scenario::JsonOutput => Usage::plain(60, 12),
            Scenario::MaxTokens => Usage::plain(14, 5),
            Scenario::StopSequence => Usage::plain(16, 7),
            Scenario::UsageDetails => match up {
                Up::OpenAi | Up::Gemini => Usage { input: 40, output: 20, cache_read: 60, cache_write: 0, reasoning: 8 },
                Up::Anthropic | Up::Bedrock => Usage { input: 40, output: 20, cache_read: 60, cache_write: 30, reasoning: 0 },
            },
        }
    }

    /// The request body a client of `front` sends for this scenario (route `m`).
    pub fn request(self, front: Front, stream: bool) -> Value {
        let mut body = match front {
            Front::OpenAi => self.openai_request(),
            Front::Anthropic => self.anthropic_request(),
        };
        body["model"] = json!("m");
        if stream {
            body["stream"] = json!(true);
            if front == Front::OpenAi {
                body["stream_options"] = json!({"include_usage": true});
            }
        }
        body
    }

    fn openai_request(self) -> Value {
        let user = |text: &str| json!({"role": "user", "content": text});
        let tools = json!([{"type": "function", "function": {"name": TOOL, "description": TOOL_DESCRIPTION, "parameters": tool_schema()}}]);
        match self {
            Scenario::TextSystem => json!({"messages": [{"role": "system", "content": SYSTEM}, user("Say hi.")]}),
            Scenario::MultiTurn => json!({"messages": [
                user("My name is Ada."),
                {"role": "assistant", "content": "Hello Ada."},
                user("What is my name?"),
            ]}),
            Scenario::Image => json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
            ]}]}),
            Scenario::ToolChoice => json!({
                "messages": [user("Weather in Paris?")],
                "tools": tools,
                "tool_choice": {"type": "function", "function": {"name": TOOL}},
            }),
            Scenario::ToolChoiceAny => json!({"messages": [user("Weather in Paris?")], "tools": tools, "tool_choice": "required"}),
            Scenario::ToolChoiceNone => json!({"messages": [user("Weather in Paris?")], "tools": tools, "tool_choice": "none"}),
            Scenario::ParallelTools => json!({
                "messages": [user("Weather in Paris and Tokyo?")],
                "tools": tools,
                "tool_choice": "auto",
                "parallel_tool_calls": true,
            }),
            Scenario::ToolResult => json!({
                "messages": [
                    user("Weather in Paris?"),
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": HISTORY_CALL_ID, "type": "function", "function": {"name": TOOL, "arguments": "{\"city\":\"Paris\"}"}},
                    ]},
                    {"role": "tool", "tool_call_id": HISTORY_CALL_ID, "content": TOOL_RESULT},
                ],
                "tools": tools,
            }),
            Scenario::JsonOutput => json!({
                "messages": [user("Weather in Paris as JSON.")],
                "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": output_schema(), "strict": true}},
            }),
            Scenario::MaxTokens => json!({"messages": [user("Tell me a long story.")], "max_tokens": 5}),
            Scenario::StopSequence => json!({"messages": [user("Count to five, then say END.")], "stop": [STOP_SEQUENCE]}),
            Scenario::UsageDetails => json!({"messages": [user("Hello again.")]}),
        }
    }

    fn anthropic_request(self) -> Value {
        let user = |text: &str| json!({"role": "user", "content": text});
        let tools = json!([{"name": TOOL, "description": TOOL_DESCRIPTION, "input_schema": tool_schema()}]);
        let mut body = match self {
            Scenario::TextSystem => json!({"system": SYSTEM, "messages": [user("Say hi.")]}),
            Scenario::MultiTurn => json!({"messages": [
                user("My name is Ada."),
                {"role": "assistant", "content": "Hello Ada."},
                user("What is my name?"),
            ]}),
            Scenario::Image => json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ]}]}),
            Scenario::ToolChoice => json!({
                "messages": [user("Weather in Paris?")],
                "tools": tools,
                "tool_choice": {"type": "tool", "name": TOOL},
            }),
            Scenario::ToolChoiceAny => json!({"messages": [user("Weather in Paris?")], "tools": tools, "tool_choice": {"type": "any"}}),
            Scenario::ToolChoiceNone => json!({"messages": [user("Weather in Paris?")], "tools": tools, "tool_choice": {"type": "none"}}),
            Scenario::ParallelTools => json!({
                "messages": [user("Weather in Paris and Tokyo?")],
                "tools": tools,
                "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
            }),
            Scenario::ToolResult => json!({
                "messages": [
                    user("Weather in Paris?"),
                    {"role": "assistant", "content": [{"type": "tool_use", "id": HISTORY_CALL_ID, "name": TOOL, "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": HISTORY_CALL_ID, "content": TOOL_RESULT}]},
                ],
                "tools": tools,
            }),
            Scenario::JsonOutput => json!({
                "messages": [user("Weather in Paris as JSON.")],
                "output_config": {"format": {"type": "json_schema", "schema": output_schema()}},
            }),
            Scenario::MaxTokens => json!({"messages": [user("Tell me a long story.")], "max_tokens": 5}),
            Scenario::StopSequence => json!({"messages": [user("Count to five, then say END.")], "stop_sequences": [STOP_SEQUENCE]}),
            Scenario::UsageDetails => json!({"messages": [user("Hello again.")]}),
        };
        if body.get("max_tokens").is_none() {
            body["max_tokens"] = json!(256);
        }
        body
    }

    /// The output limit the upstream must receive: the client's, or for an OpenAI
    /// client that set none, nothing (Anthropic-dialect upstreams get the gateway's
    /// default, which is not this test's concern).
    pub fn max_tokens(self, front: Front) -> Option<u64> {
        match (self, front) {
            (Scenario::MaxTokens, _) => Some(5),
            (_, Front::Anthropic) => Some(256),
            (_, Front::OpenAi) => None,
        }
    }
}

/// The stop reason a client of `front` reads.
pub fn stop_name(front: Front, stop: Stop) -> &'static str {
    match (front, stop) {
        (Front::OpenAi, Stop::EndTurn) => "stop",
        (Front::OpenAi, Stop::MaxTokens) => "length",
        (Front::OpenAi, Stop::StopSequence) => "stop",
        (Front::OpenAi, Stop::ToolUse) => "tool_calls",
        (Front::Anthropic, Stop::EndTurn) => "end_turn",
        (Front::Anthropic, Stop::MaxTokens) => "max_tokens",
        (Front::Anthropic, Stop::StopSequence) => "stop_sequence",
        (Front::Anthropic, Stop::ToolUse) => "tool_use",
    }
}
