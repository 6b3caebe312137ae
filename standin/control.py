"""A loopback-only HTTP control channel for a stand-in run as its own process.

``python -m standin --control-port N`` serves it next to the Bot API, so that a test
driver in another process (the benchmarks, the fault soak) can play people and read
what the bot did, while the bot process may be killed and restarted: the stand-in
outlives it. JSON in, JSON out, under ``/control/``:

``POST /control/users``    ``{"users": [{"id", "first_name", "username"?}]}`` - people (started the bot)
``POST /control/groups``   ``{"groups": [{"id", "title", "members": [user ids]}]}``
``POST /control/send``     ``{"messages": [{"user_id", "chat_id", "text", "reply_to"?}]}``: each
                           person writes at the same moment; answers the messages' ids and
                           ``enqueued_at`` (``time.time()`` when the update was queued)
``GET  /control/calls``    ``?after=N&methods=sendMessage,sendPhoto``: the bot's recorded calls
                           from index N on (``time`` is when the request arrived), ``next``
``GET  /control/stats``    counters, updates not yet fetched, requests in flight
``POST /control/limits``   ``{"enabled": bool, "window_scale"?: float}``: flood limits on/off
``POST /control/reset``    forget recorded calls and counters (people and chats stay)

It binds 127.0.0.1 only and refuses any peer that is not loopback.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from aiohttp import web

from .server import BotApiStandin, RecordedCall, Stats

__all__ = ["ControlServer"]

JsonDict = dict[str, Any]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload, ensure_ascii=False).encode(),
                        content_type="application/json")


def _call_json(index: int, call: RecordedCall) -> JsonDict:
    params = call.params
    reply = params.get("reply_parameters")
    reply_to = params.get("reply_to_message_id")
    if reply_to is None and isinstance(reply, dict):
        reply_to = reply.get("message_id")
    result = call.result if isinstance(call.result, dict) else {}
    retry_after = (call.response.get("parameters") or {}).get("retry_after")
    return {
        "i": index, "method": call.method, "time": call.time, "duration": call.duration,
        "status": call.status, "chat_id": params.get("chat_id"), "text": params.get("text"),
        "caption": params.get("caption"), "reply_to": reply_to,
        "message_id": result.get("message_id"), "retry_after": retry_after,
        "description": call.description,
    }


@web.middleware
async def _loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
    peer = request.remote or ""
    try:
        ok = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        ok = False
    if not ok:
        return _json({"ok": False, "description": "loopback only"}, status=403)
    return await handler(request)


class ControlServer:
    """Serves the control channel of ``api`` on ``127.0.0.1:port`` (0: a free port)."""

    def __init__(self, api: BotApiStandin, *, port: int = 0) -> None:
        self.api = api
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/control"

    async def start(self) -> ControlServer:
        app = web.Application(middlewares=[_loopback_only])
        r = app.router
        r.add_post("/control/users", self._users)
        r.add_post("/control/groups", self._groups)
        r.add_post("/control/send", self._send)
        r.add_get("/control/calls", self._calls)
        r.add_get("/control/stats", self._stats)
        r.add_post("/control/limits", self._limits)
        r.add_post("/control/reset", self._reset)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._requested_port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ------------------------------------------------------------------ handlers

    async def _users(self, request: web.Request) -> web.Response:
        body = await request.json()
        made = []
        for u in body.get("users", []):
            if int(u["id"]) in self.api.world.users:
                made.append(int(u["id"]))
                continue
            user = self.api.make_user(u.get("first_name") or str(u["id"]), u.get("username"),
                                      user_id=int(u["id"]))
            made.append(user.id)
        return _json({"ok": True, "users": made})

    async def _groups(self, request: web.Request) -> web.Response:
        body = await request.json()
        made = []
        for g in body.get("groups", []):
            gid = int(g["id"])
            chat = self.api.world.chats.get(gid)
            if chat is None:
                chat = self.api.make_group(g.get("title") or str(gid), chat_id=gid)
            for uid in g.get("members", []):
                self.api.world.set_status(gid, int(uid), "member")
            made.append(chat.id)
        return _json({"ok": True, "groups": made})

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        out = []
        for m in body.get("messages", []):
            user = self.api.world.users[int(m["user_id"])]
            chat_id = int(m.get("chat_id", user.id))
            chat = self.api.private_chat(user) if chat_id == user.id else self.api.world.chats[chat_id]
            message = await self.api.send_text(user, chat, m["text"], reply_to=m.get("reply_to"))
            out.append({"message_id": message["message_id"], "chat_id": chat.id,
                        "enqueued_at": time.time()})
        return _json({"ok": True, "messages": out})

    async def _calls(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        methods = {m.lower() for m in request.query.get("methods", "").split(",") if m}
        calls = self.api.calls
        end = len(calls)
        picked = [_call_json(i, c) for i, c in enumerate(calls[after:end], start=after)
                  if not methods or c.method.lower() in methods]
        return _json({"ok": True, "next": end, "calls": picked})

    async def _stats(self, request: web.Request) -> web.Response:
        s: Stats = self.api.stats
        return _json({
            "ok": True, "requests": s.requests, "errors": s.errors, "rate_limited": s.rate_limited,
            "faults_fired": s.faults_fired, "updates_fetched": s.updates_fetched,
            "by_method": dict(s.by_method), "unfetched": self.api.updates.unfetched,
            "inflight": dict(self.api._inflight),  # noqa: SLF001 - the stand-in's own bookkeeping
            "calls": len(self.api.calls),
        })

    async def _limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("enabled", True):
            self.api.limits.enable(window_scale=float(body.get("window_scale", 1.0)))
        else:
            self.api.limits.disable()
        return _json({"ok": True, "enabled": self.api.limits.enabled})

    async def _reset(self, request: web.Request) -> web.Response:
        self.api.calls.clear()
        self.api.stats = Stats()
        return _json({"ok": True})
