"""expkit: trustworthy daily answers for A/B experiments on a recommendation service."""

__version__ = "0.1.0"
