"""Which updates send an LLM back to validation, and what an idempotent replay may answer."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.domain.registry import LLM_UPDATED, Registry
from llm_gateway.errors import Conflict
from llm_gateway.models.llm import LlmStatus, LlmUpdate, ValidationSummary
from tests.unit.test_registry_domain import SECRET, Events, create_body
from tests.unit.test_registry_domain import registry as registry  # the fixture


def _validated(registry: Registry, **overrides: Any) -> str:
    """A registered LLM that the validator has since passed (status valid, registration event seen)."""
    llm = registry.create("acct-a", create_body(**overrides))
    stored = registry.llms.get("acct-a", llm.id)
    assert stored is not None
    done = ValidationSummary(compatible=True, summary="All 18 checks passed.")
    registry.llms.items[("acct-a", llm.id)] = stored.model_copy(  # type: ignore[attr-defined]
        update={"status": LlmStatus.VALID, "validation": done}
    )
    _events(registry).sent.clear()
    return llm.id


def _events(registry: Registry) -> Events:
    events = registry.events
    assert isinstance(events, Events)
    return events


@pytest.mark.parametrize(
    "patch",
    [
        {"display_name": "Renamed"},
        {"description": "for the EU personas"},
        {"metadata": {"team": "eu"}},
        {"display_name": "Renamed", "metadata": {"team": "eu"}},
        # Sent again unchanged: nothing upstream changes.
        {"urls": [{"url": "https://api.openai.com/v1/chat/completions"}], "model_name": "gpt-4o-mini"},
        {"headers": {}},
    ],
)
def test_cosmetic_changes_keep_the_status_and_trigger_no_revalidation(
    registry: Registry, patch: dict[str, Any]
) -> None:
    llm_id = _validated(registry)
    updated = registry.update("acct-a", llm_id, LlmUpdate.model_validate(patch), if_match=None)
    assert updated.status is LlmStatus.VALID
    assert updated.validation.summary == "All 18 checks passed."
    assert updated.version == 2
    assert _events(registry).sent == []


@pytest.mark.parametrize(
    "patch",
    [
        {"urls": [{"url": "https://eu.api.example.com/v1/chat/completions"}]},
        {"model_name": "gpt-4.1-mini"},
        {"headers": {"OpenAI-Organization": "org-1"}},
        {"timeouts": {"firstTokenMs": 5000}},
        {"temperature": 0.2},
        {"max_tokens": 256},
        {"display_name": "Renamed", "model_name": "gpt-4.1-mini"},
    ],
)
def test_changes_to_the_upstream_call_revalidate(registry: Registry, patch: dict[str, Any]) -> None:
    llm_id = _validated(registry)
    updated = registry.update("acct-a", llm_id, LlmUpdate.model_validate(patch), if_match=None)
    assert updated.status is LlmStatus.PENDING
    assert updated.validation.summary == "Revalidation is queued."
    [(kind, detail)] = _events(registry).sent
    assert (kind, detail["llmId"], detail["secretStaged"]) == (LLM_UPDATED, llm_id, False)


def test_a_new_key_is_validated_while_the_current_one_keeps_serving(registry: Registry) -> None:
    llm_id = _validated(registry)
    updated = registry.update("acct-a", llm_id, LlmUpdate(secret="sk-next-000011112222"), if_match=None)
    assert updated.status is LlmStatus.VALID
    assert updated.validation.summary is not None
    assert "new key (…2222) is pending validation" in updated.validation.summary
    assert "current key (…cdef) stays in service" in updated.validation.summary
    [(kind, detail)] = _events(registry).sent
    assert (kind, detail["secretStaged"]) == (LLM_UPDATED, True)


def test_a_replay_of_a_live_llm_is_allowed(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    registry.check_replay("acct-a", llm.id)


def test_a_replay_of_a_deleted_llm_is_a_conflict_that_says_so(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    registry.delete("acct-a", llm.id)
    with pytest.raises(Conflict) as caught:
        registry.check_replay("acct-a", llm.id)
    assert caught.value.code == "idempotency_key_reused"
    assert "deleted" in caught.value.message and "new Idempotency-Key" in caught.value.message
    assert SECRET not in caught.value.message
