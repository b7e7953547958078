#!/usr/bin/env bash
# Fuzz every dialect's request decoder and stream parser for a bounded time each.
#
#   bash scripts/fuzz.sh [seconds-per-target]      # default 20
#   FUZZ_TARGETS="openai_chat_request gemini_stream" bash scripts/fuzz.sh 60
#
# Uses cargo-fuzz (libFuzzer) on the stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the
# `-Z` flags cargo-fuzz passes. AddressSanitizer is tried first; if the toolchain cannot
# build with it, the targets are built without a sanitizer (safe Rust needs it little:
# what these targets look for is panics, overflows, runaway memory and hangs).
# Seeds are written to fuzz/corpus/<target>/ from the inline examples below (the
# corpus directory is not committed); a corpus grown by earlier runs is kept and reused.
# Crashes land in fuzz/artifacts/<target>/ (with the last run's log); the script exits
# non-zero if any target crashed, went past the memory limit or hung. The targets are
# built once and the built binaries run, so edits to src/ during a run change nothing.
# Bounded: libFuzzer's -max_total_time plus an outer `timeout` per target; with the
# default 20 s, about 4 minutes for the nine targets after the build. See docs/fuzzing.md.
#
# Knobs (environment):
#   FUZZ_TARGETS      targets to run (default: every target in fuzz/Cargo.toml)
#   FUZZ_SANITIZER    address | none (default: address, falling back to none)
#   FUZZ_JOBS=1       parallel libFuzzer workers per target (the machine has 2 cores)
#   FUZZ_RSS_MB=2048  libFuzzer's memory limit;  FUZZ_TIMEOUT=10  seconds per input
#   SWITCHYARD_FUZZ_ROUNDTRIP=1  request targets also check that each encoded request
#                     is accepted by that dialect's own decoder (see docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-20}}
JOBS=${FUZZ_JOBS:-1}
RSS_MB=${FUZZ_RSS_MB:-2048}
INPUT_TIMEOUT=${FUZZ_TIMEOUT:-10}
export RUSTC_BOOTSTRAP=1

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$SECONDS_PER_TARGET" in ''|*[!0-9]*) die "seconds per target must be a whole number, not '$SECONDS_PER_TARGET'" ;; esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to write the seed corpora"

cd fuzz
ALL_TARGETS=$(cargo fuzz list)
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}
for t in $TARGETS; do
    grep -qx "$t" <<<"$ALL_TARGETS" || die "no fuzz target named $t (have: $(echo $ALL_TARGETS))"
done

# ---------------------------------------------------------------- seeds and dictionary
WORK=$(mktemp -d -t switchyard-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROOT/fuzz/corpus" "$WORK/json.dict" <<'PY'
import json, os, struct, sys, zlib

corpus, dict_path = sys.argv[1], sys.argv[2]

def seed(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def j(v):
    return json.dumps(v, ensure_ascii=False)

def sse(events, named=False):
    out = ""
    for e in events:
        if named and isinstance(e, dict) and "type" in e:
            out += "event: %s\n" % e["type"]
        out += "data: %s\n\n" % (e if isinstance(e, str) else j(e))
    return out

# Stream targets read the first byte as the read size (0 = whole body at once).
def stream_seeds(target, name, body):
    for read in (0, 1, 7, 31):
        seed(target, "%s-%d" % (name, read), bytes([read]) + (body.encode() if isinstance(body, str) else body))

tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

# ---- openai_chat_request
for name, body in {
    "minimal": {"model": "chat", "messages": [{"role": "user", "content": "Hello"}]},
    "stream": {"model": "chat", "stream": True, "stream_options": {"include_usage": True},
               "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
    "tools": {"model": "chat", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}],
        "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False},
    "parts": {"model": "chat", "max_completion_tokens": 64, "temperature": 0.2, "top_p": 0.9, "stop": ["\n\n"],
              "seed": 7, "n": 1, "user": "u1", "metadata": {"k": "v"},
              "messages": [{"role": "developer", "content": [{"type": "text", "text": "Rules"}]},
                           {"role": "user", "name": "ann", "content": [
                               {"type": "text", "text": "What is this?"},
                               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                               {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}]}]},
    "json_schema": {"model": "chat", "max_tokens": 10, "reasoning_effort": "low",
                    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": True,
                        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                    "messages": [{"role": "user", "content": "json"}]},
    "json_object": {"model": "chat", "response_format": {"type": "json_object"}, "tool_choice": "none",
                    "messages": [{"role": "user", "content": "x"}], "frequency_penalty": 0.5, "presence_penalty": -0.5,
                    "logit_bias": {"50256": -100}},
}.items():
    seed("openai_chat_request", name, j(body))

# ---- anthropic_messages_request
atool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
         "properties": {"city": {"type": "string"}}, "required": ["city"]}}
for name, body in {
    "minimal": {"model": "chat", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]},
    "system_stream": {"model": "chat", "max_tokens": 256, "stream": True, "system": [{"type": "text", "text": "Brief.",
                      "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": "Hi"}],
                      "stop_sequences": ["END"], "temperature": 0.5, "top_k": 5, "top_p": 0.9, "metadata": {"user_id": "u"}},
    "tools": {"model": "chat", "max_tokens": 1024, "tools": [atool], "tool_choice": {"type": "tool", "name": "get_weather"},
              "messages": [
                  {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                      {"type": "redacted_thinking", "data": "abc"},
                      {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                      "content": [{"type": "text", "text": "18C"}], "is_error": False}]}],
              "thinking": {"type": "enabled", "budget_tokens": 1024}},
    "media": {"model": "chat", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "text", "text": "What are these?"}]}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
}.items():
    seed("anthropic_messages_request", name, j(body))

# ---- bedrock_converse_request (the body; the model is in the URL)
for name, body in {
    "minimal": {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]},
    "rich": {"messages": [
        {"role": "user", "content": [{"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                                     {"document": {"format": "pdf", "name": "doc", "source": {"bytes": "JVBERi0="}}}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "Paris.", "signature": "sig-1"}}},
                                          {"text": "Let me check."},
                                          {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}, {"json": {"t": 18}}], "status": "success"}},
                                     {"text": "Umbrella?"}]}],
        "system": [{"text": "Terse."}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["\n\nHuman:"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                       "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                       "toolChoice": {"tool": {"name": "get_weather"}}},
        "additionalModelRequestFields": {"top_k": 5}},
}.items():
    seed("bedrock_converse_request", name, j(body))

# ---- gemini_request
for name, body in {
    "minimal": {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
    "rich": {"systemInstruction": {"parts": [{"text": "Terse."}]},
             "contents": [
                 {"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                                            {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/a.pdf"}}]},
                 {"role": "model", "parts": [{"text": "Checking.", "thought": True, "thoughtSignature": "c2ln"},
                                             {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                 {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 18}}}]}],
             "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
             "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
             "generationConfig": {"maxOutputTokens": 100, "temperature": 0.3, "topP": 0.9, "topK": 3, "stopSequences": ["x"],
                                  "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"},
                                  "thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}, "seed": 1}},
}.items():
    seed("gemini_request", name, j(body))

# ---- openai_chat_stream
def oc(delta, finish=None, usage=None, choices=True):
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini"}
    c["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
    if usage is not None:
        c["usage"] = usage
    return c
usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
         "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}
stream_seeds("openai_chat_stream", "text", sse([oc({"role": "assistant", "content": ""}), oc({"content": "Hel"}),
             oc({"content": "lo"}), oc({}, "stop"), oc(None, usage=usage, choices=False), "[DONE]"]).replace('"delta": null, ', ''))
stream_seeds("openai_chat_stream", "tools", sse([
    oc({"role": "assistant", "reasoning_content": "think"}),
    oc({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    oc({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
    oc({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "t2", "arguments": "{}"}}]}),
    oc({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
    oc({"refusal": "no"}), oc({}, "tool_calls"), "[DONE]"]))
stream_seeds("openai_chat_stream", "cut", ": keep-alive\r\n\r\n" + sse([oc({"content": "par"})])[:-1] + "data: {\"id\"")

# ---- anthropic_messages_stream
msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": None,
       "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 3}}
events = [
    {"type": "message_start", "message": msg},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "ping"},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "redacted_thinking", "data": "xyz"}},
    {"type": "content_block_stop", "index": 3},
    {"type": "content_block_start", "index": 4, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}},
    {"type": "content_block_stop", "index": 4},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 20}},
    {"type": "message_stop"},
]
stream_seeds("anthropic_messages_stream", "full", sse(events, named=True))
stream_seeds("anthropic_messages_stream", "error", sse([events[0], {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}], named=True))

# ---- gemini_stream
def gc(parts=None, finish=None, usage=None, **extra):
    c = {"responseId": "r1", "modelVersion": "gemini-2.5-flash"}
    cand = {"index": 0}
    if parts is not None:
        cand["content"] = {"role": "model", "parts": parts}
    if finish:
        cand["finishReason"] = finish
    c["candidates"] = [cand]
    if usage:
        c["usageMetadata"] = usage
    c.update(extra)
    return c
gu = {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 14, "thoughtsTokenCount": 2, "cachedContentTokenCount": 1}
stream_seeds("gemini_stream", "text", sse([gc([{"text": "thinking", "thought": True}]), gc([{"text": "Hel"}]),
             gc([{"text": "lo", "thoughtSignature": "c2ln"}]), gc([{"text": ""}], "STOP", gu)]))
stream_seeds("gemini_stream", "call", sse([gc([{"functionCall": {"name": "w", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
             {"functionCall": {"id": "c2", "name": "x"}}], "STOP", gu)]))
stream_seeds("gemini_stream", "blocked", sse([{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": gu}]))
stream_seeds("gemini_stream", "safety", sse([gc([{"text": "a"}]), gc(None, "SAFETY", finishMessage="no")]))
stream_seeds("gemini_stream", "error", sse([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
             "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}}]))

# ---- bedrock: eventstream frames (CRC32 as in the AWS spec) and the event-list form
def header(name, value):
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
def frame(headers, payload):
    h = b"".join(header(k, v) for k, v in headers)
    total = 12 + len(h) + len(payload) + 4
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + h + payload
    return msg + struct.pack(">I", zlib.crc32(msg))
def event(kind, payload):
    return frame([(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")], j(payload).encode())
converse = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t1", "name": "w"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"reasoningContent": {"redactedContent": "eHl6"}}}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14, "cacheReadInputTokens": 1,
                            "cacheWriteInputTokens": 2}, "metrics": {"latencyMs": 100}}),
]
wire = b"".join(event(k, p) for k, p in converse)
stream_seeds("bedrock_eventstream", "full", wire)
exc = frame([(":exception-type", "throttlingException"), (":content-type", "application/json"), (":message-type", "exception")],
            b'{"message":"slow down"}')
stream_seeds("bedrock_eventstream", "exception", event(*converse[0]) + exc)
err = frame([(":error-code", "InternalFailure"), (":error-message", "boom"), (":message-type", "error")], b"")
stream_seeds("bedrock_eventstream", "error", event(*converse[0]) + err)
stream_seeds("bedrock_eventstream", "cut", wire[: len(wire) // 2])
names = {"messageStart": "0", "contentBlockStart": "1", "contentBlockDelta": "2", "contentBlockStop": "3", "messageStop": "4", "metadata": "5"}
stream_seeds("bedrock_converse_stream", "full", "\n".join("%s %s" % (names[k], j(p)) for k, p in converse))
stream_seeds("bedrock_converse_stream", "named", "\n".join("%s %s" % (k, j(p)) for k, p in converse[4:]))

# ---- a JSON dictionary for every target: the dialects' field names and values
words = set('''{ } [ ] : , " true false null 0 -1 1e999 \\u0000 \\ud800
model messages role content user assistant system developer tool function name arguments type text
tool_calls tool_call_id tools tool_choice auto none required parallel_tool_calls stream stream_options include_usage
max_tokens max_completion_tokens temperature top_p top_k stop seed n user metadata response_format json_schema json_object
schema strict image_url url detail file file_data filename refusal reasoning_content reasoning_effort logit_bias
frequency_penalty presence_penalty choices index delta finish_reason usage prompt_tokens completion_tokens total_tokens
prompt_tokens_details cached_tokens completion_tokens_details reasoning_tokens [DONE] data: event:
input_schema tool_use tool_result tool_use_id is_error thinking redacted_thinking signature budget_tokens image document source
base64 media_type cache_control ephemeral stop_sequences message_start content_block_start content_block_delta content_block_stop
message_delta message_stop ping error text_delta input_json_delta thinking_delta signature_delta partial_json content_block
stop_reason stop_sequence input_tokens output_tokens cache_read_input_tokens cache_creation_input_tokens end_turn max_tokens
output_config format server_tool_use
messageStart contentBlockStart contentBlockDelta contentBlockStop messageStop metadata contentBlockIndex start toolUse toolUseId
input reasoningContent reasoningText redactedContent toolResult status inferenceConfig maxTokens topP stopSequences toolConfig
toolSpec inputSchema json toolChoice stopReason inputTokens outputTokens totalTokens cacheReadInputTokens cacheWriteInputTokens
contents parts systemInstruction inlineData fileData mimeType fileUri functionCall functionResponse args response thought
thoughtSignature functionDeclarations parameters functionCallingConfig mode allowedFunctionNames generationConfig maxOutputTokens
topK responseMimeType responseSchema thinkingConfig thinkingBudget includeThoughts candidates finishReason finishMessage
usageMetadata promptTokenCount candidatesTokenCount totalTokenCount thoughtsTokenCount cachedContentTokenCount promptFeedback
blockReason SAFETY STOP MAX_TOKENS responseId modelVersion RESOURCE_EXHAUSTED retryDelay'''.split())
with open(dict_path, "w") as f:
    for i, w in enumerate(sorted(words)):
        f.write('kw%d=%s\n' % (i, json.dumps(w)))
PY

# ---------------------------------------------------------------- build
SANITIZER=${FUZZ_SANITIZER:-address}
build() { # sanitizer
    if [ -z "${FUZZ_TARGETS:-}" ]; then
        cargo fuzz build -O --sanitizer "$1"
    else
        local t
        for t in $TARGETS; do cargo fuzz build -O --sanitizer "$1" "$t" || return 1; done
    fi
}
log "building $(echo $TARGETS | wc -w) targets (sanitizer: $SANITIZER)"
if ! build "$SANITIZER" 2>"$WORK/build.log"; then
    if [ -z "${FUZZ_SANITIZER:-}" ] && [ "$SANITIZER" != none ]; then
        log "the $SANITIZER sanitizer build failed on this toolchain (last lines below); building without a sanitizer"
        tail -5 "$WORK/build.log" >&2
        SANITIZER=none
        build none || die "the fuzz targets do not build"
    else
        cat "$WORK/build.log" >&2
        die "the fuzz targets do not build"
    fi
fi

# ---------------------------------------------------------------- run
# The binaries are run directly, not through `cargo fuzz run`: a run must not rebuild
# (and spend its time budget compiling) because src/ changed after the build.
BIN_DIR=$ROOT/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
# Snapshot of what was built, so every target runs the same code.
mkdir -p "$WORK/bin"
for t in $TARGETS; do
    [ -x "$BIN_DIR/$t" ] || die "no binary for $t in $BIN_DIR"
    cp "$BIN_DIR/$t" "$WORK/bin/$t"
done
FAILED=()
SUMMARY=()
for t in $TARGETS; do
    log "fuzzing $t for ${SECONDS_PER_TARGET}s"
    mkdir -p "artifacts/$t" "corpus/$t"
    rc=0
    # The outer `timeout` bounds the run even if libFuzzer's own limit does not end it.
    timeout --kill-after=10 $((SECONDS_PER_TARGET + 60)) \
        "$WORK/bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -timeout="$INPUT_TIMEOUT" \
        -max_len=65536 -dict="$WORK/json.dict" -print_final_stats=1 \
        $([ "$JOBS" -gt 1 ] && echo "-jobs=$JOBS -workers=$JOBS") \
        >"$WORK/$t.log" 2>&1 || rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$WORK/$t.log" | tail -1 | grep -oE '[0-9]+$' || true)
    [ -n "$runs" ] || runs=$(grep -oE 'Done [0-9]+ runs' "$WORK/$t.log" | tail -1 | grep -oE '[0-9]+' || echo '?')
    cov=$(grep -oE 'cov: [0-9]+' "$WORK/$t.log" | tail -1 | grep -oE '[0-9]+' || echo '?')
    corpus=$(find "corpus/$t" -type f | wc -l)
    SUMMARY+=("$(printf '%-28s %10s runs  cov %6s  corpus %5s  exit %s' "$t" "$runs" "$cov" "$corpus" "$rc")")
    cp "$WORK/$t.log" "artifacts/$t/last-run.log"
    if [ "$rc" != 0 ]; then
        crash=$(grep -oE "artifacts/$t/(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+" "$WORK/$t.log" | tail -1 || true)
        FAILED+=("$t (exit $rc${crash:+, input fuzz/$crash})")
        log "$t FAILED (exit $rc); the end of its log:"
        grep -vE '^#[0-9]+' "$WORK/$t.log" | tail -40 >&2
    fi
done

printf '\n'
printf '%s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    log "failures: ${FAILED[*]}"
    log "reproduce one with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O --sanitizer $SANITIZER <target> artifacts/<target>/<file>"
    exit 1
fi
log "no crashes in $(echo $TARGETS | wc -w) targets x ${SECONDS_PER_TARGET}s (sanitizer: $SANITIZER)"
