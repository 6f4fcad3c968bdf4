"""Brokers: where orders go. Paper is built in; live adapters come behind the same interface."""
