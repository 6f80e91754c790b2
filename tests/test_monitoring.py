"""deploy/monitoring/: the Prometheus rules (checked and unit-tested with promtool) and the
Prometheus operator's objects (checked against the Service and the rules they stand for).
A real Prometheus loading these rules is in tests/test_prometheus.py."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "rules.yml"
RULE_TESTS = MONITORING / "rules.test.yml"
OPERATOR = MONITORING / "operator"
SERVICE = ROOT / "deploy" / "base" / "service.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: `make test` installs Debian's prometheus")
    return subprocess.run(
        [found, *args], capture_output=True, text=True, cwd=MONITORING, timeout=120, check=False
    )


def load(path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_pass_their_unit_tests():
    proc = promtool("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_duration_a_severity_and_a_one_line_summary():
    alerts = [r for r in rules() if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "CivilWordsHighErrorRatio",
        "CivilWordsSlowRequests",
        "CivilWordsNoReadyPod",
        "CivilWordsModelReloadFailed",
    }
    for a in alerts:
        assert a.get("for"), a["alert"]
        assert a["labels"]["severity"] in ("page", "warning"), a["alert"]
        summary = a["annotations"]["summary"]
        assert summary and "\n" not in summary, a["alert"]


def test_every_rule_has_a_unit_test():
    tests = load(RULE_TESTS)["tests"]
    alerts_tested = {t["alertname"] for test in tests for t in test.get("alert_rule_test", [])}
    exprs_tested = {t["expr"] for test in tests for t in test.get("promql_expr_test", [])}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] in alerts_tested, rule["alert"]
            fired = [
                t
                for test in tests
                for t in test.get("alert_rule_test", [])
                if t["alertname"] == rule["alert"]
            ]
            assert any(t["exp_alerts"] for t in fired), f"{rule['alert']}: never shown firing"
            assert any(not t["exp_alerts"] for t in fired), f"{rule['alert']}: never quiet"
        else:
            assert rule["record"] in exprs_tested, rule["record"]


def test_reload_alert_counts_failed_reloads():
    [rule] = [r for r in rules() if r.get("alert") == "CivilWordsModelReloadFailed"]
    assert 'civil_words_model_reloads_total{result="failed"}' in rule["expr"]


def test_prometheus_rule_holds_the_same_groups():
    [rule] = [load(p) for p in OPERATOR.glob("prometheus-rule.yaml")]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load(RULES)["groups"]


def test_service_monitor_scrapes_the_service_as_the_rules_expect():
    monitor = load(OPERATOR / "service-monitor.yaml")
    service = load(SERVICE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The operator names the job after the Service (no jobLabel): the rules' job.
    assert "jobLabel" not in monitor["spec"]
    assert f'job="{service["metadata"]["name"]}"' in RULES.read_text()
