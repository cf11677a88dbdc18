"""Metrics, traces and log context shared by every service."""
