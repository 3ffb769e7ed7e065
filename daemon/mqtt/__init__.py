"""MQTT: the hall's state out, commands in, Home Assistant discovery, plugins' topics.

`client` runs paho in its own thread and hands everything to the event loop; `topics`
and `discovery` are pure (names and payloads, no I/O); `bridge` joins them to the host.
"""
