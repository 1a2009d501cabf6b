"""Synthetic warehouse generator: events with known truth and injected incidents (SPEC §8).

>>> from expkit.synth import INCIDENTS, parse_incident
>>> parse_incident("error_burst@16:00/20").minutes
20
>>> len(INCIDENTS)
10
"""

from expkit.synth.incidents import INCIDENTS, Incident, IncidentInfo, parse_incident
from expkit.synth.model import Model
from expkit.synth.warehouse import SynthConfig, generate

__all__ = ["INCIDENTS", "Incident", "IncidentInfo", "Model", "SynthConfig", "generate",
           "parse_incident"]
