"""The validator function's services (``composition``'s, kept in a module of their own): the
conformance probes, validation, re-validation, and what keeps tenants fair (``domain.fairness``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from llm_gateway.composition import (
    CredentialServices,
    EdgeServices,
    EventServices,
    OutboundServices,
    TableServices,
    config_probe,
    health_service,
)
from llm_gateway.settings import FunctionSettings, ValidationApiSettings, ValidatorSettings

if TYPE_CHECKING:
    from llm_gateway.adapters.dynamodb import DynamoReportRepository
    from llm_gateway.domain.conformance.budget import RunBudget
    from llm_gateway.domain.health import HealthService
    from llm_gateway.domain.revalidation import Revalidator
    from llm_gateway.domain.validation import ValidationRequests, Validator
    from llm_gateway.fairness_wiring import Fairness
    from llm_gateway.models.report import Report


class ValidationApiServices(EdgeServices, TableServices, EventServices, OutboundServices):
    """What validation's REST routes use: requests, reports and the unsaved-config probe."""

    settings_model: ClassVar[type[FunctionSettings]] = ValidationApiSettings
    settings: ValidationApiSettings

    @cached_property
    def config_probe(self) -> Callable[[Any, str, RunBudget], Report]:
        return config_probe(self.probe_http)

    @cached_property
    def validation_requests(self) -> ValidationRequests:
        from datetime import timedelta

        from llm_gateway.domain.validation import ValidationRequests

        return ValidationRequests(
            runs=self.validation_runs,
            events=self.event_publisher,
            min_interval=timedelta(seconds=self.settings.validate_min_interval_seconds),
        )

    @cached_property
    def report_repository(self) -> DynamoReportRepository:
        from llm_gateway.adapters.dynamodb import DynamoReportRepository

        s = self.settings
        return DynamoReportRepository(self.aws.dynamodb(), s.table_name, keep=s.reports_per_llm)

    @cached_property
    def fairness(self) -> Fairness:
        from llm_gateway.fairness_wiring import Fairness

        s = self.settings
        return Fairness(
            self.aws, s.table_name, self.url_guard,
            per_minute=s.target_requests_per_minute, account_slots=s.validation_account_concurrency,
        )  # fmt: skip


class ValidatorServices(ValidationApiServices, CredentialServices):
    """The queue consumer's: the same, plus validation and re-validation with the stored keys."""

    settings_model = ValidatorSettings
    settings: ValidatorSettings

    @cached_property
    def validator(self) -> Validator:
        from llm_gateway.domain.validation import Validator

        return Validator(
            llms=self.llm_repository,
            reports=self.report_repository,
            credentials=self.credential_store,
            events=self.event_publisher,
            probe=self.config_probe,
            runs=self.validation_runs,
        )

    @cached_property
    def health_service(self) -> HealthService:
        return health_service(self.health_store, self.health_events, self.settings.revalidation_interval_s)

    def validation_queue_for(self, revalidation: bool) -> str:
        """Where a deferred run goes back to: scheduled runs to their own queue."""
        s = self.settings
        return (s.revalidation_queue_url if revalidation else "") or s.validation_queue_url

    @cached_property
    def revalidator(self) -> Revalidator:
        from llm_gateway.domain.conformance import EndpointConfig, run_conformance
        from llm_gateway.domain.conformance.budget import validator_budget
        from llm_gateway.domain.revalidation import Revalidator

        http = self.probe_http
        return Revalidator(
            llms=self.llm_repository,
            reports=self.report_repository,
            credentials=self.credential_store,
            # The re-validation probe set: one streaming request per URL, no wrong-key probe.
            probe=lambda llm, api_key: run_conformance(
                EndpointConfig.from_llm(llm), api_key, http, light=True, budget=validator_budget(None)
            ),
            health=self.health_service,
            full_validation=lambda account, llm: self.validator.validate(account, llm),
            interval_s=self.settings.revalidation_interval_s,
        )
