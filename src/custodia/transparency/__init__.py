"""Transparency computed from the live system (docs/transparency.md): the public security
figures, a business's own published page, the subprocessor list and its change notices."""
