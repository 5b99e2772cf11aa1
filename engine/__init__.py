"""The evidence engine core: settings, data, sync, evidence store and control evaluation."""
