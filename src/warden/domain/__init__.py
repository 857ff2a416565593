"""Pure core of Warden: events, incidents, plans, decisions, approvals. Standard library only."""
