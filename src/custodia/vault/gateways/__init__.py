"""Payment gateways behind one adapter (base.py): the sandbox (default) and Stripe."""
