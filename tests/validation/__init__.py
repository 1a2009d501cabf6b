"""Tests of expkit.validation."""
