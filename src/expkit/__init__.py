"""expkit: trustworthy daily answers for A/B experiments on a recommendation service.

>>> import expkit
>>> expkit.TEMPLATES["health_bins"].params
{'start_ms': 'int', 'end_ms': 'int', 'bin_ms': 'int'}
"""

from typing import Any

from expkit.api import run_tile

__version__ = "0.1.0"
__all__ = ["TEMPLATES", "run_tile", "__version__"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: a report kernel that only shows a precomputed tile never needs it.
    if name == "TEMPLATES":
        from expkit.templates import TEMPLATES

        return TEMPLATES
    raise AttributeError(f"module 'expkit' has no attribute {name!r}")
