"""The demo's path to the AWS estate (`evidence demo` imports `seed_estate` from here); the estate
itself is the AWS test kit, `connectors.aws.kit`."""

from __future__ import annotations

from connectors.aws.kit import ACCESS_KEY_ID, ACCOUNT_ALIAS, SECRET_ACCESS_KEY, Estate, seed_estate

__all__ = ["ACCESS_KEY_ID", "ACCOUNT_ALIAS", "SECRET_ACCESS_KEY", "Estate", "seed_estate"]
