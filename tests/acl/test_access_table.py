"""The access table covers every route the broker serves (a missing one fails closed)."""

from __future__ import annotations

import pytest
from aiohttp import web

from restmq.http.access import ACCESS, COMMANDS
from restmq.http.app import ROUTES
from restmq.http.collectd import collectd_routes
from restmq.http.commands import HANDLERS
from restmq.http.routing import template_of


def _served() -> list[tuple[str, str]]:
    served = []
    for route in [*ROUTES, *collectd_routes()]:
        if isinstance(route, web.RouteDef):
            served.append((route.method, template_of(route.path)))
        elif isinstance(route, web.StaticDef):
            served.append(("GET", route.prefix))
    return served


@pytest.mark.parametrize("route", _served(), ids=" ".join)
def test_every_served_route_has_an_entry_in_the_access_table(route: tuple[str, str]) -> None:
    assert route in ACCESS, f"{route} would need the admin right; add it to restmq.http.access"


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_every_json_protocol_command_has_a_section_and_a_right(command: str) -> None:
    assert command in COMMANDS
