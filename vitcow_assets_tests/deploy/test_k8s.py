"""Kubernetes: the step pod of ``object_masks`` as dagster-k8s builds it from our Helm values
(user deployment + run launcher) and the step's own op tags: one GPU, the shared storage
volume at ``VITCOW_HOME``, and ``VITCOW_HOME`` in its environment; other steps get no GPU."""

from pathlib import Path

import pytest
import yaml

dagster_k8s = pytest.importorskip("dagster_k8s", reason="the k8s extra is not installed")

from dagster._core.definitions.reconstruct import ReconstructableRepository  # noqa: E402
from dagster._core.execution.api import create_execution_plan  # noqa: E402
from dagster._core.storage.dagster_run import DagsterRun  # noqa: E402
from dagster_k8s.container_context import K8sContainerContext  # noqa: E402
from dagster_k8s.job import construct_dagster_k8s_job, get_user_defined_k8s_config  # noqa: E402


ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def _run_launcher(tmp_path):
    """The K8sRunLauncher the chart configures from ``runLauncher.config.k8sRunLauncher``."""
    config = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)  # parsed only: nothing is contacted
    return dagster_k8s.K8sRunLauncher(
        service_account_name="dagster",
        instance_config_map="dagster-instance",
        dagster_home="/opt/dagster/dagster_home",
        load_incluster_config=False,
        kubeconfig_file=str(kubeconfig),
        env_vars=config["envVars"],
        volumes=config["volumes"],
        volume_mounts=config["volumeMounts"],
    )


def _deployment_container_context() -> dict:
    """What ``includeConfigInLaunchedRuns`` hands to run and step pods from the user deployment."""
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    return {
        "k8s": {
            "env": deployment["env"],
            "env_secrets": [s["name"] for s in deployment["envSecrets"]],
            "volumes": deployment["volumes"],
            "volume_mounts": deployment["volumeMounts"],
        }
    }


def _step_pod(step_key: str, tmp_path):
    recon = ReconstructableRepository.for_module(
        "vitcow_assets.definitions", "defs", container_image="REGISTRY/vitcow-assets:0.1.0", container_context=_deployment_container_context()
    ).get_reconstructable_job("process_video")
    step = create_execution_plan(recon).get_step_by_key(step_key)
    run = DagsterRun(job_name="process_video", run_id="r1", job_code_origin=recon.get_python_origin())
    launcher = _run_launcher(tmp_path)
    # the order of K8sStepHandler: run launcher + code location, then the step's own tags
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step.tags))
    )
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config("REGISTRY/vitcow-assets:0.1.0", launcher),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{step_key.replace('_', '-')}",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.spec.template.spec


def test_object_masks_step_pod_gets_a_gpu_the_shared_volume_and_vitcow_home(tmp_path):
    pod = _step_pod("object_masks", tmp_path)
    (container,) = pod.containers
    assert container.resources.limits == {"nvidia.com/gpu": "1"}  # a Kubernetes quantity
    env = {e.name: e.value for e in container.env}
    home = env["VITCOW_HOME"]
    assert home == "/data/vitcow" and env["VITCOW_EXECUTOR"] == "k8s"
    assert any(m.mount_path == home and m.name == "vitcow-storage" for m in container.volume_mounts)
    claims = {v.name: v.persistent_volume_claim.claim_name for v in pod.volumes if v.persistent_volume_claim}
    assert claims == {"vitcow-storage": "vitcow-storage"}
    assert "vitcow-secrets" in {s.secret_ref.name for s in container.env_from if s.secret_ref}


def test_other_steps_get_the_storage_but_no_gpu(tmp_path):
    pod = _step_pod("object_crops", tmp_path)
    (container,) = pod.containers
    assert not (container.resources and container.resources.limits)
    assert any(m.mount_path == "/data/vitcow" for m in container.volume_mounts)


def test_helm_values_keep_the_password_out_and_set_the_pool_and_scheme():
    pg = VALUES["postgresql"]
    assert "postgresqlPassword" not in pg and pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert VALUES["concurrency"]["pools"]["defaultLimit"] >= 1
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
