"""``kyoten tower``: commission, query and emulate PATLITE signal towers.

::

    kyoten tower set URL --red on --amber blink --buzzer 1   # lamps not named are turned off
    kyoten tower status URL
    kyoten tower clear URL
    kyoten tower emulate --protocol pns-nh --listen 127.0.0.1:10000 [--web 127.0.0.1:8081]
    kyoten tower emulate --pty                                # prints the device path

``set`` always sends the whole vector, exactly like the bridge does, so what an engineer sees
while commissioning is what the bridge will produce. Unlike the bridge (one attempt per command,
its pipeline retries), ``set``/``status``/``clear`` retry an unreachable tower ``--retries``
times (default 2) with a short backoff, for a person at a terminal. Exit status: 0 done, 1 the
tower failed or refused, 2 bad arguments or URL.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence

from kyoten.hardware.emulator import (
    PROTOCOLS,
    EmulatedTower,
    PtyFrontEnd,
    TcpFrontEnd,
    WebFrontEnd,
)
from kyoten.hardware.errors import TowerConfigError, TowerError, UnsupportedState
from kyoten.hardware.model import COLOURS, Light, TowerState
from kyoten.hardware.protocol.pns import PnsLa6, parse_tiers
from kyoten.hardware.tower import open_tower

NETWORK_PROTOCOLS = tuple(p for p in PROTOCOLS if p != "serial")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kyoten tower", description="Drive, query or emulate PATLITE signal towers."
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    url_help = (
        "pns://host[:10000]?model=nh|la6|lr5, phn://host[:10000], http://[user:pw@]host, "
        "serial:///dev/ttyUSB0?baud=9600, socket://host:port"
    )

    set_ = sub.add_parser("set", help="show a lamp vector (unnamed lamps off)")
    set_.add_argument("url", help=url_help)
    for colour in COLOURS:
        set_.add_argument(f"--{colour.value}", choices=[light.value for light in Light])
    set_.add_argument("--buzzer", type=int, default=0, metavar="PATTERN", help="0 = silent")
    for name, text in (("status", "read back what the tower shows"), ("clear", "all off")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("url", help=url_help)
    for cmd in (set_, sub.choices["status"], sub.choices["clear"]):
        cmd.add_argument("--timeout", type=float, default=3.0, help="seconds per attempt")
        cmd.add_argument(
            "--retries", type=int, default=2, help="extra attempts if the tower is unreachable"
        )

    emu = sub.add_parser("emulate", help="run a tower emulator")
    where = emu.add_mutually_exclusive_group(required=True)
    where.add_argument("--protocol", choices=NETWORK_PROTOCOLS)
    where.add_argument("--pty", action="store_true", help="serial converter on a pseudo-terminal")
    emu.add_argument("--listen", type=_address, default=("127.0.0.1", 10000), metavar="HOST:PORT")
    emu.add_argument("--web", type=_address, metavar="HOST:PORT", help="status page address")
    emu.add_argument("--tiers", help="LA6 tier colours from the top, e.g. red,amber,green")
    return parser


async def _drive(args: argparse.Namespace) -> int:
    async with open_tower(args.url, timeout=args.timeout, retries=args.retries) as tower:
        if args.action == "set":
            lights = {c: Light(getattr(args, c.value) or "off") for c in COLOURS}
            await tower.set(TowerState.from_lights(lights, args.buzzer))
        elif args.action == "clear":
            await tower.clear()
        else:
            print((await tower.status()).describe())
    return 0


async def _emulate(args: argparse.Namespace) -> int:
    def show(state: TowerState) -> None:
        print(f"{time.strftime('%H:%M:%S')} {state.describe()}", flush=True)

    protocol = "serial" if args.pty else args.protocol
    codec = PnsLa6(tiers=parse_tiers(args.tiers)) if protocol == "pns-la6" and args.tiers else None
    if args.tiers and protocol != "pns-la6":
        raise TowerConfigError("--tiers applies to --protocol pns-la6 only")
    tower = EmulatedTower(codec or PROTOCOLS[protocol](), on_change=show)
    fronts: list[TcpFrontEnd | WebFrontEnd | PtyFrontEnd] = []
    if args.pty:
        pty = PtyFrontEnd(tower)
        fronts.append(pty)
        await pty.start()
        print(f"kyoten tower emulator: serial converter on {pty.path}", flush=True)
    elif protocol == "http":
        web = WebFrontEnd(tower, *args.listen)
        fronts.append(web)
        await web.start()
        print(f"kyoten tower emulator: http listening on {web.host}:{web.port}", flush=True)
    else:
        tcp = TcpFrontEnd(tower, *args.listen)
        fronts.append(tcp)
        await tcp.start()
        print(f"kyoten tower emulator: {protocol} listening on {tcp.host}:{tcp.port}", flush=True)
    if args.web and protocol != "http":
        page = WebFrontEnd(tower, *args.web)
        fronts.append(page)
        await page.start()
        print(f"kyoten tower emulator: status page on http://{page.host}:{page.port}/", flush=True)
    show(tower.state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for front in fronts:
            await front.stop()
    return 0


def main(argv: Sequence[str]) -> int:
    """Entry point for ``kyoten tower …``; ``argv[0]`` is ``"tower"``."""
    args = build_parser().parse_args(list(argv[1:]))
    try:
        if args.action == "emulate":
            return asyncio.run(_emulate(args))
        return asyncio.run(_drive(args))
    except (TowerConfigError, UnsupportedState) as exc:
        print(f"kyoten tower: {exc}", file=sys.stderr)
        return 2
    except TowerError as exc:
        print(f"kyoten tower: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the emulator's address is in use
        print(f"kyoten tower: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(["tower", *sys.argv[1:]]))
