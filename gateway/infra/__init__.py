"""Cross-cutting infrastructure: settings, logging, metrics, the resilience policy and the
gateway's error tree."""
