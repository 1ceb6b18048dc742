"""How steps are executed: the executor chosen by ``VITCOW_EXECUTOR`` and the GPU step's tags.

| ``VITCOW_EXECUTOR`` | steps run | for |
|---|---|---|
| ``in_process`` (default) | inside the run's own process, one after another; the model is loaded once per run process | a laptop or one GPU box: no per-step process start-up |
| ``multiprocess`` | one process per step (Dagster's own default) | steps of one run in parallel on a many-core host |
| ``celery`` | as Celery tasks: ``object_masks`` on the ``gpu`` queue, the rest on Dagster's default queue ``dagster``; broker and result backend from ``VITCOW_CELERY_BROKER`` / ``VITCOW_CELERY_BACKEND`` (default ``redis://127.0.0.1:6379/0``) | GPU workers beside CPU workers; install ``.[celery]`` |
| ``k8s`` | one Kubernetes Job per step (``dagster-k8s``); ``object_masks`` asks for ``nvidia.com/gpu: 1`` | a cluster; install ``.[k8s]`` |

``vitcow run`` always executes in its own process, whatever the variable says.
"""

import os

import dagster as dg

EXECUTOR_ENV = "VITCOW_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")
DEFAULT_EXECUTOR = "in_process"
BROKER_ENV = "VITCOW_CELERY_BROKER"
BACKEND_ENV = "VITCOW_CELERY_BACKEND"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"

#: the Celery queue of the GPU step; every other step goes to Dagster's default queue
GPU_QUEUE = "gpu"
#: the Dagster pool of the GPU step: its slots bound how many run at once (one per GPU)
GPU_POOL = "gpu"
#: op tags of the GPU step: its Celery queue and, on Kubernetes, one GPU for its pod
GPU_OP_TAGS = {
    "dagster-celery/queue": GPU_QUEUE,
    "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}},
}


def _from_env(name: str) -> dict | str:
    """An executor config value: a reference to the variable when it is set (so a password in
    a broker URL never lands in a stored config), else the local default."""
    return {"env": name} if os.environ.get(name) else DEFAULT_BROKER


def executor_from_env(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``name`` or ``$VITCOW_EXECUTOR`` (default ``in_process``)."""
    choice = (name or os.environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR).strip().lower().replace("-", "_")
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise ValueError(f"{EXECUTOR_ENV}=celery needs the celery extra: pip install -e '.[celery]' ({exc})") from exc
        return celery_executor.configured({"broker": _from_env(BROKER_ENV), "backend": _from_env(BACKEND_ENV)}, name="celery")
    if choice == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ValueError(f"{EXECUTOR_ENV}=k8s needs the k8s extra: pip install -e '.[k8s]' ({exc})") from exc
        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={choice!r}: expected one of {', '.join(EXECUTORS)}")
