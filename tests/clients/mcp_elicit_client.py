"""Answers plangate's questions through MCP elicitation with the official `mcp` Python SDK.

    python mcp_elicit_client.py '{"url": …, "token": …, "calls": [{"question": …, "catalog"?: …,
                                  "answer": {"action": "accept"|"decline"|"cancel", "content"?: {…}}}],
                                  "elicitation": true|false}'

Each call is one `ask`; the elicitation callback (registered only with "elicitation": true, so
the client declares the capability only then) answers the request it gets with the call's
"answer". Prints, per call, the elicitation requests seen and the tool result, as JSON.
tests/gateway/doors.rs runs it and judges the output.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    job = json.loads(sys.argv[1])
    headers = {"Authorization": f"Bearer {job['token']}"}
    out = {"calls": []}
    current = {}

    async def on_elicit(context, params):
        current["asked"].append({"message": params.message,
                                 "schema": params.requested_schema})
        answer = current["answer"]
        return types.ElicitResult(action=answer["action"], content=answer.get("content"))

    kwargs = {"elicitation_callback": on_elicit} if job.get("elicitation", True) else {}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(job["url"] + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, **kwargs) as session:
                await session.initialize()
                for call in job["calls"]:
                    current.clear()
                    current.update({"asked": [], "answer": call.get("answer", {"action": "cancel"})})
                    args = {"question": call["question"]}
                    if call.get("catalog"):
                        args["catalog"] = call["catalog"]
                    result = await session.call_tool("ask", args)
                    out["calls"].append({"asked": current["asked"],
                                         "text": result.content[0].text,
                                         "isError": result.is_error})
    print(json.dumps(out))


asyncio.run(main())
