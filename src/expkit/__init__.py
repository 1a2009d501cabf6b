"""expkit: trustworthy daily answers for A/B experiments on a recommendation service.

>>> import expkit
>>> expkit.TEMPLATES["health_bins"].params
{'start_ms': 'int', 'end_ms': 'int', 'bin_ms': 'int'}
"""

from expkit.templates import TEMPLATES
from expkit.tiles import run_tile

__version__ = "0.1.0"
__all__ = ["TEMPLATES", "run_tile", "__version__"]
