"""The local HTTP API: one router per resource, mounted by `daemon.api.app`."""
