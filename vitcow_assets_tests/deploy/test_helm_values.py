"""The Helm values against the chart they are written for and the image they run: every key
they set exists in the Dagster chart's values.yaml (vendored under deploy/helm/chart/), the
blocks the chart renders only when enabled are enabled, and the user deployment's image,
gRPC command and environment are the ones deploy/Dockerfile builds (and deploy/check-image.sh
proves inside the image)."""

import copy
import tomllib

import pytest

from vitcow_assets_tests.deploy.image_spec import (
    CHART_VALUES,
    DOCKERFILE,
    ROOT,
    VALUES,
    exposed_ports,
    image_cmd,
    image_env,
    load_yaml,
    step_pod_env,
    unknown_keys,
    user_deployment,
)

CHART = load_yaml(CHART_VALUES)


@pytest.fixture()
def values() -> dict:
    return load_yaml(VALUES)


def test_every_key_the_values_set_exists_in_the_chart(values):
    assert unknown_keys(values, CHART) == []


@pytest.mark.parametrize(
    "edit, reported",
    [
        (lambda v: v["concurrency"].update(pool={"defaultLimit": 1}), "concurrency.pool"),
        (lambda v: user_deployment(v).update(dagsterApiGrpcArg=["-m", "x"]), "dagster-user-deployments.deployments[0].dagsterApiGrpcArg"),
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envVar=["A=1"]), "runLauncher.config.k8sRunLauncher.envVar"),
        (lambda v: v["dagsterDaemon"]["runMonitoring"].update(startTimeout=300), "dagsterDaemon.runMonitoring.startTimeout"),
    ],
)
def test_a_misspelt_key_is_reported(values, edit, reported):
    broken = copy.deepcopy(values)
    edit(broken)
    assert unknown_keys(broken, CHART) == [reported]


def test_free_form_chart_keys_take_any_content(values):
    """resources, env lists, volumes: the chart's default is empty, anything may go in."""
    assert user_deployment(values)["volumes"] and CHART["dagster-user-deployments"]["deployments"][0]["volumes"] == []
    edited = copy.deepcopy(values)
    user_deployment(edited)["resources"] = {"limits": {"cpu": "2"}}
    assert unknown_keys(edited, CHART) == []


def test_blocks_the_chart_renders_only_when_enabled_are_enabled(values):
    # the chart's concurrency block is off by default and then renders nothing, pool limit included
    assert CHART["concurrency"]["enabled"] is False
    assert values["concurrency"]["enabled"] is True and values["concurrency"]["pools"]["defaultLimit"] >= 1
    assert values["dagster-user-deployments"]["enabled"] is True
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    # the chart refuses maxConcurrentRuns in both places
    assert "config" not in values["dagsterDaemon"].get("runCoordinator", {})


def test_the_user_deployment_runs_the_image_the_dockerfile_builds(values):
    deployment = user_deployment(values)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert deployment["image"]["repository"].rsplit("/", 1)[-1] == "vitcow-assets"
    assert deployment["image"]["tag"] == version  # what deploy/build-image.sh tags by default
    # the chart runs `dagster api grpc -h 0.0.0.0 -p <port> <dagsterApiGrpcArgs>`: the image's own CMD
    dockerfile = DOCKERFILE.read_text()
    assert image_cmd(dockerfile) == ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]), *deployment["dagsterApiGrpcArgs"]]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "vitcow_assets.definitions"]
    assert exposed_ports(dockerfile) == [deployment["port"]]


def test_step_pods_get_the_environment_the_image_sets(values):
    env = image_env(DOCKERFILE.read_text())
    pod = step_pod_env(values)
    assert pod["VITCOW_HOME"] == env["VITCOW_HOME"] == "/data/vitcow"
    assert pod["VITCOW_EXECUTOR"] == env["VITCOW_EXECUTOR"] == "k8s"
    # the chart mounts the instance's dagster.yaml at global.dagsterHome
    assert env["DAGSTER_HOME"] == CHART["global"]["dagsterHome"] == values.get("global", {}).get("dagsterHome", CHART["global"]["dagsterHome"])
    mounts = {m["mountPath"] for m in user_deployment(values)["volumeMounts"]}
    assert env["VITCOW_HOME"] in mounts
    assert env["VITCOW_HOME"] in {m["mountPath"] for m in values["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"]}


def test_the_vendored_chart_values_name_their_source_and_license():
    note = (CHART_VALUES.parent / "README.md").read_text()
    assert "Apache License 2.0" in note and "helm/dagster/values.yaml" in note
    assert "Apache License 2.0" in CHART_VALUES.read_text()
