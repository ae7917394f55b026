"""``python -m example_app``: the issuer, the downstream API and the service, in one process."""

from __future__ import annotations

import asyncio

import uvicorn

from . import downstream, issuer
from .service import create_app


async def main() -> None:
    servers = [
        uvicorn.Server(
            uvicorn.Config(issuer.app, host="127.0.0.1", port=8001, log_level="warning")
        ),
        uvicorn.Server(
            uvicorn.Config(downstream.app, host="127.0.0.1", port=8002, log_level="warning")
        ),
        uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=8000)),
    ]
    print("service on http://127.0.0.1:8000 - try: curl http://127.0.0.1:8000/acme/orders")
    await asyncio.gather(*(server.serve() for server in servers))


if __name__ == "__main__":
    asyncio.run(main())
