"""Delivery: the outbox and the transports that get each digest into an inbox once."""
