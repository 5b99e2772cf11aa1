"""Loopback helpers the tests share. The provider servers live in each connector's test kit
(`connectors/<id>/kit/`); moto's is re-exported here for the suite's `moto_endpoint` fixture."""

from __future__ import annotations

from connectors.aws.kit.server import moto_server, reset_moto
from connectors.testkit import free_port

__all__ = ["free_port", "moto_server", "reset_moto"]
