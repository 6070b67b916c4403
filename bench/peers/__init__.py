"""Peer motion detectors for side-by-side benchmarks (our own re-implementations, never the peers' code)."""
