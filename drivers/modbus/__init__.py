"""Modbus RTU and TCP devices, through pymodbus."""
