"""Configuration: ``config.toml`` (or ``$QCBOT_CONFIG``) plus environment overrides.

Every key is documented, with its default, in ``config.example.toml``; a test
keeps the two in step. Unknown keys, a bad time zone or a malformed database
URL fail at start with a message that names the key.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_CONFIG_FILE = "config.toml"

#: Environment variables that override keys of the file (secrets and deployment).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "QCBOT_BOT_TOKEN": ("telegram", "token"),
    "QCBOT_DATABASE_URL": ("database", "url"),
    "QCBOT_TELEGRAM_BASE_URL": ("telegram", "base_url"),
    "QCBOT_TELEGRAM_BASE_FILE_URL": ("telegram", "base_file_url"),
    "QCBOT_TELEGRAM_PROXY_URL": ("telegram", "proxy_url"),
    "QCBOT_STORAGE_DIR": ("storage", "dir"),
    "QCBOT_LOG_LEVEL": ("logging", "level"),
}


#: The webhook secret Telegram sends back: it accepts 1-256 of A-Z a-z 0-9 _ -; we ask for 32+.
MIN_WEBHOOK_SECRET = 32
WEBHOOK_SECRET_RE = re.compile(rf"^[A-Za-z0-9_-]{{{MIN_WEBHOOK_SECRET},256}}$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelegramConfig(_Section):
    token: SecretStr = SecretStr("")
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # The secret Telegram sends with every webhook call: 32-256 of A-Z a-z 0-9 _ -. Empty: one
    # is made at the first start and kept in webhook_secret_file (mode 0600).
    webhook_secret: SecretStr = SecretStr("")
    webhook_secret_file: Path = Path("var/webhook-secret")
    # Every Bot API call and file download goes through this proxy when set: http://host:port or
    # socks5://host:port (a server in mainland China). Credentials belong in the environment
    # (QCBOT_TELEGRAM_PROXY_URL=socks5://user:password@host:port); the URL is never logged.
    proxy_url: SecretStr = SecretStr("")
    # Updates handled at once (python-telegram-bot's concurrent_updates).
    concurrent_updates: int = Field(default=8, ge=1, le=256)
    # Each person's budget: updates beyond it are dropped unanswered (and logged). A bucket of
    # user_budget_burst that refills at user_budget_per_minute (0 = no budget).
    user_budget_per_minute: int = Field(default=30, ge=0, le=6000)
    user_budget_burst: int = Field(default=20, ge=1, le=1000)
    # Somebody no campaign knows gets at most this many answers an hour in a private chat
    # (0 = none); their invite link or the bootstrap code always gets through.
    stranger_answers_per_hour: int = Field(default=1, ge=0, le=3600)
    # How long an invite deep link stays valid (at most a week: a link travels by chat apps).
    invite_ttl_hours: int = Field(default=72, ge=1, le=7 * 24)

    @property
    def has_token(self) -> bool:
        return bool(self.token.get_secret_value().strip())

    @model_validator(mode="after")
    def _valid_webhook(self) -> TelegramConfig:
        """Webhook mode is checked when the configuration is read, before anything is written."""
        if self.mode == "webhook":
            if not self.webhook_url:
                raise ValueError('mode = "webhook" needs webhook_url (the public HTTPS URL Telegram posts to)')
            secret = self.webhook_secret.get_secret_value().strip()
            if secret and not WEBHOOK_SECRET_RE.match(secret):
                raise ValueError(
                    f"webhook_secret must be {MIN_WEBHOOK_SECRET}-256 characters of A-Z a-z 0-9 _ - "
                    "(or empty: one is made at the first start and kept in webhook_secret_file)")
        return self

    @field_validator("proxy_url")
    @classmethod
    def _valid_proxy(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.lower().startswith(("http://", "https://", "socks5://", "socks5h://")):
            raise ValueError("proxy_url must start with http://, https://, socks5:// or socks5h://")
        return SecretStr(url)


class DatabaseConfig(_Section):
    url: str = "sqlite:///var/qcbot.sqlite3"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"malformed database URL: {exc}") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return value


class CampaignConfig(_Section):
    # Which campaign a single-district deployment serves (empty: the only one).
    slug: str = ""
    timezone: str = "Asia/Shanghai"
    # Yellow light: due within this many working days and not yet submitted.
    yellow_working_days: int = Field(default=5, ge=0, le=60)
    # A coordinator never approves their own submission while another coordinator can; in a
    # one-person office they may when this is true.
    self_review_when_alone: bool = True

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StorageConfig(_Section):
    dir: Path = Path("var/evidence")
    # The Bot API lets a bot download files up to 20 MB.
    max_file_mb: int = Field(default=20, ge=1, le=20)
    # Each unit's evidence may take at most this much of the store, in MB (0 = no quota).
    unit_quota_mb: int = Field(default=500, ge=0, le=1_000_000)
    allowed_types: tuple[str, ...] = (
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/webp",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/zip",
        "text/plain",
    )


class SchedulerConfig(_Section):
    enabled: bool = True
    # Nudge before each deadline this many working days ahead (0 = on the day).
    offsets_working_days: tuple[int, ...] = (7, 3, 1, 0)
    nudge_time: dt.time = dt.time(9, 0)
    # While overdue, nudge every working day; after this many, escalate to the coordinator.
    escalate_after_working_days: int = Field(default=3, ge=1, le=60)
    digest_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    digest_time: dt.time = dt.time(9, 0)
    # No nudges between quiet_start and quiet_end (campaign time); they wait.
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(8, 0)
    sweep_interval_seconds: int = Field(default=60, ge=5, le=3600)
    # An idle sweep skips a campaign when nothing was written to it and no nudge or
    # digest moment passed since its last plan; it is re-planned anyway this often
    # (0 = re-plan every campaign on every sweep).
    replan_every_seconds: int = Field(default=900, ge=0, le=86400)
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Nudges missed during a downtime of up to this many days are sent (merged) after restart.
    catchup_days: int = Field(default=7, ge=1, le=60)
    # A message claimed for sending but not marked sent after this long is sent again.
    lease_seconds: int = Field(default=300, ge=5, le=86400)
    # Retry after a network error or 5xx: base * 2**(attempt-1), capped at retry_max_seconds.
    retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    retry_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # A 429 asking to wait at most this long is waited out in the same run; longer waits
    # are rescheduled.
    flood_wait_max_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Pacing (Telegram's limits): messages per second overall, per minute per group,
    # per second per private chat.
    pace_global_per_second: int = Field(default=30, ge=1, le=1000)
    pace_group_per_minute: int = Field(default=20, ge=1, le=1000)
    pace_private_per_second: int = Field(default=1, ge=1, le=100)
    # The weekly digest is followed by the /status chart (score by category, tasks by unit).
    digest_chart: bool = True
    # The weekly digest is followed by the 通报 (unit ranking), to the groups and the leaders.
    digest_bulletin: bool = True
    # The 月报 to the leaders on the first working day of each month, at digest_time.
    monthly_report: bool = True

    # Not a key of [scheduler]: [campaign] yellow_working_days, set by Settings, so a nudge's
    # light is the one /task and /status show (models.status.assignment_light).
    _yellow_working_days: int = PrivateAttr(default=5)

    @property
    def yellow_working_days(self) -> int:
        return self._yellow_working_days


class SupervisionConfig(_Section):
    # The number of a 督办单: {year} and {seq} (its order in that year) are filled in.
    number_format: str = "质强督〔{year}〕{seq}号"
    # A 批示 is to be answered (落实情况) within this many working days.
    instruction_answer_working_days: int = Field(default=3, ge=1, le=60)

    @field_validator("number_format")
    @classmethod
    def _valid_format(cls, value: str) -> str:
        if "{seq}" not in value:
            raise ValueError("number_format must contain {seq}")
        try:
            value.format(year=2027, seq=1)
        except (KeyError, IndexError, ValueError):
            raise ValueError("number_format may only use {year} and {seq}") from None
        return value


class ExportConfig(_Section):
    # /export splits the dossier ZIP into volumes of at most this many MB
    # (1 MB = 1,000,000 bytes); Telegram lets a bot upload at most 50 MB.
    part_mb: float = Field(default=50, gt=0, le=50)

    @property
    def part_bytes(self) -> int:
        return int(self.part_mb * 1_000_000)


class BackupConfig(_Section):
    enabled: bool = False
    dir: Path = Path("var/backups")
    time: dt.time = dt.time(2, 30)
    keep: int = Field(default=14, ge=1, le=3650)
    # The key that signs every backup's manifest (32 random bytes, made at the first backup,
    # mode 0600). Outside `dir`: whoever holds a backup must not hold the key too.
    key_file: Path = Path("var/backup.key")

    @field_validator("key_file")
    @classmethod
    def _key_outside_backups(cls, value: Path, info: Any) -> Path:
        backups = info.data.get("dir")
        if backups is not None:
            key, root = os.path.abspath(value), os.path.abspath(backups)
            if key == root or key.startswith(root.rstrip(os.sep) + os.sep):
                raise ValueError(
                    f"备份密钥文件 {value} 位于备份目录 backup.dir（{backups}）之内：密钥必须放在备份目录之外"
                )
        return value


class CalendarConfig(_Section):
    # Operator files of the State Council's holiday arrangement (TOML, one year each), read at
    # start on top of data/calendar/<year>.toml; a file here replaces the shipped one of its year.
    files: tuple[Path, ...] = ()


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Log message bodies (only for debugging; they may hold personal data).
    log_bodies: bool = False


class Settings(_Section):
    telegram: TelegramConfig = TelegramConfig()
    database: DatabaseConfig = DatabaseConfig()
    campaign: CampaignConfig = CampaignConfig()
    storage: StorageConfig = StorageConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    export: ExportConfig = ExportConfig()
    backup: BackupConfig = BackupConfig()
    calendar: CalendarConfig = CalendarConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _one_yellow_threshold(self) -> Settings:
        """The scheduler's lights use [campaign] yellow_working_days (one threshold)."""
        if self.scheduler.yellow_working_days != self.campaign.yellow_working_days:
            scheduler = self.scheduler.model_copy()
            scheduler._yellow_working_days = self.campaign.yellow_working_days
            object.__setattr__(self, "scheduler", scheduler)  # Settings is frozen
        return self


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"配置错误 ({source}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (未知配置项)")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def config_path(
    explicit: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Path:
    """The config file to read: explicit, then $QCBOT_CONFIG, then ./config.toml."""
    if explicit:
        return Path(explicit)
    named = (os.environ if env is None else env).get("QCBOT_CONFIG")
    return Path(named) if named else Path(DEFAULT_CONFIG_FILE)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Read and validate the configuration.

    A missing file is fine (defaults apply) unless it was named explicitly.
    """
    env = dict(os.environ) if env is None else env
    file = config_path(path, env)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"配置错误 ({file}): not valid TOML: {exc}") from None
    elif path is not None or env.get("QCBOT_CONFIG"):
        raise ConfigError(f"配置错误（{file}）：file not found")
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"配置错误 ({file}): {section}: must be a table")
            data[section][key] = env[var]
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(file))) from None
