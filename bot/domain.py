"""The campaign's rules, as the bot calls them.

Progress, review and scoring live in ``models.progress`` / ``models.status`` /
``models.report`` (another part of the project). This module is the bot's one
doorway to them, so that a change of their signatures touches one file. Keyword
arguments a rule does not take are dropped (e.g. ``expected_version`` where the
rule checks versions itself); the bot checks versions too, before calling.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from models.errors import DomainError


class NotReady(DomainError):
    """A part of the domain the bot needs has not been installed."""

    code = "not_ready"


def _find(name: str, modules: tuple[str, ...]) -> Callable[..., Any]:
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        fn = getattr(module, name, None)
        if fn is not None:
            return fn
    raise NotReady("该功能尚未就绪（评分与进度模块未安装），请稍后再试。")


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    params = inspect.signature(fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(**kwargs)


PROGRESS = ("models.progress",)
STATUS = ("models.status", "models.report")


def rule(name: str, **kwargs: Any) -> Any:
    """Call the progress rule ``name`` (set_progress, submit_assignment, …)."""
    return _call(_find(name, PROGRESS), **kwargs)


def status_fn(name: str, **kwargs: Any) -> Any:
    """Call a status/report function (campaign_status, render_status, …)."""
    return _call(_find(name, STATUS), **kwargs)


def status_call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a status/report function positionally (render_* take the status first)."""
    fn = _find(name, STATUS)
    params = inspect.signature(fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)
