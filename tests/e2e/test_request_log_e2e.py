"""The request log through `llm-gateway dev` (issue 21): what happened to a session, and what it cost.

Two LLMs of our own on the fake provider: one whose key is the canary (the fake accepts any key
for its model), one with two URLs told apart by a query parameter, for failover and disconnects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import CANARY, LeakCollector, plain_env
from tests.e2e.conftest import RunningStack, llm_body

PROMPT = f"reqlog-prompt-{uuid.uuid4()}: tell me a story"
CANARY_MODEL = "fake-reqlog"
FAILOVER_MODEL = "fake-reqlog-failover"


def _wait_for(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _register(api: httpx.Client, body: dict[str, Any]) -> str:
    created = api.post("/v1/llms", json=body)
    assert created.status_code == 201, created.text
    llm_id = str(created.json()["id"])
    llm = _wait_for(
        "validation", lambda: (d := api.get(f"/v1/llms/{llm_id}").json())["status"] != "pending" and d
    )
    assert llm["status"] == "valid", llm
    return llm_id


@pytest.fixture(scope="module")
def fake(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(stack.fake_provider_url), timeout=10) as client:
        yield client
        client.delete("/_fake/faults", params={"model": CANARY_MODEL})
        client.delete("/_fake/faults", params={"model": FAILOVER_MODEL})


@pytest.fixture(scope="module")
def canary_llm(stack: RunningStack, fake: httpx.Client) -> str:
    fake.put("/_fake/faults", json={"model": CANARY_MODEL, "fault": "accept-any-key"}).raise_for_status()
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"}) as api:
        return _register(api, llm_body(stack, modelName=CANARY_MODEL, secret=CANARY))


@pytest.fixture(scope="module")
def failover_llm(stack: RunningStack) -> str:
    base = f"{stack.fake_provider_url}/v1/chat/completions"
    body = llm_body(
        stack,
        modelName=FAILOVER_MODEL,
        secret="fake-key",
        urls=[{"url": f"{base}?lane=a"}, {"url": f"{base}?lane=b"}],
    )
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"}) as api:
        return _register(api, body)


def mint(api: httpx.Client, llm_id: str, label: str = "e2e-reqlog") -> tuple[str, str]:
    response = api.post(
        "/v1/auth/session-token",
        json={
            "personaConfig": {"name": "p", "llmId": llm_id, "systemPrompt": "secret persona"},
            "clientLabel": label,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["sessionToken"], response.json()["sessionId"]


def sdk(stack: RunningStack, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=token, max_retries=0, timeout=30)


def stream(stack: RunningStack, token: str, *, usage: bool, text: str = PROMPT) -> list[Any]:
    options: Any = {"include_usage": True} if usage else openai.NOT_GIVEN
    chunks = sdk(stack, token).chat.completions.create(
        model="x", messages=[{"role": "user", "content": text}], stream=True, stream_options=options
    )
    return list(chunks)


def session_records(api: httpx.Client, session_id: str, count: int, **params: Any) -> list[dict[str, Any]]:
    def listed() -> list[dict[str, Any]] | None:
        response = api.get(f"/v1/sessions/{session_id}/requests", params=params)
        assert response.status_code in (200, 404), response.text
        data = response.json().get("data") or []
        return data if len(data) >= count else None

    found: list[dict[str, Any]] = _wait_for(f"{count} records of the session", listed)
    return found


def test_a_stream_is_in_the_llm_and_session_lists_with_timings_and_the_usage_it_was_sent(
    stack: RunningStack, api: httpx.Client, canary_llm: str
) -> None:
    token, session_id = mint(api, canary_llm)
    chunks = stream(stack, token, usage=True)
    sent = [c.usage for c in chunks if c.usage is not None]
    assert len(sent) == 1 and sent[0].completion_tokens > 0
    [record] = session_records(api, session_id, 1)
    assert record["llmId"] == canary_llm and record["sessionId"] == session_id
    assert record["clientLabel"] == "e2e-reqlog"
    assert (record["outcome"], record["httpStatus"], record["upstreamStatus"]) == ("ok", 200, 200)
    assert (record["attempts"], record["urlIndex"]) == (1, 0)
    assert 0 < record["upstreamTtfbMs"] <= record["ttftMs"] <= record["totalMs"]
    assert record["chunks"] >= 1 and not record["hedged"] and not record["continued"]
    assert record["usage"] == {
        "inputTokens": sent[0].prompt_tokens,
        "outputTokens": sent[0].completion_tokens,
        "totalTokens": sent[0].total_tokens,
    }
    listed = api.get(f"/v1/llms/{canary_llm}/requests", params={"sessionId": session_id}).json()["data"]
    assert listed == [record]


def test_usage_is_recorded_but_the_usage_chunk_goes_only_to_clients_that_ask(
    stack: RunningStack, api: httpx.Client, canary_llm: str
) -> None:
    token, session_id = mint(api, canary_llm)
    chunks = stream(stack, token, usage=False)
    assert chunks and all(c.usage is None and c.choices for c in chunks)
    [record] = session_records(api, session_id, 1)
    assert record["usage"]["outputTokens"] > 0


def test_paging_filters_and_usage_sums_match_the_usage_chunks(
    stack: RunningStack, api: httpx.Client, canary_llm: str
) -> None:
    before = api.get(f"/v1/llms/{canary_llm}/usage", params={"days": 1}).json()
    token, session_id = mint(api, canary_llm)
    sent = [next(c.usage for c in stream(stack, token, usage=True) if c.usage) for _ in range(3)]
    records = session_records(api, session_id, 3)
    assert [r["at"] for r in records] == sorted((r["at"] for r in records), reverse=True)
    first = api.get(f"/v1/sessions/{session_id}/requests", params={"limit": 2}).json()
    assert len(first["data"]) == 2 and first["nextCursor"]
    second = api.get(
        f"/v1/sessions/{session_id}/requests", params={"limit": 2, "cursor": first["nextCursor"]}
    )
    assert [r["requestId"] for r in first["data"] + second.json()["data"]] == [
        r["requestId"] for r in records
    ]
    assert "nextCursor" not in second.json() or second.json()["nextCursor"] is None
    by_llm = api.get(f"/v1/llms/{canary_llm}/requests", params={"sessionId": session_id, "limit": 1}).json()
    assert by_llm["data"] == records[:1] and by_llm["nextCursor"]
    assert (
        api.get(f"/v1/llms/{canary_llm}/requests", params={"outcome": "upstream_timeout"}).json()["data"]
        == []
    )
    after = _wait_for(
        "usage counters",
        lambda: (
            (u := api.get(f"/v1/llms/{canary_llm}/usage", params={"days": 1}).json())["requests"]
            >= before["requests"] + 3
            and u
        ),
    )
    assert after["outputTokens"] - before["outputTokens"] == sum(u.completion_tokens for u in sent)
    assert after["inputTokens"] - before["inputTokens"] == sum(u.prompt_tokens for u in sent)
    [today] = after["data"]
    assert today["ttftP50Ms"] is not None and today["ttftP95Ms"] >= today["ttftP50Ms"]


def test_a_revoked_session_shows_its_outcome(stack: RunningStack, api: httpx.Client, canary_llm: str) -> None:
    token, session_id = mint(api, canary_llm)
    stream(stack, token, usage=False)
    assert api.delete(f"/v1/sessions/{session_id}").status_code == 204
    with pytest.raises(openai.PermissionDeniedError):
        stream(stack, token, usage=False)
    newest, older = session_records(api, session_id, 2)
    # (the upstream request may have gone out beside the session's read and been aborted: attempts 0 or 1)
    assert (newest["outcome"], newest["httpStatus"], newest.get("ttftMs")) == ("session_revoked", 403, None)
    assert older["outcome"] == "ok"
    revoked = api.get(f"/v1/llms/{canary_llm}/requests", params={"outcome": "session_revoked"}).json()["data"]
    assert newest in revoked and all(r["outcome"] == "session_revoked" for r in revoked)


def test_a_failover_shows_two_attempts_and_the_second_url(
    stack: RunningStack, api: httpx.Client, fake: httpx.Client, failover_llm: str
) -> None:
    mark = f"failover-{uuid.uuid4()}"
    rule = {"model": FAILOVER_MODEL, "fault": "status-503", "at": "lane=a", "when": mark}
    fake.put("/_fake/faults", json=rule).raise_for_status()
    token, session_id = mint(api, failover_llm)
    assert stream(stack, token, usage=False, text=mark)
    [record] = session_records(api, session_id, 1)
    assert (record["outcome"], record["attempts"], record["urlIndex"]) == ("ok", 2, 1)


def test_a_client_that_goes_away_shows_client_disconnected(
    stack: RunningStack, api: httpx.Client, fake: httpx.Client, failover_llm: str
) -> None:
    mark = f"disconnect-{uuid.uuid4()}"
    fake.put(
        "/_fake/faults", json={"model": FAILOVER_MODEL, "fault": "stall:1", "when": mark}
    ).raise_for_status()
    token, session_id = mint(api, failover_llm)
    body = {"messages": [{"role": "user", "content": mark}], "stream": True}
    with httpx.stream(
        "POST",
        f"{stack.api_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # the first event, then the client hangs up
    [record] = session_records(api, session_id, 1)
    assert record["outcome"] == "client_disconnected" and record["httpStatus"] == 200


def test_another_accounts_ids_are_404s(
    api: httpx.Client, other_api: httpx.Client, canary_llm: str, stack: RunningStack
) -> None:
    token, session_id = mint(api, canary_llm)
    stream(stack, token, usage=False)
    session_records(api, session_id, 1)
    for path in (
        f"/v1/llms/{canary_llm}/requests",
        f"/v1/llms/{canary_llm}/usage",
        f"/v1/sessions/{session_id}/requests",
    ):
        response = other_api.get(path)
        assert response.status_code == 404, (path, response.text)
    assert api.get(f"/v1/sessions/{uuid.uuid4().hex}/requests").status_code == 404


def test_records_hold_no_key_and_no_prompt_and_expire(
    stack: RunningStack, api: httpx.Client, canary_llm: str
) -> None:
    token, session_id = mint(api, canary_llm)
    stream(stack, token, usage=True)
    session_records(api, session_id, 1)
    pages = stack.aws("dynamodb").get_paginator("scan").paginate(TableName=stack.table_name)
    items = [
        item
        for page in pages
        for item in page["Items"]
        if item["PK"]["S"].startswith(("REQLOG#", "REQSESSION#", "USAGE#"))
    ]
    assert any(session_id in str(item) for item in items)
    text = str(items)
    assert CANARY not in text and "reqlog-prompt" not in text and "secret persona" not in text
    now = time.time()
    for item in items:
        assert now < int(item["ttl"]["N"]) <= now + 8 * 86400, item["PK"]["S"]


def _cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", "llms", *args, "--state-file", str(stack.state_file)],
        capture_output=True, text=True, timeout=60,
        env=plain_env(),
    )  # fmt: skip


def test_the_cli_lists_a_sessions_requests_and_charts_the_usage(
    stack: RunningStack, api: httpx.Client, canary_llm: str, leak_collector: LeakCollector
) -> None:
    token, session_id = mint(api, canary_llm)
    sent = next(c.usage for c in stream(stack, token, usage=True) if c.usage)
    session_records(api, session_id, 1)
    table = _cli(stack, "requests", canary_llm, "--session", session_id, "--since", "1h")
    leak_collector.add("cli llms requests", table.stdout + table.stderr)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.startswith("TIME (UTC)") and "TOKENS IN/OUT" in header
    assert " ok " in row and session_id in row and f"{sent.prompt_tokens}/{sent.completion_tokens}" in row
    as_json = json.loads(_cli(stack, "requests", canary_llm, "--session", session_id, "--json").stdout)
    assert [r["sessionId"] for r in as_json["data"]] == [session_id]
    assert _cli(stack, "requests", canary_llm, "--since", "yesterday").returncode == 2
    chart = _cli(stack, "usage", canary_llm, "--days", "3")
    assert chart.returncode == 0, chart.stderr
    lines = chart.stdout.splitlines()
    assert lines[0] == "tokens per day (UTC), last 3 days:" and "█" in lines[3]
    assert lines[-1].startswith("total: ") and " requests, " in lines[-1]
    missing = _cli(stack, "usage", "no-such-llm")
    assert missing.returncode == 1 and "llm_not_found" in missing.stderr
