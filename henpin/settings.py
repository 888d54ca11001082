"""Henpin's settings, from the environment or `.env` (never from the database or policies.yaml).

Secrets (LWA client secret, refresh token, SMTP password) live only here, as `SecretStr`,
so they are never printed by accident.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EMULATOR_CLIENT_ID = "henpin-demo-client"
EMULATOR_CLIENT_SECRET = "henpin-demo-secret"
EMULATOR_REFRESH_TOKEN = "Atzr|henpin-demo-refresh-token"


class Settings(BaseSettings):
    """Where Henpin keeps its data and how it reaches Amazon."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_prefix="HENPIN_")

    home: Path = Field(default=Path(".henpin"), description="data folder (HENPIN_HOME)")
    database_url: str | None = Field(
        default=None, description="case store; SQLite in home if unset"
    )
    policies: Path = Field(default=Path("policies.yaml"))
    marketplaces: list[str] = Field(
        default=["ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A1VC38T7YXB528"],
        description="marketplace ids Henpin watches",
    )
    # SP-API. With no LWA credentials, Henpin talks to the emulator at `emulator_url`.
    emulator_url: str | None = None
    emulator_time_scale: float = Field(
        default=1.0, gt=0, le=10_000, description="demo emulator: simulated seconds per second"
    )
    lwa_app_id: str | None = Field(default=None, validation_alias="LWA_APP_ID")
    lwa_client_secret: SecretStr | None = Field(default=None, validation_alias="LWA_CLIENT_SECRET")
    sp_api_refresh_token: SecretStr | None = Field(
        default=None, validation_alias="SP_API_REFRESH_TOKEN"
    )
    seller_id: str = "DEMO-SELLER"
    poll_interval_s: int = Field(default=180, ge=10, le=3600)
    outbox_interval_s: float = Field(default=5, ge=0.2, le=600)
    # Flow runs `henpin runner` executes at once, each a process (~1.8 CPU s to start): about
    # two per core. Prefect's own default is no limit (200 new cases: 60+ processes at once).
    runner_limit: int = Field(default=4, ge=1, le=256)
    # A feed left `sending` (a crash or a lost createFeed answer) is looked up at Amazon after
    # this long: longer than one createFeed attempt can last, quota wait included.
    outbox_settle_s: float = Field(default=600, ge=5, le=86_400)
    # A case's flow run RUNNING this long without a state change is taken for dead (its process
    # was killed) and started again. Case flows suspend while they wait; they never run long.
    stale_run_s: float = Field(default=900, ge=5, le=86_400)

    @property
    def demo_mode(self) -> bool:
        """No Amazon credentials configured: run against the local emulator."""
        return not (self.lwa_app_id and self.lwa_client_secret and self.sp_api_refresh_token)

    @cached_property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'henpin.db').resolve()}"

    @property
    def lwa_credentials(self) -> dict[str, str]:
        """Credentials in python-amazon-sp-api's shape (emulator's demo ones in demo mode)."""
        if self.demo_mode:
            return {
                "lwa_app_id": EMULATOR_CLIENT_ID,
                "lwa_client_secret": EMULATOR_CLIENT_SECRET,
                "refresh_token": EMULATOR_REFRESH_TOKEN,
            }
        assert self.lwa_app_id and self.lwa_client_secret and self.sp_api_refresh_token
        return {
            "lwa_app_id": self.lwa_app_id,
            "lwa_client_secret": self.lwa_client_secret.get_secret_value(),
            "refresh_token": self.sp_api_refresh_token.get_secret_value(),
        }


def load_settings() -> Settings:
    return Settings()
