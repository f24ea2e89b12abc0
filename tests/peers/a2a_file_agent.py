"""An agent on the official a2a-sdk 1.x that works with files (no LLM, no network).

    python a2a_file_agent.py PORT

Every message is answered with one artifact: a text part saying the sha256 of each file part it
received (`got <filename> <media type> <sha256>`, for inline bytes; `link <url>` for a URL) and
of the PNG it returns, then that PNG as a file part (`raw`, image/png, chart.png). It speaks 1.0
and the v0.3 names. tests/gateway/files.rs checks the bytes on both sides.
"""

import hashlib
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from a2a.helpers import new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part

# The PNG of fixtures/files (the tests read the same file).
PNG = (Path(__file__).resolve().parents[2] / "fixtures" / "files" / "chart.png").read_bytes()


class FileExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        msg = context.message
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(msg)
            await event_queue.enqueue_event(task)
        up = TaskUpdater(event_queue, task.id, task.context_id)
        await up.start_work()
        seen = []
        for part in msg.parts if msg is not None else []:
            if part.HasField("raw"):
                seen.append(f"got {part.filename} {part.media_type} {hashlib.sha256(part.raw).hexdigest()}")
            elif part.HasField("url"):
                seen.append(f"link {part.url}")
        seen.append(f"sent chart.png {hashlib.sha256(PNG).hexdigest()}")
        picture = Part(raw=PNG, media_type="image/png", filename="chart.png")
        await up.add_artifact([new_text_part("\n".join(seen)), picture], name="result")
        await up.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is not None:
            await TaskUpdater(event_queue, task.id, task.context_id).cancel()


def main() -> None:
    port = int(sys.argv[1])
    card = AgentCard(
        name="a2a-sdk file agent",
        description="Returns a PNG and reports the files it was sent",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=f"http://127.0.0.1:{port}/", protocol_binding="JSONRPC",
                                             protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "image/png", "application/octet-stream"],
        default_output_modes=["text/plain", "image/png"],
        skills=[AgentSkill(id="chart", name="chart", description="Draws a chart as a PNG",
                           tags=["files"], examples=["draw"])],
    )
    handler = DefaultRequestHandler(agent_executor=FileExecutor(), task_store=InMemoryTaskStore(),
                                    agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, rpc_url="/",
                                                                    enable_v0_3_compat=True)
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
