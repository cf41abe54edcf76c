"""模拟器: the chat simulator (bot/simulator) inside the console, for superusers, when the bot
runs the simulated chat (the demo, a training set-up); otherwise a page saying so."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from bot import simulator
from bot.app import BotApp
from bot.transports.sim import SimTransport
from bot.web import texts
from bot.web.deps import ViewerDep, get_viewer, render

fallback = APIRouter()


async def superuser_only(viewer: ViewerDep) -> None:
    """403 for anyone but a superuser (the simulator speaks as anyone in the chain)."""
    if not viewer.superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN, texts.FORBIDDEN)


@fallback.get("/simulator", response_class=HTMLResponse)
@fallback.get("/simulator/", response_class=HTMLResponse)
async def no_simulator(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """The bot talks to a real chat platform: no simulator."""
    return render(request, "error.html", viewer=viewer, page="simulator",
                  message=texts.SIMULATOR_NEEDS_SIM, status_code=status.HTTP_404_NOT_FOUND)


def mount(api: FastAPI, *, prefix: str) -> None:
    """The simulator's page and endpoints at {prefix}/simulator/, behind the login, the CSRF
    check and the superuser rule."""
    bot: BotApp = api.state.bot
    guard = [Depends(get_viewer), Depends(superuser_only)]
    if isinstance(bot.transport, SimTransport):
        sim = simulator.Simulator(bot)
        api.state.simulator = sim
        api.include_router(simulator.router(sim, base=f"{prefix}/simulator",
                                            dependencies=guard))
    else:
        api.include_router(fallback, prefix=prefix, dependencies=guard,
                           include_in_schema=False)
