"""Operator seats on the KVM matrix: computers and who may reach them, seats with their
consoles and layouts, operators' profiles, pushing a computer to another seat or the
wall, and who is watching. See docs/seats.md."""
