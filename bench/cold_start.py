"""Cold init per function: a fresh python3.13 importing the built handler with the layer and
building its services from its settings (what it does before its first request's I/O).

The environment is a Lambda container's (``LAMBDA_TASK_ROOT`` and friends): libraries behave
differently there. The X-Ray SDK, for one, builds two botocore X-Ray clients for centralized
sampling at import outside Lambda (~100 ms) and a local sampler inside it.

`sam build` targets arm64, so its compiled wheels cannot load on this x86_64 machine: the same
pinned requirements are installed for the host into .aws-sam/bench-deps and put in front of the
built layer on the path. Bytecode is precompiled (unchecked-hash), as `make build` ships it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / ".aws-sam" / "build"
HOST_DEPS = REPO / ".aws-sam" / "bench-deps"
RUNS = 7
PYTHON = ["python3.13"]
ENV = {"PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.11.7:3.13.0").split(":")[-1]}


def _host_deps() -> Path:
    marker = HOST_DEPS / ".done"
    if not marker.exists():
        subprocess.run(
            [*PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(HOST_DEPS),
             "-r", str(REPO / "layers/common/requirements.txt"),
             "-r", str(REPO / "functions/stream_proxy/requirements.txt")],
            check=True, env=os.environ | ENV,
        )  # fmt: skip
        subprocess.run([*PYTHON, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        str(HOST_DEPS)], check=False, env=os.environ | ENV, stdout=subprocess.DEVNULL)  # fmt: skip
        marker.touch()
    return HOST_DEPS


def functions() -> dict[str, str]:
    """Built function folder -> the module its runtime imports first (the template's ``Handler``;
    the stream app's is ``run.sh``, which starts ``app``)."""
    from llm_gateway_local.template import load_template

    resources = load_template(REPO / "template.yaml")["Resources"]
    out = {}
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir() and p.name != "CommonLayer"):
        handler = str(resources.get(folder.name, {}).get("Properties", {}).get("Handler", "handler."))
        out[folder.name] = "app" if (folder / "run.sh").exists() else handler.rpartition(".")[0]
    return out


#: What a container does before its first request can do I/O: import the handler, then build its
#: services from its settings (the stream app: the app, then its services, as its start-up does).
_INIT = (
    "import time\n"
    "t = time.perf_counter()\n"
    "import {module} as m\n"
    "if hasattr(m, 'create_app'):\n"
    "    m.create_app().state.runtime.services\n"
    "elif hasattr(m, 'services'):\n"
    "    m.services()\n"
    "print((time.perf_counter() - t) * 1000)\n"
)


def measure(function: str, module: str) -> float:
    code = _INIT.format(module=module)
    path = os.pathsep.join([str(BUILD / function), str(_host_deps()), str(BUILD / "CommonLayer" / "python")])
    env = {
        **os.environ, **ENV, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "llm-gateway", "STAGE": "bench", "TABLE_NAME": "bench",
        "EVENT_BUS_NAME": "bench", "CREDENTIALS_KEY_ID": "alias/bench", "TOKEN_SIGNING_KEY_ID": "alias/bench-signing",
        "TOKEN_ISSUER": "https://bench.invalid", "HOP_MARKER": "bench-stack",
        "VALIDATION_QUEUE_URL": "https://sqs.invalid/q", "WEBHOOK_QUEUE_URL": "https://sqs.invalid/w",
        "REVALIDATION_QUEUE_URL": "https://sqs.invalid/r",
        "LAMBDA_TASK_ROOT": str(BUILD / function),
        "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }  # fmt: skip
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [*PYTHON, "-c", code], check=True, capture_output=True, text=True, env=env, cwd="/"
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def measure_all() -> list[dict[str, Any]]:
    if not BUILD.exists():
        raise SystemExit("run `make build` first (cold starts import the built functions)")
    return [
        {"function": name, "module": module, "median_ms": measure(name, module)}
        for name, module in functions().items()
    ]


if __name__ == "__main__":
    for row in measure_all():
        print(f"{row['function']:<28} {row['median_ms']:7.1f} ms")
