"""Adapters to the broker: the hub's paho link, Mosquitto management, its password and ACL files, CLI notices."""
