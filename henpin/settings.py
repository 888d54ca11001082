"""Henpin's settings, from the environment or `.env` (never from the database or policies.yaml).

Secrets (LWA client secret, refresh tokens, SMTP password) live only here, as `SecretStr`,
so they are never printed by accident.

Amazon issues one refresh token per SP-API region the seller authorised Henpin in (NA, EU, FE),
and the seller has a merchant token (seller id) per region too (a Japanese seller on amazon.com
has a separate NA account). So both are set per region: `SP_API_REFRESH_TOKEN_NA|EU|FE` and
`HENPIN_SELLER_ID_NA|EU|FE`. The un-suffixed `SP_API_REFRESH_TOKEN` and `HENPIN_SELLER_ID` keep
working for a single-region seller: they serve a region only when the watched marketplaces are
all in that one region. With several regions watched they are never used, so one region's login
is never sent to another region (a region without its own names is "missing"; `henpin up` says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from henpin.marketplaces import marketplace

EMULATOR_CLIENT_ID = "henpin-demo-client"
EMULATOR_CLIENT_SECRET = "henpin-demo-secret"
#: The emulator's legacy (region-less) demo login; Henpin itself uses the per-region ones below.
EMULATOR_REFRESH_TOKEN = "Atzr|henpin-demo-refresh-token"
#: SP-API regions, in the order Henpin lists them.
REGIONS = ("NA", "EU", "FE")
#: The emulator's demo seller: one authorization (refresh token) and account (merchant token) per
#: region, as Amazon has them, so demo mode exercises region-bound logins.
EMULATOR_REFRESH_TOKENS = {r: f"Atzr|henpin-demo-refresh-token-{r.lower()}" for r in REGIONS}
EMULATOR_SELLER_IDS = {r: f"A1HENPINDEMO{r}" for r in REGIONS}


@dataclass(frozen=True)
class RegionLogin:
    """What Henpin signs in with in one SP-API region: the application's LWA client, the seller's
    refresh token for that region, and the seller's merchant token there (feed headers)."""

    region: str
    client_id: str
    client_secret: str
    refresh_token: str
    seller_id: str | None

    def library_credentials(self) -> dict[str, str]:
        """python-amazon-sp-api's credentials shape."""
        return {
            "lwa_app_id": self.client_id,
            "lwa_client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }


#: The longest one createFeed call can last in the adapter (henpin/amazon/, its default
#: RetryPolicy and 30 s timeouts): 4 tries, each up to 60 s waiting for quota, 30 s to log in
#: with Amazon and 30 s for the call, plus 0.5 + 1 + 2 s of backoff between them.
#: `henpin.amazon.worst_case_call_s` computes it from the adapter's own numbers; a test holds
#: the two equal.
CREATE_FEED_WORST_CASE_S = 483.5

#: How long an inbox session may sit idle when HENPIN_SESSION_HOURS does not say.
DEFAULT_SESSION_HOURS = 8.0


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
    # Where notifications go: Apprise URLs, each with target names before '=' (JSON list, e.g.
    # ["operators=mailtos://user:pass@smtp.example.com?to=ops@example.com"]). Secrets: never
    # logged. policies.yaml `notifications:` names the targets of each kind.
    notify_urls: list[SecretStr] = Field(default=[], description="Apprise URLs (secret)")
    # Demo mode: with no notify_urls, notifications go to the local mail catcher. `henpin up`
    # sets it when it starts the demo's mail catcher; nothing else notifies by default.
    notify_demo_catcher: bool = False
    # The inbox as people reach it, for links in notifications (`henpin up` sets it).
    inbox_url: str | None = None
    # The Prefect UI's address, for the inbox's links to flow runs (`henpin up` sets it).
    prefect_ui_url: str | None = None

    @field_validator("prefect_ui_url")
    @classmethod
    def _no_trailing_slash(cls, url: str | None) -> str | None:
        return (url or "").strip().rstrip("/") or None

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
    sp_api_refresh_token_na: SecretStr | None = Field(
        default=None, validation_alias="SP_API_REFRESH_TOKEN_NA"
    )
    sp_api_refresh_token_eu: SecretStr | None = Field(
        default=None, validation_alias="SP_API_REFRESH_TOKEN_EU"
    )
    sp_api_refresh_token_fe: SecretStr | None = Field(
        default=None, validation_alias="SP_API_REFRESH_TOKEN_FE"
    )
    # The merchant token: HENPIN_SELLER_ID (single region) or HENPIN_SELLER_ID_NA|EU|FE.
    seller_id: str | None = None
    seller_id_na: str | None = None
    seller_id_eu: str | None = None
    seller_id_fe: str | None = None
    poll_interval_s: int = Field(default=180, ge=10, le=3600)
    outbox_interval_s: float = Field(default=5, ge=0.2, le=600)
    # Flow runs `henpin runner` executes at once. In the resident executor each is a thread of
    # its one process (a case flow mostly waits on Amazon and the case store); with
    # `--process-per-run` each is a process (~1.8 CPU s to start): there, about two per core.
    runner_limit: int = Field(default=16, ge=1, le=256)
    # The resident executor recycles (stops claiming, lets its runs finish, exits for its
    # supervisor to start it again) when its resident memory passes this many MB after a run.
    runner_max_rss_mb: float = Field(default=2048, ge=128, le=1_048_576)
    # How often the resident executor asks Prefect for due runs when no event woke it sooner.
    runner_query_s: float = Field(default=5, ge=0.2, le=600)
    # The malloc the supervisor starts resident executors with: jemalloc where the machine has
    # it (auto), or glibc's (henpin/supervisor/parts.py `resident_allocator`).
    runner_allocator: Literal["auto", "jemalloc", "glibc"] = "auto"
    # A feed left `sending` (a crash or a lost createFeed answer) is looked up at Amazon after
    # this long: longer than one createFeed attempt can last, quota wait included. Less would
    # let the lookup find nothing while the call is still under way, and the feed go twice.
    outbox_settle_s: float = Field(default=600, ge=5, le=86_400)
    # A case's flow run RUNNING this long without a state change is taken for dead (its process
    # was killed) and started again. Case flows suspend while they wait; they never run long.
    stale_run_s: float = Field(default=900, ge=5, le=86_400)
    # An inbox session ends after sitting idle this long (HENPIN_SESSION_HOURS). A value that is
    # not a number between session_min_hours (0.05) and 720 hours falls back to the default: a typo must not leave
    # sessions open forever, nor stop the inbox.
    session_hours: float = DEFAULT_SESSION_HOURS
    # An inbox session ends this long after its sign-in, however active (idle sessions end
    # sooner: HENPIN_SESSION_HOURS, default 8).
    session_max_hours: float = Field(default=12, ge=0.1, le=720)

    # Seconds between the inbox list's own refreshes, at least 2 (a refresh is not the
    # operator's activity). A value that is not a whole number falls back to 30: a typo must not
    # stop the inbox.
    inbox_refresh_seconds: int = 30

    @field_validator("inbox_refresh_seconds", mode="before")
    @classmethod
    def _refresh_seconds_or_default(cls, given: object) -> int:
        try:
            return max(2, int(str(given).strip()))
        except ValueError:
            return 30

    # The shortest HENPIN_SESSION_HOURS honoured (3 minutes; shorter falls back to 8 hours). For
    # tests only: a browser test lowers it to watch an idle session end in seconds, not minutes.
    session_min_hours: float = Field(default=0.05, ge=0.001, le=0.05)

    @field_validator("session_hours", mode="before")
    @classmethod
    def _session_hours_or_default(cls, given: object) -> float:
        raw = str(given).strip()
        try:
            return float(raw) if raw else DEFAULT_SESSION_HOURS
        except ValueError:
            return DEFAULT_SESSION_HOURS

    @model_validator(mode="after")
    def _session_hours_in_range(self) -> Settings:
        """HENPIN_SESSION_HOURS outside session_min_hours..720 falls back to the default."""
        if not self.session_min_hours <= self.session_hours <= 720:
            self.session_hours = DEFAULT_SESSION_HOURS
        return self

    # Answers typed in the Prefect UI's Resume form (or sent with Prefect's resume API) are
    # checked like the inbox's and recorded as `prefect-ui`. False: they are refused, the case
    # asks again, and only the inbox and `henpin decide` decide. Read by the processes that run
    # the case flows (runner, workers).
    prefect_ui_decisions: bool = True
    # The time zone the inbox shows times in (IANA name, e.g. Europe/Berlin). Unset: by the
    # operator's language (Japanese: Asia/Tokyo, English: UTC). Each operator can switch to UTC.
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(f"unknown time zone {zone!r}; use an IANA name") from e
        return zone

    # The supervisor of `henpin up` (henpin/supervisor/). A stop sends SIGTERM to every
    # part, then SIGKILL to what is left after this long: a stop takes at most a few seconds more.
    stop_grace_s: float = Field(default=5, ge=0.5, le=60)
    # A part that dies is started again after restart_backoff_s, doubled for each recent death
    # (at most 30 s); restart_limit deaths within restart_window_s stop the stack instead.
    restart_limit: int = Field(default=5, ge=1, le=100)
    restart_window_s: float = Field(default=300, ge=10, le=86_400)
    restart_backoff_s: float = Field(default=1, ge=0.1, le=30)
    # Each part's log in HENPIN_HOME/logs is rotated at this size, keeping log_backups old files.
    log_max_bytes: int = Field(default=10_000_000, ge=10_000, le=10_000_000_000)
    log_backups: int = Field(default=3, ge=0, le=100)
    # A runner whose Prefect server has not answered for this long stops (its supervisor, or
    # systemd, starts it again once the server is back).
    runner_server_gone_s: float = Field(default=30, ge=5, le=3600)

    @model_validator(mode="after")
    def _settle_after_any_create_feed(self) -> Settings:
        """Against Amazon, a feed left `sending` is looked up only once no createFeed call can
        still be under way. The demo's emulator answers in milliseconds, so demo mode (and the
        soak, which kills runners mid-call against it) may settle sooner, from 5 s."""
        value = self.outbox_settle_s
        if not self.demo_mode and value <= CREATE_FEED_WORST_CASE_S:
            raise ValueError(
                f"HENPIN_OUTBOX_SETTLE_S is {value:g} s; against Amazon it must be more than "
                f"{CREATE_FEED_WORST_CASE_S:g} s, the longest one createFeed call can last "
                "(4 tries, each waiting up to 60 s for quota, 30 s to log in and 30 s for the "
                "call). Shorter, Henpin could look a feed up at Amazon while its createFeed is "
                "still under way, find nothing, and send it twice."
            )
        return self

    @property
    def demo_mode(self) -> bool:
        """No Amazon credentials configured: run against the local emulator."""
        tokens = (
            self.sp_api_refresh_token,
            self.sp_api_refresh_token_na,
            self.sp_api_refresh_token_eu,
            self.sp_api_refresh_token_fe,
        )
        return not (self.lwa_app_id and self.lwa_client_secret and any(tokens))

    @cached_property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'henpin.db').resolve()}"

    @property
    def lwa_credentials(self) -> dict[str, str]:
        """Credentials in python-amazon-sp-api's shape for the first watched region that has
        them (the emulator's demo ones in demo mode). Calls go per region: see `region_login`."""
        for region in self.watched_regions:
            login = self.region_login(region)
            if login is not None:
                return login.library_credentials()
        raise ValueError(self.missing_credentials_message() or "no watched marketplace")

    @property
    def watched_regions(self) -> dict[str, list[str]]:
        """The SP-API regions of the watched marketplaces, each with its marketplace ids."""
        regions: dict[str, list[str]] = {}
        for marketplace_id in self.marketplaces:
            regions.setdefault(marketplace(marketplace_id).region, []).append(marketplace_id)
        return {r: regions[r] for r in REGIONS if r in regions}

    def region_login(self, region: str) -> RegionLogin | None:
        """The login for one region, or None when it has none (real mode).

        Demo mode: the emulator's demo login of that region. Real mode: the region's own
        `SP_API_REFRESH_TOKEN_<REGION>` / `HENPIN_SELLER_ID_<REGION>`; the un-suffixed names
        only when every watched marketplace is in this one region.
        """
        if self.demo_mode:
            return RegionLogin(
                region,
                EMULATOR_CLIENT_ID,
                EMULATOR_CLIENT_SECRET,
                EMULATOR_REFRESH_TOKENS[region],
                EMULATOR_SELLER_IDS[region],
            )
        suffix = region.lower()
        token: SecretStr | None = getattr(self, f"sp_api_refresh_token_{suffix}", None)
        seller: str | None = getattr(self, f"seller_id_{suffix}", None)
        if list(self.watched_regions) == [region]:
            token = token or self.sp_api_refresh_token
            seller = seller or self.seller_id
        if token is None or not self.lwa_app_id or not self.lwa_client_secret:
            return None
        return RegionLogin(
            region,
            self.lwa_app_id,
            self.lwa_client_secret.get_secret_value(),
            token.get_secret_value(),
            seller,
        )

    def missing_credentials_message(self) -> str | None:
        """What to set when a watched marketplace's region has no login (real mode), else None."""
        if self.demo_mode:
            return None
        missing = {
            region: ids
            for region, ids in self.watched_regions.items()
            if (login := self.region_login(region)) is None or not login.seller_id
        }
        if not missing:
            return None
        several = len(self.watched_regions) > 1
        lines = []
        for region, ids in missing.items():
            names = ", ".join(f"{marketplace(m).country} ({m})" for m in ids)
            lines.append(
                f"- {region} region, watched marketplaces {names}: set SP_API_REFRESH_TOKEN_{region} "
                f"(the refresh token from authorising Henpin in that region) and "
                f"HENPIN_SELLER_ID_{region} (your merchant token there)."
            )
        hint = (
            "\nSeveral regions are watched, so the un-suffixed SP_API_REFRESH_TOKEN and "
            "HENPIN_SELLER_ID are not used: each region needs its own."
            if several
            else ""
        )
        return (
            "Henpin has no Amazon login for a region it watches (HENPIN_MARKETPLACES):\n"
            + "\n".join(lines)
            + hint
        )


def load_settings() -> Settings:
    return Settings()
