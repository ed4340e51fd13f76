"""hookwise: webhooks and polling done right.

Verified, durable, deduplicated and ordered events from any provider, processed by
your handlers with retries and dead letters. See the docs/ folder for guides.
"""

from .app import Hookwise
from .backoff import RetryPolicy
from .clock import Clock, FrozenClock, SystemClock
from .config import (
    HandlerSettings,
    ServerSettings,
    Settings,
    SourceSettings,
    StoreSettings,
    WorkerSettings,
)
from .errors import (
    ConfigError,
    HookwiseError,
    NotFound,
    PayloadTooLarge,
    Reject,
    RequestError,
    Retry,
    StoreError,
    StoreNotOpen,
    StoreOverloaded,
    StoreUnavailable,
    UnknownSource,
    VerificationError,
)
from .events import Event, NewEvent
from .transactions import AsyncTransaction, Transaction, TransactionClosed, TxResult

__version__ = "0.1.0"

__all__ = [
    "AsyncTransaction",
    "Clock",
    "ConfigError",
    "Event",
    "FrozenClock",
    "HandlerSettings",
    "Hookwise",
    "HookwiseError",
    "NewEvent",
    "NotFound",
    "PayloadTooLarge",
    "Reject",
    "RequestError",
    "Retry",
    "RetryPolicy",
    "ServerSettings",
    "Settings",
    "SourceSettings",
    "StoreError",
    "StoreNotOpen",
    "StoreOverloaded",
    "StoreSettings",
    "StoreUnavailable",
    "SystemClock",
    "Transaction",
    "TransactionClosed",
    "TxResult",
    "UnknownSource",
    "VerificationError",
    "WorkerSettings",
    "__version__",
]
