"""The README's way in and its deploy chapter hold what the repository does: the contents lead to
headings that exist, the guided deploy's questions are those the pinned SAM CLI asks, `[prod]` is
described as samconfig.toml has it, and an idle stack's fixed cost is counted from template.yaml and
from what the orphan sweep publishes when nothing happens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from infra.template import load
from tests.helpers import context

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TEMPLATE = load()
TIMES = "\N{MULTIPLICATION SIGN}"
SAM_PYTHON = Path(os.environ.get("SAM", ROOT / ".tools/sam/bin/sam")).parent / "python"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _section(heading: str) -> str:
    """The text under a heading of the README, up to the next heading of any level."""
    return README.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_contents_lead_to_every_chapter_and_only_to_headings_that_exist() -> None:
    contents = _section("## Contents")
    linked = re.findall(r"\]\(#([^)]+)\)", contents)
    headings = re.findall(r"^#{2,3} (.+)$", README, flags=re.MULTILINE)
    assert set(linked) <= {_slug(h) for h in headings}
    chapters = [h for h in re.findall(r"^## (.+)$", README, flags=re.MULTILINE) if h != "Contents"]
    assert {_slug(h) for h in chapters} <= set(linked)
    assert "[docs/DESIGN.md](docs/DESIGN.md)" in contents
    assert (ROOT / "docs/DESIGN.md").is_file()


def test_the_quick_start_comes_first_with_the_page_and_a_chat() -> None:
    first = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)[0]
    assert first == "Quick start"
    quick = _section("## Quick start")
    assert "make dev    #" in quick
    assert "make test   #" in quick
    assert "http://127.0.0.1:3000/" in quick  # the page, as make dev's banner gives it
    assert "curl -s -X POST http://127.0.0.1:3000/api/v1/chat" in quick


GUIDED = """
import json, re, sys
from samcli.commands.deploy import guided_context as g
from samcli.commands.deploy.deploy_context import DeployContext

asked = []
def _label(text):
    return re.sub(r"\\x1b\\[[0-9;]*m", "", text).strip()
def prompt(text, default=None, **kwargs):
    asked.append(_label(text))
    return default
def confirm(text, default=False, **kwargs):
    asked.append(_label(text))
    return bool(default) or "authentication" in text  # take every default; accept what must be
g.prompt, g.confirm = prompt, confirm
g.manage_stack = lambda **kwargs: "artifact-bucket"  # no AWS: SAM's own bucket is not looked up
g.print_managed_s3_bucket_info = lambda *args: None
guided = g.GuidedContext(
    template_file=sys.argv[1], stack_name="chatvault", s3_bucket=None, image_repository=None,
    image_repositories=None, s3_prefix=None, region="us-east-1", confirm_changeset=True,
    language_extensions_enabled=True,  # samconfig.toml's language_extensions (the template's loops)
)
guided.prompt_image_repository = lambda *args, **kwargs: {}
guided.guided_prompts(g.get_template_parameters(template_file=sys.argv[1]))
print(json.dumps({"asked": asked, "then": DeployContext.MSG_CONFIRM_CHANGESET}))
"""


def _asked_by_the_pinned_sam_cli() -> tuple[list[str], str]:
    if not SAM_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("SAM CLI venv missing")
        pytest.skip("SAM CLI venv not installed (make install)")
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", GUIDED, str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["asked"], answer["then"]


def test_the_guided_deploys_questions_are_those_the_pinned_sam_cli_asks() -> None:
    """Driven through SAM CLI's own GuidedContext with every default taken (nothing reaches AWS)."""
    asked, then = _asked_by_the_pinned_sam_cli()
    version = re.search(r"^SAM_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert version
    section = _section("### What `sam deploy --guided` asks")
    assert f"The pinned SAM CLI ({version[1]}) asks these, in this order" in section
    listed, not_asked = section.split("It does not ask", 1)
    labels = re.findall(r"\*([^*\n]+?)\*", listed)
    # the questions other than the parameters', in order (one asked again and again: once, with its
    # count), and where it comes: the change set's question, which `sam deploy` asks after showing it
    others = [a for i, a in enumerate(asked) if not a.startswith("Parameter ") and a != asked[i - 1]]
    at = others.index("Confirm changes before deploy") + 1
    assert [label for label in labels if not label.startswith("Parameter ")] == [
        *others[:at],
        then,
        *others[at:],
    ]
    parameters = [a.removeprefix("Parameter ") for a in asked if a.startswith("Parameter ")]
    assert parameters == list(TEMPLATE["Parameters"])
    assert [label for label in labels if label.startswith("Parameter ")] == [
        f"Parameter {name}" for name in parameters[:2]
    ]
    assert f"one question for each of the template's {len(parameters)} parameters" in _flat(listed)
    for explained in ("AuthMode", "CreateUserPool", "AllowedOrigins", "ModelId", "KmsKeyArn"):
        assert f"`{explained}`" in listed
    # the authentication question: asked of the streaming API's function, once per route, and of no
    # function of the HTTP API (whose OpenAPI body declares security)
    unauthenticated = [a.split(" has no authentication")[0] for a in asked if "has no authentication" in a]
    http_api = {
        name
        for name, resource in TEMPLATE["Resources"].items()
        if any(e["Type"] == "HttpApi" for e in resource.get("Properties", {}).get("Events", {}).values())
    }
    assert unauthenticated
    assert not set(unauthenticated) & http_api
    for function in set(unauthenticated):
        times = unauthenticated.count(function)
        assert f"*{function} has no authentication. Is this okay?*, asked {times} times" in _flat(listed)
    assert not_asked.startswith(" that question of the HTTP API's functions")


def test_every_environment_builds_and_deploys_with_the_language_extensions() -> None:
    """template.yaml's Fn::ForEach needs the SAM CLI's --language-extensions: samconfig.toml sets it
    for every environment's build and deploy, so `sam build && sam deploy` reads the template."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert "AWS::LanguageExtensions" in (ROOT / "template.yaml").read_text()
    environments = [name for name in config if name != "version"]
    assert environments
    for env in environments:
        for command in ("build", "deploy"):
            assert config[env][command]["parameters"]["language_extensions"] is True, (env, command)


def test_what_prod_chooses_is_what_samconfig_says() -> None:
    prod = tomllib.loads((ROOT / "samconfig.toml").read_text())["prod"]
    overrides = dict(
        pair.split("=", 1) for pair in prod["deploy"]["parameters"]["parameter_overrides"].split()
    )
    section = _flat(_section("### What `[prod]` chooses"))
    assert f"deploys the stack `{prod['global']['parameters']['stack_name']}`" in section
    assert f"in `{prod['deploy']['parameters']['region']}`" in section
    for name, value in overrides.items():
        assert f"`{name}={value.strip(chr(34))}`" in section, name
    assert overrides["AllowedOrigins"].strip('"') == "https://chat.example.com"  # the placeholder named
    assert "a placeholder" in section


def _alarm_metrics(alarm: dict) -> int:
    """What CloudWatch bills an alarm for: each metric it reads (a metric-math alarm reads several)."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        return 1
    return sum(1 for query in properties["Metrics"] if "MetricStat" in query)


@pytest.mark.usefixtures("aws")
def test_an_idle_stacks_fixed_cost_is_counted_from_what_the_stack_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    resources = TEMPLATE["Resources"]
    alarms = {k: v for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    metrics = {name: _alarm_metrics(alarm) for name, alarm in alarms.items()}
    math = {name: n for name, n in metrics.items() if "Metrics" in alarms[name]["Properties"]}
    dashboards = [v for v in resources.values() if v["Type"] == "AWS::CloudWatch::Dashboard"]
    secrets = [v for v in resources.values() if v["Type"] == "AWS::SecretsManager::Secret"]
    assert (len(dashboards), len(secrets)) == (1, 1)
    assert not [v for v in resources.values() if v["Type"] == "AWS::KMS::Key"]  # KmsKeyArn: yours

    # what the sweep publishes on a run that finds nothing: the custom metrics an idle stack pays for
    from chatvault.core import observability

    observability.metrics.clear_metrics()  # one process for every test: only what this run adds
    capsys.readouterr()
    event = json.loads((ROOT / "tests/events/sweep_orphans.json").read_text())
    import_module("functions.sweep_orphans.app").lambda_handler(event, context("sweep_orphans"))
    published = sorted(
        {
            metric["Name"]
            for line in capsys.readouterr().out.splitlines()
            if line.startswith("{") and "_aws" in line
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }
    )

    total = sum(metrics.values())
    cost = {"alarms": total * 0.10, "dashboard": 3.00, "metrics": len(published) * 0.30, "secret": 0.40}
    section = _flat(_section("### What an idle stack costs"))
    assert "at us-east-1 list prices, as of 2026" in section
    singles = sum(1 for name in metrics if name not in math)
    assert f"{len(alarms)} alarms reading {total} metrics: {singles} alarms of one metric" in section
    for name, n in math.items():
        assert f"`{name}` ({n})" in section
    assert f"{total} {TIMES} $0.10 = ${cost['alarms']:.2f}" in section
    count = len(published)
    assert f"| {count} | $0.30 a metric | {count} {TIMES} $0.30 = ${cost['metrics']:.2f} |" in section
    for name in published:
        assert f"`{name}`" in section
    assert f"1 {TIMES} $3.00 = $3.00" in section
    assert f"1 {TIMES} $0.40 = $0.40" in section
    total_cost = f"${sum(cost.values()):.2f}"
    assert f"= **{total_cost}**" in section
    assert section.startswith(f"A deployed stack that nobody uses costs {total_cost} a month")
