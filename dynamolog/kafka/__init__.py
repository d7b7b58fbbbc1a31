"""Kafka helpers: a local broker launcher and async admin utilities."""
