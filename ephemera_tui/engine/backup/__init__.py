"""Backup sets: a consistent SQL dump, a vector snapshot and a manifest with checksums;
restoring one into an empty target, verifying one in a scratch place, and retention.

:mod:`.sets` holds the whole cycle (create, load the manifest, restore, verify, list, retain).
"""

from .sets import (
    BackupError,
    BackupResult,
    RestoreReport,
    VerifyReport,
    apply_retention,
    create_backup,
    list_backups,
    load_manifest,
    restore_backup,
    verify_backup,
)

__all__ = [
    "BackupError",
    "BackupResult",
    "RestoreReport",
    "VerifyReport",
    "apply_retention",
    "create_backup",
    "list_backups",
    "load_manifest",
    "restore_backup",
    "verify_backup",
]
