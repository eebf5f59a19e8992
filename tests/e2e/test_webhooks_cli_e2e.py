"""`llm-gateway webhooks` against the local stack: add prints the signing secret once and alone,
list shows the webhook without it, delete removes it; refusals are clear and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import LeakCollector, plain_env
from tests.local_stack import RunningStack, create_account_key


def test_cli_adds_lists_and_deletes_a_webhook(stack: RunningStack, leak_collector: LeakCollector) -> None:
    assert stack.fake_provider_url  # an origin the shared stack allows (its own fake provider)
    owner_key = create_account_key(stack, "webhooks-cli")  # no LLMs: nothing is ever delivered

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "llm_gateway_cli.main", "webhooks", *args,
             "--api-url", stack.api_url, "--api-key", owner_key],
            capture_output=True, text=True, timeout=60, env=plain_env(),
        )  # fmt: skip
        leak_collector.add(f"webhooks {args[0]}", result.stdout + result.stderr)
        return result

    url = f"{stack.fake_provider_url}/hooks/cli"
    added = cli("add", url, "--description", "on-call")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown only this once" in added.stderr

    listing = cli("list")
    assert listing.returncode == 0 and url in listing.stdout and "on-call" in listing.stdout
    assert secret not in listing.stdout
    (hook,) = json.loads(cli("list", "--json").stdout)["data"]
    assert hook["url"] == url and hook["eventTypes"] == ["llm.health_changed"]

    refused = cli("add", "http://hooks.invalid/x")  # not https: refused before any lookup
    assert refused.returncode == 1 and "error: 400" in refused.stderr

    deleted = cli("delete", hook["id"])
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    again = cli("delete", hook["id"])
    assert again.returncode == 1 and "404" in again.stderr
    assert json.loads(cli("list", "--json").stdout)["data"] == []
