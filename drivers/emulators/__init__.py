"""Protocol emulators: real servers speaking the devices' bytes on loopback.

The demo config starts them so `make run` needs no hardware, and the tests use them
as the device's side of the wire.
"""
