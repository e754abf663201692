"""`hashmatch decide` (record decisions on a scan report's matches) and `hashmatch dsa`
(statements of reasons, their submission to the Transparency Database, transparency
counts): the front end of hashmatch.accountability."""
from __future__ import annotations

import json
import os
import sys

import click

from hashmatch.cli.common import SetupError, stdout
from hashmatch.cli.terminal import safe
from hashmatch.errors import HashmatchError

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _log_path(decisions: str | None, store_path: str | None) -> str:
    from hashmatch.accountability.decisions import DECISION_LOG

    if decisions:
        return decisions
    if store_path:
        if not os.path.isdir(store_path):
            raise SetupError(f"no store at {store_path}")
        return os.path.join(store_path, DECISION_LOG)
    raise click.UsageError("give --decisions FILE or --store STORE (its decisions.jsonl)")


@click.command("decide")
@click.option("--report", "report_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="A scan report (JSON Lines) whose matched rows were acted on.")
@click.option("--action", "actions", multiple=True, required=True,
              help="What was done: removed, disabled, demoted, age_restricted, interaction_restricted, labelled, "
                   "account_suspended, account_terminated, ...; repeatable.")
@click.option("--automated", type=click.Choice(("fully", "partially", "not")), required=True,
              help="How far the decision was automated.")
@click.option("--puid-prefix", required=True,
              help="Each decision's puid is PREFIX + the row's line number (A-Z a-z 0-9 - _ only).")
@click.option("--only-status", default="match", show_default=True, help="Rows of this status are decided.")
@click.option("--review", type=click.Choice(("confirmed", "false_match")), help="A review made before deciding.")
@click.option("--decided-at", help="When it was decided (ISO 8601) [default: now].")
@click.option("--content-date", type=DATE, help="When the content was posted.")
@click.option("--decisions", type=click.Path(dir_okay=False), help="The decision log [default: STORE/decisions.jsonl].")
@click.option("-s", "--store", "store_path", type=click.Path(file_okay=False), help="The store the scan used.")
def decide_command(report_path, actions, automated, puid_prefix, only_status, review, decided_at, content_date,
                   decisions, store_path) -> None:
    """Record one decision per matched row of a scan report (a backfill). A rerun skips
    the rows already recorded."""
    from hashmatch.accountability.decisions import DecisionLog, make_decision

    log = DecisionLog(_log_path(decisions, store_path))
    try:
        found = []  # the decision on each matched row (what it keeps, not the row: no hashes held)
        with open(report_path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut by an interrupted scan
                if isinstance(row, dict) and row.get("status") == only_status and row.get("matches"):
                    found.append(make_decision(row, puid=f"{puid_prefix}{number}", action=actions,
                                               automated=automated, review=review, decided_at=decided_at,
                                               content_date=content_date))
        already = log.recorded(d.puid for d in found)  # one look at the log, not one per row
        made = [d for d in found if d.puid not in already]
        log.append(made)
    except (HashmatchError, OSError) as exc:
        raise SetupError(str(exc)) from exc
    skipped = len(found) - len(made)
    click.echo(f"{len(made)} decisions recorded in {safe(log.path)}"
               + (f"; {skipped} rows already recorded" if skipped else ""), err=True)


@click.group("dsa")
def dsa_group() -> None:
    """DSA accountability: statements of reasons from the decision log, their submission to
    the EU Transparency Database, and the yearly transparency counts."""


@dsa_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
def init_command(path) -> None:
    """Write a commented example dsa.toml to PATH."""
    from hashmatch.accountability.dsa_config import EXAMPLE
    from hashmatch.base.files import atomic_write

    if os.path.exists(path):
        raise SetupError(f"{path} exists; not overwritten")
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(EXAMPLE)
    click.echo(f"wrote {safe(path)}", err=True)


@dsa_group.command("statements")
@click.option("--decisions", required=True, type=click.Path(dir_okay=False, exists=True), help="The decision log.")
@click.option("--since", type=DATE, help="First decision date included.")
@click.option("--until", type=DATE, help="Last decision date included.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="dsa.toml [default: the built-in rules for csam, terrorism, ncii].")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The statements, one JSON object per line (0600).")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Write the decisions that could not be stated here.")
def statements_command(decisions, since, until, config_path, output, rejects) -> None:
    """One statement of reasons per decision, validated against the database's rules.
    Exit 1 when some decisions could not be stated (listed on stderr)."""
    from hashmatch.accountability.decisions import LogStats, read_decisions
    from hashmatch.accountability.dsa_config import load_config
    from hashmatch.accountability.statements import write_statements
    from hashmatch.base.files import atomic_write

    stats = LogStats()
    try:
        config = load_config(config_path)
        counts = write_statements(read_decisions(decisions, _day(since), _day(until), stats), config, output)
    except (HashmatchError, OSError) as exc:
        raise SetupError(str(exc)) from exc
    for rejected in counts.rejected[:10]:
        for field, reasons in rejected.errors.items():
            click.echo(f"not stated: {safe(rejected.puid)}: {field} {'; '.join(reasons)}", err=True)
    if rejects:
        with atomic_write(rejects, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r.to_dict()) + "\n" for r in counts.rejected)
    click.echo(f"{counts.written} statements written to {safe(output)}; {counts.invalid} decisions not stated"
               + (f"; {stats.damaged} damaged log lines skipped" if stats.damaged else ""), err=True)
    sys.exit(1 if counts.invalid else 0)


@dsa_group.command("submit")
@click.argument("statements", type=click.Path(dir_okay=False, exists=True))
@click.option("--url", required=True, help="The Transparency Database's base URL.")
@click.option("--token-file", required=True, type=click.Path(dir_okay=False),
              help="A file (0600) holding the API token.")
@click.option("--batch", type=click.IntRange(1, 100), default=100, show_default=True, help="Statements per call.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="What was submitted, for resuming [default: STATEMENTS.state].")
@click.option("--rejects", type=click.Path(dir_okay=False),
              help="The refused statements with their reasons [default: STATEMENTS.rejected.jsonl].")
@click.option("--dry-run", is_flag=True, help="Validate and count; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def submit_command(statements, url, token_file, batch, state_path, rejects, dry_run, as_json) -> None:
    """Submit statements exactly once (a rerun resumes). Exit 0: all submitted or already
    there; 1: some were rejected (see the rejects file); 2: stopped early (rerun to resume)."""
    from tqdm import tqdm

    from hashmatch.accountability.submit import Submitter, read_token

    try:
        token = read_token(token_file)
        submitter = Submitter(url, token, batch=batch)
    except (HashmatchError, ValueError) as exc:
        raise SetupError(str(exc)) from exc
    except ImportError as exc:
        raise SetupError(f"hashmatch dsa submit needs its extra: pip install 'hashmatch[dsa]' ({exc})") from exc
    with tqdm(unit="statement", desc="submitting", disable=dry_run or None, file=sys.stderr) as bar:
        try:
            summary = submitter.submit(statements, state_path=state_path, rejects_path=rejects, dry_run=dry_run,
                                       progress=bar.update)
        except (HashmatchError, OSError) as exc:
            raise SetupError(str(exc)) from exc
    if as_json:
        stdout().write(json.dumps(summary.to_dict()) + "\n")
    else:
        verb = "to submit" if dry_run else "remaining"
        click.echo(f"submitted {summary.submitted}, already there {summary.already}, rejected {summary.rejected}, "
                   f"{verb} {summary.remaining}, settled before {summary.done_before}", err=True)
    if summary.stopped:
        click.echo(f"stopped: {safe(summary.stopped)}", err=True)
        sys.exit(2)
    sys.exit(1 if summary.rejected else 0)


@dsa_group.command("report")
@click.option("--decisions", required=True, type=click.Path(dir_okay=False, exists=True), help="The decision log.")
@click.option("--period", required=True, metavar="YYYY-MM-DD/YYYY-MM-DD", help="The reporting period.")
@click.option("--service", default="", help="The service's name [default: dsa.toml's].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), help="dsa.toml.")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Write the CSV sheets, summary.txt and the chart into this folder.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")),
              help="Also print the counts: a short summary in words, or JSON.")
@click.option("--no-chart", is_flag=True, help="Skip the PNG chart (which needs matplotlib).")
def report_command(decisions, period, service, config_path, output, fmt, no_chart) -> None:
    """Transparency counts: 2024/2835 sheet 5 (own initiative) and sheet 8 (automated
    means, per hash list), and the TCO Art. 7 figures."""
    from hashmatch.accountability import report
    from hashmatch.accountability.decisions import read_decisions
    from hashmatch.accountability.dsa_config import load_config

    if output is None and fmt is None:
        raise click.UsageError("give -o DIR, --format, or both")
    try:
        config = load_config(config_path)
        span = report.parse_period(period)
        counts = report.count(read_decisions(decisions, *span), config, span, service)
        if output is not None:
            for path in report.write_report(counts, output, chart=not no_chart):
                click.echo(f"wrote {safe(path)}", err=True)
    except (HashmatchError, OSError) as exc:
        raise SetupError(str(exc)) from exc
    if fmt == "text":
        stdout().write(report.summary_text(counts))
    elif fmt == "json":
        sheets = {"sheet5": (report.SHEET5_HEADINGS, report.sheet5_rows(counts)),
                  "sheet8": (report.SHEET8_HEADINGS, report.sheet8_rows(counts)),
                  "tco": (report.TCO_HEADINGS, report.tco_rows(counts))}
        stdout().write(json.dumps({name: [dict(zip(headings, row)) for row in rows]
                                   for name, (headings, rows) in sheets.items()}) + "\n")


def _day(value) -> str | None:
    return value.strftime("%Y-%m-%d") if value is not None else None
