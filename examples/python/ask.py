"""Ask a plangate gateway one question and print the plan as it runs (httpx + httpx-sse).

    pip install -r requirements.txt && python ask.py "your question"

PLANGATE_URL (default http://127.0.0.1:3774), PLANGATE_TOKEN (when the gateway wants one),
PLANGATE_AGENT_URL (default http://127.0.0.1:3773, where `plangate example-agent` listens).
Exit status: 0 answered, 1 the plan failed, 2 the gateway refused the request, 3 cut short.
"""

import json
import os
import sys

import httpx
from httpx_sse import connect_sse

gateway = os.environ.get("PLANGATE_URL", "http://127.0.0.1:3774")
agent_url = os.environ.get("PLANGATE_AGENT_URL", "http://127.0.0.1:3773")
question = sys.argv[1] if len(sys.argv) > 1 else "Say hello, then shout it."
headers = {"Authorization": f"Bearer {os.environ['PLANGATE_TOKEN']}"} if os.environ.get("PLANGATE_TOKEN") else {}
skills = [
    {"id": "echo", "description": "Repeats the request, prefixed with `echo: `."},
    {"id": "shout", "description": "Repeats the request in upper case."},
]
body = {"question": question, "agents": [{"name": "example", "endpoint": agent_url, "skills": skills}]}

status = 3  # stays 3 unless `done` arrives
tasks = {}  # task_id -> "agent/skill"
with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client:
    with connect_sse(client, "POST", f"{gateway}/plan", json=body, headers=headers) as source:
        if source.response.status_code != 200:
            # Refusals are JSON: {"error": "<code>", "detail"?: "<what to fix>", "issues"?: [...]}.
            source.response.read()
            print(f"gateway refused the plan: HTTP {source.response.status_code} {source.response.text}", file=sys.stderr)
            sys.exit(2)
        for sse in source.iter_sse():
            frame = json.loads(sse.data)
            if sse.event == "task.started":
                tasks[frame["task_id"]] = f"{frame['agent']}/{frame['skill']}"
                print(f"… {tasks[frame['task_id']]} started", flush=True)
            elif sse.event == "task.finished":
                mark = "✓" if frame["state"] == "completed" else "✗"
                error = f": {frame['error']}" if frame.get("error") else ""
                print(f"{mark} {tasks.get(frame['task_id'])} {frame['state']}{error}", flush=True)
            elif sse.event == "text.delta":
                print(frame["delta"], end="", flush=True)
            elif sse.event == "final":
                print(f"\n— {frame['stop_reason']}, {frame['usage']['totalTokens']} tokens")
                status = 0
            elif sse.event == "error":
                print(f"\nplan failed ({frame['code']}): {frame['message']}", file=sys.stderr)
                status = 1
            elif sse.event == "done":
                status = 0 if status == 3 else status  # a duplicate request: nothing ran
                break
sys.exit(status)
