"""Through `llm-gateway dev`: one Authorization header decides the account, and only that one.

A request carrying two keys (say C's, then A's) is refused by the authorizer, and the front door's
authorizer cache can never hand A's identity to a later request that carries C's key alone.
"""

from __future__ import annotations

import httpx

from tests.e2e.conftest import RunningStack, llm_body


def test_two_authorization_headers_are_401_and_never_lend_an_account(
    stack: RunningStack, api: httpx.Client, second_account_key: str
) -> None:
    created = api.post("/v1/llms", json=llm_body(stack, displayName="owned by the demo account"))
    assert created.status_code == 201, created.text
    path = f"/v1/llms/{created.json()['id']}"
    try:
        with httpx.Client(base_url=stack.api_url, timeout=30) as raw:
            for first, second in ((second_account_key, stack.api_key), (stack.api_key, second_account_key)):
                both = raw.get(
                    path,
                    headers=[("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")],
                )
                assert both.status_code == 401
                assert both.json()["error"]["code"] == "unauthorized"
            alone = raw.get(path, headers={"Authorization": f"Bearer {second_account_key}"})
            assert alone.status_code == 404, "the second key alone is the second account, never the demo one"
    finally:
        assert api.delete(path).status_code in (200, 204)
