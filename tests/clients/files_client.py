"""Asks plangate's MCP and OpenAI doors for an answer with files, with the official `mcp` and
`openai` SDKs, and prints what each returned.

    python files_client.py '{"url": …, "token": …, "question": …, "model": …}'

MCP: the `ask` result's content items as the SDK parsed them (text, resource links).
OpenAI: the completion's content (the answer, then Markdown links to the files).
tests/gateway/files.rs runs it, fetches the links and judges the bytes.
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from openai import OpenAI


async def mcp(job):
    headers = {"Authorization": f"Bearer {job['token']}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(job["url"] + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                answer = await session.call_tool("ask", {"question": job["question"]})
                return {"isError": answer.is_error,
                        "content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in answer.content]}


job = json.loads(sys.argv[1])
out = {"mcp": asyncio.run(mcp(job))}
client = OpenAI(base_url=job["url"] + "/v1", api_key=job["token"], max_retries=0, timeout=60)
r = client.chat.completions.create(model=job["model"], messages=[{"role": "user", "content": job["question"]}])
out["openai"] = {"content": r.choices[0].message.content}
print(json.dumps(out))
