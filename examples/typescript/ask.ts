// Ask a plangate gateway one question and print the plan as it runs (Node 20+).
//   npm ci && npm run build && node dist/ask.js "your question"
// PLANGATE_URL (default http://127.0.0.1:3774), PLANGATE_TOKEN (when the gateway wants one),
// PLANGATE_AGENT_URL (default http://127.0.0.1:3773, where `plangate example-agent` listens).
// Exit status: 0 answered, 1 the plan failed, 2 the gateway refused the request, 3 cut short.
import { EventSourceParserStream } from "eventsource-parser/stream";

const gateway = process.env.PLANGATE_URL ?? "http://127.0.0.1:3774";
const agentUrl = process.env.PLANGATE_AGENT_URL ?? "http://127.0.0.1:3773";
const question = process.argv[2] ?? "Say hello, then shout it.";

const headers: Record<string, string> = { "Content-Type": "application/json" };
if (process.env.PLANGATE_TOKEN) headers.Authorization = `Bearer ${process.env.PLANGATE_TOKEN}`;
const skills = [
  { id: "echo", description: "Repeats the request, prefixed with `echo: `." },
  { id: "shout", description: "Repeats the request in upper case." },
];
const response = await fetch(`${gateway}/plan`, {
  method: "POST",
  headers,
  body: JSON.stringify({ question, agents: [{ name: "example", endpoint: agentUrl, skills }] }),
});
if (!response.ok || response.body === null) {
  // Refusals are JSON: {"error": "<code>", "detail"?: "<what to fix>", "issues"?: [...]}.
  console.error(`gateway refused the plan: HTTP ${response.status} ${await response.text()}`);
  process.exit(2);
}

const tasks = new Map<string, string>(); // task_id -> "agent/skill"
let status = 3; // stays 3 unless `done` arrives
const frames = response.body
  .pipeThrough(new TextDecoderStream())
  .pipeThrough(new EventSourceParserStream());
for await (const { event, data } of frames) {
  const frame = JSON.parse(data);
  if (event === "task.started") {
    tasks.set(frame.task_id, `${frame.agent}/${frame.skill}`);
    console.log(`… ${tasks.get(frame.task_id)} started`);
  } else if (event === "task.finished") {
    const mark = frame.state === "completed" ? "✓" : "✗";
    console.log(`${mark} ${tasks.get(frame.task_id)} ${frame.state}${frame.error ? `: ${frame.error}` : ""}`);
  } else if (event === "text.delta") {
    process.stdout.write(frame.delta);
  } else if (event === "final") {
    console.log(`\n— ${frame.stop_reason}, ${frame.usage.totalTokens} tokens`);
    status = 0;
  } else if (event === "error") {
    console.error(`\nplan failed (${frame.code}): ${frame.message}`);
    status = 1;
  } else if (event === "done") {
    if (status === 3) status = 0; // a duplicate request: nothing ran, nothing failed
    break;
  }
}
process.exit(status);
