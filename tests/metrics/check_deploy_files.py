#!/usr/bin/env python3
"""Checks deploy/: the alert rules with `promtool check rules` and their unit
tests with `promtool test rules`; every query of the Grafana dashboard,
made into a recording rule, with `promtool check rules` too; and that every
metric the files name is one videotaskd exports (docs/metrics.md lists them).

Usage: check_deploy_files.py SOURCE_DIR. Exit 77 (skipped) without promtool.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def metric_names(text):
    names = set(re.findall(r"\b((?:videotask|process)_[a-z_]+)", text))
    out = set()
    for n in names:
        for suffix in ("_bucket", "_sum", "_count"):
            if n.endswith(suffix) and not n.endswith("_total" + suffix):
                base = n[: -len(suffix)]
                if base.endswith(("_seconds", "_size")):
                    n = base
        out.add(n)
    return out


def main():
    src = sys.argv[1]
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not found (Debian package prometheus): skipped")
        return SKIP
    rules = os.path.join(src, "deploy/prometheus/videotask-alerts.yml")
    rules_test = os.path.join(src, "deploy/prometheus/videotask-alerts_test.yml")
    dashboard_path = os.path.join(src, "deploy/grafana/videotask-dashboard.json")
    docs = open(os.path.join(src, "docs/metrics.md")).read()

    for args in (["check", "rules", rules], ["test", "rules", rules_test]):
        run = subprocess.run([promtool] + args, capture_output=True, text=True)
        print(run.stdout + run.stderr)
        if run.returncode != 0:
            fail("promtool " + " ".join(args))

    with open(dashboard_path) as f:
        dashboard = json.load(f)
    exprs = []
    for panel in dashboard["panels"]:
        if not panel.get("title") or not panel.get("targets"):
            fail("a panel without title or targets: %r" % panel.get("id"))
        for target in panel["targets"]:
            exprs.append(target["expr"])
    if len(exprs) < 10:
        fail("the dashboard has only %d queries" % len(exprs))
    # Grafana's variables, as Grafana would substitute them.
    substitutions = {"$__rate_interval": "5m", "$backend": ".*", "$job": "videotask"}
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(exprs):
        for k, v in substitutions.items():
            expr = expr.replace(k, v)
        if "$" in expr:
            fail("an unknown dashboard variable in: " + expr)
        lines.append("      - record: dashboard:query_%d" % i)
        lines.append("        expr: " + json.dumps(expr))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tmp:
        tmp.write("\n".join(lines) + "\n")
    try:
        run = subprocess.run([promtool, "check", "rules", tmp.name], capture_output=True, text=True)
    finally:
        os.unlink(tmp.name)
    if run.returncode != 0:
        fail("a dashboard query does not parse:\n" + run.stdout + run.stderr)
    print("dashboard: %d queries parse" % len(exprs))

    used = metric_names(open(rules).read()) | metric_names(json.dumps(dashboard))
    missing = sorted(n for n in used if "`" + n not in docs)
    if missing:
        fail("metrics used in deploy/ but not in docs/metrics.md: " + ", ".join(missing))
    print("metrics named in deploy/: " + ", ".join(sorted(used)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
