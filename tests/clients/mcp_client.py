"""Drives plangate's MCP door with the official `mcp` Python SDK over Streamable HTTP.

    python mcp_client.py '{"url": …, "token": …, "question": …, "catalog"?: …, "failing_catalog"?: …}'

Initializes, lists the tools, calls `list_catalogs` and `ask` (with progress notifications), and
prints what it saw as JSON. tests/gateway/doors.rs runs it and judges the output.
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    job = json.loads(sys.argv[1])
    out = {}
    headers = {"Authorization": f"Bearer {job['token']}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(job["url"] + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server"] = init.server_info.name
                out["protocol"] = init.protocol_version
                out["tools"] = [t.name for t in (await session.list_tools()).tools]
                await session.send_ping()
                catalogs = await session.call_tool("list_catalogs", {})
                out["catalogs"] = json.loads(catalogs.content[0].text)
                progress = []

                async def on_progress(value, total, message):
                    progress.append({"progress": value, "message": message})

                args = {"question": job["question"]}
                if job.get("catalog"):
                    args["catalog"] = job["catalog"]
                answer = await session.call_tool("ask", args, progress_callback=on_progress)
                out["ask"] = {"text": answer.content[0].text, "isError": answer.is_error, "progress": progress}
                if job.get("failing_catalog"):
                    failed = await session.call_tool("ask", {"question": "q", "catalog": job["failing_catalog"]})
                    out["failing"] = {"text": failed.content[0].text, "isError": failed.is_error}
                unknown = await session.call_tool("ask", {"question": "q", "catalog": "nope"})
                out["unknown_catalog"] = {"text": unknown.content[0].text, "isError": unknown.is_error}
    print(json.dumps(out))


asyncio.run(main())
