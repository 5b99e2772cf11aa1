"""SQLAlchemy 2 typed models, one module per area; all share `Base` from core.

Importing this package imports every area's models, so Alembic and the app see the whole schema.
Each area module is imported below.
"""

from __future__ import annotations

from engine.models.audit import Audit, AuditActivity, AuditorInvitation  # noqa: F401
from engine.models.conditional_cache import ConditionalCacheEntry  # noqa: F401
from engine.models.console import ConsoleLoginLink, ConsoleSession  # noqa: F401
from engine.models.core import (
    Account,
    Base,
    ChangeKind,
    CheckState,
    Connection,
    ConnectionStatus,
    ControlResult,
    ControlResultHistory,
    ControlStatus,
    Evidence,
    EvidenceStatus,
    EvidenceVersion,
    Frequency,
    RunStatus,
    SyncPart,
    SyncRun,
    Trigger,
    new_id,
)
from engine.models.integrations import (  # noqa: F401
    ConfigParameter,
    CustomIntegration,
    IntegrationType,
    OAuthState,
)
from engine.models.lease import TaskKind, TaskLease  # noqa: F401
from engine.models.ledger import (  # noqa: F401
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    LedgerSigningKey,
)
from engine.models.push import ApiKey, EvidenceLineage, EvidenceObject  # noqa: F401
from engine.models.snapshot import (  # noqa: F401
    CollectorSnapshot,
    Judgement,
    SnapshotKind,
    SnapshotSeen,
)

__all__ = [
    "Account", "Base", "ChangeKind", "CheckState", "Connection", "ConnectionStatus",
    "ControlResult", "ControlResultHistory", "ControlStatus", "Evidence", "EvidenceStatus",
    "EvidenceVersion", "Frequency", "RunStatus", "SyncPart", "SyncRun", "Trigger", "new_id",
]
