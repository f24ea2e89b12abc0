"""Drives plangate's A2A door with the official a2a-sdk client (1.x) and prints what it saw.

    python a2a_door_client.py '{"url": …, "token": …, "dialect": "1.0"|"0.3", "steps": [...]}'

Each step is one client call; its result (the task as a dict, the stream's events, or the error the
client raised) is appended to "results" in the JSON printed on stdout. Steps:
  {"op": "send", "text": …, "skill"?: …, "context"?: …, "mode": "blocking"|"poll"|"stream"}
  {"op": "start", "text": …, "skill"?: …}        non-blocking send; later steps use its task id
  {"op": "wait", "state": "TASK_STATE_WORKING", "text"?: …}  polls the started task until it
                                                 has that state (and a status message with text)
  {"op": "sleep", "seconds": …}
  {"op": "cancel"} / {"op": "get", "id"?: …}     on the started task (or the given id)
  {"op": "answer", "text"?: …, "data"?: {…}, "mode": "blocking"|"stream"}
                                                 a message on the task of the last send (its
                                                 answer to the question the task waits for)
tests/gateway/a2a_door.rs runs it and judges the output.
"""

import asyncio
import json
import sys
import time
import uuid

import httpx
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Struct, Value

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
)


def message(step, task=None):
    metadata = Struct()
    if step.get("skill"):
        metadata.update({"skillId": step["skill"]})
    parts = []
    if step.get("text"):
        parts.append(Part(text=step["text"]))
    if step.get("data") is not None:
        parts.append(Part(data=ParseDict(step["data"], Value())))
    return Message(
        message_id=str(uuid.uuid4()),
        context_id=(task or {}).get("contextId", step.get("context", "")),
        task_id=(task or {}).get("id", ""),
        role=Role.ROLE_USER,
        parts=parts,
        metadata=metadata,
    )


def task_of(events):
    """The task a send's events are about (its id and contextId)."""
    for event in events:
        if "task" in event:
            return {"id": event["task"]["id"], "contextId": event["task"]["contextId"]}
        for key in ("statusUpdate", "artifactUpdate"):
            if key in event:
                return {"id": event[key]["taskId"], "contextId": event[key]["contextId"]}
    return None


async def main():
    job = json.loads(sys.argv[1])
    headers = {"Authorization": f"Bearer {job['token']}"} if job.get("token") else {}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        path = "/.well-known/agent.json" if job["dialect"] == "0.3" else "/.well-known/agent-card.json"
        card = await A2ACardResolver(http, job["url"], agent_card_path=path).get_agent_card()
        out = {"card": MessageToDict(card), "results": []}
        clients = {}

        def client(streaming, polling):
            key = (streaming, polling)
            if key not in clients:
                config = ClientConfig(streaming=streaming, polling=polling, httpx_client=http)
                clients[key] = ClientFactory(config).create(card)
            return clients[key]

        started = None
        last = None
        for step in job["steps"]:
            op = step["op"]
            try:
                if op in ("send", "answer"):
                    mode = step.get("mode", "blocking")
                    c = client(mode == "stream", mode == "poll")
                    events = []
                    sent = message(step, last if op == "answer" else None)
                    async for event in c.send_message(SendMessageRequest(message=sent)):
                        events.append(MessageToDict(event))
                    result = {"events": events}
                    last = task_of(events) or last
                    if mode == "poll":
                        task_id = events[0]["task"]["id"]
                        deadline = time.monotonic() + 30
                        while True:
                            task = MessageToDict(await c.get_task(GetTaskRequest(id=task_id)))
                            state = task["status"]["state"]
                            if state not in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING") or time.monotonic() > deadline:
                                break
                            await asyncio.sleep(0.05)
                        result["task"] = task
                elif op == "start":
                    c = client(False, True)
                    async for event in c.send_message(SendMessageRequest(message=message(step))):
                        started = MessageToDict(event)["task"]["id"]
                    result = {"id": started}
                elif op == "wait":
                    # Until the task has the state (and, with "text", a status message holding it).
                    deadline = time.monotonic() + 30
                    while True:
                        task = MessageToDict(await client(False, True).get_task(GetTaskRequest(id=started)))
                        status = task["status"]
                        said = json.dumps(status.get("message", {}))
                        if (status["state"] == step["state"] and step.get("text", "") in said) or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.05)
                    result = {"task": task}
                elif op == "sleep":
                    await asyncio.sleep(step["seconds"])
                    result = {}
                elif op == "cancel":
                    task = await client(False, True).cancel_task(CancelTaskRequest(id=step.get("id", started)))
                    result = {"task": MessageToDict(task)}
                elif op == "get":
                    task = await client(False, True).get_task(GetTaskRequest(id=step.get("id", started)))
                    result = {"task": MessageToDict(task)}
                else:
                    raise ValueError(f"unknown op {op}")
            except Exception as e:  # the client's own error types are what is being tested
                result = {"error": type(e).__name__, "message": str(e)}
            out["results"].append(result)
        for c in clients.values():
            await c.close()
    print(json.dumps(out))


asyncio.run(main())
