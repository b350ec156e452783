"""``python -m local.broker [serve]`` runs the emulator; ``… replay`` re-drives dead letters.

serve: declare the RabbitMQ topology of the manifests (waiting for RabbitMQ if needed), then run
the ingress, the Trigger dispatcher, the RabbitmqSource consumers and the PingSource timers
until SIGTERM or SIGINT. replay: move dead letters back to their Trigger queues and print how
many moved. Configuration comes from the environment (see ``local.broker.config``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from pika.exceptions import AMQPError, ChannelClosedByBroker

from filepipe import metrics
from filepipe.logs import configure_logging
from local import json_output
from local.broker.amqp import RECONNECT_DELAY, Publisher, connect
from local.broker.config import Settings
from local.broker.delivery import Sender
from local.broker.dispatcher import Consumer, TriggerHandler, blocking_subscription
from local.broker.durations import cron_interval
from local.broker.errors import BrokerError
from local.broker.ingress import IngressServer
from local.broker.manifests import load
from local.broker.replay import replay
from local.broker.sources import PingTimer, SinkSender, SourceHandler
from local.broker.timers import Timers
from local.broker.topology import PingRoute, Topology, build, declare

log = logging.getLogger("local.broker")

SHUTDOWN_GRACE = 10.0
"""Longest wait, in seconds, for in-flight deliveries on shutdown."""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # replay prints its count on stdout, so its logs go to stderr
    configure_logging("INFO", "broker", stream=sys.stderr if args.command == "replay" else None)
    json_output.capture("broker")
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
        configure_logging(settings.log_level)
        logging.getLogger("pika").setLevel(logging.CRITICAL)  # its errors are logged here
        topology = build(load(settings.knative_dir), settings)
        if args.command == "replay":
            routes = [topology.trigger(args.trigger)] if args.trigger else topology.triggers
            print(replay(settings.amqp_url, routes, args.limit))
            return 0
        return serve(settings, topology)
    except BrokerError as exc:
        log.error("%s", exc)
        return 2
    except AMQPError as exc:
        log.error("RabbitMQ: %r", exc)
        return 1


def serve(settings: Settings, topology: Topology) -> int:
    """Run the emulator until SIGTERM/SIGINT; returns the exit status."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    intervals = [(route, _ping_interval(route, settings)) for route in topology.pings]
    if not _declare(settings.amqp_url, topology, stop):
        return 0
    publisher = Publisher(settings.amqp_url)
    metrics.serve(settings.metrics_port)
    try:
        ingress = IngressServer((settings.host, settings.port), topology, publisher)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    sender = Sender(
        timeout=settings.delivery_timeout,
        backoff_scale=settings.backoff_scale,
        stop=stop,
        event_token=settings.event_token,
    )
    sinks = SinkSender(publisher, sender)
    retries = Timers()
    subscriptions = [
        *(
            TriggerHandler(
                route, sender, publisher, retries, max_waiting=settings.max_waiting
            ).subscription()
            for route in topology.triggers
        ),
        *(
            blocking_subscription(
                route.queue, route.source.parallelism, SourceHandler(route, sinks)
            )
            for route in topology.sources
        ),
    ]
    consumer = Consumer(
        settings.amqp_url,
        topology,
        subscriptions,
        stop=stop,
        timers=retries,
        grace=min(settings.delivery_timeout, SHUTDOWN_GRACE),
    )
    timers = [
        PingTimer(route, sinks, interval=interval, stop=stop)
        for route, interval in intervals
        if interval > 0
    ]
    publisher.start()
    retries.start()
    consumer.start()
    for timer in timers:
        timer.start()
    ingress.start()
    log.info(
        "broker ingress on http://%s:%d/ (%d trigger(s), %d source(s), %d ping timer(s))",
        *(settings.host, settings.port, len(topology.triggers), len(topology.sources)),
        len(timers),
    )
    while not stop.wait(1.0):
        pass
    log.info("stopping")
    ingress.stop()
    for timer in timers:
        timer.join()
    consumer.join()
    publisher.stop()
    return 0


def _ping_interval(route: PingRoute, settings: Settings) -> float:
    """FILEPIPE_PING_INTERVAL if set, else the period of the PingSource's schedule."""
    if settings.ping_interval is not None:
        return settings.ping_interval
    return cron_interval(route.source.schedule)


def _declare(amqp_url: str, topology: Topology, stop: threading.Event) -> bool:
    """Declare the topology, waiting for RabbitMQ; False if stopped first."""
    while not stop.is_set():
        try:
            connection = connect(amqp_url)
        except AMQPError as exc:
            log.warning("waiting for RabbitMQ at startup (%r)", exc)
            stop.wait(RECONNECT_DELAY)
            continue
        try:
            declare(connection.channel(), topology)
            return True
        except ChannelClosedByBroker as exc:
            raise BrokerError(f"RabbitMQ refused the topology: {exc}") from exc
        finally:
            if connection.is_open:
                connection.close()
    return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.broker", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the emulator (the default)")
    replay_parser = commands.add_parser("replay", help="move dead letters back to their Trigger")
    replay_parser.add_argument("--trigger", help="only this Trigger (default: every Trigger)")
    replay_parser.add_argument("--limit", type=int, help="at most N dead letters per Trigger")
    return parser


if __name__ == "__main__":
    sys.exit(main())
