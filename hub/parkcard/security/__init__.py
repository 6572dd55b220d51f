"""PKI, the park's secrets and files written atomically."""
