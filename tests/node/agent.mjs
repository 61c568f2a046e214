// A small "agent" instrumented with the OpenTelemetry JavaScript SDK: the sender in another language
// for `otel-langsmith gateway` (tests/integration/test_gateway_node.py).
//
// It makes one trace the way a GenAI instrumentation writes it (an invoke_agent root, model calls
// with the GenAI semantic-convention attributes, a tool call with an HTTP request under it, a
// failed call with an exception event, a span with attributes of every type) and sends it with the
// SDK's OTLP/HTTP JSON exporter.
//
// Environment:
//   OTLP_URL        where to send (e.g. http://127.0.0.1:4318/v1/traces); required
//   OTLP_HEADERS    extra request headers, as a JSON object (e.g. {"x-api-key": "..."})
//   OTLP_COMPRESSION  "gzip" to send compressed bodies (default: none)
//   AGENT_EPOCH_MS  the trace's start, in milliseconds since the epoch (default: a fixed moment)
//
// Stdout: one JSON document describing every span made, read off the finished spans (so that a test
// can rebuild the very same spans with another SDK):
//   {"spans": [{trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, attributes,
//               status: {code, message}, events: [{name, time_ns, attributes}]}],
//    "resource": {...}, "scope": {name, version}}
// Times are nanoseconds since the epoch as decimal strings; spans are listed in the order they ended.
// Exit status: 0 when the exporter reported success for every batch, 1 otherwise (why on stderr).

import { diag, DiagLogLevel, SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const SCOPE = { name: "otel-langsmith-node-agent", version: "1.0.0" };
const KIND_NAMES = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const STATUS_NAMES = ["UNSET", "OK", "ERROR"];

function fail(message) {
  process.stderr.write(`agent.mjs: ${message}\n`);
  process.exitCode = 1;
}

// The SDK's own warnings and errors go to stderr: stdout holds only the JSON document.
diag.setLogger(
  {
    error: (...args) => process.stderr.write(`otel error: ${args.join(" ")}\n`),
    warn: (...args) => process.stderr.write(`otel warn: ${args.join(" ")}\n`),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  },
  DiagLogLevel.WARN,
);

const url = process.env.OTLP_URL;
if (!url) {
  fail("set OTLP_URL (e.g. http://127.0.0.1:4318/v1/traces)");
  process.exit(1);
}
let headers = {};
if (process.env.OTLP_HEADERS) {
  try {
    headers = JSON.parse(process.env.OTLP_HEADERS);
  } catch (error) {
    fail(`OTLP_HEADERS is not a JSON object: ${error.message}`);
    process.exit(1);
  }
}

// -- time: every instant is an offset from one start, in nanoseconds (exact, as HrTime) -------------

const EPOCH_MS = BigInt(process.env.AGENT_EPOCH_MS ?? Date.UTC(2025, 5, 2, 9, 30, 0));
const EPOCH_NS = EPOCH_MS * 1_000_000n;

/** The HrTime [seconds, nanoseconds] of the start plus `offsetNs` (a BigInt). */
function at(offsetNs) {
  const ns = EPOCH_NS + offsetNs;
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

function hrToNs(hr) {
  return (BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1])).toString();
}

const MS = 1_000_000n;

// -- the export, checked: every batch's result is kept, and the finished spans are recorded --------

class CheckedExporter {
  constructor(inner) {
    this.inner = inner;
    this.finished = [];
    this.failures = [];
    this.batches = 0;
  }

  export(spans, resultCallback) {
    this.finished.push(...spans);
    this.batches += 1;
    this.inner.export(spans, (result) => {
      if (result.code !== 0) {
        this.failures.push(result.error ? String(result.error.stack ?? result.error) : `result code ${result.code}`);
      }
      resultCallback(result);
    });
  }

  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }

  shutdown() {
    return this.inner.shutdown();
  }
}

const compression = process.env.OTLP_COMPRESSION || "none";
const exporter = new CheckedExporter(new OTLPTraceExporter({ url, headers, compression }));
const resource = resourceFromAttributes({
  "service.name": "node-travel-agent",
  "service.version": "0.3.1",
  "deployment.environment.name": "test",
});
const provider = new NodeTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000, maxExportBatchSize: 512 })],
});
const tracer = provider.getTracer(SCOPE.name, SCOPE.version);

/** Start a span at `startNs` under `parent` (a Span, or undefined for a root). */
function start(name, { kind = SpanKind.INTERNAL, parent, startNs, attributes = {} }) {
  const parentContext = parent ? trace.setSpan(context.active(), parent) : context.active();
  return tracer.startSpan(name, { kind, startTime: at(startNs), attributes }, parentContext);
}

const json = (value) => JSON.stringify(value);

// -- the agent's work ------------------------------------------------------------------------------

const SYSTEM = [{ type: "text", content: "You are a travel assistant. Answer in one sentence." }];
const QUESTION = { role: "user", parts: [{ type: "text", content: "What's the weather in Paris today?" }] };
const TOOL_CALL = {
  role: "assistant",
  parts: [{ type: "tool_call", id: "call_w1", name: "get_weather", arguments: { city: "Paris", unit: "celsius" } }],
};
const TOOL_RESULT = { temperature: 18.5, sky: "clear", unit: "celsius" };
const TOOL_RESPONSE = { role: "tool", parts: [{ type: "tool_call_response", id: "call_w1", response: TOOL_RESULT }] };
const ANSWER = "It's 18.5 °C and clear in Paris: a fine day for a walk along the Seine.";

function modelCall(parent, startNs, { model, inputs, attributes = {} }) {
  return start(`chat ${model}`, {
    kind: SpanKind.CLIENT,
    parent,
    startNs,
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.system": "openai",
      "gen_ai.request.model": model,
      "gen_ai.request.temperature": 0.2,
      "gen_ai.request.max_tokens": 256,
      "gen_ai.request.top_p": 0.95,
      "gen_ai.system_instructions": json(SYSTEM),
      "gen_ai.input.messages": json(inputs),
      "server.address": "api.openai.com",
      "server.port": 443,
      ...attributes,
    },
  });
}

const root = start("invoke_agent travel-agent", {
  startNs: 0n,
  attributes: {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "travel-agent",
    "gen_ai.agent.id": "agent_7f3a",
    "gen_ai.agent.description": "Answers travel questions with live weather.",
    "gen_ai.conversation.id": "conv-2025-06-02-0001",
    "gen_ai.provider.name": "openai",
    "gen_ai.input.messages": json([QUESTION]),
  },
});
root.addEvent("agent.step", { "agent.step.index": 0, "agent.step.kind": "plan" }, at(500_123n));

// 1. The model asks for a tool.
const first = modelCall(root, 1n * MS + 7n, { model: "gpt-4o-mini", inputs: [QUESTION] });
first.setAttributes({
  "gen_ai.response.id": "chatcmpl-A1b2C3",
  "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
  "gen_ai.response.finish_reasons": ["tool_call"],
  "gen_ai.usage.input_tokens": 57,
  "gen_ai.usage.output_tokens": 18,
  "gen_ai.output.messages": json([{ ...TOOL_CALL, finish_reason: "tool_call" }]),
});
first.end(at(412n * MS + 333n));

// 2. The tool runs, with an HTTP request under it.
const tool = start("execute_tool get_weather", {
  parent: root,
  startNs: 413n * MS + 1n,
  attributes: {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "get_weather",
    "gen_ai.tool.type": "function",
    "gen_ai.tool.call.id": "call_w1",
    "gen_ai.tool.description": "Current weather for a city.",
    "gen_ai.tool.call.arguments": json({ city: "Paris", unit: "celsius" }),
  },
});
const http = start("GET", {
  kind: SpanKind.CLIENT,
  parent: tool,
  startNs: 414n * MS + 250_001n,
  attributes: {
    "http.request.method": "GET",
    "url.full": "https://weather.example.com/v1/current?city=Paris&unit=celsius",
    "server.address": "weather.example.com",
    "server.port": 443,
    "network.protocol.version": "1.1",
  },
});
http.setAttribute("http.response.status_code", 200);
http.end(at(530n * MS + 999n));
tool.setAttribute("gen_ai.tool.call.result", json(TOOL_RESULT));
tool.end(at(531n * MS + 500_000n));

// 3. The next call fails: rate limited, with the exception recorded.
const failed = modelCall(root, 532n * MS, {
  model: "gpt-4o-mini",
  inputs: [QUESTION, TOOL_CALL, TOOL_RESPONSE],
  attributes: { "gen_ai.request.seed": 42 },
});
const rateLimit = new Error("Rate limit reached for gpt-4o-mini: retry after 1s");
rateLimit.name = "RateLimitError";
rateLimit.stack = `RateLimitError: ${rateLimit.message}\n    at chat (agent.mjs:1:1)\n    at run (agent.mjs:2:2)`;
failed.recordException(rateLimit, at(601n * MS + 17n));
failed.setAttributes({ "error.type": "RateLimitError", "http.response.status_code": 429 });
failed.setStatus({ code: SpanStatusCode.ERROR, message: "429 Too Many Requests: rate limit reached" });
failed.end(at(601n * MS + 42n));

// 4. A span of the agent's own, with attributes of every type.
const retry = start("agent.retry_policy", {
  parent: root,
  startNs: 601n * MS + 100n,
  attributes: {
    "app.retry.attempt": 2,
    "app.retry.backoff_seconds": 1.25,
    "app.retry.jittered": true,
    "app.retry.give_up": false,
    "app.retry.status_codes": [429, 503],
    "app.retry.models": ["gpt-4o-mini", "gpt-4o"],
    "app.retry.weights": [0.5, 0.25],
    "app.retry.flags": [true, false, true],
    "app.retry.note": "",
  },
});
retry.addEvent("retry.scheduled", { "retry.delay_ms": 1000, "retry.reason": "rate_limit" }, at(601n * MS + 150n));
retry.setStatus({ code: SpanStatusCode.OK });
retry.end(at(1_602n * MS + 3n));

// 5. The retried call answers.
const second = modelCall(root, 1_602n * MS + 10n, {
  model: "gpt-4o-mini",
  inputs: [QUESTION, TOOL_CALL, TOOL_RESPONSE],
});
second.setAttributes({
  "gen_ai.response.id": "chatcmpl-D4e5F6",
  "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
  "gen_ai.response.finish_reasons": ["stop"],
  "gen_ai.usage.input_tokens": 96,
  "gen_ai.usage.output_tokens": 21,
  "gen_ai.output.messages": json([
    { role: "assistant", parts: [{ type: "text", content: ANSWER }], finish_reason: "stop" },
  ]),
});
second.end(at(2_250n * MS + 999_999n));

root.setAttribute(
  "gen_ai.output.messages",
  json([{ role: "assistant", parts: [{ type: "text", content: ANSWER }], finish_reason: "stop" }]),
);
root.end(at(2_251n * MS));

// -- send, then describe what was sent -------------------------------------------------------------

try {
  await provider.forceFlush();
} catch (error) {
  fail(`forceFlush failed: ${error?.stack ?? error}`);
}
try {
  await provider.shutdown();
} catch (error) {
  fail(`shutdown failed: ${error?.stack ?? error}`);
}
for (const failure of exporter.failures) {
  fail(`export failed: ${failure}`);
}
if (exporter.batches === 0) {
  fail("nothing was exported");
}

function describe(span) {
  const spanContext = span.spanContext();
  return {
    trace_id: spanContext.traceId,
    span_id: spanContext.spanId,
    parent_span_id: span.parentSpanContext?.spanId ?? null,
    name: span.name,
    kind: KIND_NAMES[span.kind],
    start_ns: hrToNs(span.startTime),
    end_ns: hrToNs(span.endTime),
    attributes: span.attributes,
    status: { code: STATUS_NAMES[span.status.code], message: span.status.message ?? "" },
    events: span.events.map((event) => ({
      name: event.name,
      time_ns: hrToNs(event.time),
      attributes: event.attributes ?? {},
    })),
  };
}

const finished = exporter.finished;
const document = {
  spans: finished.map(describe),
  resource: finished.length ? finished[0].resource.attributes : resource.attributes,
  scope: finished.length
    ? { name: finished[0].instrumentationScope.name, version: finished[0].instrumentationScope.version ?? null }
    : SCOPE,
};
process.stdout.write(`${JSON.stringify(document)}\n`);
