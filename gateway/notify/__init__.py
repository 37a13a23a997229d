"""Client notifications: the signed webhook outbox and the SSRF guard for outbound URLs."""
