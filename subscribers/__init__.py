"""The subscriber domain: profiles, sign-up, confirmation, preferences and unsubscribe."""
