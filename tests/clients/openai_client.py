"""Drives plangate's OpenAI-compatible door with the official `openai` package and prints what it saw.

    python openai_client.py '{"url": …, "token": …, "model": …, "question": …}'

tests/gateway/doors.rs runs it and judges the JSON printed on stdout.
"""

import json
import sys

import openai
from openai import OpenAI

job = json.loads(sys.argv[1])
client = OpenAI(base_url=job["url"] + "/v1", api_key=job["token"], max_retries=0, timeout=60)
messages = [
    {"role": "system", "content": "Answer in one line."},
    {"role": "user", "content": "What came before?"},
    {"role": "assistant", "content": "Nothing yet."},
    {"role": "user", "content": job["question"]},
]
out = {"models": [m.id for m in client.models.list()]}


def failure(call):
    try:
        call()
        return {"raised": None}
    except openai.APIError as e:
        return {"raised": type(e).__name__, "status": getattr(e, "status_code", None),
                "code": getattr(e, "code", None), "message": e.message}


r = client.chat.completions.create(model=job["model"], messages=messages)
out["complete"] = {"content": r.choices[0].message.content, "finish": r.choices[0].finish_reason,
                   "usage": r.usage.model_dump() if r.usage else None, "id": r.id}

text, activity, finish, usage = "", [], None, None
for chunk in client.chat.completions.create(model=job["model"], messages=messages, stream=True,
                                            stream_options={"include_usage": True}):
    extra = chunk.to_dict().get("plangate")
    if extra:
        activity.append(extra)
    if chunk.choices:
        if chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["stream"] = {"content": text, "finish": finish, "usage": usage, "activity": activity}

out["unknown_model"] = failure(lambda: client.chat.completions.create(model="gpt-4o", messages=messages))
out["bad_token"] = failure(lambda: OpenAI(base_url=job["url"] + "/v1", api_key="wrong", max_retries=0)
                           .chat.completions.create(model=job["model"], messages=messages))
out["tools"] = failure(lambda: client.chat.completions.create(
    model=job["model"], messages=messages,
    tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]))
if job.get("failing_model"):
    out["failing"] = failure(lambda: client.chat.completions.create(model=job["failing_model"], messages=messages))
    out["failing_stream"] = failure(lambda: list(client.chat.completions.create(
        model=job["failing_model"], messages=messages, stream=True)))
print(json.dumps(out))
