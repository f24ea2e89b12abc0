"""A Bindu agent (bindufy, no LLM, no network) that works with files.

    python bindu_file_agent.py PORT KEY_DIR

Returns a PNG the only way a Bindu handler can: as a file-part object in its result, which
Bindu's artifact builder wraps in a data part (`{"result": {"kind": "file", "file": {...}}}`);
Bindu keeps the file parts a caller sent in the task's history (and gives text files to the
handler as text). Bindu signs text parts only, never data or file parts.
tests/gateway/files.rs checks what the gateway makes of it.
"""

import base64
import os
import sys
from pathlib import Path
from typing import Any

# The PNG of fixtures/files (the tests read the same file).
PNG = (Path(__file__).resolve().parents[2] / "fixtures" / "files" / "chart.png").read_bytes()


async def handler(messages: list[dict[str, Any]]):
    # Bindu keeps only the last item of a list result, and iterates a bare dict: one item.
    return [{"kind": "file", "file": {"name": "chart.png", "mimeType": "image/png",
                                      "bytes": base64.b64encode(PNG).decode()}}]


def main() -> None:
    port = int(sys.argv[1])
    key_dir = Path(sys.argv[2]).resolve()
    key_dir.mkdir(parents=True, exist_ok=True)
    # Bindu writes logs/ into the working directory as it is imported: keep it in the key dir.
    os.chdir(key_dir)
    from bindu.penguin.bindufy import bindufy

    config = {
        "author": "files@example.com",
        "name": "file-agent",
        "description": "Returns a PNG and reads the text files it is sent",
        "deployment": {"url": f"http://127.0.0.1:{port}", "expose": False},
        "skills": [],
        "capabilities": {"streaming": False},
        "telemetry": False,
        "monitoring": False,
        "auth": {"enabled": False},
        "storage": {"type": "memory"},
        "scheduler": {"type": "memory"},
        "recreate_keys": False,
    }
    bindufy(config, handler, key_dir=key_dir)


if __name__ == "__main__":
    main()
