"""Customer credentials: KMS-encrypted under a per-tenant context, then kept in Secrets Manager.

The inner KMS envelope binds each key to ``{tenant_id, llm_config_id}``: a blob copied into
another account's secret cannot be decrypted there, so a mix-up fails closed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from llm_gateway.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


def encryption_context(account_id: str, llm_id: str) -> dict[str, str]:
    return {"tenant_id": account_id, "llm_config_id": llm_id}


class SecretsManagerCredentialStore:
    """``folder`` keeps other kinds of tenant secrets apart (webhook signing secrets live under
    ``webhooks/``, so a role can be granted one kind without the other)."""

    def __init__(
        self, sm: SecretsManagerClient, kms: KMSClient, key_id: str, stage: str, folder: str = ""
    ) -> None:
        self._sm = sm
        self._kms = kms
        self._key_id = key_id
        self._prefix = f"llm-gateway/{stage}/{folder}"

    def secret_name(self, account_id: str, llm_id: str) -> str:
        return f"{self._prefix}{account_id}/{llm_id}"

    def _seal(self, account_id: str, llm_id: str, secret: str) -> bytes:
        return self._kms.encrypt(
            KeyId=self._key_id,
            Plaintext=secret.encode("utf-8"),
            EncryptionContext=encryption_context(account_id, llm_id),
        )["CiphertextBlob"]

    def create(self, account_id: str, llm_id: str, secret: str) -> str:
        response = self._sm.create_secret(
            Name=self.secret_name(account_id, llm_id),
            KmsKeyId=self._key_id,
            SecretBinary=self._seal(account_id, llm_id, secret),
            Description="LLM Gateway customer credential (KMS envelope, tenant-bound).",
            Tags=[
                {"Key": "llm-gateway:account", "Value": account_id},
                {"Key": "llm-gateway:llm", "Value": llm_id},
            ],
        )
        return response["ARN"]

    def stage_pending(self, account_id: str, llm_id: str, secret: str) -> None:
        self._sm.put_secret_value(
            SecretId=self.secret_name(account_id, llm_id),
            SecretBinary=self._seal(account_id, llm_id, secret),
            VersionStages=[PENDING],
        )

    def delete(self, account_id: str, llm_id: str) -> None:
        with contextlib.suppress(self._sm.exceptions.ResourceNotFoundException):
            self._sm.delete_secret(
                SecretId=self.secret_name(account_id, llm_id), ForceDeleteWithoutRecovery=True
            )

    def read(self, account_id: str, llm_id: str, secret_ref: str, stage: str = CURRENT) -> str:
        """Decrypt the key for this account's LLM; any mismatch fails closed with no detail."""
        if self.secret_name(account_id, llm_id) not in secret_ref:
            raise CredentialsUnavailable("The stored credential does not belong to this LLM.")
        return self.read_current(account_id, llm_id, stage)

    def read_current(self, account_id: str, llm_id: str, stage: str = CURRENT) -> str:
        """The key by the LLM's own secret name (no config needed first, so the stream can read it
        alongside the config); KMS decrypts it only under this account's and LLM's context."""
        name = self.secret_name(account_id, llm_id)
        try:
            blob = self._sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretBinary"]
            plaintext = self._kms.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=blob,
                EncryptionContext=encryption_context(account_id, llm_id),
            )["Plaintext"]
        except Exception as exc:
            raise CredentialsUnavailable("The stored credential could not be decrypted.") from exc
        return plaintext.decode("utf-8")

    def has_pending(self, account_id: str, llm_id: str) -> bool:
        versions = self._sm.list_secret_version_ids(SecretId=self.secret_name(account_id, llm_id))
        return any(PENDING in v.get("VersionStages", []) for v in versions.get("Versions", []))

    def promote_pending(self, account_id: str, llm_id: str) -> None:
        """Make the staged version current; the old one stays as AWSPREVIOUS."""
        name = self.secret_name(account_id, llm_id)
        versions = self._sm.list_secret_version_ids(SecretId=name)["Versions"]
        pending = next(v["VersionId"] for v in versions if PENDING in v.get("VersionStages", []))
        current = next(v["VersionId"] for v in versions if CURRENT in v.get("VersionStages", []))
        self._sm.update_secret_version_stage(
            SecretId=name, VersionStage=CURRENT, MoveToVersionId=pending, RemoveFromVersionId=current
        )
        self._sm.update_secret_version_stage(SecretId=name, VersionStage=PENDING, RemoveFromVersionId=pending)

    def discard_pending(self, account_id: str, llm_id: str) -> None:
        name = self.secret_name(account_id, llm_id)
        versions = self._sm.list_secret_version_ids(SecretId=name)["Versions"]
        for v in versions:
            if PENDING in v.get("VersionStages", []):
                self._sm.update_secret_version_stage(
                    SecretId=name, VersionStage=PENDING, RemoveFromVersionId=v["VersionId"]
                )
