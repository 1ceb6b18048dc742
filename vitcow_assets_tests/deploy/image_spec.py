"""What the deployment files say, read the way the tools read them: the Dockerfile's
instructions (ENV, CMD, EXPOSE), the Helm values' user deployment and run launcher, and the
keys of the Dagster chart's own values.yaml (vendored under deploy/helm/chart/).

Test helpers only: plain functions over text and dicts (the file reading is in ``load_*``).
"""

import json
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
CHART_VALUES = ROOT / "deploy" / "helm" / "chart" / "dagster-chart-values.yaml"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found, pending = [], ""
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that is shipped)."""
    steps = instructions(dockerfile)
    starts = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    return steps[starts[-1]:]


def image_env(dockerfile: str) -> dict[str, str]:
    """The ENV of the final stage (``ENV A=1 B=2`` form)."""
    env = {}
    for keyword, rest in final_stage(dockerfile):
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_cmd(dockerfile: str) -> list[str]:
    """The final stage's CMD, exec (JSON) form."""
    (cmd,) = [rest for keyword, rest in final_stage(dockerfile) if keyword == "CMD"]
    return json.loads(cmd)


def exposed_ports(dockerfile: str) -> list[int]:
    return [int(port) for keyword, rest in final_stage(dockerfile) if keyword == "EXPOSE" for port in rest.split()]


def user_deployment(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def step_pod_env(values: dict) -> dict[str, str]:
    """What a step pod's environment gets from the values: the user deployment's ``env`` (handed
    on by includeConfigInLaunchedRuns) and the run launcher's ``envVars``."""
    env = {item["name"]: str(item["value"]) for item in user_deployment(values).get("env", [])}
    for item in values["runLauncher"]["config"]["k8sRunLauncher"].get("envVars", []):
        name, _, value = item.partition("=")
        env[name] = value
    return env


def unknown_keys(values, chart, path: str = "") -> list[str]:
    """Dotted paths of keys in ``values`` that ``chart`` (the chart's values.yaml) lacks.

    A chart key whose default is ``{}``, ``[]`` or null takes any content (resources, labels,
    env lists...); items of a list of mappings are compared with the chart's first item."""
    if isinstance(values, dict) and isinstance(chart, dict):
        if not chart:
            return []
        missing = []
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in chart:
                missing.append(where)
            else:
                missing += unknown_keys(value, chart[key], where)
        return missing
    if isinstance(values, list) and isinstance(chart, list) and chart and isinstance(chart[0], dict):
        return [m for i, item in enumerate(values) for m in unknown_keys(item, chart[0], f"{path}[{i}]")]
    return []
