"""MQTT uplinks -> verified records -> the store; the terminal registry, fleet status and downlinks."""
