"""appliance: an on-premises AI gateway speaking the OpenAI API."""

__version__ = "0.1.0"
