"""expkit: trustworthy daily answers for A/B experiments on a recommendation service.

>>> import expkit
>>> sorted(expkit.TEMPLATES)[:2]
['engagement_bins', 'error_bins']
"""

from expkit.templates import TEMPLATES
from expkit.tiles import run_tile

__version__ = "0.1.0"
__all__ = ["TEMPLATES", "run_tile", "__version__"]
