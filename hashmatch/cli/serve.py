"""`hashmatch serve` (the upload-scanning service, hashmatch[serve]) and `hashmatch token`
(its bearer tokens)."""
from __future__ import annotations

import logging

import click

from hashmatch.cli.common import STORE_OPTION, SetupError, decode_limits, limit_options, match_config, match_options
from hashmatch.errors import ConfigurationError
from hashmatch.isolation.workers import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S

TOKENS_OPTION = click.option("--tokens", "tokens_path", required=True, type=click.Path(dir_okay=False),
                             help="The token file (JSON, 0600; holds only the hashes of the secrets).")


@click.command("serve")
@STORE_OPTION
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default: put TLS and public exposure in a reverse proxy).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Hashing worker processes [default: the usable cores].")
@click.option("--tokens", "tokens_path", type=click.Path(dir_okay=False),
              help="Token file (hashmatch token add). Without it the service refuses to start unless --no-auth.")
@click.option("--no-auth", is_flag=True, help="Serve without authentication (a loopback-only test setup).")
@click.option("--max-body", type=click.IntRange(min=1), default=256 << 20, show_default=True,
              help="Largest upload or request body, bytes (413 beyond).")
@click.option("--spool-above", "in_memory", type=click.IntRange(min=0), default=1 << 20, show_default=True,
              help="Bytes of an upload held in memory; the rest goes to a 0600 file in --spool-dir.")
@click.option("--spool-dir", type=click.Path(file_okay=False), help="[default: STORE/.hashmatch-spool]")
@click.option("--max-json", type=click.IntRange(min=1024), default=16 << 20, show_default=True,
              help="Largest JSON body (lookups, admin changes), bytes (413 beyond).")
@click.option("--queue", "max_pending", type=click.IntRange(min=1), default=None,
              help="Uploads waiting for or in a worker before 503 + Retry-After [default: 4 per worker].")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=DEFAULT_TIMEOUT_S,
              show_default=True, help="Wall-clock seconds one upload may take from hand-over to its worker, whatever "
                                      "its size or declared video duration (a typed 422 timeout beyond).")
@click.option("--cpu-limit", "cpu_limit_s", type=click.FloatRange(min=0.001), default=None,
              help="CPU seconds one upload may use in its worker, every decoder thread counted [default: --timeout].")
@click.option("--header-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds a client has from connecting (or a request's first byte) to the end of its headers.")
@click.option("--body-timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds a client has to send a request body (408 beyond).")
@click.option("--fetch-every", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Fetch the store's exchange sources every so many seconds in the background (0: never).")
@click.option("--shutdown-grace", "grace_s", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds a stopping server (SIGTERM, Ctrl-C) waits for requests in flight; then the workers are "
                   "killed and it exits.")
@click.option("--memory-limit", "memory_limit_mb", type=click.IntRange(min=0), default=DEFAULT_MEMORY_LIMIT >> 20,
              show_default=True, help="Address-space limit per worker, MiB (0: none).")
@click.option("--poll", "poll_s", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between checks for a new store generation.")
@click.option("--audit-log", type=click.Path(dir_okay=False), help="[default: STORE/audit.jsonl]")
@click.option("--decisions", "decision_log", type=click.Path(dir_okay=False),
              help="The decision log POST /v1/decisions appends to [default: STORE/decisions.jsonl].")
@click.option("--evidence-ttl", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Seconds a matched answer's evidence is kept for a decision naming its request_id.")
@click.option("-a", "--algorithm", "algorithms", multiple=True,
              help="Algorithms to hash and match [default: those in the store when the service starts].")
@match_options(dihedral_help="Also match PDQ's rotated and flipped variants.",
               trim_help="Also match the hashes of uploads with flat borders trimmed.")
@limit_options
def serve_command(store_path, host, port, workers, tokens_path, no_auth, max_body, in_memory, spool_dir, max_json,
                  max_pending, timeout_s, cpu_limit_s, header_timeout, body_timeout, fetch_every, grace_s,
                  memory_limit_mb, poll_s, audit_log, decision_log, evidence_ttl, algorithms, max_bytes, max_pixels,
                  no_verify_jpeg, seconds_per_hash, max_video_seconds, animated_as_video, **match) -> None:
    """Serve matching over HTTP: POST /v1/match (an upload), POST /v1/lookup (hashes),
    GET /v1/lists, admin changes, POST /v1/decisions, /healthz, /readyz, /metrics,
    /openapi.json."""
    try:
        import uvicorn

        from hashmatch.config import usable_cores
        from hashmatch.service import tokens as token_store
        from hashmatch.service.app import ServiceOptions, create_app
        from hashmatch.service.live import LiveMatcher
        from hashmatch.service.server import protocol_with_header_timeout
        from hashmatch.signals.hasher import parse_algorithms
    except ImportError as exc:
        raise SetupError(f"hashmatch serve needs its extra: pip install 'hashmatch[serve]' ({exc})") from exc
    if bool(tokens_path) == bool(no_auth):
        raise click.UsageError("give --tokens FILE, or --no-auth for a loopback-only test setup")
    if no_auth and not _loopback_only(host):
        raise click.UsageError(f"--no-auth serves only on loopback addresses; {host!r} is not one (use --tokens)")
    try:
        tokens = None if no_auth else token_store.TokenFile(tokens_path)
        if tokens is not None and not token_store.load(tokens_path):
            raise ConfigurationError(f"{tokens_path} holds no token: add one with hashmatch token add")
        config = match_config(**match, algorithms=parse_algorithms(",".join(algorithms)) if algorithms else None,
                              limits=decode_limits(max_bytes, max_pixels, no_verify_jpeg, max_video_seconds,
                                                   animated_as_video), seconds_per_hash=seconds_per_hash)
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    workers = workers or usable_cores()
    live = LiveMatcher(store_path, config, workers=workers, timeout_s=timeout_s, cpu_limit_s=cpu_limit_s,
                       memory_limit=(memory_limit_mb << 20) or None, poll_s=poll_s)
    app = create_app(live, ServiceOptions(max_body=max_body, max_pending=max_pending or 4 * workers,
                                          in_memory=in_memory, spool_dir=spool_dir, max_json=max_json,
                                          body_timeout=body_timeout, fetch_every=fetch_every,
                                          audit_log=audit_log, decision_log=decision_log,
                                          evidence_ttl=evidence_ttl, tokens=tokens))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=grace_s,
                http=protocol_with_header_timeout(header_timeout))


def _loopback_only(host: str) -> bool:
    """Whether every address `host` binds to is a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress
    import socket

    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    try:
        return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)
    except ValueError:
        return False


@click.group("token")
def token_group() -> None:
    """Bearer tokens of hashmatch serve (the file keeps only their hashes)."""


@token_group.command("add")
@click.argument("name")
@click.option("--scope", "scopes", default="match", show_default=True,
              help="Comma list: match (match and lookup), admin (list and entry changes), metrics (/metrics), "
                   "decide (/v1/decisions).")
@TOKENS_OPTION
def token_add(name, scopes, tokens_path) -> None:
    """Create token NAME and print its secret once (it is not stored)."""
    from hashmatch.service import tokens as token_store

    try:
        secret = token_store.add(tokens_path, name, {s.strip() for s in scopes.split(",") if s.strip()})
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    click.echo(secret)
    click.echo(f"token {name} added to {tokens_path}; the secret above is shown once", err=True)


@token_group.command("remove")
@click.argument("name")
@TOKENS_OPTION
def token_remove(name, tokens_path) -> None:
    from hashmatch.service import tokens as token_store

    try:
        token_store.remove(tokens_path, name)
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc


@token_group.command("list")
@TOKENS_OPTION
def token_list(tokens_path) -> None:
    from hashmatch.service import tokens as token_store

    try:
        for token in token_store.load(tokens_path):
            click.echo(f"{token.name}\t{','.join(sorted(token.scopes))}\t{token.created}")
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
