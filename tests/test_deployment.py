"""The deployment files, checked without a container engine: compose.yaml against the README, the Dockerfile's
and the units' commands against the README, and the image's own command run here, on this machine."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from newsletter import migrate
from newsletter.db import make_engine
from tests.conftest import ROOT, TEST_SECRET_KEY
from tests.newsletter.web.helpers import free_port

README = (ROOT / "README.md").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def deployment_guide() -> str:
    return README[README.index("## Deployment\n"):README.index("## Monitoring\n")]


def readme_services() -> dict[str, str]:
    """The guide's service table: name → the command it documents."""
    rows = re.findall(r"^\| `([\w-]+)` \| (.+?) \| .+ \|$", deployment_guide(), flags=re.MULTILINE)
    return {name: command.strip("`") for name, command in rows}


def instructions(name: str) -> list[str]:
    """The Dockerfile's instructions of one kind, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def entry_command() -> list[str]:
    (cmd,) = instructions("CMD")
    command: list[str] = json.loads(cmd)
    return command


def with_defaults(script: str) -> str:
    """A shell line with each ``${VAR:-default}`` replaced by its default, as it runs when nothing is set."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", script)


def test_compose_names_every_service_the_readme_names_with_the_same_command() -> None:
    services = compose()["services"]
    documented = readme_services()
    assert set(documented) == set(services) == {"db", "migrate", "web", "scheduler", "worker"}
    for name, service in services.items():
        if "command" in service:
            assert shlex.join(service["command"]) == documented[name], name


def test_the_guide_starts_with_docker_compose_up() -> None:
    first_block = re.search(r"```sh\n(.+?)```", deployment_guide(), flags=re.DOTALL)
    assert first_block is not None and first_block[1].startswith("docker compose up")


def readme_yaml(marker: str) -> dict[str, Any]:
    """The README's YAML block that contains ``marker``."""
    [block] = [b for b in re.findall(r"```yaml\n(.+?)```", README, flags=re.DOTALL) if marker in b]
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def test_the_scrape_config_targets_the_composed_services_on_their_metrics_ports() -> None:
    services = compose()["services"]
    jobs = readme_yaml("scrape_configs")["scrape_configs"]
    targets = {}
    for job in jobs:
        assert "credentials_file" in job["authorization"], job  # /metrics answers only the bearer token
        for static in job.get("static_configs", []):
            targets.update(dict(t.split(":") for t in static["targets"]))
        for sd in job.get("dns_sd_configs", []):
            targets.update({name: str(sd["port"]) for name in sd["names"]})
    assert set(targets) == {"web", "scheduler", "worker"} <= set(services)
    assert "--port" in services["web"]["command"] and targets["web"] == "8000"
    for name in ("scheduler", "worker"):
        assert services[name]["environment"]["NEWSLETTER_METRICS_PORT"] == targets[name], name


def test_the_three_alert_rules_use_metrics_the_code_exports() -> None:
    rules = readme_yaml("alert:")["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == ["NewsletterSendStuck", "NewsletterBounceRateHigh",
                                           "NewsletterComplaintRateNearGmailLimit"]
    exported = (ROOT / "newsletter" / "metrics.py").read_text()
    for rule in rules:
        for name in set(re.findall(r"newsletter_\w+", rule["expr"])):
            assert f'"{name.removeprefix("newsletter_")}' in exported or f'"{name}' in exported, name
    assert "0.002" in rules[2]["expr"]  # warned while below Gmail's 0.3 %


def test_migrations_run_once_before_everything_else_starts() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["newsletter", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "scheduler", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name
    assert services["worker"]["deploy"]["replicas"] == 2


def test_the_database_keeps_its_data_in_a_volume_and_secrets_are_demanded() -> None:
    spec = compose()
    assert "pgdata:/var/lib/postgresql/data" in spec["services"]["db"]["volumes"]
    assert "pgdata" in spec["volumes"]
    environment = spec["services"]["web"]["environment"]
    assert environment["NEWSLETTER_DATABASE_URL"].endswith("@db:5432/newsletter")
    for secret in ("NEWSLETTER_SECRET_KEY", "NEWSLETTER_METRICS_TOKEN"):
        assert environment[secret].startswith(f"${{{secret}:?"), secret  # compose refuses to start without it
    for name in ("scheduler", "worker"):
        assert spec["services"][name]["environment"]["NEWSLETTER_METRICS_PORT"] == "9100"


def test_the_dockerfile_builds_the_wheel_and_runs_it_unprivileged_on_slim_python() -> None:
    assert all(re.fullmatch(r"python:3\.\d+-slim( AS \w+)?", base) for base in instructions("FROM"))
    runs = " && ".join(instructions("RUN"))
    assert "pip wheel" in runs and "pip install /wheels/*.whl" in runs
    (user,) = instructions("USER")
    assert user not in ("root", "0")
    (check,) = instructions("HEALTHCHECK")
    assert "/healthz" in check


def test_what_the_build_stage_copies_is_enough_to_build_the_wheel(tmp_path: Path) -> None:
    """The build stage's COPY lines, carried out here: the wheel they make holds the web app, migrations, templates."""
    context = tmp_path / "src"
    for copy in instructions("COPY"):
        *sources, target = copy.split()
        if any(source.startswith("--from") for source in sources):
            continue
        for source in sources:
            destination = context / (source if target.endswith("/") else target)
            destination.parent.mkdir(parents=True, exist_ok=True)
            copier = shutil.copytree if (ROOT / source).is_dir() else shutil.copy
            copier(ROOT / source, destination)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheels"), str(context)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheels").glob("newsletter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("newsletter/web/health.py", "newsletter/migrations/env.py", "newsletter/templates/digest.mjml.j2",
                   "newsletter/web/pages/base.html", "scheduler.py"):
        assert needed in names, needed


def test_the_dockerfile_and_the_units_run_the_commands_the_readme_documents() -> None:
    guide = deployment_guide()
    script = entry_command()[-1]
    commands = [part.strip().removeprefix("exec ") for part in with_defaults(script).split("&&")]
    assert commands == ["newsletter db upgrade", "newsletter serve --host 0.0.0.0 --port 8000 --workers 2"]
    for command in commands:
        assert f"`{command}`" in guide, command
    assert {unit.name for unit in UNITS} == {"newsletter-migrate.service", "newsletter-web.service",
                                             "newsletter-scheduler.service", "newsletter-worker@.service"}
    for unit in UNITS:
        (start,) = re.findall(r"^ExecStart=(.+)$", unit.read_text(), flags=re.MULTILINE)
        command = start.removeprefix("/opt/newsletter/bin/")
        assert f"`{command}`" in guide, (unit.name, command)
        assert f"`{unit.name.removesuffix('.service').removesuffix('@')}" in guide, unit.name


def test_the_images_command_migrates_then_serves_here(tmp_path: Path) -> None:
    """The CMD exactly as the image runs it, with `newsletter` being this checkout, on a fresh SQLite file."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "newsletter").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m newsletter "$@"\n')
    (shim / "newsletter").chmod(0o755)
    database, port = tmp_path / "fresh.db", free_port()
    env = os.environ | {"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "HOST": "127.0.0.1", "PORT": str(port),
                        "WEB_WORKERS": "1", "NEWSLETTER_DATABASE_URL": f"sqlite:///{database}",
                        "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "PYTHONPATH": str(ROOT)}
    base, answers = f"http://127.0.0.1:{port}", {}
    with (tmp_path / "container.log").open("wb") as log:
        container = subprocess.Popen(entry_command(), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and container.poll() is None and len(answers) < 2:
            try:
                answers = {path: httpx.get(base + path, timeout=2).status_code for path in ("/healthz", "/readyz")}
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        container.send_signal(signal.SIGTERM)  # `exec` made the server the shell's own process: it gets the signal
        code = container.wait(timeout=30)
    written = (tmp_path / "container.log").read_text()
    assert answers == {"/healthz": 200, "/readyz": 200}, written
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in written, written  # a clean stop
    assert "Schema at revision" in written  # the migration ran first, then the server started
    engine = make_engine(f"sqlite:///{database}")
    assert migrate.state(engine) == "current"
    engine.dispose()
