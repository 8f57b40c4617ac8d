"""Detection: rules over the audit trail and the sign-in events, alerts, and their delivery."""
