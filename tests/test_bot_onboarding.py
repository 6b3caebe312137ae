"""Onboarding end to end: bootstrap code, /bindgroup, invites, /whoami, /members, /remove."""

from __future__ import annotations

from models.tables import Role


async def test_bootstrap_bind_and_invite(harness):
    coord = await harness.coordinator("王主任")
    assert harness.member(coord).role == Role.coordinator
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "财政局", coordinator=coord)
    m = harness.member(li)
    assert m.role == Role.liaison and m.unit_id == harness.unit("区财政局").id
    [who] = await harness.say(li, group, "/whoami")
    assert "区财政局" in who["text"]
