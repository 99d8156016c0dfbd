"""Settings for loanservice, all from the environment.

Embedded default (no variables set): SQLite file, Celery eager, console e-mail, DEBUG on.
Production: set DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = env_bool("DEBUG", True)
TESTING = env_bool("LOANSERVICE_TESTING", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

# Personal data at rest (loanservice.crypto, docs/security.md "Personal data"): Fernet keys, newest first
# (comma-separated), and a separate key for the blind indexes. Without them only a DEBUG server starts, with keys
# derived from SECRET_KEY; a deployment takes them from its KMS/HSM.
FIELD_ENCRYPTION_KEYS = [k.strip() for k in os.environ.get("FIELD_ENCRYPTION_KEYS", "").split(",") if k.strip()]
BLIND_INDEX_KEY = os.environ.get("BLIND_INDEX_KEY", "")
if not FIELD_ENCRYPTION_KEYS or not BLIND_INDEX_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY must be set when DEBUG is off.")
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [
        base64.urlsafe_b64encode(hashlib.sha256(f"field-encryption:{SECRET_KEY}".encode()).digest()).decode()]
    BLIND_INDEX_KEY = BLIND_INDEX_KEY or hashlib.sha256(f"blind-index:{SECRET_KEY}".encode()).hexdigest()

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    # The admin's theme, before django.contrib.admin so its templates win; the basic config, which leaves the
    # project's own site (loanservice.admin_site.AdminSite) as admin.site (the default one would replace it).
    "unfold.apps.BasicAppConfig",
    "loanservice.apps.AdminConfig",  # django.contrib.admin with the project's site (loanservice/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "rules.apps.AutodiscoverRulesConfig",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "loanservice",
    "ledger",
    "applications",
    "underwriting",
    "approvals",
    "contracts",
    "postloan",
    "analytics",
    "marketing",
    "creditlines",
    "casework",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "loanservice.middleware.DefaultLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "loanservice.middleware.NulCharacterMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "loanservice.middleware.StaffSessionMiddleware",  # idle timeout and the second factor for staff
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "loanservice.middleware.ContentSecurityPolicyMiddleware",  # django-csp, CONTENT_SECURITY_POLICY below
    "django_htmx.middleware.HtmxMiddleware",
    "loanservice.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

# The benchmark stack's floor endpoint (loanservice.bench_floor): never on in production.
BENCH_FLOOR = env_bool("BENCH_FLOOR", False)
ROOT_URLCONF = "config.urls_bench" if BENCH_FLOOR else "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "loanservice.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default under concurrency (runserver is threaded): a write transaction takes SQLite's write
    # lock when it begins (BEGIN IMMEDIATE), so writers queue for up to `timeout` seconds and the second of two
    # racing decisions reads the first one's result (a 409), where a deferred transaction could not upgrade
    # its read lock and failed at once with "database is locked". WAL lets reads run beside the one writer;
    # reads outside transaction.atomic stay in autocommit and never take the write lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Uploaded documents and contracts are private: stored outside any served path, streamed by views
# that check the owner.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
PRIVATE_STORAGE_ROOT = Path(os.environ.get("PRIVATE_STORAGE_ROOT", BASE_DIR / "var" / "private"))
# The function that turns a contract template and its terms into PDF bytes (the demo history swaps in a placeholder).
CONTRACT_RENDERER = "contracts.services.contract_render"
CONTRACT_SIGNING_BACKEND = os.environ.get("CONTRACT_SIGNING_BACKEND", "contracts.signing.DevSelfSignedBackend")
CONTRACT_SIGNING_KEY_DIR = Path(os.environ.get("CONTRACT_SIGNING_KEY_DIR", BASE_DIR / "var" / "keys"))
# The bank's sandbox CA (loanservice/pki.py): issues each enterprise's signing certificate and the audit anchors' key.
# Empty: ca/ inside CONTRACT_SIGNING_KEY_DIR. Shared by every web and worker process, like the seal's key directory.
SANDBOX_CA_DIR = os.environ.get("SANDBOX_CA_DIR", "")
ENTERPRISE_CERTIFICATE_DAYS = int(os.environ.get("ENTERPRISE_CERTIFICATE_DAYS", "1825"))
# The one core-banking adapter (ledger/core_banking.py, docs/ledger.md): released disbursements, auto-debits of close
# of business, the voucher outbox, the core's daily file. "sandbox" answers deterministically here; "http" talks to
# the bank's core system. The former disbursement-only CORE_BANKING_ADAPTER is gone: its file adapter is now the
# sandbox's (accepted and ignored if still set to that path; any other value is refused).
CORE_BANKING_BACKEND = os.environ.get("CORE_BANKING_BACKEND", "sandbox")
if os.environ.get("CORE_BANKING_ADAPTER", "contracts.services.FileCoreBankingAdapter") != "contracts.services.FileCoreBankingAdapter":
    raise ImproperlyConfigured("CORE_BANKING_ADAPTER is gone: choose the core-banking adapter with CORE_BANKING_BACKEND.")
# Where the sandbox's core writes each released disbursement (one JSON line, a file per day).
CORE_BANKING_OUTBOUND_DIR = Path(os.environ.get("CORE_BANKING_OUTBOUND_DIR", BASE_DIR / "var" / "outbound"))
CORE_BANKING_URL = os.environ.get("CORE_BANKING_URL", "")
CORE_BANKING_TIMEOUT = float(os.environ.get("CORE_BANKING_TIMEOUT", "5"))
CORE_BANKING_TOKEN = os.environ.get("CORE_BANKING_TOKEN", "")
# The sandbox's settlement accounts: "derived" (a balance derived from the account and the date, sometimes short),
# "full" or "empty"; and a difference it puts in the daily file it produces ("", "amount", "missing" or "extra").
CORE_BANKING_SANDBOX_FUNDS = os.environ.get("CORE_BANKING_SANDBOX_FUNDS", "derived")
CORE_BANKING_SANDBOX_DIFFERENCE = os.environ.get("CORE_BANKING_SANDBOX_DIFFERENCE", "")
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 25 * 1024 * 1024

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "loanservice@bank.example")
SMS_BACKEND = os.environ.get("SMS_BACKEND", "loanservice.notifications.ConsoleSmsBackend")
# Who acts for an enterprise (applications/identity.py): sandbox (no network) or http (the bank's gateway to the
# 公安部 citizen identity check at IDENTITY_PROVIDER_URL).
IDENTITY_PROVIDER = os.environ.get("IDENTITY_PROVIDER", "sandbox")
IDENTITY_PROVIDER_URL = os.environ.get("IDENTITY_PROVIDER_URL", "")
IDENTITY_PROVIDER_TIMEOUT = float(os.environ.get("IDENTITY_PROVIDER_TIMEOUT", "5"))
# Where a borrower pays by transfer (the loan page's "how to pay"); the reference to quote is the loan contract's number.
REPAYMENT_ACCOUNT = {
    "bank": os.environ.get("REPAYMENT_ACCOUNT_BANK", "示范银行上海分行营业部"),
    "name": os.environ.get("REPAYMENT_ACCOUNT_NAME", "示范银行股份有限公司贷款还款归集户"),
    "number": os.environ.get("REPAYMENT_ACCOUNT_NUMBER", "3100 1000 2000 3000 888"),
}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a real broker when REDIS_URL is set, otherwise eager (the embedded default).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Underwriting: a data source that timed out or answered 5xx is retried this many times (backoff doubling
# from the given seconds) before the case is referred to a person with the gap named.
UNDERWRITING_SOURCE_RETRIES = int(os.environ.get("UNDERWRITING_SOURCE_RETRIES", "3"))
UNDERWRITING_SOURCE_RETRY_SECONDS = float(os.environ.get("UNDERWRITING_SOURCE_RETRY_SECONDS", "10"))
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Two queues (docs/architecture.md, "Workers"): `celery`, the cases' own path (scoring and routing, the fast
# track's completion, contracts' signatures, core banking's disbursement messages), and `batch`, the night's and the
# schedule's work (close of business and its partitions, post-loan monitoring, renewal offers, credit lines' night,
# the audit check, retention, the voucher resend, the SLA check). Each has its own worker in production
# (docker-compose.yml, `make worker` and `make worker-batch`), so a close-of-business chunk never waits in front of a
# fast-track case. A worker started without -Q consumes both (the suite's, a laptop's).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_BATCH_QUEUE = "batch"
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_BATCH_QUEUE))
CELERY_BATCH_TASKS = (
    "postloan.tasks.cob_nightly",
    "postloan.tasks.cob_partition",
    "postloan.tasks.nightly_monitoring",
    "postloan.tasks.renewal_offers",
    "creditlines.tasks.lines_nightly",
    "loanservice.tasks.audit_nightly",
    "loanservice.tasks.sla_check",
    "casework.tasks.personal_data_retention",
    "ledger.tasks.vouchers_send_pending",
)
CELERY_TASK_ROUTES = {name: {"queue": CELERY_BATCH_QUEUE} for name in CELERY_BATCH_TASKS}
# Processes per worker (prefork). On 2 cores one intake process holds more submissions/s than two: the web tier,
# Postgres and a second process fight for the same cores (docs/benchmarks.md, "gunicorn and the worker by
# measurement"); batch work has its own worker, so one process no longer queues the fast track behind the night.
CELERY_WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "1"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600, "socket_connect_timeout": 2, "socket_timeout": 3}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sla-check": {"task": "loanservice.tasks.sla_check", "schedule": 300.0},
    "outbox-sweep": {"task": "loanservice.tasks.outbox_sweep", "schedule": 60.0},
    # Close of business (日终) for the day that ended, then post-loan monitoring at 01:30 and renewal offers at 02:30 bank time (postloan/tasks.py).
    "postloan-cob": {"task": "postloan.tasks.cob_nightly", "schedule": crontab(hour=0, minute=15)},
    "postloan-nightly": {"task": "postloan.tasks.nightly_monitoring", "schedule": crontab(hour=1, minute=30)},
    "postloan-renewal-offers": {"task": "postloan.tasks.renewal_offers", "schedule": crontab(hour=2, minute=30)},
    # Voucher batches that core banking has not taken yet are sent again (ledger/tasks.py).
    "ledger-vouchers-send": {"task": "ledger.tasks.vouchers_send_pending", "schedule": 600.0},
    # The audit trail: anchor yesterday's chains, verify the last AUDIT_VERIFY_DAYS days, alarm on a break.
    "audit-nightly": {"task": "loanservice.tasks.audit_nightly", "schedule": crontab(hour=3, minute=0)},
    # Personal data past its retention period is anonymised (casework.retention, docs/security.md).
    "personal-data-retention": {"task": "casework.tasks.personal_data_retention", "schedule": crontab(hour=3, minute=30)},
    # Credit lines after the warnings of the night: freeze on a freezing warning, expire, annual review tasks.
    "creditlines-nightly": {"task": "creditlines.tasks.lines_nightly", "schedule": crontab(hour=2, minute=0)},
}
# Days the nightly audit check verifies (0 = the whole trail every night).
AUDIT_VERIFY_DAYS = int(os.environ.get("AUDIT_VERIFY_DAYS", "7"))
# Who may reveal a natural person's ID number or phone in clear (an audited "show" on a page, `POST
# /api/v1/personal-data/reveal/`); every other staff role sees them masked, and the enterprise's owner sees its
# own. Why these roles: docs/security.md "Personal data".
PERSONAL_DATA_CLEAR_ROLES = {
    "id_number": ["relationship_manager", "operations"],
    "phone": ["relationship_manager", "operations"],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "loanservice.drf.PreparedTokenAuthentication",  # DRF's token authentication, its read compiled once
        "loanservice.drf.VerifiedSessionAuthentication",  # a staff session counts once past the second factor
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "loanservice.api.exception_handler",
    # JSON bodies are objects (anything else is a 400 before a view reads it); lists page with a checked limit/offset.
    "DEFAULT_PARSER_CLASSES": [
        "loanservice.drf.ObjectJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "loanservice.drf.LimitOffset",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"prequalify": "20/hour", "anon": "300/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "loanservice API",
    "DESCRIPTION": "SME loan servicing: intake, underwriting, approvals, contracts, post-loan. "
    "Money as strings with two decimals; rates as decimal fractions per year.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two fields are named "mode" (a site visit's, a prepayment's): each enum its own name.
    "ENUM_NAME_OVERRIDES": {"PrepaymentModeEnum": "postloan.serializers.MODE_CHOICES"},
}

AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.5  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env_bool("AXES_ENABLED", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# The staff's second factor (loanservice/second_factor.py, docs/security.md): TOTP for these roles (and superusers,
# is_staff users, and any staff member who enrolled a device); RMs may enrol, applicants are never asked.
OTP_REQUIRED = env_bool("OTP_REQUIRED", True)
# The admin never shows a staff member's TOTP secret or its QR code (django-otp's device config and QR views answer 403).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_REQUIRED_ROLES = [r.strip() for r in os.environ.get(
    "OTP_REQUIRED_ROLES", "branch_approver,head_office_approver,credit_committee,operations,risk,admin").split(",") if r.strip()]
OTP_TOTP_ISSUER = "loanservice"
OTP_TOTP_SYNC = False  # no drift learning: a code is good for its 30 s step and one step either side
# The demo (`make run`): the verification page shows a demo user's current code. Only ever with DEBUG on.
DEMO_OTP_HINTS = DEBUG and env_bool("DEMO_OTP_HINTS", False)
# A staff session ends after this long without a request (seconds).
STAFF_SESSION_IDLE_SECONDS = int(os.environ.get("STAFF_SESSION_IDLE_SECONDS", "1800"))

# Content-Security-Policy (django-csp; docs/security.md): scripts only from this site and never inline (page scripts
# live in static/js, chart data travels in <script type="application/json"> blocks); styles may be inline (Bootstrap
# components, htmx's indicator style, django-unfold and a few style attributes set them). The admin adds
# 'unsafe-eval' for unfold's Alpine.js (loanservice.middleware.ContentSecurityPolicyMiddleware).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Close of business may run for dates after today only where time is simulated (the `make run` demo).
ALLOW_SIMULATED_BUSINESS_DATE = env_bool("ALLOW_SIMULATED_BUSINESS_DATE", DEBUG and not os.environ.get("DATABASE_URL"))

LOANSERVICE = {
    # Days a pushed or pulled snapshot stays fresh unless the source says otherwise.
    "DEFAULT_FRESHNESS_DAYS": 30,
    "SITE_NAME": _("小微企业贷款服务"),
}

# The admin's theme (django-unfold): titles through gettext, so Chinese by default and English with the language
# cookie; unfold's own static files only (no CDN).
UNFOLD = {
    "SITE_TITLE": _("小微企业贷款服务 · 管理后台"),
    "SITE_HEADER": _("贷款服务管理后台"),
    "SITE_SYMBOL": "account_balance",
    "SHOW_LANGUAGES": False,
}
