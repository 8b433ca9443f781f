"""deploy/prometheus.yml, deploy/alerts.yml and the Grafana dashboard, for real.

promtool (Debian's package) checks the rules, runs their unit tests (deploy/alerts_test.yml) and
checks the scrape config; then a real Prometheus, started from a copy of the shipped config with
file_sd targets pointing at an in-process server's metrics endpoint, scrapes it after a few gRPC
calls and loads the alert rules. Without prometheus/promtool these tests are skipped with a loud
reason, except under CI=true, where they fail: scripts/setup-prometheus installs them.

The dashboard and alert expressions are also checked, without Prometheus, against the metrics that
foothills_rpc/observability/metrics.py defines: a renamed metric or label breaks this test, not a
panel in production.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.observability.metrics import LATENCY_BUCKETS, Metrics
from tests.conftest import running_server
from tests.support import Mailbox, free_port, reason, stop_process

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
METRICS_SOURCE = ROOT / "foothills_rpc" / "observability" / "metrics.py"
DASHBOARD = DEPLOY / "grafana" / "foothills-dashboard.json"
# The five alerts the operators asked for, at least (alerts.yml may hold more).
REQUIRED_ALERTS = {"FoothillsHighErrorRatio", "FoothillsSlowMethod", "FoothillsOverloaded", "FoothillsMailBacklog",
                   "FoothillsNotServing"}
START_TIMEOUT = 30.0
SEEN_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (run scripts/setup-prometheus; Debian: apt-get install prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true requires prometheus and promtool. " + message)
    pytest.skip("!!! SKIPPING THE PROMETHEUS TESTS !!! " + message)


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(argv)} exited with {done.returncode}:\n{output}"
    return output


def _deploy_copy(into: Path, *, servers: list[str], send_mail: list[str] | None = None,
                 interval: str | None = None) -> Path:
    """deploy/prometheus.yml and alerts.yml copied into `into`, with targets files for `servers` (and
    `send_mail`) beside them, as an operator would write them; returns the config's path.
    `interval`: the only change to the shipped text, the scrape and evaluation intervals (15s) made
    shorter so that a test sees samples and rule evaluations within seconds."""
    into.mkdir()
    config = (DEPLOY / "prometheus.yml").read_text()
    if interval is not None:
        for key in ("scrape_interval", "evaluation_interval"):
            config, count = re.subn(rf"^(\s*{key}:) 15s\b", rf"\g<1> {interval}", config, flags=re.MULTILINE)
            assert count == 1, f"{key}: 15s not found once in deploy/prometheus.yml"
    (into / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "alerts.yml", into / "alerts.yml")
    targets = into / "targets"
    targets.mkdir()
    (targets / "servers-test.json").write_text(json.dumps([{"targets": servers, "labels": {"host": "test"}}]))
    if send_mail is not None:
        (targets / "send-mail-test.json").write_text(json.dumps([{"targets": send_mail}]))
    return into / "prometheus.yml"


def _alert_names() -> set[str]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


# ---- promtool


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    """`promtool check rules` accepts deploy/alerts.yml, and `promtool test rules` shows each alert
    firing past its threshold and quiet below it (deploy/alerts_test.yml)."""
    promtool = _tool("promtool")
    assert _alert_names() >= REQUIRED_ALERTS
    assert f"SUCCESS: {len(_alert_names())} rules found" in _run(promtool, "check", "rules", str(DEPLOY / "alerts.yml"))
    assert "SUCCESS" in _run(promtool, "test", "rules", str(DEPLOY / "alerts_test.yml"))


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    """`promtool check config` accepts the shipped config as is, with its rule file and a targets file
    for each job written beside it as its comments say."""
    promtool = _tool("promtool")
    config = _deploy_copy(tmp_path / "deploy", servers=["api-1.internal:9464", "api-1.internal:9465"],
                          send_mail=["mail-1.internal:9470"])
    output = _run(promtool, "check", "config", str(config))
    assert "is valid prometheus config file syntax" in output, output
    assert "WARNING" not in output, output  # both targets files found by the jobs' patterns


# ---- a real Prometheus scraping a real server


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # http://127.0.0.1, ours
        return json.load(response)


class Prometheus:
    """A Prometheus process of our own, on a free port, with its data in a temporary folder."""

    def __init__(self, config: Path, data: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [_tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                cwd=data.parent, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def diagnostics(self) -> str:
        return f"--- prometheus log\n{self.log.read_text(errors='replace')}"

    async def query(self, expr: str) -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(_get, self.base, "/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    async def until(self, what: str, probe: Callable[[], Awaitable[Any]]) -> Any:
        """Polls `probe` until it returns something truthy; fails after SEEN_TIMEOUT."""
        deadline = time.monotonic() + SEEN_TIMEOUT
        last: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}:\n{self.diagnostics()}")
            try:
                if found := await probe():
                    return found
            except OSError as error:  # not listening yet, or not ready (an HTTP error answer)
                if isinstance(error, urllib.error.HTTPError):
                    error.close()  # it holds the connection; dropped open, it warns when collected
                last = error
            await asyncio.sleep(0.2)  # between polls only
        pytest.fail(f"Prometheus did not show {what} within {SEEN_TIMEOUT}s (last: {last!r}):\n{self.diagnostics()}")

    async def series(self, expr: str) -> list[dict[str, Any]]:
        """The series of `expr`, once Prometheus has scraped them."""
        return list(await self.until(expr, lambda: self.query(expr)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_prometheus_scrapes_a_server_and_loads_the_alerts(
        database_url: str, clock: ManualClock, mailbox: Mailbox, tmp_path: Path) -> None:
    """A server with FOOTHILLS_METRICS_LISTEN set is found through the shipped config's file_sd job and
    scraped: the calls it served show in grpc_server_handled_total with their codes (OK, NOT_FOUND),
    the latency histogram has every bucket, the failure counter has the refusal's reason, the service
    gauges are there; every alert rule is loaded and evaluates without error."""
    _tool("prometheus")
    async with running_server(database_url, clock, mailbox, metrics_listen="127.0.0.1:0") as running:
        metrics_port = running.server.components.metrics.port
        await running.register("metrics@example.com")
        await running.login("metrics@example.com")
        missing = f"services/{uuid.uuid4().hex}"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=missing))
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
        refusal = reason(refused.value)

        config = _deploy_copy(tmp_path / "deploy", servers=[f"127.0.0.1:{metrics_port}"], interval="1s")
        data = tmp_path / "prometheus-data"
        prometheus = Prometheus(config, data, tmp_path / "prometheus.log")
        try:
            await prometheus.until("readiness", lambda: asyncio.to_thread(_ready, prometheus.base))
            await _check_scraped(prometheus, refusal)
            await _check_rules_loaded(prometheus)
        finally:
            code = await asyncio.to_thread(stop_process, prometheus.process, timeout=STOP_TIMEOUT)
        assert code == 0, prometheus.diagnostics()


def _ready(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:  # noqa: S310  # http://127.0.0.1, ours
        return bool(response.status == 200)


def _value(series: list[dict[str, Any]]) -> float:
    assert len(series) == 1, series
    return float(series[0]["value"][1])


async def _check_scraped(prometheus: Prometheus, refusal: str) -> None:
    up = await prometheus.series('up{job="foothills-rpc"} == 1')
    assert up[0]["metric"]["host"] == "test"  # the targets file's labels reach the series

    catalog = 'grpc_service="foothills.catalog.v1.CatalogService",grpc_method="GetService"'
    auth = 'grpc_service="foothills.auth.v1.AuthService"'
    not_found = await prometheus.series(f'grpc_server_handled_total{{{catalog},grpc_code="NotFound"}}')
    assert _value(not_found) == 1
    assert not_found[0]["metric"]["grpc_type"] == "unary" and not_found[0]["metric"]["job"] == "foothills-rpc"
    for method in ("Register", "Login"):
        assert _value(await prometheus.series(
            f'grpc_server_handled_total{{{auth},grpc_method="{method}",grpc_code="OK"}}')) == 1
    assert _value(await prometheus.series(
        f'foothills_rpc_failures_total{{{catalog},grpc_code="NotFound",reason="{refusal}"}}')) == 1

    buckets = await prometheus.series(f'grpc_server_handling_seconds_bucket{{{auth},grpc_method="Register"}}')
    assert len(buckets) == len(LATENCY_BUCKETS) + 1  # and +Inf
    assert {float(b["value"][1]) for b in buckets if b["metric"]["le"] == "+Inf"} == {1.0}
    assert _value(await prometheus.series(f'grpc_server_handling_seconds_count{{{auth},grpc_method="Register"}}')) == 1

    assert _value(await prometheus.series('foothills_health_serving{service="overall"}')) == 1
    assert _value(await prometheus.series("foothills_db_pool_size")) > 0
    assert await prometheus.series('foothills_background_runs_total{task="health-probe"} > 0')
    assert await prometheus.series("process_resident_memory_bytes > 0")


async def _check_rules_loaded(prometheus: Prometheus) -> None:
    expected = _alert_names()

    async def evaluated() -> dict[str, dict[str, Any]] | None:
        answer = await asyncio.to_thread(_get, prometheus.base, "/api/v1/rules")
        rules = {rule["name"]: rule for group in answer["data"]["groups"] for rule in group["rules"]}
        return rules if set(rules) == expected and all(r["health"] != "unknown" for r in rules.values()) else None

    rules = await prometheus.until(f"the rules {sorted(expected)} loaded and evaluated", evaluated)
    assert set(rules) >= REQUIRED_ALERTS
    assert all(rule["type"] == "alerting" for rule in rules.values())
    errors = {name: rule.get("lastError") for name, rule in rules.items() if rule["health"] != "ok"}
    assert not errors, errors


# ---- the dashboard and the rules read metrics that exist


def _exposed() -> tuple[dict[str, set[str]], set[str]]:
    """series name -> its label names, of everything a Foothills process exposes; and the names of
    Foothills' own metric families (its counters without `_total`, its histograms without suffixes)."""
    metrics = Metrics()
    exposed: dict[str, set[str]] = {}
    families: set[str] = set()
    for family in metrics.registry.collect():  # the process and platform collectors, unlabelled metrics
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(sample.labels)
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            families.add(metric._name)
            for suffix in suffixes[metric._type]:
                labels = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
                exposed.setdefault(metric._name + suffix, set()).update(labels)
    # Collected only at scrape time (the outbox's backlog), so named in the source.
    for node in ast.walk(ast.parse(METRICS_SOURCE.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "GaugeMetricFamily"
                and node.args and isinstance(node.args[0], ast.Constant)):
            exposed.setdefault(str(node.args[0].value), set())
            families.add(str(node.args[0].value))
    return exposed, families


# Series Prometheus writes itself, and the labels it adds to every scraped series.
PROMETHEUS_SERIES = {"up": set[str]()}
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*\"(\d+)\"")
_NAME = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def selectors(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """The (metric name, label names matched) of each selector in a PromQL expression, and the label
    names it groups or matches on. Enough of PromQL for our expressions, not a parser."""
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(0)[1:-1])
        return f'"{len(strings) - 1}"'

    text = _RANGE.sub(" ", _STRING.sub(keep, expr))
    grouping = {label.strip() for found in _GROUPING.findall(text) for label in found.split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    found: list[tuple[str, set[str]]] = []

    def selector(match: re.Match[str]) -> str:
        matchers = dict(_MATCHER.findall(match.group(2)))
        name = match.group(1) or strings[int(matchers.pop("__name__"))]
        found.append((name, set(matchers)))
        return " "

    text = _SELECTOR.sub(selector, text)
    found += [(name, set()) for name in _NAME.findall(text) if name not in KEYWORDS]
    return found, grouping


@pytest.mark.parametrize(("expr", "names", "grouping"), [
    pytest.param('sum by (le, m) (rate(a_bucket{x="1",y=~"a|b"}[5m])) / b', {"a_bucket": {"x", "y"}, "b": set()},
                 {"le", "m"}, id="selectors-and-grouping"),
    pytest.param('histogram_quantile(0.99, sum without (i) (rate(c{z!~"}{"}[$__rate_interval]))) > 1e3',
                 {"c": {"z"}}, {"i"}, id="functions-numbers-and-braces-in-strings"),
    pytest.param('time() - max(d > 0) and on (job) e', {"d": set(), "e": set()}, {"job"}, id="keywords"),
])
def test_selectors_reads_promql(expr: str, names: dict[str, set[str]], grouping: set[str]) -> None:
    found, grouped = selectors(expr)
    assert dict(found) == names
    assert grouped == grouping


def _check_expression(where: str, expr: str, exposed: dict[str, set[str]]) -> list[str]:
    found, grouping = selectors(expr)
    problems = []
    known = dict(exposed, **PROMETHEUS_SERIES)
    if not found:
        problems.append(f"{where}: no metric in {expr!r}")
    for name, labels in found:
        if name not in known:
            problems.append(f"{where}: {name} is not a metric Foothills exposes")
        elif unknown := labels - known[name] - TARGET_LABELS:
            problems.append(f"{where}: {name} has no label {sorted(unknown)}")
    available = set().union(*(known.get(name, set()) for name, _ in found)) | TARGET_LABELS
    if unknown := grouping - available:
        problems.append(f"{where}: grouping by {sorted(unknown)}, which none of its metrics has")
    return problems


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def test_dashboard_and_alerts_read_only_metrics_that_exist() -> None:
    """Every expression of the Grafana dashboard (panels and variables) and of alerts.yml names metrics
    and labels that foothills_rpc/observability/metrics.py defines (or the process collector's, or
    Prometheus's `up`), and the dashboard shows every Foothills metric."""
    exposed, families = _exposed()
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = list(_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    problems: list[str] = []
    shown: set[str] = set()
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            problems += _check_expression(f"panel {panel['title']!r}", target["expr"], exposed)
            shown |= {name for name, _ in selectors(target["expr"])[0]}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert query, variable["query"]
            problems += _check_expression(f"variable {variable['name']}", query.group(1), exposed)
    for group in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            problems += _check_expression(f"alert {rule['alert']}", rule["expr"], exposed)
    assert not problems, "\n".join(problems)

    unshown = {family for family in families
               if not shown & {family + suffix for suffix in ("", "_total", "_bucket", "_sum", "_count")}}
    assert not unshown, f"metrics no dashboard panel shows: {sorted(unshown)}"
