"""Provider connectors; each package declares one Connector (see connectors/base.py)."""
