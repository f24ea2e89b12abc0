// An echo agent built on the official JavaScript A2A SDK (@a2a-js/sdk), for plangate's interop
// tests. Same echo protocol as ../shared/peers (text → `echo: text`; `sleep:N rest`, `fail…`,
// `ask:question`, `json:x`), streaming on, the SDK's own task ids.
//
//   node echo_agent.mjs PORT [--card-v1-only] [--no-compat]
//
//   --card-v1-only  v0.3 compatibility stays on, but the card lists only the 1.0 JSON-RPC
//                   interface (the layout of the SDK's compat sample): a card request without
//                   `A2A-Version: 1.0` is answered with HTTP 400 by the SDK.
//   --no-compat     1.0 only.
//
// GET /_log lists the JSON-RPC requests received ({method, version, taskId}) so tests can count
// sends; it is this test agent's own route, not part of A2A.
import express from 'express';
import { Role, TaskState } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { UserBuilder, agentCardHandler, jsonRpcHandler } from '@a2a-js/sdk/server/express';

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? 9998);
const cardV1Only = args.includes('--card-v1-only');
const compat = !args.includes('--no-compat');
const url = `http://127.0.0.1:${port}/`;

const interfaces = [{ url, protocolBinding: 'JSONRPC', protocolVersion: '1.0', tenant: '' }];
if (compat && !cardV1Only) {
  interfaces.push({ url, protocolBinding: 'JSONRPC', protocolVersion: '0.3', tenant: '' });
}

const card = {
  name: 'js-echo-agent',
  description: 'Echo agent on @a2a-js/sdk',
  supportedInterfaces: interfaces,
  provider: undefined,
  version: '1.0.0',
  capabilities: { streaming: true, pushNotifications: false, extensions: [] },
  securitySchemes: {},
  securityRequirements: [],
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain', 'application/json'],
  skills: [
    {
      id: 'echo',
      name: 'Echo',
      description: 'Repeats the request',
      tags: ['echo'],
      examples: [],
      inputModes: [],
      outputModes: [],
      securityRequirements: [],
    },
  ],
  signatures: [],
};

const textPart = (text) => ({ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: '' });
const dataPart = (value) => ({ content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: '' });
const agentMessage = (ctx, text) => ({
  messageId: crypto.randomUUID(),
  contextId: ctx.contextId,
  taskId: ctx.taskId,
  role: Role.ROLE_AGENT,
  parts: [textPart(text)],
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});
const status = (ctx, state, message) => AgentEvent.statusUpdate({
  taskId: ctx.taskId,
  contextId: ctx.contextId,
  status: { state, message, timestamp: new Date().toISOString() },
  metadata: undefined,
});

const canceled = new Set();

const executor = {
  async execute(ctx, bus) {
    const text = ctx.userMessage.parts
      .map((p) => (p.content?.$case === 'text' ? p.content.value : ''))
      .join('');
    if (!ctx.task) {
      bus.publish(AgentEvent.task({
        id: ctx.taskId,
        contextId: ctx.contextId,
        status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: undefined },
        artifacts: [],
        history: [ctx.userMessage],
        metadata: undefined,
      }));
    }
    bus.publish(status(ctx, TaskState.TASK_STATE_WORKING, undefined));
    let rest = text;
    const sleep = /^sleep:([0-9.]+)\s*(.*)$/s.exec(rest);
    if (sleep) {
      const seconds = Math.min(Number(sleep[1]) || 1, 30);
      rest = sleep[2];
      const until = Date.now() + seconds * 1000;
      while (Date.now() < until && !canceled.has(ctx.taskId)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (canceled.has(ctx.taskId)) {
        bus.finished();
        return;
      }
    }
    if (rest.startsWith('fail')) {
      bus.publish(status(ctx, TaskState.TASK_STATE_FAILED, agentMessage(ctx, `failed as requested: ${rest}`)));
    } else if (rest.startsWith('ask:')) {
      bus.publish(status(ctx, TaskState.TASK_STATE_INPUT_REQUIRED, agentMessage(ctx, rest.slice(4))));
    } else {
      const json = rest.startsWith('json:');
      bus.publish(AgentEvent.artifactUpdate({
        taskId: ctx.taskId,
        contextId: ctx.contextId,
        artifact: {
          artifactId: crypto.randomUUID(),
          name: 'echo',
          description: '',
          parts: [json ? dataPart({ echo: rest.slice(5), length: rest.length }) : textPart(`echo: ${rest}`)],
          metadata: undefined,
          extensions: [],
        },
        append: false,
        lastChunk: true,
        metadata: undefined,
      }));
      bus.publish(status(ctx, TaskState.TASK_STATE_COMPLETED, undefined));
    }
    bus.finished();
  },
  async cancelTask(taskId, bus) {
    canceled.add(taskId);
    bus.publish(AgentEvent.statusUpdate({
      taskId,
      contextId: '',
      status: { state: TaskState.TASK_STATE_CANCELED, message: undefined, timestamp: new Date().toISOString() },
      metadata: undefined,
    }));
    bus.finished();
  },
};

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
const legacyCompat = { enabled: compat };
const log = [];

const app = express();
app.get('/_log', (_req, res) => res.json(log));
app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler, legacyCompat }));
app.post('/', express.json({ limit: '10mb' }), (req, _res, next) => {
  const body = req.body ?? {};
  log.push({
    method: body.method ?? null,
    version: req.get('a2a-version') ?? null,
    taskId: body.params?.message?.taskId ?? null,
  });
  next();
});
app.use('/', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication, legacyCompat }));

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`js-echo-agent on ${url} (compat ${compat}, card v1 only ${cardV1Only})`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
