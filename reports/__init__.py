"""fairpriv's report renderers (PDF and HTML). Depends on :mod:`audit`, never the reverse.

Empty for now: the renderers arrive with the report issue.
"""

__all__: list[str] = []
