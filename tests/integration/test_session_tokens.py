"""The session_tokens function in-process on events/session_tokens/*.json, against moto (KMS + DynamoDB).

DESIGN §2 (mint, alias, revoke, JWKS), SECURITY 15 (revoked session, deleted LLM) and 17 (another
account's session is the same 404 as a missing one). Token-level checks (11–14, 16) live in
tests/unit/test_tokens.py and tests/integration/test_kms_signer.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from llm_gateway.domain.registry import MAX_LLMS_PER_ACCOUNT
from llm_gateway.domain.sessions import BRAIN_TYPE_WARNING, ActiveSession, SessionAccess
from llm_gateway.domain.tokens import SessionInactive, SessionRevoked, TokenInvalid
from llm_gateway.errors import Conflict
from llm_gateway.models.llm import EndpointUrl, LlmFormat, LlmStatus, StoredLlm, ValidationSummary
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector, load_event
from tests.integration.conftest import AwsStack

CLAIMS = {"iss", "aud", "sub", "sid", "llm", "jti", "iat", "nbf", "exp"}
Result = tuple[int, Any, dict[str, str]]


@pytest.fixture
def invoke(aws: AwsStack, leak_collector: LeakCollector) -> Any:
    from functions.session_tokens import handler

    def run(
        event_name: str,
        account_id: str | None,
        *,
        persona: dict[str, Any] | None = None,
        body: Any = None,
        session_id: str | None = None,
    ) -> Result:
        event = load_event(f"session_tokens/{event_name}")
        if account_id is None:
            event["requestContext"].pop("authorizer", None)
        else:
            event["requestContext"]["authorizer"] = {"accountId": account_id, "principalId": account_id}
        if persona is not None:
            current = json.loads(event["body"])
            current["personaConfig"] |= persona
            event["body"] = json.dumps(current)
        if body is not None:
            event["body"] = json.dumps(body)
        if session_id is not None:
            event["path"] = f"/v1/sessions/{session_id}"
            event["pathParameters"] = {"id": session_id}
        result = handler.lambda_handler(event, LambdaContext("session-tokens"))
        leak_collector.add(f"session_tokens {event_name}", result)
        text = result.get("body") or ""
        headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
        headers.update(result.get("headers") or {})
        return int(result["statusCode"]), json.loads(text) if text else None, headers

    return run


@pytest.fixture(autouse=True)
def platform_keys(aws: AwsStack) -> None:
    """The built-ins' platform keys, as the template's operator would store them."""
    from llm_gateway.catalog import builtin_llms

    for builtin_id in builtin_llms():
        aws.client("secretsmanager").create_secret(
            Name=f"{aws.stream.settings.platform_secret_prefix}{builtin_id}", SecretString="platform-key"
        )


def own_llm(
    aws: AwsStack,
    account_id: str,
    status: LlmStatus,
    summary: str | None = None,
    error_code: str | None = None,
) -> str:
    """An LLM of the account, stored directly with the status a test needs (no validator run)."""
    llm_id = str(uuid.uuid4())
    aws.registry.llm_repository.create(
        StoredLlm(
            id=llm_id,
            display_name="Support bot",
            llm_format=LlmFormat.OPENAI,
            urls=[EndpointUrl(url="https://api.openai.com/v1/chat/completions")],
            model_name="gpt-4o-mini",
            status=status,
            validation=ValidationSummary(
                compatible=status == LlmStatus.VALID if status != LlmStatus.PENDING else None,
                summary=summary,
                error_code=error_code,
            ),
            version=1,
            account_id=account_id,
            secret_ref=aws.registry.credential_store.create(account_id, llm_id, "sk-test-key-0001"),
            created_at=datetime.now(UTC),
        ),
        limit=MAX_LLMS_PER_ACCOUNT,
    )
    return llm_id


def jwks_key(invoke: Any) -> Any:
    status, body, headers = invoke("jwks", None)
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=300"
    (entry,) = body["keys"]
    assert set(entry) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    return entry["kid"], jwt.PyJWK(entry).key


def decode(aws: AwsStack, invoke: Any, token: str) -> dict[str, Any]:
    """The token checked with plain PyJWT against the published JWKS: the interoperability oracle."""
    kid, key = jwks_key(invoke)
    assert jwt.get_unverified_header(token)["kid"] == kid
    settings = aws.tokens.token_policy
    return dict(
        jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": sorted(CLAIMS)},
        )
    )


def session_item(aws: AwsStack, session_id: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.client("dynamodb").get_item(
        TableName=aws.env["TABLE_NAME"], Key={"PK": {"S": f"SESSION#{session_id}"}, "SK": {"S": "SESSION"}}
    )["Item"]
    return item


# --------------------------------------------------------------------------- minting


def test_mint_for_a_builtin_verifies_with_the_published_jwks(
    invoke: Any, aws: AwsStack, account: str
) -> None:
    status, body, headers = invoke("mint_builtin", account)
    assert status == 200, body
    assert set(body) == {"sessionToken", "sessionId", "expiresAt", "warnings"}
    assert body["warnings"] == []
    assert "Deprecation" not in headers
    assert headers["Cache-Control"] == "no-store"
    claims = decode(aws, invoke, body["sessionToken"])
    assert set(claims) == CLAIMS  # ids and times only: no prompt, no persona, no secret
    assert claims["sub"] == account
    assert claims["sid"] == body["sessionId"]
    assert claims["llm"] == "0934d97d-0c3a-4f33-91b0-5e136a0ef466"
    assert claims["exp"] - claims["iat"] == 600  # the default lifetime
    assert datetime.fromisoformat(body["expiresAt"]).timestamp() == claims["exp"]
    header = jwt.get_unverified_header(body["sessionToken"])
    assert header["alg"] == "ES256" and header["typ"] == "llmgw-session+jwt"
    assert len(base64.urlsafe_b64decode(body["sessionToken"].rsplit(".", 1)[1] + "==")) == 64

    item = session_item(aws, body["sessionId"])
    assert int(item["ttl"]["N"]) == claims["exp"]  # DynamoDB expires the record with the token
    record = json.loads(item["doc"]["S"])
    assert record["persona"]["system_prompt"].startswith("You are Cara")
    assert record["persona"]["llm_id"] == claims["llm"]
    assert record["client_label"] == "web-demo"
    assert record["llm_version"] == 1


@pytest.mark.parametrize(
    ("event_name", "llm_id"),
    [("mint_legacy_id", "ANAM_GPT_4O_MINI_V1"), ("mint_alias_route", "ANAM_LLAMA_v3_3_70B_V1")],
)
def test_legacy_ids_and_the_alias_route_mint(
    aws: AwsStack, invoke: Any, account: str, event_name: str, llm_id: str
) -> None:
    status, body, _ = invoke(event_name, account)
    assert status == 200, body
    assert decode(aws, invoke, body["sessionToken"])["llm"] == llm_id


def test_mint_for_an_own_valid_llm(invoke: Any, aws: AwsStack, account: str) -> None:
    llm_id = own_llm(aws, account, LlmStatus.VALID, summary="All checks passed.")
    status, body, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    assert status == 200, body
    claims = decode(aws, invoke, body["sessionToken"])
    assert claims["llm"] == llm_id
    assert claims["exp"] - claims["iat"] == 900


def test_pending_llm_is_409(aws: AwsStack, invoke: Any, account: str) -> None:
    llm_id = own_llm(aws, account, LlmStatus.PENDING)
    status, body, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    assert status == 409
    assert body["error"]["code"] == "llm_validation_pending"


def test_invalid_llm_is_409_with_the_report_summary(invoke: Any, aws: AwsStack, account: str) -> None:
    llm_id = own_llm(aws,
        account, LlmStatus.INVALID, summary="The endpoint answered 401: the API key was rejected.",
        error_code="upstream_unauthorized",
    )  # fmt: skip
    status, body, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    assert status == 409
    assert body["error"]["code"] == "llm_invalid"
    assert "the API key was rejected" in body["error"]["message"]
    assert body["error"]["details"] == {"errorCode": "upstream_unauthorized"}
    assert not [i for i in aws.scan_table() if i["PK"]["S"].startswith("SESSION#")]  # nothing stored


def test_another_accounts_llm_is_the_same_404_as_an_unknown_id(
    aws: AwsStack, invoke: Any, account: str, other_account: str
) -> None:
    theirs = own_llm(aws, account, LlmStatus.VALID)
    missing = str(uuid.uuid4())
    s1, b1, _ = invoke("mint_custom_llm", other_account, persona={"llmId": theirs})
    s2, b2, _ = invoke("mint_custom_llm", other_account, persona={"llmId": missing})
    assert s1 == s2 == 404
    assert b1["error"]["code"] == b2["error"]["code"] == "llm_not_found"
    assert b1["error"]["message"].replace(theirs, "ID") == b2["error"]["message"].replace(missing, "ID")


def test_brain_type_alias_mints_with_a_warning_and_a_deprecation_header(
    aws: AwsStack, invoke: Any, account: str
) -> None:
    status, body, headers = invoke("mint_brain_type", account)
    assert status == 200, body
    assert body["warnings"] == [BRAIN_TYPE_WARNING]
    assert headers["Deprecation"] == "true"
    assert decode(aws, invoke, body["sessionToken"])["llm"] == "ANAM_GPT_4O_MINI_V1"


def test_brain_type_equal_to_llm_id_still_warns(invoke: Any, account: str) -> None:
    status, body, headers = invoke(
        "mint_builtin", account, persona={"brainType": "0934d97d-0c3a-4f33-91b0-5e136a0ef466"}
    )
    assert status == 200
    assert body["warnings"] == [BRAIN_TYPE_WARNING] and headers["Deprecation"] == "true"


def test_llm_id_and_brain_type_naming_different_llms_is_400(invoke: Any, account: str) -> None:
    status, body, _ = invoke("mint_conflicting_llm_ids", account)
    assert status == 400
    assert body["error"]["code"] == "validation_error"
    assert "brainType" in json.dumps(body["error"]["details"])


@pytest.mark.parametrize(
    "body",
    [{}, {"personaConfig": {"name": "x"}}, {"personaConfig": {"llmId": "bad id with spaces"}}],
)
def test_malformed_requests_are_400(invoke: Any, account: str, body: dict[str, Any]) -> None:
    status, answer, _ = invoke("mint_builtin", account, body=body)
    assert status == 400
    assert answer["error"]["code"] == "validation_error"


def test_unknown_builtin_like_id_is_404(invoke: Any, account: str) -> None:
    status, body, _ = invoke("mint_builtin", account, persona={"llmId": "ANAM_GPT_5_V9"})
    assert status == 404 and body["error"]["code"] == "llm_not_found"


def test_lifetime_is_capped_at_one_hour(aws: AwsStack, invoke: Any, account: str) -> None:
    status, body, _ = invoke("mint_long_session", account)
    assert status == 200
    claims = decode(aws, invoke, body["sessionToken"])
    assert claims["exp"] - claims["iat"] == 3600
    _, legacy, _ = invoke("mint_legacy_id", account)  # asks for 1800 s: honoured
    legacy_claims = decode(aws, invoke, legacy["sessionToken"])
    assert legacy_claims["exp"] - legacy_claims["iat"] == 1800


def test_missing_authorizer_context_is_401(invoke: Any) -> None:
    status, body, _ = invoke("mint_builtin", None)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


# --------------------------------------------------------------------------- revocation


def stream_session(aws: AwsStack, token: str, access: SessionAccess | None = None) -> ActiveSession:
    """What the stream proxy does before its first byte: the offline check, then the session as
    it stands now (from memory, confirmed by the request's freshness read)."""
    sessions = access or aws.stream.session_access

    async def run() -> ActiveSession:
        return await sessions.settle(await sessions.begin(aws.stream.token_verifier.verify(token)))

    return asyncio.run(run())


def new_container(aws: AwsStack) -> SessionAccess:
    """A second stream container: its own memory, the same table."""
    return SessionAccess(
        store=aws.stream.session_state_store,
        read_key=aws.stream.stored_key,
        builtin_endpoint=aws.stream.builtin_endpoint,
    )


def test_a_revoke_is_refused_on_the_next_request_in_every_container(
    invoke: Any, aws: AwsStack, account: str
) -> None:
    _, minted, _ = invoke("mint_builtin", account)
    token, session_id = minted["sessionToken"], minted["sessionId"]
    other = new_container(aws)
    active = stream_session(aws, token)
    assert active.record.persona.system_prompt is not None
    stream_session(aws, token, other)  # both containers hold the session in memory now

    status, body, _ = invoke("revoke", account, session_id=session_id)
    assert (status, body) == (204, None)
    assert invoke("revoke", account, session_id=session_id)[0] == 204  # idempotent for the owner
    for container in (aws.stream.session_access, other):
        with pytest.raises(SessionRevoked) as refused:
            stream_session(aws, token, container)
        assert refused.value.status == 403 and refused.value.code == "session_revoked"
    assert session_item(aws, session_id)["revoked"]["BOOL"] is True


def test_a_revocation_once_seen_is_refused_from_memory(
    aws: AwsStack, invoke: Any, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, minted, _ = invoke("mint_builtin", account)
    stream_session(aws, minted["sessionToken"])
    assert invoke("revoke", account, session_id=minted["sessionId"])[0] == 204
    with pytest.raises(SessionRevoked):
        stream_session(aws, minted["sessionToken"])
    store = aws.stream.session_state_store
    reads: list[str] = []
    monkeypatch.setattr(store, "check", lambda *a: reads.append("check"))
    monkeypatch.setattr(store, "load", lambda *a: reads.append("load"))
    with pytest.raises(SessionRevoked):  # a session never un-revokes: no read needed any more
        stream_session(aws, minted["sessionToken"])
    assert reads == []


def test_another_accounts_session_is_the_same_404_as_a_missing_one(
    aws: AwsStack, invoke: Any, account: str, other_account: str
) -> None:
    _, minted, _ = invoke("mint_builtin", account)
    missing = "sess_" + uuid.uuid4().hex
    s1, b1, _ = invoke("revoke", other_account, session_id=minted["sessionId"])
    s2, b2, _ = invoke("revoke", other_account, session_id=missing)
    assert s1 == s2 == 404
    assert b1["error"]["code"] == b2["error"]["code"] == "session_not_found"
    assert b1["error"]["message"].replace(minted["sessionId"], "ID") == b2["error"]["message"].replace(
        missing, "ID"
    )
    stream_session(aws, minted["sessionToken"])  # still active for its owner


def test_revoke_path_rejects_odd_ids(invoke: Any, account: str) -> None:
    status, _, _ = invoke("revoke", account, session_id="..%2f..%2fetc")
    assert status == 400


# --------------------------------------------------------------------------- the stream verifier


def test_a_deleted_llm_is_refused_on_the_next_request(aws: AwsStack, invoke: Any, account: str) -> None:
    llm_id = own_llm(aws, account, LlmStatus.VALID)
    _, minted, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    active = stream_session(aws, minted["sessionToken"])
    assert active.llm.id == llm_id and active.endpoint is not None
    assert active.endpoint.api_key == "sk-test-key-0001"
    assert aws.registry.llm_repository.delete(account, llm_id)
    with pytest.raises(SessionInactive) as refused:
        stream_session(aws, minted["sessionToken"])
    assert refused.value.status == 403


def test_a_changed_llm_serves_its_new_config_on_the_next_request(
    aws: AwsStack, invoke: Any, account: str
) -> None:
    llm_id = own_llm(aws, account, LlmStatus.VALID)
    _, minted, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    stream_session(aws, minted["sessionToken"])
    repo = aws.registry.llm_repository
    current = repo.get(account, llm_id)
    assert current is not None
    repo.replace(current.model_copy(update={"model_name": "gpt-4.1-mini", "version": 2}), expected_version=1)
    active = stream_session(aws, minted["sessionToken"])
    assert active.llm.model_name == "gpt-4.1-mini" and active.llm_changed
    assert active.record.llm_version == 1

    now_pending = repo.get(account, llm_id)
    assert now_pending is not None
    repo.replace(
        now_pending.model_copy(update={"status": LlmStatus.PENDING, "version": 3}), expected_version=2
    )
    with pytest.raises(Conflict) as refused:
        stream_session(aws, minted["sessionToken"])
    assert refused.value.code == "llm_validation_pending"


def test_a_promoted_key_is_used_on_the_next_request(aws: AwsStack, invoke: Any, account: str) -> None:
    """A rotation changes the key in Secrets Manager and then the item (its hint): the next
    request reads the item's new revision, so it reads the key again."""
    llm_id = own_llm(aws, account, LlmStatus.VALID)
    _, minted, _ = invoke("mint_custom_llm", account, persona={"llmId": llm_id})
    first = stream_session(aws, minted["sessionToken"]).endpoint
    assert first is not None and first.api_key == "sk-test-key-0001"
    store, repo = aws.registry.credential_store, aws.registry.llm_repository
    store.stage_pending(account, llm_id, "sk-test-key-0002")
    store.promote_pending(account, llm_id)
    current = repo.get(account, llm_id)
    assert current is not None
    repo.replace(current.model_copy(update={"secret_hint": "…0002"}), expected_version=1)
    second = stream_session(aws, minted["sessionToken"]).endpoint
    assert second is not None and second.api_key == "sk-test-key-0002"


def test_client_side_llm_mints_but_has_no_server_stream(aws: AwsStack, invoke: Any, account: str) -> None:
    status, minted, _ = invoke("mint_client_side", account)
    assert status == 200
    active = stream_session(aws, minted["sessionToken"])
    assert active.client_side
    with pytest.raises(Conflict) as refused:
        active.require_server_side()
    assert refused.value.code == "client_side_llm"


def test_stream_verifier_rejects_a_tampered_token_before_any_lookup(
    aws: AwsStack, invoke: Any, account: str
) -> None:
    _, minted, _ = invoke("mint_builtin", account)
    header, payload, signature = minted["sessionToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["llm"] = "ANAM_LLAMA_v3_3_70B_V1"  # SECURITY 18: a token for X cannot become one for Y
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        aws.stream.token_verifier.verify(f"{header}.{forged}.{signature}")


def test_a_session_record_past_its_expiry_is_refused(aws: AwsStack, invoke: Any, account: str) -> None:
    """DynamoDB deletes expired items lazily: the stream checks expiresAt itself."""
    _, minted, _ = invoke("mint_builtin", account)
    claims = aws.stream.token_verifier.verify(minted["sessionToken"])
    late = SessionAccess(
        store=aws.stream.session_state_store, read_key=aws.stream.stored_key,
        builtin_endpoint=aws.stream.builtin_endpoint, clock=lambda: claims.expires_at + 1.0,
    )  # fmt: skip
    with pytest.raises(SessionInactive):
        stream_session(aws, minted["sessionToken"], late)


def test_a_token_without_a_session_record_is_refused(invoke: Any, aws: AwsStack, account: str) -> None:
    _, minted, _ = invoke("mint_builtin", account)
    stream_session(aws, minted["sessionToken"])  # in memory first: the next request must still notice
    aws.client("dynamodb").delete_item(
        TableName=aws.env["TABLE_NAME"],
        Key={"PK": {"S": f"SESSION#{minted['sessionId']}"}, "SK": {"S": "SESSION"}},
    )
    with pytest.raises(SessionInactive):
        stream_session(aws, minted["sessionToken"])
    with pytest.raises(SessionInactive):
        stream_session(aws, minted["sessionToken"], new_container(aws))


def test_kms_throttling_is_a_429_not_a_500(
    aws: AwsStack, invoke: Any, monkeypatch: pytest.MonkeyPatch, account: str
) -> None:
    from botocore.exceptions import ClientError

    signer = aws.tokens.token_signer
    signer.key_id  # noqa: B018 - load the key before the quota "runs out"

    def throttled(**_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Sign")

    monkeypatch.setattr(aws.tokens.aws.kms(), "sign", throttled)  # KMS itself says no; the signer types it
    status, body, _ = invoke("mint_builtin", account)
    assert status == 429
    assert body["error"]["code"] == "token_mint_throttled"
