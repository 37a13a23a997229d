"""The job lifecycle: create, refresh, callbacks and notify, composed by ``JobService``;
pure record functions; the background refresher. The only layer that calls providers."""
