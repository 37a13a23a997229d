"""Cross-cutting infrastructure: settings, logging, metrics, the resilience policy, the
gateway's error tree and audio format conversion."""
