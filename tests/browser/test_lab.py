"""The Lab, used the way a person would, in a real browser against a real local stack. Elements are
found by their accessible names (the contract the issue lists), which is also how a screen reader
finds them."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import Lab
from tests.conftest import CANARY

TTFT = re.compile(r"^TTFT \d+ ms$")


def _fill_new_llm(lab: Lab, name: str, key: str) -> None:
    page = lab.page
    page.get_by_role("button", name="New LLM").click()
    expect(page.get_by_role("heading", name="New LLM")).to_be_visible()
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Format").select_option(label="OpenAI")
    page.get_by_label("URL").fill(f"{lab.stack.fake_provider_url}/v1/chat/completions")
    page.get_by_label("Model").fill("fake-model")
    page.get_by_label("Endpoint API key").fill(key)


def test_sign_in_is_refused_with_a_wrong_key_and_sign_out_forgets_the_key(lab: Lab) -> None:
    page = lab.page
    page.goto(lab.stack.lab_url)
    lab.shot("sign-in")
    key_box = page.get_by_role("textbox", name="API key")
    assert key_box.get_attribute("type") == "password"
    assert key_box.get_attribute("autocomplete") == "off"
    key_box.fill("llmgw_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("main").get_by_text("This key was not accepted")).to_be_visible()
    assert lab.storage()["session"] == {}

    lab.sign_in()
    assert list(lab.storage()["session"].values()) == [lab.api_key]
    assert lab.api_key not in lab.storage()["url"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("main").get_by_text("Signed out.", exact=True)).to_be_visible()
    assert lab.storage()["session"] == {} and lab.storage()["local"] == {}


def test_register_an_llm_and_watch_it_turn_valid_with_its_report(lab: Lab) -> None:
    page = lab.page
    lab.sign_in()
    lab.shot("llms")
    name = f"Browser {uuid.uuid4().hex[:6]}"
    _fill_new_llm(lab, name, "fake-key")
    lab.shot("new-llm")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_role("main").get_by_text("valid", exact=True)).to_be_visible()
    llm_id = page.url.rsplit("/", 1)[1]
    report = lab.api.get(f"/v1/llms/{llm_id}/validation").json()
    region = page.get_by_role("region", name="Validation report")
    expect(region.get_by_role("row")).to_have_count(len(report["checks"]) + 1)
    for check in report["checks"][:3]:
        expect(region.get_by_role("row").filter(has_text=check["id"]).first).to_be_visible()
    # The fake provider continues a prefilled answer: a cut answer is finished on its URL.
    expect(region).to_contain_text("Continuation: a cut answer is continued on urls[0].")
    expect(page.get_by_role("img", name=re.compile(r"TTFB \d+ ms, TTFT \d+ ms"))).to_be_visible()
    lab.shot("llm-page")
    # It is in the list, with its status.
    page.get_by_role("link", name="All LLMs").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.get_by_text("valid", exact=True)).to_be_visible()
    # Search narrows the list.
    page.get_by_role("searchbox", name="Search").fill(name)
    expect(page.get_by_role("table", name="Your LLMs").get_by_role("row")).to_have_count(2)


def test_a_wrong_endpoint_key_reads_as_such_in_the_report(lab: Lab) -> None:
    page = lab.page
    lab.sign_in()
    _fill_new_llm(lab, "Wrong key", CANARY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("main").get_by_text("invalid", exact=True)).to_be_visible()
    region = page.get_by_role("region", name="Validation report")
    failed = region.get_by_role("row").filter(has_text="fail")
    expect(failed.filter(has_text="The endpoint rejected the API key").first).to_be_visible()
    expect(region).to_contain_text("Not compatible")
    lab.shot("llm-page-wrong-key")
    storage = lab.storage()
    assert CANARY not in str(storage) and CANARY not in page.content()


def test_test_runs_the_suite_without_saving(lab: Lab) -> None:
    page = lab.page
    lab.sign_in()
    name = f"Dry run {uuid.uuid4().hex[:6]}"
    _fill_new_llm(lab, name, "fake-key")
    page.get_by_role("button", name="Test").click()
    expect(
        page.get_by_role("main").get_by_text("Test passed: this config is compatible. Nothing was saved.")
    ).to_be_visible()
    region = page.get_by_role("region", name="Validation report")
    expect(region).to_contain_text("Compatible ·")
    assert region.get_by_role("row").count() > 5
    lab.shot("test-report")
    listed = lab.api.get("/v1/llms", params={"search": name}).json()
    assert listed["meta"]["total"] == 0
    # Azure shows its own fields; the others do not.
    expect(page.get_by_label("Deployment")).to_be_hidden()
    page.get_by_label("Format").select_option(label="Azure OpenAI")
    expect(page.get_by_label("Deployment")).to_be_visible()
    expect(page.get_by_label("API version")).to_be_visible()
    page.get_by_label("API version").fill("2024-10")
    page.get_by_label("API version").blur()
    expect(page.get_by_role("main").get_by_text("Use the form 2024-10-21")).to_be_visible()
    expect(page.get_by_label("Format").locator("option")).to_have_text(
        ["OpenAI", "Azure OpenAI", "Gemini", "Anthropic", "Groq (OpenAI-compatible)"]
    )
    page.get_by_label("Format").select_option(label="Anthropic")
    expect(page.get_by_label("Deployment")).to_be_hidden()
    expect(
        page.get_by_role("main").get_by_text("https://api.anthropic.com", exact=False).first
    ).to_be_visible()


def test_validate_again_queues_a_run_and_the_page_follows_it_until_its_report(lab: Lab) -> None:
    page = lab.page
    # A second and a half to the first byte: long enough to watch the run queued or running.
    llm_id = lab.register("Revalidated", modelName="fake-fault-delay-first-byte-1500")
    assert lab.wait_settled(llm_id) == "valid"
    before = lab.api.get(f"/v1/llms/{llm_id}/validation").json()
    lab.sign_in()
    lab.open_llm(llm_id)
    button = page.get_by_role("button", name="Validate again")
    expect(button).to_be_enabled()
    button.click()
    expect(
        page.get_by_role("status").filter(has_text=re.compile(r"Validation (queued|running)"))
    ).to_be_visible()
    expect(button).to_be_disabled()
    lab.shot("validate-again-running")
    # No reload, no click: the page settles by itself once the run's report is stored.
    expect(page.get_by_role("status").filter(has_text="Validated: valid.")).to_be_visible()
    expect(button).to_be_enabled()
    after = lab.api.get(f"/v1/llms/{llm_id}/validation").json()
    assert after["validationId"] != before["validationId"] and after["pending"] is None
    region = page.get_by_role("region", name="Validation report")
    expect(region).to_contain_text("Compatible")
    expect(region.get_by_role("row")).to_have_count(len(after["checks"]) + 1)
    lab.shot("validate-again-done")


def test_rotate_a_key_refused_then_promoted(lab: Lab) -> None:
    page = lab.page
    llm_id = lab.register("Rotating")
    assert lab.wait_settled(llm_id) == "valid"
    lab.sign_in()
    lab.open_llm(llm_id)
    for new_key, outcome in ((CANARY, "New key was refused"), ("fake-key", "is now in service")):
        page.get_by_role("link", name="Edit").click()
        key_box = page.get_by_label("Endpoint API key")
        assert key_box.get_attribute("type") == "password"
        key_box.fill(new_key)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", name="Rotating")).to_be_visible()
        expect(page.get_by_role("status").filter(has_text=outcome)).to_be_visible()
        expect(page.get_by_role("main").get_by_text("valid", exact=True)).to_be_visible()
        assert new_key not in str(lab.storage()["inputs"])  # gone from the page once saved
    lab.shot("rotated")


def test_chat_streams_the_answer_and_shows_time_to_first_token(lab: Lab) -> None:
    page = lab.page
    llm_id = lab.register("Chatty")
    assert lab.wait_settled(llm_id) == "valid"
    lab.sign_in()
    lab.open_llm(llm_id)
    try_it = page.get_by_role("region", name="Try it")
    try_it.get_by_role("textbox", name="Message").fill("Hello from the browser")
    try_it.get_by_role("button", name="Send").click()
    log = try_it.get_by_role("log")
    expect(log).to_contain_text("Hello from the browser")
    expect(log).to_contain_text("The quick fake model streams")
    expect(try_it.get_by_text(TTFT)).to_be_visible()
    lab.shot("chat")
    # The snippets name this LLM and never the account key.
    snippets = page.get_by_role("region", name="Snippets")
    expect(snippets).to_contain_text(f'"llmId":"{llm_id}"')
    expect(snippets.get_by_role("button", name="Copy OpenAI SDK (Python)")).to_be_visible()
    assert lab.api_key not in page.content()


def test_a_parsed_reasoning_models_thoughts_are_folded_away_under_the_answer(lab: Lab) -> None:
    page = lab.page
    llm_id = lab.register("Thinker", reasoningEffort="low", reasoningFormat="parsed")
    assert lab.wait_settled(llm_id) == "valid"
    lab.sign_in()
    lab.open_llm(llm_id)
    try_it = page.get_by_role("region", name="Try it")
    try_it.get_by_role("textbox", name="Message").fill("Think, then answer")
    try_it.get_by_role("button", name="Send").click()
    log = try_it.get_by_role("log")
    expect(log).to_contain_text("The quick fake model streams")
    thoughts = log.locator("details.thoughts")
    expect(thoughts.locator("summary")).to_have_text("Thoughts")
    expect(thoughts).not_to_have_attribute("open", "")
    expect(thoughts.get_by_text("The user wants a short reply")).to_be_hidden()  # folded away
    thoughts.locator("summary").click()
    expect(thoughts.get_by_text("The user wants a short reply")).to_be_visible()
    answer = log.locator("p.turn").last
    expect(answer).not_to_contain_text("The user wants")
    lab.shot("chat-thoughts")


def test_create_an_api_key_then_revoke_it_and_see_it_refused(lab: Lab) -> None:
    page = lab.page
    lab.sign_in()
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    page.get_by_label("Key name").fill("browser key")
    page.get_by_role("button", name="Create key").click()
    new_key = page.get_by_role("textbox", name="New API key").input_value()
    assert new_key.startswith("llmgw_")
    lab.shot("api-keys")
    keys_url = f"{lab.stack.api_url}/v1/api-keys"
    assert httpx.get(keys_url, headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    page.get_by_role("button", name="Done").click()
    assert new_key not in page.content() and new_key not in str(lab.storage())
    row = page.get_by_role("row").filter(has_text="browser key")
    expect(row.get_by_text("…" + new_key[-4:])).to_be_visible()
    page.get_by_role("button", name="Revoke browser key").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("row").filter(has_text="browser key")).to_have_count(0)
    assert (
        httpx.get(
            f"{lab.stack.api_url}/v1/api-keys", headers={"Authorization": f"Bearer {new_key}"}
        ).status_code
        == 401
    )
    # And the Lab refuses it too.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill(new_key)
    page.get_by_role("button", name="Sign in").click()
    expect(
        page.get_by_role("main").get_by_text("This key was not accepted: it is wrong or has been revoked.")
    ).to_be_visible()


def test_a_key_revoked_elsewhere_signs_the_lab_out(lab: Lab) -> None:
    page = lab.page
    created = lab.api.post("/v1/api-keys", json={"name": "short-lived"}).json()
    lab.sign_in(created["key"])
    assert lab.api.delete(f"/v1/api-keys/{created['id']}").status_code == 204
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("main").get_by_text("Your API key was refused")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert lab.storage()["session"] == {}


def test_keyboard_only_sign_in_new_llm_save(lab: Lab) -> None:
    page = lab.page
    keyboard = page.keyboard
    page.goto(lab.stack.lab_url)
    expect(page.get_by_label("API key")).to_be_focused()
    keyboard.type(lab.api_key)
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name="LLMs", exact=True)).to_be_focused()
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="New LLM")).to_be_focused()
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name="New LLM")).to_be_focused()
    name = f"Keyboard {uuid.uuid4().hex[:6]}"
    for label, text in (
        ("Display name", name),
        ("Format", None),
        ("URL", f"{lab.stack.fake_provider_url}/v1/chat/completions"),
        ("Model", "fake-model"),
        ("Endpoint API key", "fake-key"),
    ):
        keyboard.press("Tab")
        expect(page.get_by_label(label, exact=True)).to_be_focused()
        if text is not None:
            keyboard.type(text)
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Test")).to_be_focused()
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save")).to_be_focused()
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name=name)).to_be_focused()
    expect(page.get_by_role("main").get_by_text("valid", exact=True)).to_be_visible()


def test_page_headers_forbid_inline_script_and_framing(lab: Lab) -> None:
    response = lab.page.goto(lab.stack.lab_url)
    assert response is not None and response.ok
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["cache-control"] == "no-cache"
    inline = lab.page.evaluate("() => [...document.scripts].filter((s) => !s.src).length")
    assert inline == 0
    asset = next(url for url in lab.requests if url.endswith("/app.js"))
    assert "immutable" in httpx.get(asset).headers["cache-control"]


def test_no_key_is_kept_in_local_storage_cookies_or_the_url(lab: Lab) -> None:
    lab.sign_in()
    lab.page.get_by_role("link", name="API keys").click()
    expect(lab.page.get_by_role("heading", name="API keys")).to_be_visible()
    storage = lab.storage()
    assert storage["local"] == {} and storage["cookies"] == ""
    assert lab.api_key not in storage["url"]
    assert lab.api_key not in lab.page.content()
    assert all(lab.api_key not in url for url in lab.requests)


def test_the_llm_page_shows_its_health_and_a_day_of_traffic(lab: Lab) -> None:
    page = lab.page
    llm_id = lab.register("Watched")
    assert lab.wait_settled(llm_id) == "valid"
    token = lab.api.post(
        "/v1/auth/session-token", json={"personaConfig": {"name": "Ava", "llmId": llm_id}}
    ).json()["sessionToken"]
    marker = f"lab-health-{uuid.uuid4().hex}"  # only these streams fail: other tests share the fake
    fake = httpx.Client(base_url=str(lab.stack.fake_provider_url), timeout=10)
    # A 400 (the request refused) is never retried: half the streams fail, whatever the failover does.
    rule = {"model": "fake-model", "fault": "status-400", "ratio": 0.5, "when": marker}
    fake.put("/_fake/faults", json=rule).raise_for_status()
    try:
        for _ in range(24):
            httpx.post(
                f"{lab.stack.api_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {token}"},
                json={"messages": [{"role": "user", "content": marker}], "stream": True},
                timeout=30,
            )
    finally:
        fake.delete("/_fake/faults", params={"model": "fake-model"}).raise_for_status()
    deadline = time.monotonic() + 30  # the stream app flushes its counters every 10 s
    while lab.api.get(f"/v1/llms/{llm_id}").json()["health"]["window"]["requests"] < 24:
        assert time.monotonic() < deadline, "the traffic was never counted"
        time.sleep(0.5)
    lab.sign_in()
    lab.open_llm(llm_id)
    health = page.get_by_role("region", name="Health")
    expect(health).to_contain_text("Health: failing")
    expect(
        health.get_by_role("img", name=re.compile(r"^Last 24 hours: 24 requests, 12 upstream errors"))
    ).to_be_visible()
    expect(health).to_contain_text("upstream_bad_request × 12")
    expect(health).to_contain_text("12 of 24 attempts failed, served 12")
    expect(health).to_contain_text("p50")
    health.get_by_text("Traffic by 5 minutes").click()
    expect(health.get_by_role("table")).to_contain_text("50%")
    lab.shot("health")


def test_the_llm_page_lists_its_requests_and_usage_and_the_chat_finds_its_own(lab: Lab) -> None:
    page = lab.page
    llm_id = lab.register("Logged")
    assert lab.wait_settled(llm_id) == "valid"
    token = lab.api.post(
        "/v1/auth/session-token", json={"personaConfig": {"name": "Ava", "llmId": llm_id}}
    ).json()["sessionToken"]
    revoked = lab.api.post(
        "/v1/auth/session-token", json={"personaConfig": {"name": "Ava", "llmId": llm_id}}
    ).json()
    assert lab.api.delete(f"/v1/sessions/{revoked['sessionId']}").status_code == 204
    for bearer in (token, revoked["sessionToken"]):
        httpx.post(
            f"{lab.stack.api_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {bearer}"},
            json={"messages": [{"role": "user", "content": "hello"}], "stream": True},
            timeout=30,
        )
    lab.sign_in()
    lab.open_llm(llm_id)
    requests = page.get_by_role("region", name="Requests")
    table = requests.get_by_role("table", name="Latest requests")

    def rows(outcome: str) -> Any:
        return table.get_by_role("row").filter(has=page.get_by_role("cell", name=outcome, exact=True))

    expect(rows("session_revoked")).to_have_count(1)  # (a row's details row stays hidden until opened)
    expect(rows("ok")).to_have_count(1)
    requests.get_by_label("Outcome").select_option("session_revoked")
    expect(rows("ok")).to_have_count(0)
    expect(rows("session_revoked")).to_have_count(1)
    requests.get_by_label("Outcome").select_option("")
    # A row opens its details.
    ok_row = table.get_by_role("row").filter(has_text=re.compile(r"\d+ in / \d+ out"))
    ok_row.get_by_role("button").click()
    expect(ok_row.get_by_role("button")).to_have_attribute("aria-expanded", "true")
    opened = requests.locator("dl:visible")
    expect(opened).to_have_count(1)
    expect(opened).to_contain_text("Time to first token")
    expect(opened).to_contain_text("URL that answered#1")
    # The chat's own request appears, marked, without a reload.
    try_it = page.get_by_role("region", name="Try it")
    try_it.get_by_role("textbox", name="Message").fill("Hello from the browser")
    try_it.get_by_role("button", name="Send").click()
    expect(try_it.get_by_role("log")).to_contain_text("The quick fake model streams")
    expect(rows("ok")).to_have_count(2)
    expect(table.get_by_role("row").filter(has=page.get_by_role("cell", name="this chat"))).to_have_count(1)
    usage = page.get_by_role("region", name="Usage")
    expect(
        usage.get_by_role(
            "img", name=re.compile(r"^Last 7 days: 3 requests, \d+ input and \d+ output tokens")
        )
    ).to_be_visible()
    lab.shot("requests")
