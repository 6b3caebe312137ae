"""``telegram.proxy_url``: every Bot API call and file download goes through the proxy.

A server in mainland China reaches the Bot API through an HTTP or SOCKS5 proxy. Here a small
forwarding HTTP proxy on loopback stands between the real application and the stand-in, and
records what passes; the proxy's credentials never reach the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web

from infra.config import Settings
from infra.logging_setup import settings_secrets
from tests.harness import Harness, make_settings

PDF = b"%PDF-1.4\n" + b"0" * 512 + b"\n%%EOF\n"
_HOP = {"host", "proxy-connection", "proxy-authorization", "content-length", "connection", "keep-alive"}


class ForwardingProxy:
    """An HTTP proxy for http:// targets (absolute-form requests), recording each one."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.auth: list[str | None] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, str(request.url)))
        self.auth.append(request.headers.get("Proxy-Authorization"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with ClientSession() as session, session.request(
                request.method, str(request.url), data=await request.read(), headers=headers) as answer:
            body = await answer.read()
            return web.Response(status=answer.status, body=body,
                                headers={"Content-Type": answer.headers.get("Content-Type", "application/json")})


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[ForwardingProxy]:
    p = ForwardingProxy()
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


@pytest.fixture
def bot_settings(db_url: str, tmp_path: Path, proxy: ForwardingProxy) -> Settings:
    return make_settings(db_url=db_url, storage_dir=tmp_path / "evidence",
                         telegram={"proxy_url": f"http://qcbot:s3cret-pw@127.0.0.1:{proxy.port}"})


async def test_every_bot_api_call_and_download_goes_through_the_proxy(
    harness: Harness, proxy: ForwardingProxy, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    [prompt] = await h.say(li, group, "/evidence 7")
    [ok] = await h.send_file(li, group, "方案.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"]
    await h.idle()
    through = {url.rsplit("/", 1)[-1] for _, url in proxy.seen if "/bot" in url and "/file/" not in url}
    called = {c.method for c in h.api.calls}
    assert called <= through, called - through  # every method the bot called went through it
    assert {"getUpdates", "sendMessage", "getFile"} <= through
    assert any("/file/bot" in url for _, url in proxy.seen)  # the download too
    assert all(a and a.startswith("Basic ") for a in proxy.auth)  # with the credentials
    assert "s3cret-pw" not in caplog.text


def test_the_proxy_password_is_a_secret_to_the_log(bot_settings: Settings) -> None:
    assert "s3cret-pw" in settings_secrets(bot_settings)


def test_a_proxy_url_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="proxy_url"):
        Settings.model_validate({"telegram": {"proxy_url": "ftp://proxy:21"}})
